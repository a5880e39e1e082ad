#!/bin/sh
# make chaos: a soak with crashes (not part of make test).
#
# CHAOS_SECONDS (default 600) of mixed traffic (tests/chaos/mixed.lua: hits,
# misses and bad requests, each checked against the status it should get) at
# CHAOS_CONNECTIONS (64) connections from wrk on 127.0.0.1, against erserve
# on a generated model (CHAOS_PRESET: minilm-l6, the demo's shape, default;
# or bert-base) with an LMDB store.  Every CHAOS_CYCLE (60) seconds the server
# is killed with SIGKILL while requests are in flight, `erserve-cache verify`
# checks the store it left, and it is restarted on the same port and store.
# Each cycle is a steady phase (wrk for CYCLE - 3 s: every error there is a
# real one) and a kill phase (a fresh wrk, SIGKILL 1.5 s in, wrk stopped
# 0.2 s later: its socket errors are the requests in flight at the kill and
# the connections refused in those 0.2 s; reported, not counted as errors).
# At the end it is restarted once more, must serve a stored text as a hit,
# must drain on SIGTERM with exit 0, and the store is verified again.
#
# Reports: errors (unexpected statuses in either phase; socket errors and wrk
# timeouts of the steady phases; 5xx in the server's access log: all must be
# 0), the 499s logged (clients gone: wrk ending a phase), the server's RSS in
# the first and the last cycle (mean over each cycle's second half): RssAnon,
# the heap, must drift < 5%; VmRSS is shown beside it but not judged, as it
# also counts the pages of the LMDB map, which grow with the store (up to
# --store-budget) whatever the heap does; and every verify.
# Exit status 0 when every target is met, 1 otherwise.
#
# Everything lives in a scratch directory (model, store, logs) removed at
# exit; the processes it starts (erserve, wrk) are ended by PID on any exit.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
BIN="$BUILD/bin"
SECS="${CHAOS_SECONDS:-600}"
CYCLE="${CHAOS_CYCLE:-60}"
CONNS="${CHAOS_CONNECTIONS:-64}"
PRESET="${CHAOS_PRESET:-minilm-l6}"
TOK=tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json
for b in erserve erserve-genmodel erserve-cache; do
  [ -x "$BIN/$b" ] || { echo "chaos: $BIN/$b is missing (make)"; exit 1; }
done
command -v wrk >/dev/null || { echo "chaos: wrk is not installed (make deps)"; exit 1; }
command -v curl >/dev/null || { echo "chaos: curl is not installed (make deps)"; exit 1; }
[ "$CYCLE" -ge 10 ] && [ "$SECS" -ge 10 ] || { echo "chaos: CHAOS_SECONDS and CHAOS_CYCLE must be >= 10"; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/erserve-chaos.XXXXXX")
SRV=""
WRK=""
cleanup() {
  set +e # a failing wait must not stop the cleanup
  [ -n "$WRK" ] && kill "$WRK" 2>/dev/null && wait "$WRK" 2>/dev/null
  [ -n "$SRV" ] && kill -9 "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s; }
T_START=$(now)

"$BIN/erserve-genmodel" --out "$W/model" --preset "$PRESET" --head seqcls --seed 42 >/dev/null

PORT=0
# start K: erserve on PORT (0 the first time: any free port, kept after),
# ready (GET /ready 200) within 120 s, or exit 1.
start() {
  log="$W/server.$1.log"
  tries=0
  while :; do
    : >"$log" # before the job opens it: sed reads it at once
    # Every client here is 127.0.0.1: 64 wrk connections plus the probes and
    # the kill-phase wrk would pass the default per-address cap (64), whose
    # extra connections are closed at accept (tests/chaos/slow_clients.sh
    # tests that cap); so no cap here.
    "$BIN/erserve" --host 127.0.0.1 --port "$PORT" --task cls="$W/model" --tokenizer "$TOK" \
      --store "$W/store" --workers 2 --blas-threads 1 --max-connections-per-ip 0 >"$log" 2>&1 &
    SRV=$!
    i=0
    while [ $i -lt 1200 ]; do
      kill -0 "$SRV" 2>/dev/null || break
      if [ "$PORT" = 0 ]; then
        p=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log" || true)
        [ -n "$p" ] && PORT=$p
      fi
      if [ "$PORT" != 0 ] &&
         [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready")" = 200 ]; then
        return 0
      fi
      i=$((i + 1)); sleep 0.1
    done
    kill -9 "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; SRV=""
    tries=$((tries + 1))
    # the port may still be held for a moment by the killed process
    if [ $tries -ge 10 ] || ! grep -q "cannot listen" "$log"; then
      echo "chaos: erserve did not start:"; cat "$log"; exit 1
    fi
    sleep 1
  done
}

wrk_stats() { # wrk output -> "replies unexpected hits hit_sent connect_errors read+write_errors timeouts"
  awk '/Socket errors/ {gsub(",", ""); c = $4; rw = $6 + $8; to = $10}
    /^chaos:/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
    END {split(v["hit"], h, "/"); printf "%d %d %d %d %d %d %d\n", v["requests"], v["unexpected"], h[1], h[2], c, rw, to}' "$1"
}

rss() { # PID -> "VmRSS RssAnon" in kB
  awk '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} END {print r+0, a+0}' "/proc/$1/status" 2>/dev/null || echo "0 0"
}

cycles=$(( (SECS + CYCLE - 1) / CYCLE ))
echo "chaos: $SECS s of mixed traffic, $CONNS connections, kill -9 every $CYCLE s ($cycles kills), $PRESET model, store $W/store"
printf "%-5s %8s %7s %10s %5s %7s %6s %8s %5s %10s %10s %9s %8s  %s\n" cycle start_ms replies unexpected hit% sock_err tmout "5xx(log)" 499 kill_repl kill_sockerr VmRSS_MB anon_MB verify
fail=""
serr_total=0; unexpected_total=0; timeouts_total=0; s5xx_total=0; reqs_total=0; kerr_total=0; s499_total=0
k=0
while [ $k -lt $cycles ]; do
  k=$((k + 1))
  left=$((SECS - (k - 1) * CYCLE))
  dur=$CYCLE; [ $left -lt $dur ] && dur=$left; [ $dur -lt 5 ] && dur=5
  t0=$(date +%s%3N)
  start "$k"
  started=$(( $(date +%s%3N) - t0 ))
  # steady phase: every error here is a real one
  steady=$((dur - 3))
  ERSERVE_TASK=cls ERSERVE_WORDS=16 wrk -t2 -c"$CONNS" -d"${steady}s" --timeout 10s \
    -s tests/chaos/mixed.lua "http://127.0.0.1:$PORT" >"$W/wrk.$k.txt" 2>&1 &
  WRK=$!
  t1=$(now)
  i=0
  while kill -0 "$WRK" 2>/dev/null && [ $i -lt $((steady + 30)) ]; do
    echo "$k $(( $(now) - t1 )) $steady $(rss "$SRV")" >>"$W/rss.txt"
    i=$((i + 1)); sleep 1
  done
  wait "$WRK" || true; WRK=""
  # kill phase: fresh traffic, SIGKILL 1.5 s in, with requests in flight
  ERSERVE_TASK=cls ERSERVE_WORDS=16 wrk -t2 -c"$CONNS" -d3s --timeout 10s \
    -s tests/chaos/mixed.lua "http://127.0.0.1:$PORT" >"$W/wrkkill.$k.txt" 2>&1 &
  WRK=$!
  sleep 1.5
  kill -9 "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""
  sleep 0.2 # wrk sees the resets, then stops (SIGINT: it prints its summary)
  kill -INT "$WRK" 2>/dev/null || true
  wait "$WRK" || true; WRK=""
  if timeout 600 "$BIN/erserve-cache" --store "$W/store" verify >"$W/verify.$k.txt" 2>&1; then v=ok; else v=BAD; fi
  vline=$(tr '\n' ' ' <"$W/verify.$k.txt" | tr -s ' ')
  [ $v = ok ] || fail="$fail verify-after-kill-$k"
  set -- $(wrk_stats "$W/wrkkill.$k.txt")
  kreqs=$1; kunexp=$2; kerr=$(($5 + $6 + $7))
  set -- $(wrk_stats "$W/wrk.$k.txt")
  reqs=$1; unexp=$(($2 + kunexp)); hits=$3; hsent=$4; serr=$(($5 + $6)); tmo=$7
  s5xx=$(grep -c '^erserve: [a-z_]* [A-Z]* 5[0-9][0-9] ' "$W/server.$k.log" || true)
  s499=$(grep -c '^erserve: [a-z_]* [A-Z]* 499 ' "$W/server.$k.log" || true)
  set -- $(awk -v k="$k" '$1 == k && $2 >= $3 / 2 {n++; r += $4; a += $5}
    END {if (!n) print "0 0"; else printf "%d %d\n", r / n, a / n}' "$W/rss.txt")
  printf "%-5s %8s %7s %10s %4s%% %7s %6s %8s %5s %10s %10s %9.1f %8.1f  %s\n" "$k" "$started" "$reqs" "$unexp" \
    "$([ "$hsent" -gt 0 ] && echo $((100 * hits / hsent)) || echo -)" "$serr" "$tmo" "$s5xx" "$s499" \
    "$kreqs" "$kerr" "$(echo "$1" | awk '{print $1 / 1024}')" "$(echo "$2" | awk '{print $1 / 1024}')" "$v: $vline"
  echo "$k $1 $2" >>"$W/rss_cycle.txt"
  [ "$unexp" -eq 0 ] || { fail="$fail unexpected-status-$k"; grep '^chaos:' "$W/wrk.$k.txt"; }
  [ "$tmo" -eq 0 ] || fail="$fail timeouts-$k"
  [ "$s5xx" -eq 0 ] || { fail="$fail server-5xx-$k"; grep '^erserve: [a-z_]* [A-Z]* 5[0-9][0-9] ' "$W/server.$k.log" | head -5; }
  [ "$serr" -eq 0 ] || fail="$fail socket-errors-$k"
  [ "$reqs" -gt 0 ] || fail="$fail no-traffic-$k"
  serr_total=$((serr_total + serr)); unexpected_total=$((unexpected_total + unexp))
  timeouts_total=$((timeouts_total + tmo)); s5xx_total=$((s5xx_total + s5xx))
  reqs_total=$((reqs_total + reqs + kreqs)); kerr_total=$((kerr_total + kerr)); s499_total=$((s499_total + s499))
done

# Recovery: restart on the store, a stored text is a hit, SIGTERM drains.
k=$((k + 1))
start "$k"
hit_text=$(awk 'BEGIN {printf "100000000003"; split("quick brown fox jumps over lazy dog and then runs back to its home in city", w, " ");
  for (i = 1; i <= 15; i++) printf " %s", w[i]}')
reply=$(curl -s -m 30 "http://127.0.0.1:$PORT/v1/tasks/cls/predict" -H 'Content-Type: application/json' \
  -d "{\"inputs\":\"$hit_text\"}")
case "$reply" in *'"cache":"hit"'*) recovery="stored text served as a hit" ;;
  *) recovery="NOT a hit: $reply"; fail="$fail recovery-hit" ;; esac
kill -TERM "$SRV"
if wait "$SRV"; then drain="SIGTERM drain exit 0"; else drain="SIGTERM exit $?"; fail="$fail drain"; fi
SRV=""
if timeout 600 "$BIN/erserve-cache" --store "$W/store" verify >"$W/verify.final.txt" 2>&1; then v=ok; else v=BAD; fail="$fail verify-final"; fi
echo "restart after the last kill: $recovery; $drain; verify $v: $(tr '\n' ' ' <"$W/verify.final.txt")"

set -- $(awk 'NR == 1 {r0 = $2; a0 = $3} {r1 = $2; a1 = $3}
  END {printf "%.1f %.1f %.2f %.1f %.1f %.2f\n", r0 / 1024, r1 / 1024, r0 ? (r1 - r0) * 100 / r0 : 0,
       a0 / 1024, a1 / 1024, a0 ? (a1 - a0) * 100 / a0 : 0}' "$W/rss_cycle.txt")
echo "RSS first -> last cycle: RssAnon $4 -> $5 MB ($6%, target < 5%); VmRSS $1 -> $2 MB ($3%, with the store's mapped pages)"
awk -v d="$6" 'BEGIN {exit !(d < 5 && d > -5)}' || fail="$fail rss-anon-drift"
echo "errors outside the kills: unexpected statuses $unexpected_total, socket errors $serr_total," \
  "wrk timeouts $timeouts_total, 5xx in the access logs $s5xx_total (target 0 each)"
echo "kills: $cycles, socket errors in the kill phases $kerr_total (requests in flight at the kill," \
  "then connections refused for 0.2 s); 499 (client went away) in the access logs $s499_total;" \
  "$reqs_total replies in $(( $(now) - T_START )) s"
if [ -n "$fail" ]; then echo "chaos: FAILED:$fail"; exit 1; fi
echo "chaos: OK"
