#!/bin/sh
# MPNet benchmark (make bench): a random all-mpnet-base-v2-shaped model
# (erserve-genmodel --preset mpnet-base --arch mpnet, generated here, never
# committed): tokens/s of the full forward at 8 x 128 and 1 x 512 (the
# relative position bias added to every layer's scores), then a full
# forward (miss) vs a recycled hit at cut L/2 (bench_store, 8 x 128).
set -eu
ITERS="${BENCH_ITERS:-3}"
. tests/bench/common.sh
bench_cc bench_engine
bench_cc bench_store
MPNET="$BUILD/bench/mpnet-base"
[ -f "$MPNET/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$MPNET" --preset mpnet-base --arch mpnet --head seqcls --seed 7
echo "== mpnet: mpnet-base shape, full forward ($OPENBLAS_CORE_NOTE)"
for shape in "8 128" "1 512"; do
  set -- $shape
  "$BUILD/bench/bench_engine" "$MPNET" "$1" "$2" 1 "$ITERS"
done
echo "== mpnet: miss vs hit (store fp16), batch 8 x 128"
mkdir -p "$BUILD/bench/stores-mpnet"
"$BUILD/bench/bench_store" "$MPNET" "$BUILD/bench/stores-mpnet" 8 128 "$ITERS" | grep -E "^(full forward|hit at cut)"
rm -rf "$BUILD/bench/stores-mpnet"
