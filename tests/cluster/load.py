#!/usr/bin/env python3
"""Workload for the cluster tests: DOCS documents, each requested REPS times
across the tasks (request r of document i goes to task (i + r) % n), in a
shuffled order, from CONC keep-alive connections.  Several --url values are
a client-side round-robin balancer (request k goes to url k % n).  Even
documents carry X-Erserve-Key: doc-<i>; odd ones do not (the router hashes
their body).

--rate caps requests per second (to stretch a run around its events).
--event FRAC:CMD runs CMD (sh -c) once FRAC of the requests have been sent,
without pausing the load.  Prints one JSON object: requests, errors (by
kind), hits, hit_rate, p50/p99/max latency (ms), hit rate per tenth of the
run, and when each event ran."""
import argparse, http.client, json, random, subprocess, sys, threading, time
from urllib.parse import urlsplit

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu river stone cloud paper light sound water metal glass").split()


def doc_text(i, rnd):
    return "document %d: %s" % (i, " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 20))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tasks", default="cls,emb")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--event", action="append", default=[])
    ap.add_argument("--rate", type=float, default=0, help="requests per second at most (0: no cap)")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    tasks = a.tasks.split(",")
    texts = [doc_text(i, rnd) for i in range(a.docs)]
    plan = [(i, r) for i in range(a.docs) for r in range(a.reps)]
    rnd.shuffle(plan)
    total = len(plan)
    events = []
    for e in a.event:
        frac, cmd = e.split(":", 1)
        events.append([int(float(frac) * total), cmd, None])
    lock = threading.Lock()
    state = {"next": 0}
    res = [None] * total  # (ok, hit, ms, error kind)
    t0 = time.monotonic()
    ev_threads = []

    def take():
        with lock:
            k = state["next"]
            if k >= total:
                return -1
            state["next"] = k + 1
            for ev in events:
                if ev[2] is None and k >= ev[0]:
                    ev[2] = round(time.monotonic() - t0, 3)
                    th = threading.Thread(target=subprocess.run, args=(ev[1],), kwargs={"shell": True})
                    th.start()
                    ev_threads.append(th)
            return k

    def worker():
        conns = {}
        while True:
            k = take()
            if k < 0:
                break
            i, r = plan[k]
            if a.rate > 0:  # request k starts no earlier than k / rate seconds in
                wait = t0 + k / a.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            u = urlsplit(a.url[k % len(a.url)])
            body = json.dumps({"inputs": texts[i]})
            hdr = {"Content-Type": "application/json"}
            if i % 2 == 0:
                hdr["X-Erserve-Key"] = "doc-%d" % i
            path = "/v1/tasks/%s/predict" % tasks[(i + r) % len(tasks)]
            s = time.monotonic()
            ok, hit, kind = False, False, None
            try:
                c = conns.get(u.netloc)
                if c is None:
                    c = conns[u.netloc] = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                c.request("POST", path, body, hdr)
                resp = c.getresponse()
                data = resp.read()
                if resp.status == 200:
                    ok = True
                    hit = all(x.get("cache") == "hit" for x in json.loads(data)["results"])
                else:
                    kind = "http_%d" % resp.status
            except Exception as e:  # a connection the router or replica dropped
                kind = type(e).__name__
                c = conns.pop(u.netloc, None)
                if c:
                    c.close()
            res[k] = (ok, hit, (time.monotonic() - s) * 1000.0, kind)

    th = [threading.Thread(target=worker) for _ in range(a.conc)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for t in ev_threads:
        t.join()
    wall = time.monotonic() - t0
    lat = sorted(x[2] for x in res)
    errors = {}
    for x in res:
        if not x[0]:
            errors[x[3]] = errors.get(x[3], 0) + 1
    hits = sum(1 for x in res if x[1])
    tenths = []
    for d in range(10):
        part = res[d * total // 10:(d + 1) * total // 10]
        tenths.append(round(sum(1 for x in part if x[1]) / max(1, len(part)), 4))
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 2)
    print(json.dumps({"requests": total, "errors": sum(errors.values()), "error_kinds": errors,
                      "hits": hits, "hit_rate": round(hits / total, 4), "p50_ms": pct(0.50),
                      "p99_ms": pct(0.99), "max_ms": round(lat[-1], 2), "seconds": round(wall, 2),
                      "req_per_s": round(total / wall, 1), "hit_rate_by_tenth": tenths,
                      "events_at_s": [e[2] for e in events]}))


if __name__ == "__main__":
    sys.exit(main())
