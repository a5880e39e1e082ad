#!/bin/sh
# Store benchmark (make bench): full forward vs recycled hits at cut 6 and 9,
# LMDB read latency, bytes/token per dtype, warm throughput, and the head
# error of fp16 / int8 storage, on a random bert-base-shaped model (generated
# here, never committed).  Batch 8 x 128 unless BENCH_BATCH / BENCH_SEQ say.
set -eu
ITERS="${BENCH_ITERS:-3}"
. tests/bench/common.sh
bench_cc bench_store
echo "== store: bert-base shape, batch ${BENCH_BATCH:-8} x ${BENCH_SEQ:-128}, OpenBLAS threads ${OPENBLAS_NUM_THREADS:-all} ($OPENBLAS_CORE_NOTE)"
mkdir -p "$BUILD/bench/stores"
"$BUILD/bench/bench_store" "$MODEL" "$BUILD/bench/stores" "${BENCH_BATCH:-8}" "${BENCH_SEQ:-128}" "$ITERS"

# Memory: 1 task vs 4 tasks sharing one lower stack (heads/upper layers from
# other seeds, lower layers from the same one).
for k in 1 2 3; do
  [ -f "$BUILD/bench/bert-base-task$k/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" \
    --out "$BUILD/bench/bert-base-task$k" --preset bert-base --head seqcls --seed 7 --upper-seed $((100 + k)) --upper-from 6
done
"$BUILD/bench/bench_store" --rss "$MODEL"
"$BUILD/bench/bench_store" --rss "$MODEL" "$BUILD/bench/bert-base-task1" "$BUILD/bench/bert-base-task2" "$BUILD/bench/bert-base-task3"
rm -rf "$BUILD/bench/stores"
