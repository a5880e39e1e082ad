#!/bin/sh
# bench-server: wrk against erserve on 127.0.0.1 (not a timed test).
#   1. worker x OpenBLAS-thread split: all-miss traffic at concurrency 8 on
#      the demo model, for 1x2, 2x1 and 2x2 (this machine's cores: nproc).
#   2. all-miss vs all-hit req/s, p50, p99 at concurrency 1, 8, 32 on the demo
#      (MiniLM-L6-shaped) and a bert-base-shaped model (cut 6 of 12).
#   3. HTTP + JSON overhead per request at concurrency 1: client latency
#      (wrk mean) minus the in-process compute the server measured
#      (lower + store + upper + head stages, from /metrics).
# Env: BENCH_SECONDS (per wrk run, default 8), BENCH_WORDS (tokens per
# request, about; default 126 -> ~128 with [CLS]/[SEP]), BENCH_MODELS
# ("demo bert-base").
set -eu
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
SECS="${BENCH_SECONDS:-8}"
WORDS="${BENCH_WORDS:-120}"
MODELS="${BENCH_MODELS:-demo bert-base}"
TOK=tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json
OPENBLAS_CORE_NOTE="OPENBLAS_CORETYPE=auto"
[ -f tests/bench/blas_env.sh ] && . tests/bench/blas_env.sh
command -v wrk >/dev/null || { echo "bench_server: wrk is not installed (make deps)"; exit 1; }
make --no-print-directory BUILD="$BUILD" "$BUILD/bin/erserve" "$BUILD/bin/erserve-genmodel" >/dev/null
OUT="$BUILD/bench-server"
mkdir -p "$OUT"
model_dir() { # name -> dir (generated once, not committed)
  case "$1" in
  demo) d="$BUILD/demo/seqcls"; p=minilm-l6 ;;
  bert-base) d="$BUILD/bench-models/bert-base-seqcls"; p=bert-base ;;
  esac
  [ -f "$d/model.safetensors" ] || { mkdir -p "$(dirname "$d")"; "$BUILD/bin/erserve-genmodel" --out "$d" --preset "$p" --head seqcls --seed 42 >&2; }
  echo "$d"
}
PID=""
start() { # model_dir workers blas [store]
  rm -f "$OUT/server.log"
  set -- "$1" "$2" "$3" "${4:-}"
  if [ -n "$4" ]; then rm -rf "$4"; fi
  "$BUILD/bin/erserve" --port 0 --quiet --task cls="$1" --tokenizer "$TOK" --workers "$2" \
    --blas-threads "$3" ${4:+--store "$4"} --store-dtype fp16 >"$OUT/server.log" 2>&1 &
  PID=$!
  i=0
  while ! grep -q "listening on" "$OUT/server.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 600 ] || { cat "$OUT/server.log"; exit 1; }; sleep 0.1
  done
  PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT/server.log")
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
run_wrk() { # script conc [seconds] -> "req/s p50 p99 mean"
  t=$([ "$2" -ge 2 ] && echo 2 || echo 1)
  ERSERVE_TASK=cls ERSERVE_WORDS="$WORDS" wrk -t"$t" -c"$2" -d"${3:-$SECS}s" --timeout 120s --latency \
    -s "deploy/loadtest/$1.lua" "http://127.0.0.1:$PORT" >"$OUT/wrk.txt" 2>&1
  if grep -q "Non-2xx\|Socket errors" "$OUT/wrk.txt"; then echo "bench_server: errors:" >&2; cat "$OUT/wrk.txt" >&2; fi
  awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^ +Latency +[0-9]/ {m=$2}
       END {printf "%10s %9s %9s %9s\n", r, p50, p99, m}' "$OUT/wrk.txt"
}
metric() { # stage-sum total of compute stages, batch count
  curl -s "http://127.0.0.1:$PORT/metrics" | awk '
    /^erserve_stage_seconds_sum\{stage="(lower|store_read|store_write|upper|head)"\}/ {s += $2}
    /^erserve_batch_sequences_count/ {n = $2}
    END {printf "%.9f %d\n", s, n}'
}
echo "erserve bench-server: $(nproc) cores, $WORDS words/request, ${SECS}s per run, $OPENBLAS_CORE_NOTE, $(date -u +%F)"
echo
echo "== 1. worker x OpenBLAS threads (demo model, all-miss, concurrency 8)"
printf "%-14s %10s %9s %9s %9s\n" split req/s p50 p99 mean
D=$(model_dir demo)
for split in "1 2" "2 1" "2 2" "4 1"; do
  set -- $split
  start "$D" "$1" "$2"
  printf "%-14s " "${1}w x ${2}t"; run_wrk miss_heavy 8
  stop
done
echo
echo "== 2. all-miss vs all-hit (store fp16, default cut = half the layers)"
printf "%-10s %-5s %-5s %10s %9s %9s %9s\n" model conc kind req/s p50 p99 mean
# bert-base requests take ~10x longer: its runs last 3x as long.
for m in $MODELS; do
  D=$(model_dir "$m")
  S=$SECS; [ "$m" = bert-base ] && S=$((SECS * 3))
  for c in 1 8 32; do
    start "$D" 2 1 "$OUT/store"
    printf "%-10s %-5s %-5s " "$m" "$c" miss; run_wrk miss_heavy "$c" "$S"
    run_wrk hit_heavy 1 "$((S / 3 + 1))" >/dev/null  # stores the 4 hit texts
    printf "%-10s %-5s %-5s " "$m" "$c" hit; run_wrk hit_heavy "$c" "$S"
    stop
  done
done
echo
echo "== 3. HTTP + JSON overhead per request (concurrency 1)"
printf "%-10s %-5s %12s %12s %10s\n" model kind client_ms compute_ms overhead
for m in $MODELS; do
  D=$(model_dir "$m")
  start "$D" 2 1 "$OUT/store"
  S=$SECS; [ "$m" = bert-base ] && S=$((SECS * 3))
  for kind in miss_heavy hit_heavy; do
    [ $kind = hit_heavy ] && run_wrk hit_heavy 1 "$((S / 3 + 1))" >/dev/null
    set -- $(metric); s0=$1; n0=$2
    line=$(run_wrk $kind 1 "$S")
    set -- $(metric); s1=$1; n1=$2
    mean=$(echo "$line" | awk '{print $4}')
    awk -v m="$m" -v k="${kind%_heavy}" -v mean="$mean" -v s0="$s0" -v s1="$s1" -v n0="$n0" -v n1="$n1" 'BEGIN {
      v = mean + 0; if (mean ~ /us$/) v /= 1000; else if (mean ~ /ms$/) v += 0; else v *= 1000
      c = (s1 - s0) / (n1 - n0) * 1000
      printf "%-10s %-5s %12.3f %12.3f %9.1f%%\n", m, k, v, c, (v - c) / c * 100 }'
  done
  stop
done
