// Writes tests/tokenizer/golden-rust/<name>.json: goldens from the real
// Hugging Face `tokenizers` library (Rust, 0.22.2) for every tokenizer in
// tests/tokenizer/data (make test needs no Node; these files are committed).
//
//   mkdir -p build/node-rust
//   cp tests/tokenizer/rust/package.json tests/tokenizer/rust/package-lock.json build/node-rust/
//   npm ci --prefix build/node-rust
//   node tests/tokenizer/gen_goldens_rust.mjs          # from the repository root
//   node tests/tokenizer/gen_goldens_rust.mjs synthetic  # only names starting so
//
// The small files of data/synthetic (gen_synthetic.mjs writes them; one
// normalizer / pre-tokenizer setting each) get golden-rust/synthetic-<name>.json
// with the hand-written corpus only (singles, the first 40 moreSingles and
// the pairs; no truncation: that is not theirs to test), which keeps them
// small (about 2 MB for all).
//
// Reference: the npm package @anush008/tokenizers 0.6.0, a napi-rs build of
// tokenizers 0.22.2 (its Cargo.toml pins it; the native part comes as the
// optional package @anush008/tokenizers-<platform>).  API used:
//   Tokenizer.fromFile(path)                 every data/*.tokenizer.json
//   disableTruncation(), disablePadding()    the file's own truncation/padding
//                                            sections are switched off (erserve
//                                            does not apply them either); the
//                                            header keeps them as file_truncation
//                                            and file_padding
//   setTruncation(max_length, {strategy: "LongestFirst"|"OnlyFirst"|"OnlySecond",
//                              stride, direction: "right"|"left"})
//   await encode(text, pair|null, {addSpecialTokens: true})
//     -> getIds(), getTokens(), getTypeIds(), getOffsets(),
//        getSpecialTokensMask(), getSequenceIds(), getOverflowing()
//   await decode(ids, true) and await decode(ids, false)
// The binding encodes with encode_char_offsets: offsets count Unicode code
// points of the sequence they come from (the pair's offsets are relative to
// the pair text, as in the existing goldens).
//
// Legacy directories (vocab.txt + tokenizer_config.json, e.g.
// data/bert-cased-legacy) cannot be opened by Tokenizer.fromFile, which reads
// only tokenizer.json.  The script builds the tokenizer from the directory
// with the binding's component API, the way transformers' BertConverter
// (convert_slow_tokenizer) does for a BertTokenizer: WordPiece.fromFile(vocab,
// {unkToken}), BertNormalizer{cleanText: true, handleChineseChars:
// tokenize_chinese_chars, stripAccents: strip_accents, lowercase:
// do_lower_case}, BertPreTokenizer, TemplateProcessing "[CLS]:0 $A:0 [SEP]:0" /
// "... $B:1 [SEP]:1", WordPiece decoder, special tokens added as special.
//
// Truncation cases run each in a child process (`--one NAME INDEX`): for some
// settings the library panics (stride not below the room left once special
// tokens are counted), and a panic inside the native module aborts Node.  Such
// a case is stored with error "invalid_argument" and rust_error "panic: ...".
//
// Per case (same field names as golden/*.json where the meaning is the same):
//   text, pair?                     the input(s)
//   strategy?, max_length?, stride?, direction?   truncation settings, if any
//   ids, tokens, type_ids, special_mask
//   offsets                         [start, end) in code points, as the library
//                                   reports them
//   byte_offsets                    the same spans in UTF-8 bytes of the same
//                                   sequence: a token with sequence id 0 maps
//                                   through `text`, sequence id 1 through `pair`;
//                                   tokens added by the post-processor (no
//                                   sequence id) keep their (0, 0)
//   sequence_ids                    (pair cases only) 0, 1 or null per token
//   truncated                       whether the library cut anything (it left
//                                   overflowing windows)
//   overflowing?                    the windows the library returns beyond the
//                                   first (stride > 0 makes them overlap), each
//                                   with ids, tokens, type_ids, special_mask,
//                                   offsets, byte_offsets, sequence_ids
//   decoded                         decode(ids, skip_special_tokens = true)
//   decoded_with_special            decode(ids, skip_special_tokens = false)
//   error?, rust_error?             instead of the above when encode fails:
//                                   "invalid_argument" (second sequence missing
//                                   for only_second, or a panic), "capacity"
//                                   (sequence to truncate too short)
//
// Library behaviour these goldens record that a re-implementation may not
// expect (found while writing them; see also compare_goldens.mjs):
//   - max_length below the number of special tokens: the library computes
//     max_length - n_special in unsigned arithmetic, which wraps, so nothing
//     is truncated (truncated: false, full ids) instead of an error.
//   - stride not below the room left for the truncated sequence: panic.
//   - BertNormalizer removes Cc/Cf/Co but keeps unassigned (Cn) code points
//     (they become [UNK]), and its category tables (unicode_categories crate)
//     predate recent Unicode versions: e.g. U+0890 and U+13430 (Cf today) are
//     kept, and BertPreTokenizer does not split on U+2E4F, U+2E52, U+1E95E,
//     U+16FE2 (punctuation today) while it does on U+2E42.
//   - special_mask is 1 only for tokens the post-processor adds; a special
//     token written in the text has mask 0 and real offsets.  An added token
//     with lstrip/rstrip keeps the stripped spaces in its token string and
//     offsets (gpt2 " <|endoftext|> ", mpnet " <mask>").
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  singles, pairs, randomCases, truncations,
  moreSingles, morePairs, randomCasesBpe, strideTruncations,
} from "./corpus.mjs";

const self = fileURLToPath(import.meta.url);
const here = path.dirname(self);
const dataDir = path.join(here, "data");
const outDir = path.join(here, "golden-rust");
const GENERATOR = "@anush008/tokenizers@0.6.0 (Hugging Face tokenizers 0.22.2, Rust)";

const require = createRequire(path.join(process.cwd(), "build/node-rust/"));
let tk;
try {
  tk = require("@anush008/tokenizers");
  const v = require("@anush008/tokenizers/package.json").version;
  if (v !== "0.6.0") throw new Error(`found version ${v}, want 0.6.0`);
} catch (e) {
  console.error("cannot load @anush008/tokenizers 0.6.0 (see the commands at the top of this script):", e.message);
  process.exit(2);
}

const STRATEGY = { longest_first: "LongestFirst", only_first: "OnlyFirst", only_second: "OnlySecond" };

// Every tokenizer in data/: *.tokenizer.json files and legacy directories.
function listTokenizers() {
  const out = [];
  for (const f of fs.readdirSync(dataDir).sort()) {
    const abs = path.join(dataDir, f);
    if (f.endsWith(".tokenizer.json")) out.push({ name: f.slice(0, -".tokenizer.json".length), abs, legacy: false });
    else if (fs.statSync(abs).isDirectory() && fs.existsSync(path.join(abs, "vocab.txt")))
      out.push({ name: f, abs, legacy: true });
  }
  const synDir = path.join(dataDir, "synthetic");
  for (const f of fs.existsSync(synDir) ? fs.readdirSync(synDir).sort() : [])
    if (f.endsWith(".tokenizer.json"))
      out.push({ name: "synthetic-" + f.slice(0, -".tokenizer.json".length), abs: path.join(synDir, f),
                 legacy: false, synthetic: true });
  return out;
}

async function load(entry) {
  if (!entry.legacy) {
    const json = JSON.parse(fs.readFileSync(entry.abs, "utf8"));
    const t = tk.Tokenizer.fromFile(entry.abs);
    t.disableTruncation();
    t.disablePadding();
    return {
      t, header: {
        loaded_with: "Tokenizer.fromFile",
        file_truncation: json.truncation ?? null, file_padding: json.padding ?? null,
      },
    };
  }
  const cfgPath = path.join(entry.abs, "tokenizer_config.json");
  const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  if (cfg.tokenizer_class && !/^Bert(Tokenizer)?(Fast)?$/.test(cfg.tokenizer_class))
    throw new Error(`${entry.name}: only BertTokenizer legacy directories are handled`);
  const unk = cfg.unk_token ?? "[UNK]", cls = cfg.cls_token ?? "[CLS]", sep = cfg.sep_token ?? "[SEP]";
  const pad = cfg.pad_token ?? "[PAD]", mask = cfg.mask_token ?? "[MASK]";
  const lower = cfg.do_lower_case ?? true;
  const model = await tk.WordPiece.fromFile(path.join(entry.abs, "vocab.txt"), { unkToken: unk });
  const t = new tk.Tokenizer(model);
  t.setNormalizer(tk.bertNormalizer({
    cleanText: true, handleChineseChars: cfg.tokenize_chinese_chars ?? true,
    stripAccents: cfg.strip_accents ?? lower, lowercase: lower,
  }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  const clsId = t.tokenToId(cls), sepId = t.tokenToId(sep);
  if (clsId === null || sepId === null) throw new Error(`${entry.name}: ${cls} or ${sep} not in vocab.txt`);
  t.setPostProcessor(tk.templateProcessing(`${cls}:0 $A:0 ${sep}:0`, `${cls}:0 $A:0 ${sep}:0 $B:1 ${sep}:1`,
    [[cls, clsId], [sep, sepId]]));
  t.setDecoder(tk.wordPieceDecoder("##", true));
  t.addSpecialTokens([pad, unk, cls, sep, mask]);
  return {
    t, header: {
      loaded_with: "components from vocab.txt + tokenizer_config.json (Tokenizer.fromFile reads only tokenizer.json): " +
        "WordPiece.fromFile, bertNormalizer, bertPreTokenizer, templateProcessing, wordPieceDecoder, addSpecialTokens",
      file_truncation: null, file_padding: null,
    },
  };
}

// The corpus: [{text, pair?, strategy?, max_length?, stride?, direction?}]
function plainCases() {
  const out = [];
  for (const s of singles) out.push({ text: s });
  for (const s of moreSingles) out.push({ text: s });
  for (const s of randomCases(300, 12345)) out.push({ text: s }); // the same strings as golden/*.json
  for (const s of randomCasesBpe(150, 777)) out.push({ text: s });
  for (const [a, b] of pairs) out.push({ text: a, pair: b });
  for (const [a, b] of morePairs) out.push({ text: a, pair: b });
  return out;
}
function syntheticCases() {
  const out = [];
  for (const s of [...singles, ...moreSingles.slice(0, 40)]) out.push({ text: s });
  for (const [a, b] of [...pairs, ...morePairs]) out.push({ text: a, pair: b });
  return out;
}
function truncationCases() {
  const out = [];
  const mk = (a, b, st, m, stride, dir) => {
    const c = { text: a };
    if (b !== null) c.pair = b;
    Object.assign(c, { strategy: st, max_length: m, stride, direction: dir });
    return c;
  };
  for (const [a, b, st, m] of truncations) out.push(mk(a, b, st, m, 0, "right"));
  for (const [a, b, st, m, s, d] of strideTruncations) out.push(mk(a, b, st, m, s, d));
  return out;
}

for (const c of [...plainCases(), ...truncationCases()]) {
  for (const s of [c.text, c.pair ?? ""])
    if (/\p{Cs}/u.test(s)) throw new Error(`lone surrogate in corpus: ${JSON.stringify(s)}`);
}

function cpToByte(s) {
  const pos = [0];
  for (const ch of s) pos.push(pos[pos.length - 1] + Buffer.byteLength(ch, "utf8"));
  return pos;
}

function encodingJson(e, c, maps, depth = 0) {
  const offsets = e.getOffsets().map((o) => [o[0], o[1]]);
  const seq = e.getSequenceIds().map((s) => (s === undefined ? null : s));
  const byte = offsets.map(([a, b], i) => {
    const s = seq[i];
    if (s === null) {
      if (a !== 0 || b !== 0) throw new Error(`token without sequence id has offsets ${a},${b}: ${JSON.stringify(c)}`);
      return [0, 0];
    }
    const m = maps[s];
    if (!m || b > m.length - 1 || a > b) throw new Error(`offsets ${a},${b} outside sequence ${s}: ${JSON.stringify(c)}`);
    return [m[a], m[b]];
  });
  const r = {
    ids: e.getIds(), type_ids: e.getTypeIds(), tokens: e.getTokens(),
    offsets, byte_offsets: byte, special_mask: e.getSpecialTokensMask(),
  };
  if (c.pair !== undefined || depth > 0) r.sequence_ids = seq;
  const over = e.getOverflowing();
  if (depth > 0 && over.length) r.overflowing = over.map((o) => encodingJson(o, c, maps, depth + 1));
  return r;
}

function errorCode(msg) {
  if (/Second sequence not provided/i.test(msg)) return "invalid_argument";
  if (/too short/i.test(msg)) return "capacity";
  if (/^panic: /.test(msg)) return "invalid_argument";
  throw new Error(`unexpected error from the library: ${msg}`);
}

async function runCase(t, c) {
  const out = { ...c };
  if (c.max_length !== undefined) {
    t.setTruncation(c.max_length, { strategy: STRATEGY[c.strategy], stride: c.stride, direction: c.direction });
  } else {
    t.disableTruncation();
  }
  let e;
  try {
    e = await t.encode(c.text, c.pair ?? null, { addSpecialTokens: true });
  } catch (x) {
    out.error = errorCode(x.message);
    out.rust_error = x.message;
    return out;
  }
  const maps = [cpToByte(c.text), c.pair === undefined ? null : cpToByte(c.pair)];
  Object.assign(out, encodingJson(e, c, maps));
  const over = e.getOverflowing();
  out.truncated = over.length > 0;
  if (over.length) out.overflowing = over.map((o) => encodingJson(o, c, maps, 1));
  out.decoded = await t.decode(out.ids, true);
  out.decoded_with_special = await t.decode(out.ids, false);
  return out;
}

// Child mode: one truncation case, result on stdout.
if (process.argv[2] === "--one") {
  const entry = listTokenizers().find((x) => x.name === process.argv[3]);
  const c = truncationCases()[Number(process.argv[4])];
  const { t } = await load(entry);
  const r = await runCase(t, c);
  fs.writeSync(1, JSON.stringify(r));
  process.exit(0);
}

function runChild(entry, index, c) {
  const p = spawnSync(process.execPath, [self, "--one", entry.name, String(index)], {
    encoding: "utf8", env: { ...process.env, RUST_BACKTRACE: "0" }, maxBuffer: 64 << 20,
  });
  if (p.status === 0) return JSON.parse(p.stdout);
  const m = /panicked at [^\n]*\n([^\n]*)/.exec(p.stderr ?? "");
  if (!m) throw new Error(`child for ${entry.name} case ${index} failed (status ${p.status}, signal ${p.signal}): ${p.stderr}`);
  return { ...c, error: "invalid_argument", rust_error: `panic: ${m[1]}` };
}

fs.mkdirSync(outDir, { recursive: true });
const summary = [];
const only = process.argv[2] ?? "";
for (const entry of listTokenizers().filter((x) => x.name.startsWith(only))) {
  const { t, header } = await load(entry);
  const cases = [];
  for (const c of entry.synthetic ? syntheticCases() : plainCases()) cases.push(await runCase(t, c));
  if (!entry.synthetic) truncationCases().forEach((c, i) => cases.push(runChild(entry, i, c)));
  const rel = path.relative(process.cwd(), entry.abs).split(path.sep).join("/");
  const out = {
    tokenizer: rel, generator: GENERATOR, ...header,
    offsets: "code points of the sequence (encode_char_offsets); byte_offsets: the same spans in UTF-8 bytes",
    cases,
  };
  const file = path.join(outDir, `${entry.name}.json`);
  fs.writeFileSync(file, JSON.stringify(out) + "\n");
  const nErr = cases.filter((c) => c.error).length;
  const nTrunc = cases.filter((c) => c.truncated).length;
  summary.push(`${entry.name}: ${cases.length} cases (${nTrunc} truncated, ${nErr} errors), ${fs.statSync(file).size} bytes`);
  console.log(summary[summary.length - 1]);
}
