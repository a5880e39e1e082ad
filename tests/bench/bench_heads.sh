#!/bin/sh
# Heads benchmark (make bench): the full forward of a bert-base-shaped model
# with the SPLADE sparse-embedding head (BertForMaskedLM: transform, then the
# 30522-word decoder in [128 x 1024] logit tiles, max over tokens) and with a
# sentence-transformers embedding head plus a 768 -> 768 Tanh Dense module,
# against the same encoder with its sequence-classification head: the
# difference is what the head costs.  Random weights, generated here.
set -eu
ITERS="${BENCH_ITERS:-3}"
. tests/bench/common.sh
bench_cc bench_engine
for h in sparse dense; do
  d="$BUILD/bench/bert-base-$h"
  [ -f "$d/model.safetensors" ] || if [ $h = sparse ]; then
    "$BUILD/bin/erserve-genmodel" --out "$d" --preset bert-base --head sparse --seed 7
  else
    "$BUILD/bin/erserve-genmodel" --out "$d" --preset bert-base --head embedding --dense 768 --seed 7
  fi
done
echo "== heads: bert-base shape, full forward per head, 1 thread ($OPENBLAS_CORE_NOTE)"
for shape in "8 128" "1 512"; do
  set -- $shape
  for m in "$MODEL" "$BUILD/bench/bert-base-sparse" "$BUILD/bench/bert-base-dense"; do
    printf '%-12s ' "$(basename "$m")"
    "$BUILD/bench/bench_engine" "$m" "$1" "$2" 1 "$ITERS"
  done
done
