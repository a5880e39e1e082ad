#!/bin/sh
# Checks the cluster deployment files by parsing them (make test; seconds):
#   deploy/cluster/k8s/erserve.yaml: a StatefulSet whose pods mount a volume
#     claim of their own at /store, its headless Service, the router's
#     ConfigMap holding deploy/cluster/haproxy.cfg (directive for directive),
#     a router Deployment mounting it with one ERSERVE_R<i> per server line,
#     a client Service selecting the router;
#   deploy/cluster/compose.yml: every replica with its own store volume, the
#     router given every replica, memcached only under the "cache" profile;
#   both router configs accepted by `haproxy -c` / `nginx -t` where installed.
# Exit 0 pass, 1 fail, 77 skipped (no python3 with yaml: python3-yaml).
cd "$(dirname "$0")/../.." || exit 1
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: check_deploy: python3-yaml is not installed (deploy/install-deps.sh)"; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/erserve-deploy.XXXXXX")
trap 'rm -rf "$W"' EXIT
python3 - "$W" <<'PY' || exit 1
import os, re, sys, yaml
W = sys.argv[1]
fails = []
def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok: fails.append(what)
def directives(text):  # config lines without comments and blank lines, spaces collapsed
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.strip().startswith("#") else ""
        if line: out.append(re.sub(r"\s+", " ", line))
    return out

docs = [d for d in yaml.safe_load_all(open("deploy/cluster/k8s/erserve.yaml")) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
sts = by.get("StatefulSet", [None])[0]
check(sts is not None, "k8s: a StatefulSet")
spec = sts["spec"]
claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
pod = spec["template"]["spec"]
mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
check(mounts.get("/store") in claims, "k8s: each replica mounts its own claim (%s) at /store" % mounts.get("/store"))
check(spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(), "k8s: the StatefulSet selects its pods")
svcs = {s["metadata"]["name"]: s for s in by.get("Service", [])}
head = svcs.get(spec["serviceName"])
check(head is not None and head["spec"].get("clusterIP") == "None", "k8s: headless Service %s for the replicas" % spec["serviceName"])
probes = pod["containers"][0]
check(probes["readinessProbe"]["httpGet"]["path"] == "/ready" and probes["livenessProbe"]["httpGet"]["path"] == "/health", "k8s: /ready and /health probes")
cm = by.get("ConfigMap", [None])[0]
cfg = cm["data"]["haproxy.cfg"]
shipped = open("deploy/cluster/haproxy.cfg").read()
check(directives(cfg) == directives(shipped), "k8s: the ConfigMap's haproxy.cfg is deploy/cluster/haproxy.cfg")
dep = [d for d in by.get("Deployment", []) if any(v.get("configMap", {}).get("name") == cm["metadata"]["name"] for v in d["spec"]["template"]["spec"].get("volumes", []))]
check(len(dep) == 1, "k8s: a router Deployment mounts the ConfigMap")
env = {e["name"]: e["value"] for e in dep[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
servers = re.findall(r'\$\{(ERSERVE_R\d+)\}', cfg)
check(len(servers) == spec["replicas"] and all(s in env for s in servers), "k8s: one server per replica (%d), each address in the router's environment" % spec["replicas"])
check(all(env[s].startswith("%s-%d.%s:" % (sts["metadata"]["name"], i, spec["serviceName"])) for i, s in enumerate(servers)), "k8s: servers are the StatefulSet's stable names")
labels = dep[0]["spec"]["template"]["metadata"]["labels"]
check(any(s["spec"].get("selector", {}).items() <= labels.items() and s["spec"].get("clusterIP") != "None" for s in svcs.values()), "k8s: a client Service selects the router")
# HAProxy accepts the ConfigMap's config (and the shipped one) as written
for name, text in (("configmap", cfg), ("shipped", shipped)):
    p = os.path.join(W, name + ".cfg"); open(p, "w").write(text)

c = yaml.safe_load(open("deploy/cluster/compose.yml"))
svc = c["services"]
reps = sorted(n for n in svc if n.startswith("erserve-"))
stores = [next(v.split(":")[0] for v in svc[n]["volumes"] if v.endswith(":/store")) for n in reps]
check(len(reps) >= 2 and len(set(stores)) == len(reps) and all(s in c["volumes"] for s in stores), "compose: %d replicas, each its own store volume" % len(reps))
renv = svc["router"]["environment"]
check(sorted(v.split(":")[0] for k, v in renv.items() if re.fullmatch(r"ERSERVE_R\d+", k)) == reps, "compose: the router is given every replica")
mc = [n for n in svc if n.startswith("memcached")]
check(mc and all(svc[n].get("profiles") == ["cache"] for n in mc) and all("-I" in svc[n]["command"] for n in mc), "compose: memcached (item size raised with -I) only under the cache profile")
sys.exit(1 if fails else 0)
PY
rc=0
if command -v haproxy >/dev/null 2>&1; then
  for f in configmap shipped; do
    if ERSERVE_ROUTER_BIND=127.0.0.1:1 ERSERVE_R0=127.0.0.1:2 ERSERVE_R1=127.0.0.1:3 ERSERVE_R2=127.0.0.1:4 \
       haproxy -c -q -f "$W/$f.cfg" >"$W/hc.log" 2>&1; then echo "ok    haproxy -c accepts the $f config"
    else echo "FAIL  haproxy -c on the $f config:"; cat "$W/hc.log"; rc=1; fi
  done
else echo "SKIP: haproxy -c: haproxy is not installed"; fi
if command -v nginx >/dev/null 2>&1; then
  mkdir -p "$W/nginx"
  sed -e 's/server erserve-\([0-9]\):8080/server 127.0.0.1:1808\1/' -e 's/listen 8080;/listen 127.0.0.1:18099;/' \
    deploy/cluster/nginx.conf >"$W/nginx.conf"
  if nginx -t -q -p "$W/nginx" -c "$W/nginx.conf" >"$W/nt.log" 2>&1; then echo "ok    nginx -t accepts nginx.conf"
  else echo "FAIL  nginx -t:"; cat "$W/nt.log"; rc=1; fi
else echo "SKIP: nginx -t: nginx is not installed"; fi
exit $rc
