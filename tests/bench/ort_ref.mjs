// ONNX Runtime reference benchmark for erserve (make bench): runs the graph
// tests/bench/torch_ref.py --export-onnx wrote (the same bert-base-shaped
// forward, embeddings + all layers) with onnxruntime-node's CPU provider
// (MLAS) and prints one JSON line like bench_engine / torch_ref.py:
//   {"engine":"onnxruntime","batch","seq","threads","ms_per_forward","tokens_per_s"}
//
//   node tests/bench/ort_ref.mjs --model G.onnx --batch 8 --seq 128 --threads 1 \
//        --iters 5 [--ids FILE] [--dump FILE]
//
// onnxruntime-node is resolved from ORT_NODE_MODULES (the folder bench_compare.sh
// installs it into under build/, never the repository).
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const need = (k) => {
  if (args[k] === undefined) throw new Error(`ort_ref: --${k} is required`);
  return args[k];
};
const modules = process.env.ORT_NODE_MODULES || "build/bench/ort/node_modules";
const require = createRequire(path.resolve(modules, "..", "package.json"));
const ort = require("onnxruntime-node");

const B = Number(need("batch")), S = Number(need("seq")), T = Number(args.threads || 1);
const iters = Number(args.iters || 5), warmup = Number(args.warmup || 1);
const session = await ort.InferenceSession.create(need("model"), {
  intraOpNumThreads: T,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const ids = new BigInt64Array(B * S);
if (args.ids) {
  const raw = readFileSync(args.ids);
  const v = new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  if (v.length !== B * S) throw new Error(`ort_ref: ${args.ids} holds ${v.length} ids, want ${B * S}`);
  for (let i = 0; i < v.length; i++) ids[i] = BigInt(v[i]);
} else {
  let s = 1;
  for (let i = 0; i < ids.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    ids[i] = BigInt(1000 + (s % 29000));
  }
}
const feeds = { input_ids: new ort.Tensor("int64", ids, [B, S]) };
const times = [];
let out;
for (let i = 0; i < warmup + iters; i++) {
  const t0 = process.hrtime.bigint();
  out = await session.run(feeds);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (i >= warmup) times.push(dt);
}
const h = out.hidden.data;
for (let i = 0; i < h.length; i++) if (!Number.isFinite(h[i])) throw new Error("ort_ref: non-finite output");
if (args.dump) writeFileSync(args.dump, Buffer.from(h.buffer, h.byteOffset, h.byteLength));
times.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({
  engine: "onnxruntime", version: ort.env.versions?.common ?? "", batch: B, seq: S, threads: T,
  ms_per_forward: +(med * 1e3).toFixed(2), tokens_per_s: Math.round((B * S) / med),
}));
