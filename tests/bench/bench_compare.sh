#!/bin/sh
# Three engines on the same weights (make bench): erserve, ONNX Runtime
# (npm onnxruntime-node, its CPU provider) and PyTorch (Debian's
# python3-torch), on the random bert-base-shaped model of common.sh, in
# interleaved rounds so that each engine sees the same machine noise.
# Prints each engine's median ms per forward, the ratios, each figure as a
# fraction of this host's own fp32 FMA limit (bench_fma, measured here), and
# how far the engines' outputs are from each other and from a float64 run.
# erserve also runs in bf16 and int8 (where the host has AVX512-BF16 / VNNI:
# the ratios to fp32, the accuracy against fp32 on a seeded 8 x 128 batch, a
# hit at cut 6 of 12 against an fp32 miss), and with OPENBLAS_CORETYPE=Haswell (the
# fp32 figure must not move: erserve's GEMMs do not use OpenBLAS), and in fp32
# on the opt-in oneDNN backend (ERSERVE_GEMM=onednn, where the build has
# oneDNN: its own line, ms and the ratio to erserve's own kernels); RSS per
# mode is the process's after loading and one forward.  The speed-ups are
# also printed in process CPU ms (what a loaded host does not inflate by
# time-slicing).
#
#   BENCH_ROUNDS (3) rounds x BENCH_ITERS (5) timed forwards per engine.
# ONNX Runtime and PyTorch are skipped with a message when Node/npm or
# python3-torch are absent; onnxruntime-node is installed under $BUILD.
set -eu
ROUNDS="${BENCH_ROUNDS:-3}"
ITERS="${BENCH_ITERS:-5}"
. tests/bench/common.sh
bench_cc bench_engine
bench_cc bench_fma
bench_cc bench_cut
MODES=fp32 # the compute modes this host runs (bf16 / int8 need AVX512-BF16 / VNNI)
have_onednn=0 # --gemm onednn: fp32 on oneDNN's matmul primitives (core/gemm_dnnl.c)
if ERSERVE_GEMM=onednn "$BUILD/bench/bench_engine" "$MODEL" 1 8 1 1 2>/dev/null | grep -q '"gemm: oneDNN'; then
  have_onednn=1
else
  echo "   SKIP erserve onednn: this build or host has no oneDNN (libdnnl-dev)"
fi
for c in bf16 int8; do
  if BENCH_COMPUTE=$c "$BUILD/bench/bench_engine" "$MODEL" 1 8 1 1 >/dev/null 2>"$BUILD/bench/$c.err"; then
    MODES="$MODES $c"
  else
    echo "   SKIP erserve $c: $(cat "$BUILD/bench/$c.err")"
  fi
done
OUT="$BUILD/bench/compare"
mkdir -p "$OUT"
: >"$OUT/results.jsonl"

# The limit is a ceiling that other load can only lower: measured once per
# round, and the highest reading is the one used.
"$BUILD/bench/bench_fma" >"$OUT/fma.jsonl"

have_torch=0
/usr/bin/python3 -c "import torch" 2>/dev/null && have_torch=1
have_ort=0
if [ "$have_torch" = 1 ] && command -v node >/dev/null && command -v npm >/dev/null; then
  ORT_DIR="$BUILD/bench/ort"
  if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
    mkdir -p "$ORT_DIR"
    (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
      npm install --no-audit --no-fund --silent onnxruntime-node@1.30.0 >/dev/null 2>&1) || true
  fi
  if [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
    export ORT_NODE_MODULES="$ORT_DIR/node_modules"
    [ -f "$BUILD/bench/bert-base.onnx" ] ||
      /usr/bin/python3 tests/bench/torch_ref.py --model "$MODEL" \
        --export-onnx "$BUILD/bench/bert-base.onnx" >/dev/null 2>&1
    [ -f "$BUILD/bench/bert-base.onnx" ] && have_ort=1
  fi
fi
[ "$have_torch" = 1 ] || echo "   SKIP PyTorch: python3-torch is not installed (make fixtures installs it)"
[ "$have_ort" = 1 ] || echo "   SKIP ONNX Runtime: needs node, npm, the npm registry and python3-torch (graph export)"

for round in $(seq 1 "$ROUNDS"); do
  [ "$round" = 1 ] || "$BUILD/bench/bench_fma" >>"$OUT/fma.jsonl"
  for shape in "1 128" "8 128"; do
    set -- $shape
    for t in 1 2; do
      for c in $MODES; do
        BENCH_COMPUTE=$c "$BUILD/bench/bench_engine" "$MODEL" "$1" "$2" "$t" "$ITERS" \
          >>"$OUT/results.jsonl"
      done
      [ "$1" = 8 ] && [ "$t" = 1 ] && OPENBLAS_CORETYPE=Haswell "$BUILD/bench/bench_engine" \
        "$MODEL" "$1" "$2" "$t" "$ITERS" | sed 's/^{"engine":"erserve"/{"engine":"erserve-haswell"/' \
        >>"$OUT/results.jsonl"
      [ "$have_onednn" = 1 ] && ERSERVE_GEMM=onednn "$BUILD/bench/bench_engine" "$MODEL" "$1" "$2" \
        "$t" "$ITERS" | sed 's/^{"engine":"erserve"/{"engine":"erserve-onednn"/' >>"$OUT/results.jsonl"
      if [ "$have_ort" = 1 ]; then
        node tests/bench/ort_ref.mjs --model "$BUILD/bench/bert-base.onnx" --batch "$1" \
          --seq "$2" --threads "$t" --iters "$ITERS" >>"$OUT/results.jsonl"
      fi
      if [ "$have_torch" = 1 ]; then
        /usr/bin/python3 tests/bench/torch_ref.py --model "$MODEL" --batch "$1" --seq "$2" \
          --threads "$t" --iters "$ITERS" 2>/dev/null | tail -n 1 |
          sed 's/^{/{"engine":"pytorch",/' >>"$OUT/results.jsonl"
      fi
    done
  done
  for c in $MODES; do
    [ "$c" = fp32 ] || BENCH_COMPUTE=$c "$BUILD/bench/bench_cut" "$MODEL" 8 128 1 "$ITERS" 6 \
      >>"$OUT/cut.jsonl"
  done
done

# bf16 against fp32 on a seeded 8 x 128 batch: hidden states and head.
python3 -c "import random,struct,sys; r=random.Random(11); \
sys.stdout.buffer.write(struct.pack('<1024i',*[r.randrange(1000,30000) for _ in range(1024)]))" \
  >"$OUT/ids8.bin"
for c in $MODES; do
  BENCH_COMPUTE=$c BENCH_IDS="$OUT/ids8.bin" BENCH_DUMP="$OUT/hidden8-$c.f32" \
    BENCH_DUMP_HEAD="$OUT/head8-$c.f32" "$BUILD/bench/bench_engine" "$MODEL" 8 128 1 1 >/dev/null
done

# Outputs on one 1 x 128 input: every engine's last hidden states.
python3 -c "import random,struct,sys; r=random.Random(5); \
sys.stdout.buffer.write(struct.pack('<128i',*[r.randrange(1000,30000) for _ in range(128)]))" \
  >"$OUT/ids.bin"
BENCH_IDS="$OUT/ids.bin" BENCH_DUMP="$OUT/erserve.f32" \
  "$BUILD/bench/bench_engine" "$MODEL" 1 128 1 1 >/dev/null
[ "$have_onednn" = 1 ] && ERSERVE_GEMM=onednn BENCH_IDS="$OUT/ids.bin" \
  BENCH_DUMP="$OUT/erserve-onednn.f32" "$BUILD/bench/bench_engine" "$MODEL" 1 128 1 1 >/dev/null
if [ "$have_ort" = 1 ]; then
  node tests/bench/ort_ref.mjs --model "$BUILD/bench/bert-base.onnx" --batch 1 --seq 128 \
    --iters 1 --ids "$OUT/ids.bin" --dump "$OUT/onnxruntime.f32" >/dev/null
fi
if [ "$have_torch" = 1 ]; then
  /usr/bin/python3 tests/bench/torch_ref.py --model "$MODEL" --batch 1 --seq 128 --iters 1 \
    --ids "$OUT/ids.bin" --dump "$OUT/pytorch.f32" >/dev/null 2>&1
  /usr/bin/python3 tests/bench/torch_ref.py --model "$MODEL" --batch 1 --seq 128 --iters 1 \
    --ids "$OUT/ids.bin" --dump "$OUT/float64.f32" --float64 >/dev/null 2>&1
fi

python3 - "$OUT" <<'PY'
import json, os, statistics, struct, sys
out = sys.argv[1]
fmas = [json.loads(l) for l in open(os.path.join(out, "fma.jsonl")) if l.strip()]
fma = max(fmas, key=lambda f: f["fp32_gflops"])
print("== host arithmetic limit, one core (bench_fma, highest of %d): fp32 %.1f GFLOP/s (%s), "
      "bf16 %s GFLOP/s, int8 %s GOP/s" % (len(fmas), fma["fp32_gflops"], fma["fp32_isa"],
                                          fma["bf16_gflops"], fma["int8_gops"]))
H, L, F = 768, 12, 3072
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
by, rss, anon, cpu = {}, {}, {}, {}
for r in rows:
    eng = r.get("engine", "erserve") + ("-" + r["compute"] if r.get("compute", "fp32") != "fp32" else "")
    by.setdefault((r["batch"], r["seq"], r["threads"]), {}).setdefault(eng, []).append(r["ms_per_forward"])
    if "cpu_ms_per_forward" in r:
        cpu.setdefault((r["batch"], r["seq"], r["threads"]), {}).setdefault(eng, []).append(r["cpu_ms_per_forward"])
    if "rss_mib" in r and r["batch"] == 1 and eng in ("erserve", "erserve-bf16", "erserve-int8",
                                                       "erserve-onednn"):
        rss[eng] = r["rss_mib"]
        if "anon_mib" in r:
            anon[eng] = r["anon_mib"]
print("== erserve vs ONNX Runtime vs PyTorch, bert-base shape, median ms over rounds (lower is better)")
print("   %-12s %9s %9s %9s  %8s %8s   %s" % ("shape", "erserve", "ort", "torch", "ort/ers", "torch/ers",
                                               "fraction of fp32 FMA limit (erserve, ort, torch)"))
for (b, s, t), e in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][0])):
    ms = {k: statistics.median(v) for k, v in e.items()}
    flops = 2.0 * b * s * (4 * H * H + 2 * H * F) * L + 4.0 * b * s * s * H * L
    peak = fma["fp32_gflops"] * 1e9 * t
    frac = lambda k: "%.0f%%" % (100 * flops / (ms[k] / 1e3) / peak) if k in ms else "-"
    fmt = lambda k: "%.1f" % ms[k] if k in ms else "-"
    ratio = lambda k: "%.2f" % (ms[k] / ms["erserve"]) if k in ms else "-"
    print("   %-12s %9s %9s %9s  %8s %8s   %s" % ("%dx%d, %dt" % (b, s, t), fmt("erserve"),
          fmt("onnxruntime"), fmt("pytorch"), ratio("onnxruntime"), ratio("pytorch"),
          ", ".join(frac(k) for k in ("erserve", "onnxruntime", "pytorch"))))
print("   (ratios > 1: erserve is faster; %d rounds interleaved)" % len(next(iter(by.values()))["erserve"]))
print("== erserve compute modes (median ms; speed-up over fp32, targets at 8x128: bf16 >= 1.8x, "
      "int8 >= 2.5x)")
for (b, s, t), e in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][0])):
    ms = {k: statistics.median(v) for k, v in e.items()}
    line = "   %-12s fp32 %8.1f" % ("%dx%d, %dt" % (b, s, t), ms["erserve"])
    for mode in ("bf16", "int8"):
        if "erserve-" + mode in ms:
            line += "   %s %8.1f (%.2fx)" % (mode, ms["erserve-" + mode], ms["erserve"] / ms["erserve-" + mode])
    cm = {k: statistics.median(v) for k, v in cpu.get((b, s, t), {}).items()}
    if "erserve" in cm and any("erserve-" + m in cm for m in ("bf16", "int8")):
        line += "   [process CPU ms: " + ", ".join("%s %.2fx" % (m, cm["erserve"] / cm["erserve-" + m])
                                                  for m in ("bf16", "int8") if "erserve-" + m in cm) + "]"
    if "erserve-haswell" in ms:
        line += "   fp32 with OPENBLAS_CORETYPE=Haswell %8.1f (%.2fx)" % (
            ms["erserve-haswell"], ms["erserve"] / ms["erserve-haswell"])
    print(line)
onednn = {k: e for k, e in by.items() if "erserve-onednn" in e}
if onednn:
    print("== erserve fp32 on oneDNN (--gemm onednn, opt-in) vs erserve's own kernels, median ms "
          "(ratio > 1: the own kernels are faster)")
    for (b, s, t), e in sorted(onednn.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        ms = {k: statistics.median(v) for k, v in e.items()}
        cm = {k: statistics.median(v) for k, v in cpu.get((b, s, t), {}).items()}
        line = "   %-12s onednn %8.1f   own %8.1f   %.2fx" % (
            "%dx%d, %dt" % (b, s, t), ms["erserve-onednn"], ms["erserve"],
            ms["erserve-onednn"] / ms["erserve"])
        if "erserve-onednn" in cm and "erserve" in cm:
            line += "   [process CPU ms: %.1f vs %.1f, %.2fx]" % (
                cm["erserve-onednn"], cm["erserve"], cm["erserve-onednn"] / cm["erserve"])
        print(line)
cutp = os.path.join(out, "cut.jsonl")
if os.path.exists(cutp) and (8, 128, 1) in by:
    cuts = [json.loads(l) for l in open(cutp) if l.strip()]
    miss32 = statistics.median(by[(8, 128, 1)]["erserve"])
    for mode in ("bf16", "int8"):
        hits = [c["hit_ms"] for c in cuts if c.get("compute") == mode]
        if hits:
            hit = statistics.median(hits)
            print("== stacked with recycling, 8x128, 1t: %s hit at cut 6 of 12 %.1f ms vs fp32 miss "
                  "%.1f ms: %.2fx (target for bf16 >= 3.6x)" % (mode, hit, miss32, miss32 / hit))
            hits_cpu = [c["hit_cpu_ms"] for c in cuts if c.get("compute") == mode and "hit_cpu_ms" in c]
            if hits_cpu and "erserve" in cpu.get((8, 128, 1), {}):
                miss_cpu = statistics.median(cpu[(8, 128, 1)]["erserve"])
                print("   (process CPU ms: hit %.1f vs fp32 miss %.1f: %.2fx)"
                      % (statistics.median(hits_cpu), miss_cpu, miss_cpu / statistics.median(hits_cpu)))
if rss:
    base = rss.get("erserve")
    print("== RSS of the bert-base process after load + one 1x128 forward: " + ", ".join(
        "%s %.0f MiB%s" % (k.replace("erserve-", "").replace("erserve", "fp32"), v,
                           " (%.0f%% of fp32)" % (100 * v / base) if base and k != "erserve" else "")
        for k, v in sorted(rss.items())))
if anon:  # the mapped pages of the embedding table come and go with the page cache
    base = anon.get("erserve")
    print("   of it anonymous (without mapped file pages): " + ", ".join(
        "%s %.0f MiB%s" % (k.replace("erserve-", "").replace("erserve", "fp32"), v,
                           " (%.0f%% of fp32)" % (100 * v / base) if base and k != "erserve" else "")
        for k, v in sorted(anon.items())))

def load(name):
    p = os.path.join(out, name + ".f32")
    if not os.path.exists(p):
        return None
    data = open(p, "rb").read()
    return struct.unpack("<%df" % (len(data) // 4), data)

def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb)

for mode in ("bf16", "int8"):
  h32, h16 = load("hidden8-fp32"), load("hidden8-" + mode)
  if h32 and h16:
      H = 768
      toks = len(h32) // H
      cos_tok = min(cosine(h32[i * H:(i + 1) * H], h16[i * H:(i + 1) * H]) for i in range(toks))
      mean = lambda v, s: [sum(v[(s * 128 + i) * H + j] for i in range(128)) / 128 for j in range(H)]
      cos_emb = min(cosine(mean(h32, s), mean(h16, s)) for s in range(toks // 128))
      l32, l16 = load("head8-fp32"), load("head8-" + mode)
      n_lab = len(l32) // 8
      amax = max(abs(x) for x in l32)
      dmax = max(abs(x - y) for x, y in zip(l32, l16))
      agree = sum(max(range(n_lab), key=lambda j: l32[s * n_lab + j]) ==
                  max(range(n_lab), key=lambda j: l16[s * n_lab + j]) for s in range(8))
      print("== %s vs fp32, bert-base, seeded 8x128: hidden-state cosine min %.6f, mean-pooled "
            "embedding cosine min %.6f (targets bf16 >= 0.9995, int8 >= 0.995); head logits max "
            "abs diff %.2e = %.2e of the largest logit; argmax agreement %d/8"
            % (mode, cos_tok, cos_emb, dmax, dmax / amax, agree))

vals = {k: load(k) for k in ("erserve", "onnxruntime", "pytorch", "float64", "erserve-onednn")}
def diff(a, b):
    return max(abs(x - y) for x, y in zip(vals[a], vals[b]))
pairs = [(a, b) for a, b in (("erserve", "float64"), ("pytorch", "float64"), ("onnxruntime", "float64"),
                             ("erserve", "pytorch"), ("erserve", "onnxruntime"),
                             ("erserve-onednn", "float64"), ("erserve-onednn", "erserve"))
         if vals[a] and vals[b]]
if pairs:
    print("== outputs, 1x128, last hidden states: max abs difference")
    for a, b in pairs:
        print("   %-14s vs %-12s %.2e" % (a, b, diff(a, b)))
PY
