#!/bin/sh
# The cluster topology of deploy/cluster (N erserve replicas, a router, an
# optional memcached pool) as local processes on 127.0.0.1, for tests and
# for trying it without containers.  Ports are chosen free; every process's
# PID is recorded in DIR/pids/NAME and its log is DIR/logs/NAME.log.
#
#   cluster.sh up DIR        start everything (settings below), wait until ready
#   cluster.sh down DIR      end every process it started, by PID
#   cluster.sh kill DIR NAME [SIG]   end one (r0.., m0.., router; SIGKILL default;
#                                    STOP hangs it instead)
#   cluster.sh start DIR NAME        start it again, same port, same store
#   cluster.sh metrics DIR NAME      a replica's /metrics
#
# Settings (environment of `up`):
#   REPLICAS (3)  ROUTER haproxy | nginx | none (haproxy)  MEMCACHED nodes (0)
#   TASKS "name=DIR name=DIR" (required)  TOKENIZER (tokenizer.json, optional)
#   ERSERVE (build/bin/erserve)  WORKERS (1 per replica)  STORE_DTYPE (fp16)
#   MEMCACHED_TIMEOUT_MS (50)  EXTRA (more erserve flags)
# DIR/cluster.env gets ROUTER_URL, REPLICA_URLS, MEMCACHED_SERVERS.
# The router configs are deploy/cluster/haproxy.cfg and nginx.conf with only
# their addresses rewritten.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { sed -n '2,21p' "$0"; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT
wait_port() {
  python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# run NAME: starts DIR/cmd/NAME (a script ending in exec) in the background.
run() {
  sh "$D/cmd/$1" >>"$D/logs/$1.log" 2>&1 &
  echo $! >"$D/pids/$1"
}

# ready NAME PORT: an erserve's /ready, else the port.
ready() {
  local n
  case "$1" in
  r*) n=0; while [ $n -lt 300 ]; do
        curl -fsS -o /dev/null "http://127.0.0.1:$2/ready" 2>/dev/null && return 0
        kill -0 "$(cat "$D/pids/$1")" 2>/dev/null || break
        sleep 0.1; n=$((n + 1)); done
      echo "cluster: $1 did not become ready (log: $D/logs/$1.log)" >&2; tail -n 5 "$D/logs/$1.log" >&2; return 1 ;;
  *) wait_port "$2" 10 || { echo "cluster: $1 did not listen on $2" >&2; tail -n 5 "$D/logs/$1.log" >&2; return 1; } ;;
  esac
}

port_of() { cat "$D/ports/$1"; }

write_memcached() { # i
  p=$(free_port); echo "$p" >"$D/ports/m$1"
  user=""; [ "$(id -u)" -eq 0 ] && user="-u root"
  echo "exec memcached -l 127.0.0.1 -p $p -U 0 -m 256 -I 8m -t 2 $user" >"$D/cmd/m$1"
}

write_replica() { # i
  p=$(free_port); echo "$p" >"$D/ports/r$1"
  args="--host 127.0.0.1 --port $p --store $D/store/r$1 --store-dtype ${STORE_DTYPE:-fp16}"
  args="$args --workers ${WORKERS:-1} --quiet --max-connections-per-ip 0"
  for t in $TASKS; do args="$args --task $t"; done
  [ -n "${TOKENIZER:-}" ] && args="$args --tokenizer $TOKENIZER"
  [ -n "$MC" ] && args="$args --memcached $MC --memcached-timeout-ms ${MEMCACHED_TIMEOUT_MS:-50}"
  echo "exec ${ERSERVE:-build/bin/erserve} $args ${EXTRA:-}" >"$D/cmd/r$1"
}

# The shipped router config with this cluster's addresses.
write_router() {
  local i rp servers
  p=$(free_port); echo "$p" >"$D/ports/router"
  servers="$D/router.servers"; : >"$servers"
  i=0; while [ $i -lt "$N" ]; do
    rp=$(port_of "r$i")
    if [ "$ROUTER" = haproxy ]; then echo "    server r$i 127.0.0.1:$rp" >>"$servers"
    else echo "        server 127.0.0.1:$rp max_fails=1 fail_timeout=2s;" >>"$servers"; fi
    i=$((i + 1))
  done
  if [ "$ROUTER" = haproxy ]; then
    sed -e "/# servers begin/r $servers" -e '/# servers begin/,/# servers end/{/^ *server /d}' \
      -e "s|\"\${ERSERVE_ROUTER_BIND}\"|127.0.0.1:$p|" "$HERE/haproxy.cfg" >"$D/haproxy.cfg"
    echo "exec haproxy -db -f $D/haproxy.cfg" >"$D/cmd/router"
  else
    mkdir -p "$D/nginx"
    sed -e "/# servers begin/r $servers" -e '/# servers begin/,/# servers end/{/^ *server /d}' \
      -e "s|listen 8080;|listen 127.0.0.1:$p;|" -e 's|worker_processes 2;|worker_processes 1;|' \
      "$HERE/nginx.conf" >"$D/nginx.conf"
    echo "exec nginx -p $D/nginx -c $D/nginx.conf -g 'daemon off;'" >"$D/cmd/router"
  fi
}

up() {
  N=${REPLICAS:-3}; ROUTER=${ROUTER:-haproxy}; M=${MEMCACHED:-0}
  [ -n "${TASKS:-}" ] || { echo "cluster: TASKS is required" >&2; exit 2; }
  mkdir -p "$D/pids" "$D/logs" "$D/cmd" "$D/ports" "$D/store"
  MC=""; i=0
  while [ $i -lt "$M" ]; do
    write_memcached $i; run "m$i"
    MC="$MC${MC:+,}127.0.0.1:$(port_of "m$i")"; i=$((i + 1))
  done
  i=0; while [ $i -lt "$M" ]; do ready "m$i" "$(port_of "m$i")" || return 1; i=$((i + 1)); done
  urls=""; i=0
  while [ $i -lt "$N" ]; do
    write_replica $i; run "r$i"
    urls="$urls${urls:+ }http://127.0.0.1:$(port_of "r$i")"; i=$((i + 1))
  done
  i=0; while [ $i -lt "$N" ]; do ready "r$i" "$(port_of "r$i")" || return 1; i=$((i + 1)); done
  router_url=""
  if [ "$ROUTER" != none ]; then
    write_router; run router; ready router "$(port_of router)" || return 1
    router_url="http://127.0.0.1:$(port_of router)"
    if [ "$ROUTER" = haproxy ]; then sleep 1.2; fi # health checks: rise 2 x 500 ms
  fi
  { echo "ROUTER_URL='$router_url'"; echo "REPLICA_URLS='$urls'"; echo "MEMCACHED_SERVERS='$MC'"; } >"$D/cluster.env"
}

stop_one() { # NAME SIG
  local f pid i
  f="$D/pids/$1"
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  # STOP: hung, not gone (every call to it times out); `down` ends it
  if [ "$2" = STOP ]; then kill -STOP "$pid"; return 0; fi
  rm -f "$f"
  kill "-$2" "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true # a stopped one (SIGSTOP) must run to end
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  kill -9 "$pid" 2>/dev/null || true
}

down() { # TERM to all at once (each drains), then KILL what is left after 5 s
  local f pids n
  [ -d "$D/pids" ] || return 0
  pids=""
  for f in "$D"/pids/*; do
    [ -f "$f" ] || continue
    pids="$pids $(cat "$f")"; rm -f "$f"
  done
  for p in $pids; do kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
  n=0
  while [ $n -lt 100 ]; do
    alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && return 0
    sleep 0.05; n=$((n + 1))
  done
  for p in $alive; do kill -9 "$p" 2>/dev/null; done
  return 0
}

case "$cmd" in
up) up || { down; exit 1; } ;;
down) down ;;
kill) stop_one "$3" "${4:-KILL}" ;;
start) [ -f "$D/cmd/$3" ] || { echo "cluster: no $3" >&2; exit 2; }
       run "$3"; ready "$3" "$(port_of "$3")" ;;
metrics) curl -fsS "http://127.0.0.1:$(port_of "$3")/metrics" ;;
*) echo "cluster: unknown command $cmd" >&2; exit 2 ;;
esac
