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
PKGS     := jansson libmicrohttpd libsodium libutf8proc openblas lmdb
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS   ?= $(OPT) -g $(ARCH_FLAGS)
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -fno-math-errno -pthread \
            -Icore -Iproto -Iserver $(PKG_CFLAGS) $(SAN_FLAGS)
LDFLAGS  += $(SAN_FLAGS) -pthread
LDLIBS   += $(PKG_LIBS) -lm

CORE_SRC   := $(wildcard core/*.c)
PROTO_SRC  := $(wildcard proto/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC    := $(wildcard server/cli/*.c)
TEST_SRC   := $(wildcard tests/*/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

LIB      := $(BUILD)/liberserve.a
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(PROTO_SRC) $(SERVER_SRC))
CLI_BIN  := $(patsubst server/cli/%.c,$(BUILD)/bin/erserve-%,$(CLI_SRC))
SRV_BIN  := $(if $(wildcard server/main.c),$(BUILD)/bin/erserve)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 10
BINS     := $(SRV_BIN) $(CLI_BIN)

.SECONDARY:
.PHONY: all deps test test-run asan native bench bench-run bench-server fixtures fuzz fuzz-build run clean valgrind

all: $(BINS) $(TEST_BIN)

deps:
	@./deploy/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/erserve-%: $(BUILD)/obj/server/cli/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/erserve: $(BUILD)/obj/server/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

# Tests: every tests/<module>/test_*.c is one libcheck suite and one binary.
# The runner needs the binaries (some tests exec the command-line tools).
test: deps
	@$(MAKE) --no-print-directory test-run

test-run: $(BINS) $(TEST_BIN) $(FUZZ_BIN)
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/run.sh $(TEST_BIN) $(FUZZ_BIN)

# libFuzzer targets: tests/fuzz/fuzz_NAME.c with seeds in tests/fuzz/corpus/NAME/.
# Built with clang against the library sources (not liberserve.a, which is gcc).
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Icore -Iproto -Iserver $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(PROTO_SRC) $(SERVER_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

# Longer fuzzing by hand: make fuzz FUZZ_SECONDS=600
fuzz: deps fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/run.sh $(FUZZ_BIN)

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then the suites.
asan: deps
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

native:
	@$(MAKE) --no-print-directory BUILD=build/native ARCH_FLAGS=-march=native all

fixtures:
	@./deploy/install-deps.sh python3-torch python3-numpy
	/usr/bin/python3 tests/fixtures/gen.py

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
