#!/bin/sh
# ModernBERT benchmark (make bench): a random modernbert-base-shaped model
# (22 layers x 768, GeGLU 1152, local window 128, generated here, never
# committed): tokens/s of the full forward at 8x128 and 1x512, then full
# forward vs recycled hits at cut L/2 (11) and 3L/4 (16) and the store's
# per-dtype figures (bench_store).  BENCH_ITERS iterations, medians.
set -eu
ITERS="${BENCH_ITERS:-3}"
. tests/bench/common.sh
bench_cc bench_engine
bench_cc bench_store
MB="$BUILD/bench/modernbert-base"
[ -f "$MB/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$MB" --preset modernbert-base --arch modernbert \
    --head seqcls --seed 7
echo "== modernbert-base shape, full forward ($OPENBLAS_CORE_NOTE)"
for shape in "8 128" "1 512"; do
  set -- $shape
  "$BUILD/bench/bench_engine" "$MB" "$1" "$2" 1 "$ITERS"
done
echo "== modernbert-base shape: miss vs hit, batch 8 x 128"
mkdir -p "$BUILD/bench/stores-modernbert"
"$BUILD/bench/bench_store" "$MB" "$BUILD/bench/stores-modernbert" 8 128 "$ITERS"
rm -rf "$BUILD/bench/stores-modernbert"
