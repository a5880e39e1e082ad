#!/bin/sh
# NomicBERT and GTE v1.5 benchmark (make bench): random models at the shapes
# of nomic-embed-text-v1.5 and gte-base-en-v1.5 (erserve-genmodel presets,
# generated once under $BUILD, never committed): tokens/s of the full
# forward at 8x128 and 1x512, then a miss against a hit at cut L/2.
set -eu
ITERS="${BENCH_ITERS:-3}"
THREADS="${BENCH_THREADS:-2}"
. tests/bench/common.sh
bench_cc bench_engine
bench_cc bench_cut
for spec in "nomic-embed-text-v1.5 nomic_bert" "gte-base-en-v1.5 gte"; do
  set -- $spec
  dir="$BUILD/bench/$1"
  [ -f "$dir/model.safetensors" ] ||
    "$BUILD/bin/erserve-genmodel" --out "$dir" --preset "$1" --arch "$2" --seed 7
  echo "== $1 shape ($2), $THREADS thread(s): full forward"
  for shape in "8 128" "1 512"; do
    set -- $shape
    "$BUILD/bench/bench_engine" "$dir" "$1" "$2" "$THREADS" "$ITERS"
  done
  echo "== miss vs hit at cut 6 of 12 (hit: layers 6..12 and the head; store read excluded)"
  "$BUILD/bench/bench_cut" "$dir" 8 128 "$THREADS" "$ITERS" 6
done
