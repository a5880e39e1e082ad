#!/bin/sh
# Two builds of erserve on the bert-base-shaped model of common.sh, rounds
# interleaved (A, B, A, B ...) so both see the same machine noise: wall and
# CPU ms per forward (bench_engine) for 1x128 and 8x128 on 1 and 2 threads,
# then the median of each and B / A.  For before/after figures of a change:
#
#   make BUILD=build-old ...   (the old tree built elsewhere, its bench_engine)
#   sh tests/bench/bench_ab.sh /path/to/old/bench_engine build/bench/bench_engine
#
#   BENCH_ROUNDS (3) rounds x BENCH_ITERS (5) timed forwards per build.
set -eu
A="$1"
B="$2"
ROUNDS="${BENCH_ROUNDS:-3}"
ITERS="${BENCH_ITERS:-5}"
. tests/bench/common.sh
OUT="$BUILD/bench/ab.jsonl"
: >"$OUT"
echo "== A/B: A=$A B=$B, $ROUNDS rounds x $ITERS forwards, $OPENBLAS_CORE_NOTE, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for shape in "1 128" "8 128"; do
    set -- $shape
    for t in 1 2; do
      for side in A B; do
        if [ "$side" = A ]; then bin="$A"; else bin="$B"; fi
        "$bin" "$MODEL" "$1" "$2" "$t" "$ITERS" | sed "s/^{/{\"side\":\"$side\",/" >>"$OUT"
      done
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = sorted({(r["batch"], r["seq"], r["threads"]) for r in rows})
print("%-12s %10s %10s %7s %10s %10s %7s" % ("shape", "A ms", "B ms", "B/A", "A cpu", "B cpu", "B/A"))
for k in keys:
    def med(side, f):
        return statistics.median(r[f] for r in rows if r["side"] == side and
                                 (r["batch"], r["seq"], r["threads"]) == k)
    a, b = med("A", "ms_per_forward"), med("B", "ms_per_forward")
    ac, bc = med("A", "cpu_ms_per_forward"), med("B", "cpu_ms_per_forward")
    print("%-12s %10.1f %10.1f %7.3f %10.1f %10.1f %7.3f" %
          ("%dx%d t%d" % k, a, b, b / a, ac, bc, bc / ac))
PY
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
