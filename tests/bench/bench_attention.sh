#!/bin/sh
# Attention alone (er_attention, core/attention.c) at the bert-base shape:
# CPU ms per layer and GFLOP/s for 1x128 and 8x128 on 1 and 2 threads, and
# the output's bit hash (equal hashes across two builds: bit-identical).
#
#   sh tests/bench/bench_attention.sh                  this build
#   sh tests/bench/bench_attention.sh OLD/bench_attention build/bench/bench_attention
#       A/B: BENCH_ROUNDS (5) rounds interleaved A, B, A, B ..., the median
#       CPU ms of each side and B / A, and whether the hashes agree.
#
#   BENCH_ITERS (20) timed calls per run, median.
set -eu
. tests/bench/common.sh
bench_cc bench_attention
ITERS="${BENCH_ITERS:-20}"
echo "== attention alone: bert-base shape, $ITERS calls, $OPENBLAS_CORE_NOTE, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $# -lt 2 ]; then
  for shape in "1 128" "8 128"; do
    set -- $shape
    for t in 1 2; do
      "$BUILD/bench/bench_attention" "$MODEL" "$1" "$2" "$t" "$ITERS"
    done
  done
  exit 0
fi
A="$1"
B="$2"
OUT="$BUILD/bench/att_ab.jsonl"
: >"$OUT"
for round in $(seq 1 "${BENCH_ROUNDS:-5}"); do
  for shape in "1 128" "8 128"; do
    set -- $shape
    for t in 1 2; do
      "$A" "$MODEL" "$1" "$2" "$t" "$ITERS" | sed 's/^{/{"side":"A",/' >>"$OUT"
      "$B" "$MODEL" "$1" "$2" "$t" "$ITERS" | sed 's/^{/{"side":"B",/' >>"$OUT"
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = sorted({(r["batch"], r["seq"], r["threads"]) for r in rows})
print("%-12s %9s %9s %6s %8s %8s  %s" % ("shape", "A cpu ms", "B cpu ms", "B/A", "A GF/s", "B GF/s", "bits"))
for k in keys:
    sel = lambda s: [r for r in rows if r["side"] == s and (r["batch"], r["seq"], r["threads"]) == k]
    a, b = statistics.median(r["cpu_ms"] for r in sel("A")), statistics.median(r["cpu_ms"] for r in sel("B"))
    ga, gb = statistics.median(r["gflops_cpu"] for r in sel("A")), statistics.median(r["gflops_cpu"] for r in sel("B"))
    same = {r["hash"] for r in sel("A")} == {r["hash"] for r in sel("B")}
    print("%-12s %9.3f %9.3f %6.3f %8.1f %8.1f  %s" % ("%dx%d %dt" % k, a, b, b / a, ga, gb,
                                                      "identical" if same else "DIFFER"))
PY
