// Runs every Unicode code point through the character-class components, in
// erserve (build/bin/erserve-tokenize) and in the Rust library, and prints
// the code points where they differ (none, as committed).  Not part of make
// test: it needs the Rust binding (see gen_goldens_rust.mjs) and takes a
// minute.
//
//   make build/bin/erserve-tokenize && node tests/tokenizer/check_codepoints_rust.mjs [NAME...]
//
// (NAME: only those components, e.g. NFC Whitespace.)
// Each component is followed by ByteLevel (no regex, no prefix space) and a
// BPE of the 256 byte symbols without merges, so every token is one byte of
// the normalized / pre-tokenized text: tokens show the text exactly and
// offsets where each byte came from.  The text is "a" + code point + "a" +
// "\n" for every code point (surrogates and "\n" itself left out), in
// chunks.  This is how the tables of newer / older Unicode data in the
// normalizer and pre-tokenizer files were found: utf8proc's Unicode
// version differs from each of the Rust crates'.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "build/node-rust/"));
const tk = require("@anush008/tokenizers");

function byteVocab() {
  const chars = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars.push(String.fromCodePoint(printable ? b : next++));
  }
  return Object.fromEntries(chars.map((c, i) => [c, i]));
}

const BL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
const normalizer = (n) => ({ normalizer: n, pre_tokenizer: BL });
const preTokenizer = (p) => ({ normalizer: null, pre_tokenizer: { type: "Sequence", pretokenizers: [p, BL] } });
const COMPONENTS = {
  NFC: normalizer({ type: "NFC" }), NFD: normalizer({ type: "NFD" }),
  NFKC: normalizer({ type: "NFKC" }), NFKD: normalizer({ type: "NFKD" }),
  Lowercase: normalizer({ type: "Lowercase" }), StripAccents: normalizer({ type: "StripAccents" }),
  Whitespace: preTokenizer({ type: "Whitespace" }),
  Digits: preTokenizer({ type: "Digits", individual_digits: true }),
  Punctuation: preTokenizer({ type: "Punctuation", behavior: "Isolated" }),
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "erserve-cp-"));
const vocab = byteVocab();
const CHUNK = 50000;
let total = 0;
const only = process.argv.slice(2);
for (const [name, parts] of Object.entries(COMPONENTS).filter(([n]) => !only.length || only.includes(n))) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [], ...parts, post_processor: null,
    decoder: null, model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  }));
  const t = tk.Tokenizer.fromFile(file);
  const bad = [];
  for (let lo = 0; lo < 0x110000; lo += CHUNK) {
    const cps = [];
    for (let cp = lo; cp < Math.min(lo + CHUNK, 0x110000); cp++)
      if (cp !== 10 && (cp < 0xd800 || cp > 0xdfff)) cps.push(cp);
    const text = cps.map((cp) => "a" + String.fromCodePoint(cp) + "a\n").join("");
    const e = await t.encode(text, null, { addSpecialTokens: false });
    const rust = { tokens: e.getTokens(), offsets: e.getOffsets().map((o) => [o[0], o[1]]) };
    const c = JSON.parse(execFileSync("build/bin/erserve-tokenize", ["--tokenizer", file, "--no-special-tokens"],
      { input: text, maxBuffer: 1 << 28 }));
    // Per code point i (4 code points of text each): its tokens and offsets.
    const group = (r) => {
      const g = new Map();
      r.offsets.forEach((o, k) => {
        const i = Math.floor(o[0] / 4);
        if (!g.has(i)) g.set(i, []);
        g.get(i).push(`${r.tokens[k]}@${o[0]}-${o[1]}`);
      });
      return g;
    };
    const gr = group(rust), gc = group(c);
    cps.forEach((cp, i) => {
      if (JSON.stringify(gr.get(i)) !== JSON.stringify(gc.get(i))) bad.push(cp.toString(16));
    });
  }
  total += bad.length;
  console.log(`${name}: ${bad.length} code points differ${bad.length ? ": " + bad.slice(0, 40).join(" ") : ""}`);
}
fs.rmSync(dir, { recursive: true });
process.exit(total ? 1 : 0);
