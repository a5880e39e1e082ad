// Throughput of the reference Rust tokenizer (Hugging Face tokenizers 0.22.2
// through @anush008/tokenizers 0.6.0) on one thread, and its per-call cost.
// Install as for gen_goldens_rust.mjs, then from the repository root:
//
//   node tests/tokenizer/bench_rust.mjs TOKENIZER_JSON TEXT_FILE [--batch 1,32,256] [--reps 3] [--overhead CALLS]
//
// TEXT_FILE: one input per line (e.g. build/bench/tokenizer/english.txt from
// `build/bench/bench_tokenizer gen DIR`, the same file tests/bench/bench_tokenizer.sh
// uses).  Prints, best of --reps runs:
//   encode/line    : `await encode(line)` + getIds() per line, one call at a time
//   encodeBatch/N  : `await encodeBatch(N lines)` + getIds() on each result
//   tokens/s count every id returned, [CLS]/[SEP]-style specials included.
//   overhead       : `await encode("")` (and + getIds(), and encodeBatch([""]))
//                    per call: the binding's fixed cost (a napi call, a hop to
//                    the libuv thread pool and back, the Encoding object)
// One thread: RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set
// (unless already set) before the library loads; encode_batch then runs its
// inputs serially on the one libuv worker that carries the call.  The CPU/wall
// ratio printed beside each figure shows whether that held: about 1.0 on an
// idle machine; below 1 the machine is busy with other work, and "tokens per
// cpu-s" (the process's CPU time: the worker and the JS thread, which take
// turns) is then the better estimate of the one-thread figure.
// The tokenizer file's own truncation/padding sections are switched off, as
// erserve does not apply them.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

process.env.RAYON_NUM_THREADS ??= "1";
process.env.TOKENIZERS_PARALLELISM ??= "false";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const batches = opt("--batch", "1,32,256").split(",").map(Number);
const reps = Number(opt("--reps", "3"));
const overheadCalls = Number(opt("--overhead", "20000")); // 0: skip the per-call figures
const [tokPath, textPath] = args;
if (!tokPath || !textPath) {
  console.error("usage: node tests/tokenizer/bench_rust.mjs TOKENIZER_JSON TEXT_FILE [--batch 1,32,256] [--reps 3]");
  process.exit(2);
}
// NODE_RUST_DIR: where the package was installed (bench_tokenizer.sh passes $BUILD/node-rust)
const require = createRequire(path.join(path.resolve(process.env.NODE_RUST_DIR ?? "build/node-rust"), "/"));
let tk;
try {
  tk = require("@anush008/tokenizers");
} catch (e) {
  console.error("cannot load @anush008/tokenizers (see gen_goldens_rust.mjs for the install commands):", e.message);
  process.exit(2);
}

const tok = tk.Tokenizer.fromFile(tokPath);
tok.disableTruncation();
tok.disablePadding();
const lines = fs.readFileSync(textPath, "utf8").split("\n").filter((l, i, a) => i < a.length - 1 || l.length);
const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l, "utf8"), 0);

async function timed(fn) {
  let best = null;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    const n = await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0), cpu = (c.user + c.system) / 1e6;
    if (!best || wall < best.wall) best = { wall, cpu, n };
  }
  return best;
}
const fmt = (label, b) =>
  `${label.padEnd(16)} ${(b.n / b.wall).toFixed(0).padStart(9)} tokens/s  ${(bytes / b.wall / 1e6).toFixed(2).padStart(6)} MB/s` +
  `  (${b.n} tokens, ${b.wall.toFixed(3)} s, cpu/wall ${(b.cpu / b.wall).toFixed(2)}, ` +
  `${(b.n / b.cpu).toFixed(0)} tokens per cpu-s)`;

console.log(`${path.basename(tokPath)} on ${path.basename(textPath)}: ${lines.length} lines, ${bytes} bytes; ` +
  `RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS} TOKENIZERS_PARALLELISM=${process.env.TOKENIZERS_PARALLELISM}, best of ${reps}`);

// warm-up (first call starts the pool threads and fills caches)
await tok.encodeBatch(lines.slice(0, 256), { addSpecialTokens: true });

for (const n of batches) {
  const label = n === 1 ? "encode/line" : `encodeBatch/${n}`;
  const b = await timed(async () => {
    let count = 0;
    if (n === 1) {
      for (const l of lines) count += (await tok.encode(l, null, { addSpecialTokens: true })).getIds().length;
    } else {
      for (let i = 0; i < lines.length; i += n) {
        const enc = await tok.encodeBatch(lines.slice(i, i + n), { addSpecialTokens: true });
        for (const e of enc) count += e.getIds().length;
      }
    }
    return count;
  });
  console.log(fmt(label, b));
}

const N = overheadCalls;
if (N === 0) process.exit(0);
async function perCall(label, fn) {
  for (let i = 0; i < 1000; i++) await fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e3 / N);
  }
  console.log(`overhead ${label.padEnd(26)} ${best.toFixed(2)} us/call`);
}
await perCall('encode("")', () => tok.encode("", null, { addSpecialTokens: true }));
await perCall('encode("") + getIds()', async () => (await tok.encode("", null, { addSpecialTokens: true })).getIds());
await perCall('encodeBatch([""]) + getIds()', async () => (await tok.encodeBatch([""], { addSpecialTokens: true }))[0].getIds());
