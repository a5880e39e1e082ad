# Sourced by the C benchmarks' scripts: the bert-base-shaped model they share
# (random weights, generated once under $BUILD, never committed) and the
# build of a tests/bench/NAME.c program against $BUILD/liberserve.a.
BUILD="${BUILD:-build}"
MODEL="$BUILD/bench/bert-base"
mkdir -p "$BUILD/bench"
[ -f "$MODEL/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$MODEL" --preset bert-base --head seqcls --seed 7

bench_cc() { # NAME -> $BUILD/bench/NAME
  cc -O2 -std=c11 -D_GNU_SOURCE -Icore $(pkg-config --cflags openblas lmdb libsodium) \
     "tests/bench/$1.c" "$BUILD/liberserve.a" -o "$BUILD/bench/$1" \
     $(pkg-config --libs jansson libmicrohttpd libsodium libutf8proc openblas lmdb) -lm -pthread
}
