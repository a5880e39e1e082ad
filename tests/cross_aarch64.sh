#!/bin/sh
# The aarch64 build (issue 10: "the aarch64 build compiles"): every core/,
# proto/, server/ and tools/ source compiled by aarch64-linux-gnu-gcc through
# the Makefile's own rules (same flags, -Werror, per-layer include paths)
# into $BUILD/aarch64, and the server and tools linked there when the arm64
# libraries are installed.  Run by make test and by `make cross-aarch64`.
#
# Headers: by default the sources are only compiled (-c), against the
# host's architecture-independent headers (-idirafter /usr/include) and the
# amd64 OpenBLAS headers (cblas.h, openblas_config.h: erserve uses no
# architecture-dependent part of them).  Where Debian's arm64 multiarch -dev
# packages are installed (dpkg --add-architecture arm64; apt-get install
# libopenblas-dev:arm64 libjansson-dev:arm64 libmicrohttpd-dev:arm64
# libsodium-dev:arm64 libutf8proc-dev:arm64 liblmdb-dev:arm64
# libonig-dev:arm64 libmemcached-dev:arm64 libdnnl-dev:arm64) pkg-config finds them under
# /usr/lib/aarch64-linux-gnu and the server and tools are linked too.  Do
# that on a cross-build machine only: libonig-dev, libmemcached-dev and
# libsasl2-dev are not co-installable across architectures, so apt removes
# the amd64 ones the native build needs.  Skipped (77) without the cross
# compiler or its C library headers (gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross): install-deps.sh does not install them.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD="${BUILD:-build}"
CROSS_CC="${CROSS_CC:-aarch64-linux-gnu-gcc}"
OUT="$BUILD/aarch64"
if ! command -v "$CROSS_CC" >/dev/null 2>&1; then
  echo "SKIP: cross_aarch64: no $CROSS_CC (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
  exit 77
fi
if ! echo '#include <stdio.h>' | "$CROSS_CC" -x c -fsyntax-only - 2>/dev/null; then
  echo "SKIP: cross_aarch64: $CROSS_CC has no C library headers (apt-get install libc6-dev-arm64-cross)"
  exit 77
fi
PKGS="jansson libmicrohttpd libsodium libutf8proc openblas lmdb oniguruma"
ARM_PC="/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig"
start=$(date +%s)
if PKG_CONFIG_LIBDIR="$ARM_PC" pkg-config --exists $PKGS 2>/dev/null &&
   [ -e /usr/lib/aarch64-linux-gnu/libmemcached.so ]; then
  how="compiled and linked against the arm64 libraries"
  cflags=$(PKG_CONFIG_LIBDIR="$ARM_PC" pkg-config --cflags $PKGS)
  libs="$(PKG_CONFIG_LIBDIR="$ARM_PC" pkg-config --libs $PKGS) -lmemcached"
  targets="$OUT/bin/erserve $(ls tools/*.c | sed "s|tools/\(.*\)\.c|$OUT/bin/erserve-\1|")"
else
  how="compiled only (no arm64 -dev packages: host headers, amd64 OpenBLAS headers)"
  cflags="-I/usr/include/p11-kit-1 -DUTF8PROC_EXPORTS -idirafter /usr/include \
-idirafter /usr/include/x86_64-linux-gnu/openblas-pthread"
  libs=""
  targets=$(ls core/*.c proto/*.c server/*.c tools/*.c | sed "s|^\(.*\)\.c$|$OUT/obj/\1.o|")
fi
log="$OUT.log"
mkdir -p "$OUT"
# -O1: the warnings that need data-flow analysis (-Wmaybe-uninitialized) at
# a fraction of -O3's compile time.
if ! make --no-print-directory -j"${CROSS_JOBS:-2}" BUILD="$OUT" CC="$CROSS_CC" ARCH_FLAGS= \
     OPT=-O1 "PKG_CFLAGS=$cflags" "PKG_LIBS=$libs" $targets >"$log" 2>&1; then
  grep -E "error|undefined reference" "$log" | head -20
  echo "cross_aarch64: FAILED ($how); full log in $log"
  exit 1
fi
n=$(find "$OUT/obj" -name '*.o' | wc -l)
echo "cross_aarch64: $n sources $how for aarch64 in $(( $(date +%s) - start )) s ($OUT)"
