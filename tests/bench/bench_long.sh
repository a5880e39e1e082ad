#!/bin/sh
# Long-input benchmark (make bench): one BENCH_LONG_SEQ-token input (8192 by
# default) at the bert-base shape with 8192 positions (random weights,
# generated here, never committed): the worker scratch the server allocates
# for it and the RSS it adds, the time of its forward (miss) and of its
# recycled hit, and the store's size and write/read times for a value of
# that length per dtype.  One forward at 8192 tokens is ~4 TFLOP (2/3 of it
# attention): minutes on one core.
set -eu
. tests/bench/common.sh
bench_cc bench_long
SEQ="${BENCH_LONG_SEQ:-8192}"
LONG_MODEL="$BUILD/bench/bert-base-8k"
[ -f "$LONG_MODEL/model.safetensors" ] ||
  "$BUILD/bin/erserve-genmodel" --out "$LONG_MODEL" --preset bert-base --head seqcls --seed 7 \
    --max-positions 8192
echo "== long inputs: bert-base shape, 8192 positions, one $SEQ-token input, OpenBLAS threads ${OPENBLAS_NUM_THREADS:-1} ($OPENBLAS_CORE_NOTE)"
mkdir -p "$BUILD/bench/stores"
"$BUILD/bench/bench_long" "$LONG_MODEL" "$BUILD/bench/stores" "$SEQ" "${OPENBLAS_NUM_THREADS:-1}"
rm -rf "$BUILD/bench/stores"/long-*
# Full forward at 1 x 2048 (4 key tiles x 16 query blocks of the tiled
# attention per head) on the same model, for the attention's scaling.
bench_cc bench_engine
"$BUILD/bench/bench_engine" "$LONG_MODEL" 1 2048 1 "${BENCH_ITERS:-2}"
