#!/usr/bin/env python3
"""Two or more erserve builds side by side, interleaved: fp32 / bf16 / int8
forwards (bench_engine) and a bf16 hit at cut 6 of 12 (bench_cut), bert-base
8x128 on one thread, as wall ms and process CPU ms (the figure to decide by
on a loaded host), with each build's speed-ups over its own fp32.

  python3 tests/bench/compare_builds.py ROUNDS ITERS NAME=BUILD_DIR ...

e.g. a build of main in build/base and of this tree in build:
  python3 tests/bench/compare_builds.py 2 3 base=build/base now=build
Each BUILD_DIR needs bench/bench_engine and bench/bench_cut (make
BUILD=DIR DIR/bench/bench_engine DIR/bench/bench_cut); the model is the
benchmarks' build/bench/bert-base (tests/bench/common.sh).  MODES (default
"fp32 bf16 int8") limits the modes."""
import json, os, statistics, subprocess, sys

def run(cmd, mode, env):
    out = subprocess.run(cmd, env=dict(env, BENCH_COMPUTE=mode), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("%s: %s" % (" ".join(cmd), out.stderr.strip()))
    return json.loads(out.stdout.strip().splitlines()[-1])

def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, iters = int(sys.argv[1]), sys.argv[2]
    builds = [a.split("=", 1) for a in sys.argv[3:]]
    model = "build/bench/bert-base"
    modes = os.environ.get("MODES", "fp32 bf16 int8").split()
    env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "SkylakeX"))
    res = {}
    for _ in range(rounds):
        for name, b in builds:
            for mode in modes:
                j = run([b + "/bench/bench_engine", model, "8", "128", "1", iters], mode, env)
                res.setdefault((name, mode), []).append((j["ms_per_forward"], j["cpu_ms_per_forward"]))
            j = run([b + "/bench/bench_cut", model, "8", "128", "1", iters, "6"], "bf16", env)
            res.setdefault((name, "hit6-bf16"), []).append((j["hit_ms"], j["hit_cpu_ms"]))
    print("load average after the runs: " + open("/proc/loadavg").read().strip())
    for name, _ in builds:
        med = {k[1]: tuple(statistics.median(x[i] for x in v) for i in (0, 1))
               for k, v in res.items() if k[0] == name}
        f = med["fp32"]
        line = "%-8s fp32 %7.1f ms (cpu %7.1f)" % (name, f[0], f[1])
        for k in [m for m in modes if m != "fp32"] + ["hit6-bf16"]:
            line += "  %s %7.1f (cpu %7.1f) %.2fx, cpu %.2fx" % (k, med[k][0], med[k][1],
                                                               f[0] / med[k][0], f[1] / med[k][1])
        print(line)

if __name__ == "__main__":
    main()
