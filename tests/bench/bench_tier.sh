#!/bin/sh
# Second-tier benchmark (make bench): what a request costs served from the
# local store, from the memcached tier, and computed, over HTTP at
# concurrency 1, for BENCH_TIER_DOCS (200) documents of ~BENCH_WORDS (120)
# words on the demo model (MiniLM-L6 shape, cut 3/6, fp16), one erserve
# with one worker and one memcached on loopback.  Pass 1 computes every
# document (writes both tiers), pass 2 hits the local store, then the local
# store is purged and pass 3 hits the tier (and refills the store).
# Prints mean / p50 / p99 per pass and the bytes per value.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
. tests/bench/blas_env.sh
command -v memcached >/dev/null || { echo "bench_tier: memcached is not installed; skipped"; exit 0; }
M="$BUILD/bench/demo-seqcls"
[ -f "$M/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$M" --preset minilm-l6 --head seqcls --seed 42 >/dev/null
W=$(mktemp -d "${TMPDIR:-/tmp}/erserve-benchtier.XXXXXX")
trap 'deploy/cluster/cluster.sh down "$W/c" >/dev/null 2>&1; rm -rf "$W"' EXIT
REPLICAS=1 ROUTER=none MEMCACHED=1 TASKS="cls=$M" \
  TOKENIZER=tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json ERSERVE="$BUILD/bin/erserve" \
  deploy/cluster/cluster.sh up "$W/c"
. "$W/c/cluster.env"
echo "== tier: demo model (MiniLM-L6 shape), 1 worker, fp16, memcached on loopback ($OPENBLAS_CORE_NOTE)"
python3 - "$REPLICA_URLS" "${BENCH_TIER_DOCS:-200}" "${BENCH_WORDS:-120}" <<'PY'
import http.client, json, random, sys, time
url, n, words = sys.argv[1].split("//")[1], int(sys.argv[2]), int(sys.argv[3])
host, port = url.split(":")
c = http.client.HTTPConnection(host, int(port))
rnd = random.Random(3)
vocab = "the of and to in is was for on that with as by at from his her they were which this".split()
docs = [" ".join(rnd.choice(vocab) + str(rnd.randint(0, 99)) for _ in range(words)) for _ in range(n)]
def call(method, path, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse(); d = r.read()
    return r.status, d
def pass_(name, want):
    lat, outcome = [], {}
    for d in docs:
        s = time.perf_counter()
        st, body = call("POST", "/v1/tasks/cls/predict", {"inputs": d})
        lat.append((time.perf_counter() - s) * 1000)
        k = json.loads(body)["results"][0]["cache"] if st == 200 else "error %d" % st
        outcome[k] = outcome.get(k, 0) + 1
    lat.sort()
    print("%-22s mean %6.2f ms  p50 %6.2f  p99 %6.2f  %s" % (name, sum(lat) / len(lat), lat[len(lat) // 2], lat[int(len(lat) * 0.99)], outcome))
    return outcome.get(want, 0) == len(docs)
ok = pass_("computed (miss)", "miss")
ok &= pass_("local store hit", "hit")
call("DELETE", "/v1/cache")
ok &= pass_("memcached tier hit", "hit")
m = json.loads(call("GET", "/v1/cache")[1])
print("store after pass 3: %d entries, %d bytes (%.0f bytes per value); tier: %s" % (m["entries"], m["bytes"], m["bytes"] / max(1, m["entries"]), {k: m["tier"][k] for k in ("hits", "misses", "sets", "errors")}))
sys.exit(0 if ok else 1)
PY
