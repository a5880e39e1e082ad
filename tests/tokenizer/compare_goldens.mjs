// Compares the JS-reference goldens (golden/<name>.json, gen_goldens.mjs)
// with the Rust-reference goldens (golden-rust/<name>.json,
// gen_goldens_rust.mjs) case by case, for the tokenizers present in both.
// Needs only Node, no packages:
//   node tests/tokenizer/compare_goldens.mjs [--show N]
// A case is matched on (text, pair, strategy, max_length); Rust cases with a
// stride or a left direction have no counterpart.  Compared: ids, tokens,
// type_ids, offsets (code points), byte_offsets, special_mask, truncated,
// error.  Exit status 0 whatever the differences: this is a report.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const showArg = process.argv.indexOf("--show");
const SHOW = showArg > 0 ? Number(process.argv[showArg + 1]) : 3;
const FIELDS = ["ids", "tokens", "type_ids", "offsets", "byte_offsets", "special_mask", "truncated", "error"];
const key = (c) => JSON.stringify([c.text, c.pair ?? null, c.strategy ?? null, c.max_length ?? null]);

let grandTotal = 0, grandDiff = 0;
for (const f of fs.readdirSync(path.join(here, "golden")).sort()) {
  const rustFile = path.join(here, "golden-rust", f);
  if (!f.endsWith(".json") || !fs.existsSync(rustFile)) continue;
  const js = JSON.parse(fs.readFileSync(path.join(here, "golden", f), "utf8")).cases;
  const rust = new Map();
  for (const c of JSON.parse(fs.readFileSync(rustFile, "utf8")).cases) {
    if ((c.stride ?? 0) !== 0 || (c.direction ?? "right") !== "right") continue;
    rust.set(key(c), c);
  }
  let missing = 0;
  const diffs = [];
  const byField = {};
  for (const [i, c] of js.entries()) {
    const r = rust.get(key(c));
    if (!r) { missing++; continue; }
    const bad = FIELDS.filter((k) => JSON.stringify(c[k] ?? null) !== JSON.stringify(r[k] ?? null));
    if (bad.length) {
      diffs.push({ i, c, r, bad });
      for (const k of bad) byField[k] = (byField[k] ?? 0) + 1;
    }
  }
  // Where gen_goldens.mjs overrode the JS library (js_differs: the golden
  // follows its own reading of Rust), which side does the real library take?
  const verdict = {};
  for (const c of js) {
    const r = rust.get(key(c));
    if (!c.js_differs || !r) continue;
    const v = (verdict[c.js_differs] ??= { golden: 0, js: 0, neither: 0 });
    if (JSON.stringify(r.ids) === JSON.stringify(c.ids)) v.golden++;
    else if (JSON.stringify(r.ids) === JSON.stringify(c.js_ids)) v.js++;
    else v.neither++;
  }
  grandTotal += js.length - missing; grandDiff += diffs.length;
  console.log(`${f.replace(/\.json$/, "")}: ${js.length - missing} cases compared, ${diffs.length} differ` +
    (missing ? `, ${missing} without a Rust counterpart` : "") +
    (diffs.length ? ` (by field: ${Object.entries(byField).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""));
  for (const [why, v] of Object.entries(verdict))
    console.log(`  js_differs "${why}": Rust ids = golden ${v.golden}, = JS library ${v.js}, neither ${v.neither}`);
  for (const d of diffs.slice(0, SHOW)) {
    const { c, r } = d;
    console.log(`  case ${d.i}: text=${JSON.stringify(c.text)}${c.pair !== undefined ? ` pair=${JSON.stringify(c.pair)}` : ""}` +
      `${c.max_length ? ` ${c.strategy}/${c.max_length}` : ""} differs in ${d.bad.join(", ")}`);
    if (c.error || r.error) { console.log(`    js error=${c.error ?? "-"} rust error=${r.error ?? "-"} ${r.rust_error ?? ""}`); continue; }
    // first differing token position
    const n = Math.max(c.ids.length, r.ids.length);
    for (let k = 0; k < n; k++) {
      const a = [c.ids[k], c.tokens[k], c.type_ids[k], c.offsets[k], c.byte_offsets[k]];
      const b = [r.ids[k], r.tokens[k], r.type_ids[k], r.offsets[k], r.byte_offsets[k]];
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        console.log(`    first at token ${k}: js ${JSON.stringify(a)}  rust ${JSON.stringify(b)}`);
        break;
      }
    }
  }
}
console.log(`total: ${grandTotal} cases compared, ${grandDiff} differ`);
