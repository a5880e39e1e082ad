// Writes tests/tokenizer/golden/*.json: the parity goldens that
// tests/core/test_tokenizer.c compares against (make test needs no Node).
//
//   cp tests/tokenizer/package.json tests/tokenizer/package-lock.json build/node/
//   npm ci --prefix build/node
//   NODE_PATH=build/node/node_modules node tests/tokenizer/gen_goldens.mjs
//
// Reference: @huggingface/tokenizers 0.2.0 (pure JS).  That library returns
// ids and tokens but neither offsets nor truncation, so this script has two
// halves that must agree:
//   1. `js`: the library's own Tokenizer.encode() (ids, tokens, type ids).
//   2. `ref`: a small re-statement of the Rust `tokenizers` pipeline that
//      tracks alignments the way NormalizedString does (each normalized char
//      maps to the original char that produced it; removed chars vanish), and
//      uses the JS library's WordPiece model for the word pieces.
// The golden stores `ref` (ids, offsets, truncation); every case records
// whether its ids equal the JS library's.  Where they differ the cause is a
// known JS-vs-Rust discrepancy (listed in the report printed at the end) and
// the golden follows Rust.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { singles, pairs, randomCases, truncations } from "./corpus.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.cwd(), "build/node/"));
let Tokenizer;
try {
  const mod = await import(require.resolve("@huggingface/tokenizers"));
  Tokenizer = mod.Tokenizer ?? mod.default.Tokenizer;
} catch (e) {
  console.error("cannot load @huggingface/tokenizers (npm ci --prefix build/node):", e.message);
  process.exit(2);
}

const RE_OTHER = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}]$/u;
const RE_WS = /^\p{White_Space}$/u;
const RE_PUNCT = /^[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]$/u;
const isChinese = (cp) =>
  (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
  (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
  (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
  (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);

function makeRef(json) {
  const n = json.normalizer;
  const cfg = n ? {
    clean: n.clean_text ?? true, chinese: n.handle_chinese_chars ?? true,
    lower: n.lowercase ?? true,
    strip: n.strip_accents === null || n.strip_accents === undefined ? (n.lowercase ?? true) : n.strip_accents,
  } : null;
  const vocab = new Map(Object.entries(json.model.vocab));
  const prefix = json.model.continuing_subword_prefix ?? "##";
  const maxChars = json.model.max_input_chars_per_word ?? 100;
  const unk = json.model.unk_token;
  const added = json.added_tokens.map((t) => ({ ...t }));
  for (const t of added) {
    if (t.normalized || t.lstrip || t.rstrip || t.single_word)
      throw new Error("reference handles only plain special added tokens");
  }
  // Rust-style per-char normalization.
  function normChar(ch) {
    const cp = ch.codePointAt(0);
    if (!cfg) return [ch];
    if (cfg.clean) {
      if (cp === 0 || cp === 0xfffd || (RE_OTHER.test(ch) && !"\t\n\r".includes(ch))) return [];
      if (RE_WS.test(ch)) ch = " ";
    }
    let out = [ch];
    if (cfg.chinese && isChinese(cp)) out = [" ", ch, " "];
    if (cfg.strip) out = [...out.join("").normalize("NFD").replace(/\p{Mn}/gu, "")];
    if (cfg.lower) out = out.flatMap((c) => [...c.toLowerCase()]);
    return out;
  }
  function wordpiece(word) { // word: array of chars; returns [{tok, a, b}] char ranges
    if (word.length > maxChars) return [{ tok: unk, a: 0, b: word.length }];
    const out = [];
    let start = 0;
    while (start < word.length) {
      let end = word.length, cur = null;
      while (start < end) {
        let s = word.slice(start, end).join("");
        if (start > 0) s = prefix + s;
        if (vocab.has(s)) { cur = s; break; }
        end--;
      }
      if (cur === null) return [{ tok: unk, a: 0, b: word.length }];
      out.push({ tok: cur, a: start, b: end });
      start = end;
    }
    return out;
  }
  // Returns tokens [{id, tok, cs, ce, bs, be}] for one sequence.
  function encodeSeq(text) {
    const chars = [...text];
    const bpos = [0];
    for (const c of chars) bpos.push(bpos[bpos.length - 1] + Buffer.byteLength(c, "utf8"));
    const tokens = [];
    // split on non-normalized added tokens, leftmost-longest
    const segs = [];
    let segStart = 0, i = 0;
    while (i < chars.length) {
      let best = null;
      for (const t of added) {
        const tc = [...t.content];
        if (i + tc.length <= chars.length && chars.slice(i, i + tc.length).join("") === t.content &&
            (!best || tc.length > best.len)) best = { t, len: tc.length };
      }
      if (best) {
        if (i > segStart) segs.push({ a: segStart, b: i });
        segs.push({ a: i, b: i + best.len, added: best.t });
        i += best.len; segStart = i;
      } else i++;
    }
    if (segStart < chars.length) segs.push({ a: segStart, b: chars.length });
    for (const seg of segs) {
      if (seg.added) {
        tokens.push({ id: seg.added.id, tok: seg.added.content, cs: seg.a, ce: seg.b, bs: bpos[seg.a], be: bpos[seg.b] });
        continue;
      }
      const norm = []; // {c, src}
      for (let k = seg.a; k < seg.b; k++) for (const c of normChar(chars[k])) norm.push({ c, src: k });
      let w = 0;
      const flush = (end) => {
        if (end > w) {
          const word = norm.slice(w, end);
          for (const p of wordpiece(word.map((x) => x.c))) {
            const s = word[p.a].src, e = word[p.b - 1].src + 1;
            tokens.push({ id: vocab.get(p.tok), tok: p.tok, cs: s, ce: e, bs: bpos[s], be: bpos[e] });
          }
        }
      };
      for (let k = 0; k < norm.length; k++) {
        const c = norm[k].c;
        if (RE_WS.test(c)) { flush(k); w = k + 1; }
        else if (RE_PUNCT.test(c)) { flush(k); w = k; flush(k + 1); w = k + 1; }
      }
      flush(norm.length);
    }
    return tokens;
  }
  // post-processor: TemplateProcessing as found in the files
  const pp = json.post_processor;
  const special = (name) => ({ id: pp.special_tokens[name].ids[0], tok: name, cs: 0, ce: 0, bs: 0, be: 0, special: true });
  function assemble(a, b) {
    const tpl = b === null ? pp.single : pp.pair;
    const out = [];
    for (const item of tpl) {
      if (item.SpecialToken) out.push({ ...special(item.SpecialToken.id), type: item.SpecialToken.type_id });
      else for (const t of item.Sequence.id === "A" ? a : b) out.push({ ...t, type: item.Sequence.type_id });
    }
    return out;
  }
  const nAdded = (isPair) => (isPair ? pp.pair : pp.single).filter((x) => x.SpecialToken).length;
  // Rust truncate_encodings (direction right, stride 0)
  function truncate(a, b, strategy, maxLen) {
    const total = a.length + (b ? b.length : 0);
    if (total <= maxLen) return { a, b, truncated: false };
    const toRemove = total - maxLen;
    if (strategy === "longest_first") {
      if (!b) return { a: a.slice(0, total - toRemove), b, truncated: true };
      let n1 = a.length, n2 = b.length, swap = false;
      if (n1 > n2) { swap = true; [n1, n2] = [n2, n1]; }
      if (n1 > maxLen) n2 = n1; else n2 = Math.max(n1, maxLen - n1);
      if (n1 + n2 > maxLen) { n1 = Math.floor(maxLen / 2); n2 = n1 + (maxLen % 2); }
      if (swap) [n1, n2] = [n2, n1];
      return { a: a.slice(0, n1), b: b.slice(0, n2), truncated: true };
    }
    const first = strategy === "only_first";
    if (!first && !b) return { error: "invalid_argument" };
    const target = first ? a : b;
    if (target.length <= toRemove) return { error: "capacity" };
    const cut = target.slice(0, target.length - toRemove);
    return first ? { a: cut, b, truncated: true } : { a, b: cut, truncated: true };
  }
  function encode(text, pair, strategy, maxLen) {
    let a = encodeSeq(text), b = pair === null ? null : encodeSeq(pair);
    let truncated = false;
    if (maxLen) {
      const r = truncate(a, b, strategy, maxLen - nAdded(b !== null));
      if (r.error) return { error: r.error };
      ({ a, b, truncated } = r);
    }
    const toks = assemble(a, b);
    return {
      ids: toks.map((t) => t.id), type_ids: toks.map((t) => t.type), tokens: toks.map((t) => t.tok),
      offsets: toks.map((t) => [t.cs, t.ce]), byte_offsets: toks.map((t) => [t.bs, t.be]),
      special_mask: toks.map((t) => (t.special ? 1 : 0)), truncated,
    };
  }
  return encode;
}

const data = path.join(here, "data");
const base = JSON.parse(fs.readFileSync(path.join(data, "bert-base-uncased.tokenizer.json"), "utf8"));
const cased = structuredClone(base);
cased.normalizer = { ...cased.normalizer, lowercase: false, strip_accents: false };
const configs = [
  { name: "bert-base-uncased", path: "tests/tokenizer/data/bert-base-uncased.tokenizer.json", json: base },
  { name: "all-MiniLM-L6-v2", path: "tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json",
    json: JSON.parse(fs.readFileSync(path.join(data, "all-MiniLM-L6-v2.tokenizer.json"), "utf8")) },
  // the cased variant is stored as a legacy vocab.txt + tokenizer_config.json
  { name: "bert-cased-legacy", path: "tests/tokenizer/data/bert-cased-legacy", json: cased },
];

const outDir = path.join(here, "golden");
fs.mkdirSync(outDir, { recursive: true });
const random = randomCases(300, 12345);
let total = 0, same = 0;
const diffs = [];
// Known JS-vs-Rust discrepancies; the golden follows Rust for each.
function why(text, pair) {
  const t = text + (pair ?? "");
  const r = [];
  if ([...t].some((c) => c.codePointAt(0) > 0xffff && isChinese(c.codePointAt(0))))
    r.push("astral-cjk: JS tests UTF-16 code units for CJK, Rust code points");
  if (/\p{Cn}/u.test(t)) r.push("unassigned: Rust clean_text removes Cn, JS keeps it");
  if (/\p{Lu}*\u03a3/u.test(t)) r.push("final-sigma: JS lowercases the whole string (Σ→ς at word end), Rust per char (σ)");
  if (pair === "") r.push("empty-pair: JS drops an empty second sequence, Rust encodes it");
  return r.length ? r.join("; ") : "unexplained";
}
for (const cfg of configs) {
  const js = new Tokenizer(cfg.json, {});
  const ref = makeRef(cfg.json);
  const cases = [];
  const add = (text, pair, strategy = null, maxLen = 0) => {
    const r = ref(text, pair, strategy, maxLen);
    const c = { text };
    if (pair !== null) c.pair = pair;
    if (maxLen) { c.strategy = strategy; c.max_length = maxLen; }
    Object.assign(c, r);
    if (!maxLen) {
      const j = js.encode(text, { text_pair: pair, return_token_type_ids: true });
      const ok = JSON.stringify(j.ids) === JSON.stringify(r.ids) &&
                 JSON.stringify(j.token_type_ids) === JSON.stringify(r.type_ids);
      total++; if (ok) same++;
      if (!ok) { c.js_ids = j.ids; c.js_differs = why(text, pair); diffs.push(c.js_differs); }
    }
    cases.push(c);
  };
  for (const s of singles) add(s, null);
  for (const s of random) add(s, null);
  for (const [a, b] of pairs) add(a, b);
  for (const [a, b, st, m] of truncations) add(a, b, st, m);
  const out = { tokenizer: cfg.path, generator: "@huggingface/tokenizers@0.2.0 + Rust alignment rules", cases };
  fs.writeFileSync(path.join(outDir, `${cfg.name}.json`), JSON.stringify(out) + "\n");
  console.log(`${cfg.name}: ${cases.length} cases`);
}
console.log(`ids identical to the JS library: ${same}/${total}`);
const counts = {};
for (const d of diffs) counts[d] = (counts[d] ?? 0) + 1;
for (const [k, v] of Object.entries(counts)) console.log(`  ${v} differ: ${k}`);
