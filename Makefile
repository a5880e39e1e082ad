# erserve build.  `make` builds everything; `make test` installs what is missing,
# builds and runs every test suite; `make run` serves the demo.
#
# Instruction set: the default build is portable (x86-64-v2: SSE4.2, every x86-64
# server since ~2009) so a binary built here or in Docker runs on any target.  The
# heavy lifting is OpenBLAS, which picks its kernels at run time (Debian builds it
# with DYNAMIC_ARCH), so the portable build loses little.  `make native` rebuilds
# with -march=native for the machine at hand (never ship that binary elsewhere).

BUILD    ?= build
CC       ?= cc
UNAME_M  := $(shell uname -m)
ifeq ($(UNAME_M),x86_64)
ARCH_FLAGS ?= -march=x86-64-v2 -mtune=generic
else
ARCH_FLAGS ?=
endif
OPT      ?= -O3
NPROC    := $(shell nproc 2>/dev/null || echo 2)
PKGS     := jansson libmicrohttpd libsodium libutf8proc openblas lmdb oniguruma libmemcached
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS   ?= $(OPT) -g $(ARCH_FLAGS)
WARN     := -Wall -Wextra -Wcast-qual -Wshadow -Wmissing-prototypes -Werror -Wno-format-truncation
CFLAGS   += -std=c11 -D_GNU_SOURCE $(WARN) -fno-math-errno -pthread $(PKG_CFLAGS) $(SAN_FLAGS)
LDFLAGS  += $(SAN_FLAGS) -pthread
LDLIBS   += $(PKG_LIBS) -lm
# oneDNN (Debian libdnnl-dev, deploy/install-deps.sh): the opt-in `--gemm onednn`
# backend (core/gemm_dnnl.c).  Built where $(CC) finds its header; without it
# that backend reports that this build has none.  libgomp: oneDNN's threading
# runtime, whose team erserve pins to one thread per calling thread.
HAVE_DNNL := $(shell echo '\#include <oneapi/dnnl/dnnl.h>' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_DNNL),1)
CFLAGS   += -DER_HAVE_DNNL
LDLIBS   += -ldnnl -lgomp
endif

# Layers, enforced by include paths: core sees only core; proto sees proto
# and core (its error type and kernels); the server sees all three; the tools
# see core only.  Tests and
# benchmarks see the layer they test.  tests/check_layers.sh (run by make
# test) also refuses a relative include that climbs out of its layer and two
# headers with one name.
INC_core   := -Icore
INC_proto  := -Iproto -Icore
INC_server := -Iserver -Iproto -Icore
INC_tools  := -Icore
INC_tests/core   := -Icore
INC_tests/proto  := -Iproto -Icore
INC_tests/server := -Iserver -Iproto -Icore
INC_tests/tools  := -Icore
INC_tests/bench  := -Icore -Itests/bench
INC_tests/chaos  := -Itests/server
layer_of = $(patsubst %/,%,$(dir $(1)))

CORE_SRC   := $(wildcard core/*.c)
PROTO_SRC  := $(wildcard proto/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
TOOL_SRC   := $(wildcard tools/*.c)
TEST_SRC   := $(wildcard tests/*/test_*.c)
BENCH_SRC  := $(wildcard tests/bench/bench_*.c)
CHAOS_SRC  := $(wildcard tests/chaos/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

obj_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CORE_LIB   := $(BUILD)/lib/libercore.a
PROTO_LIB  := $(BUILD)/lib/liberproto.a
SERVER_LIB := $(BUILD)/lib/liberserver.a
TOOL_BIN   := $(patsubst tools/%.c,$(BUILD)/bin/erserve-%,$(TOOL_SRC))
SRV_BIN    := $(BUILD)/bin/erserve
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BIN  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
CHAOS_BIN  := $(patsubst tests/chaos/%.c,$(BUILD)/chaos/%,$(CHAOS_SRC))
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 10
BINS     := $(SRV_BIN) $(TOOL_BIN)

# What each test folder links: its layer and the layers below it.
LIBS_core   := $(CORE_LIB)
LIBS_proto  := $(PROTO_LIB) $(CORE_LIB)
LIBS_server := $(SERVER_LIB) $(PROTO_LIB) $(CORE_LIB)
LIBS_tools  := $(CORE_LIB)
LIBS_bench  := $(CORE_LIB)

.SECONDARY:
.PHONY: all deps test test-build test-run cross-aarch64 cluster-test image-test asan native bench bench-run bench-server chaos chaos-run fixtures fuzz fuzz-build run clean valgrind

all: $(BINS) $(TEST_BIN) $(BENCH_BIN) $(CHAOS_BIN)

deps:
	@./deploy/install-deps.sh

# The first folder of a source names its layer (tests/X: the second too).
$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_tests/$(call layer_of,$*)) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_$(firstword $(subst /, ,$*))) -MMD -MP -c $< -o $@

$(CORE_LIB): $(call obj_of,$(CORE_SRC))
$(PROTO_LIB): $(call obj_of,$(PROTO_SRC))
$(SERVER_LIB): $(call obj_of,$(SERVER_SRC))
$(CORE_LIB) $(PROTO_LIB) $(SERVER_LIB):
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/erserve-%: $(BUILD)/obj/tools/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SRV_BIN): $(BUILD)/obj/server/main.o $(SERVER_LIB) $(PROTO_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.SECONDEXPANSION:
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $$(LIBS_$$(firstword $$(subst /, ,$$*)))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

# Benchmark and chaos programs are built by `make all` and so by `make test`
# (never run there), so they cannot rot; benchmarks link the same core
# library as everything else, the chaos clients nothing.
$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/chaos/%: $(BUILD)/obj/tests/chaos/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

# Tests: every tests/<module>/test_*.c is one libcheck suite and one binary.
# The runner needs the binaries (some tests exec the command-line tools).
# The build runs one job per core (NPROC); the tests themselves one at a time.
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) test-build
	@$(MAKE) --no-print-directory test-run

test-build: $(BINS) $(TEST_BIN) $(BENCH_BIN) $(CHAOS_BIN) $(FUZZ_BIN)

test-run: test-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/run.sh tests/check_layers.sh $(TEST_BIN) \
	  tests/cluster/check_deploy.sh tests/cluster/cluster_test.sh tests/cross_aarch64.sh \
	  tests/gemm_avx2.sh tests/gemm_onednn.sh $(FUZZ_BIN)

# The aarch64 build: every core/, proto/, server/ and tools/ source through
# aarch64-linux-gnu-gcc into $(BUILD)/aarch64, linked where the arm64 -dev
# packages are installed (tests/cross_aarch64.sh says which; make test runs
# it too, ~15 s of CPU from scratch, skipped without the cross compiler).
cross-aarch64:
	@BUILD=$(BUILD) sh tests/cross_aarch64.sh

# The cluster scenarios at full size (issue 14: 2,000 documents x 5 requests,
# nginx, round-robin for contrast, a hung memcached); make test runs a short
# version (200 documents).  Loopback only; everything started is ended by PID.
cluster-test: deps
	@$(MAKE) --no-print-directory $(BINS)
	@BUILD=$(BUILD) CLUSTER_DOCS=2000 CLUSTER_RATE=500 CLUSTER_FULL=1 sh tests/cluster/cluster_test.sh

# The image itself: podman builds the Dockerfile (bases made by mmdebstrap,
# no registry needed) and its entrypoint serves a prediction from the
# exported root under chroot (tests/image/image_test.sh; minutes; skipped
# visibly where podman cannot run).
image-test:
	@$(MAKE) --no-print-directory $(BUILD)/bin/erserve-genmodel
	@BUILD=$(BUILD) sh tests/image/image_test.sh

# libFuzzer targets: tests/fuzz/fuzz_NAME.c with seeds in tests/fuzz/corpus/NAME/.
# Built with clang against the core and proto sources (the libraries are gcc's),
# compiled once into $(BUILD)/fuzzobj with the sanitizers' instrumentation and
# linked into every target (each target compiling all of them was ~5x the work).
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Icore -Iproto $(PKG_CFLAGS) \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ    := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(CORE_SRC) $(PROTO_SRC))
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

# Longer fuzzing by hand: make fuzz FUZZ_SECONDS=600
fuzz: deps fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/run.sh $(FUZZ_BIN)

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then the suites.
asan: deps
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build/asan OPT=-O1 \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  test-build
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  test-run

# The suites under valgrind memcheck (no forking, so every leak is seen).
valgrind: $(BINS) $(TEST_BIN)
	@BUILD=$(BUILD) ERSERVE_VALGRIND=1 ./tests/run.sh $(TEST_BIN)

# Benchmarks: every tests/bench/bench_*.sh but the server's, in name order.
# Not timed tests.
bench: deps
	@$(MAKE) --no-print-directory bench-run
bench-run: all
	@for b in tests/bench/bench_*.sh; do [ "$$b" = tests/bench/bench_server.sh ] && continue; \
	  BUILD=$(BUILD) sh "$$b" || exit 1; done

bench-server: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/bench/bench_server.sh

# The demo: three tasks sharing a MiniLM-shaped lower stack, random weights.
run: deps
	@$(MAKE) --no-print-directory $(SRV_BIN) $(BUILD)/bin/erserve-genmodel
	@BUILD=$(BUILD) ./deploy/demo.sh

# Chaos (minutes; not part of make test): the mixed-traffic soak with a
# kill -9 every minute (CHAOS_SECONDS, 600), the slow-client attacks
# (CHAOS_SECONDS per scenario) and store damage (CHAOS_ROUNDS).  Each script
# stops by itself and ends what it started by PID; loopback only.
chaos: deps
	@$(MAKE) --no-print-directory chaos-run
chaos-run: all
	@rc=0; for s in soak slow_clients store_damage; do echo "== chaos: $$s"; \
	  BUILD=$(BUILD) sh tests/chaos/$$s.sh || rc=1; done; exit $$rc

native:
	@$(MAKE) --no-print-directory BUILD=build/native ARCH_FLAGS=-march=native all

fixtures:
	@./deploy/install-deps.sh python3-torch python3-numpy
	/usr/bin/python3 tests/fixtures/gen.py
	/usr/bin/python3 tests/fixtures/ref_lora.py
	/usr/bin/python3 tests/fixtures/ref_bottleneck.py
	@$(MAKE) --no-print-directory $(BUILD)/bin/erserve-genmodel
	GENMODEL=$(BUILD)/bin/erserve-genmodel /usr/bin/python3 tests/fixtures/gen_e2e.py

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)
