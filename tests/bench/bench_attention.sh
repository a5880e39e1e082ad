#!/bin/sh
# Attention alone (er_attention, core/attention.c) at the bert-base shape:
# CPU ms per layer and GFLOP/s for 1x128 and 8x128 on 1 and 2 threads, and
# the output's bit hash (equal hashes across two builds: bit-identical).
#
#   BENCH_ITERS (20) timed calls per shape, median.
set -eu
. tests/bench/common.sh
bench_cc bench_attention
ITERS="${BENCH_ITERS:-20}"
echo "== attention alone: bert-base shape, $ITERS calls, $OPENBLAS_CORE_NOTE, load $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in "1 128" "8 128"; do
  set -- $shape
  for t in 1 2; do
    "$BUILD/bench/bench_attention" "$MODEL" "$1" "$2" "$t" "$ITERS"
  done
done
