#!/bin/sh
# DeBERTa benchmark (make bench): a random deberta-v3-base-shaped model
# (erserve-genmodel --preset deberta-v3-base; generated here, never
# committed): full-forward tokens/s at 8x128 and 1x512 against the sgemm
# ceiling of its projections (bench_engine), then a full forward (miss) vs
# store hits at cut L/2 and 3L/4 at 8x128 (bench_store).
set -eu
ITERS="${BENCH_ITERS:-5}"
. tests/bench/common.sh
DEB="$BUILD/bench/deberta-v3-base"
[ -f "$DEB/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$DEB" --preset deberta-v3-base --head seqcls --seed 7
bench_cc bench_engine
bench_cc bench_store
echo "== deberta-v3-base shape, full forward ($OPENBLAS_CORE_NOTE)"
for shape in "8 128" "1 512"; do
  set -- $shape
  for t in 1 2; do
    "$BUILD/bench/bench_engine" "$DEB" "$1" "$2" "$t" "$ITERS"
  done
done
echo "== deberta-v3-base shape: miss vs hit, batch 8 x 128"
mkdir -p "$BUILD/bench/stores-deberta"
"$BUILD/bench/bench_store" "$DEB" "$BUILD/bench/stores-deberta" 8 128 "${BENCH_STORE_ITERS:-3}"
rm -rf "$BUILD/bench/stores-deberta"
