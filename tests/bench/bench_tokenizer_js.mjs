// The JS reference (@huggingface/tokenizers 0.2.0) on the same files and
// the same unit of work as bench_tokenizer.c: one encode per line.
//   node tests/bench/bench_tokenizer_js.mjs MODULE_PATH TOKENIZER_JSON FILE
import fs from "node:fs";
const [modPath, tokPath, file] = process.argv.slice(2);
const mod = await import(modPath);
const Tokenizer = mod.Tokenizer ?? mod.default.Tokenizer;
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tokPath, "utf8")), {});
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l, i, a) => i < a.length - 1 || l.length);
let best = Infinity, tokens = 0, bytes = 0;
for (let rep = 0; rep < 3; rep++) {
  const t0 = process.hrtime.bigint();
  tokens = 0; bytes = 0;
  for (const l of lines) {
    tokens += tok.encode(l).ids.length;
    bytes += Buffer.byteLength(l, "utf8");
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (dt < best) best = dt;
}
console.log(`${(bytes / best / 1e6).toFixed(1)} MB/s  ${(tokens / best).toFixed(0)} tokens/s  (${bytes} bytes, ${tokens} tokens, ${best.toFixed(3)} s)`);
