#!/bin/sh
# Three engines on the same weights (make bench): erserve, ONNX Runtime
# (npm onnxruntime-node, its CPU provider) and PyTorch (Debian's
# python3-torch), on the random bert-base-shaped model of common.sh, in
# interleaved rounds so that each engine sees the same machine noise.
# Prints each engine's median ms per forward, the ratios, each figure as a
# fraction of this host's own fp32 FMA limit (bench_fma, measured here), and
# how far the engines' outputs are from each other and from a float64 run.
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
      "$BUILD/bench/bench_engine" "$MODEL" "$1" "$2" "$t" "$ITERS" >>"$OUT/results.jsonl"
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
done

# Outputs on one 1 x 128 input: every engine's last hidden states.
python3 -c "import random,struct,sys; r=random.Random(5); \
sys.stdout.buffer.write(struct.pack('<128i',*[r.randrange(1000,30000) for _ in range(128)]))" \
  >"$OUT/ids.bin"
BENCH_IDS="$OUT/ids.bin" BENCH_DUMP="$OUT/erserve.f32" \
  "$BUILD/bench/bench_engine" "$MODEL" 1 128 1 1 >/dev/null
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
by = {}
for r in rows:
    by.setdefault((r["batch"], r["seq"], r["threads"]), {}).setdefault(r.get("engine", "erserve"), []).append(r["ms_per_forward"])
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

def load(name):
    p = os.path.join(out, name + ".f32")
    if not os.path.exists(p):
        return None
    data = open(p, "rb").read()
    return struct.unpack("<%df" % (len(data) // 4), data)

vals = {k: load(k) for k in ("erserve", "onnxruntime", "pytorch", "float64")}
def diff(a, b):
    return max(abs(x - y) for x, y in zip(vals[a], vals[b]))
pairs = [(a, b) for a, b in (("erserve", "float64"), ("pytorch", "float64"), ("onnxruntime", "float64"),
                             ("erserve", "pytorch"), ("erserve", "onnxruntime")) if vals[a] and vals[b]]
if pairs:
    print("== outputs, 1x128, last hidden states: max abs difference")
    for a, b in pairs:
        print("   %-12s vs %-12s %.2e" % (a, b, diff(a, b)))
PY
