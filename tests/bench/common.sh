# Sourced by the C benchmarks' scripts: the bert-base-shaped model they share
# (random weights, generated once under $BUILD, never committed) and the
# build of a tests/bench/NAME.c program by the Makefile (the same rule that
# `make test` builds it with, against the same core library), and the
# OpenBLAS kernel choice of every benchmark (blas_env.sh).
BUILD="${BUILD:-build}"
MODEL="$BUILD/bench/bert-base"
mkdir -p "$BUILD/bench"
[ -f "$MODEL/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$MODEL" --preset bert-base --head seqcls --seed 7

bench_cc() { # NAME -> $BUILD/bench/NAME
  make --no-print-directory BUILD="$BUILD" "$BUILD/bench/$1" >/dev/null
}

. tests/bench/blas_env.sh
