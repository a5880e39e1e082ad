// Writes tests/tokenizer/data/synthetic/*.tokenizer.json: small tokenizers,
// each with one of the normalizers / pre-tokenizers in its main variants,
// for parity with the Rust library (gen_goldens_rust.mjs writes their
// goldens as golden-rust/synthetic-<name>.json; make test compares them).
//
//   node tests/tokenizer/gen_synthetic.mjs    # from the repository root; needs no package
//
// Every file shares one WordPiece model, so that differences come from the
// component under test: the vocabulary is the special tokens, ~300 common
// words of bert-base-uncased, and every code point of the corpus (and of
// its NFC / NFD / NFKC / NFKD / lowercase forms) both alone and as a
// "##" continuation, so almost nothing is [UNK] and most tokens are single
// code points: their offsets show where each normalized code point came
// from.  BertProcessing adds [CLS] / [SEP]; the WordPiece decoder decodes.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { singles, moreSingles, pairs, morePairs } from "./corpus.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, "data", "synthetic");

function vocabulary() {
  const bert = JSON.parse(fs.readFileSync(path.join(here, "data", "bert-base-uncased.tokenizer.json"), "utf8"));
  const byId = Object.entries(bert.model.vocab).sort((a, b) => a[1] - b[1]).map(([k]) => k);
  const words = byId.slice(1996, 2296);
  const chars = new Set(["\u2581"]);
  for (const s of [...singles, ...moreSingles, ...pairs.flat(), ...morePairs.flat()])
    for (const f of ["NFC", "NFD", "NFKC", "NFKD"])
      for (const ch of [...s.normalize(f), ...s.normalize(f).toLowerCase()]) chars.add(ch);
  const list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...words];
  // (no whitespace: never a word; no controls: jansson refuses a NUL key)
  for (const ch of [...chars].sort()) if (!/[\s\p{Cc}]/u.test(ch)) list.push(ch, "##" + ch);
  const vocab = {};
  for (const k of list) if (!(k in vocab)) vocab[k] = Object.keys(vocab).length;
  return vocab;
}

const WORDPIECE_DECODER = { type: "WordPiece", prefix: "##", cleanup: true };

function tokenizer(normalizer, preTokenizer, decoder, vocab) {
  const added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((c, id) => ({
    id, content: c, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer, pre_tokenizer: preTokenizer,
    post_processor: { type: "BertProcessing", sep: ["[SEP]", 3], cls: ["[CLS]", 2] },
    decoder,
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##",
             max_input_chars_per_word: 100, vocab },
  };
}

const ws = { type: "Whitespace" };
const seq = (...normalizers) => ({ type: "Sequence", normalizers });
const pseq = (...pretokenizers) => ({ type: "Sequence", pretokenizers });
const split = (pattern, behavior, invert = false) => ({ type: "Split", pattern, behavior, invert });
const punct = (behavior) => ({ type: "Punctuation", behavior });

// name -> [normalizer, pre_tokenizer, decoder (default: WordPiece)]
const FILES = {
  "nfc-lowercase": [seq({ type: "NFC" }, { type: "Lowercase" }), ws],
  "nfd-stripaccents": [seq({ type: "NFD" }, { type: "StripAccents" }, { type: "Lowercase" }), ws],
  "nfkc-digits": [{ type: "NFKC" }, pseq(ws, { type: "Digits", individual_digits: true })],
  "nfkd-digits-runs": [{ type: "NFKD" }, pseq({ type: "Digits", individual_digits: false }, ws)],
  "strip-replace-prepend": [
    seq({ type: "Strip", strip_left: true, strip_right: true },
      { type: "Replace", pattern: { String: " " }, content: "\u2581" },
      { type: "Prepend", prepend: "\u2581" }),
    split({ String: "\u2581" }, "MergedWithNext")],
  "replace-regex-strip-left": [
    seq({ type: "Replace", pattern: { Regex: "\\s+" }, content: " " },
      { type: "Strip", strip_left: true, strip_right: false },
      { type: "Replace", pattern: { Regex: "[aeiou]" }, content: "" }),
    split({ Regex: "\\s" }, "Removed")],
  "split-isolated": [null, split({ Regex: "\\p{P}+|\\s+" }, "Isolated")],
  "split-merged-previous": [null, split({ Regex: "[\\s,.!?]" }, "MergedWithPrevious")],
  "split-contiguous-invert": [null, split({ Regex: "\\p{L}" }, "Contiguous", true)],
  "split-string-removed": [{ type: "Strip", strip_left: false, strip_right: true },
    split({ String: "." }, "Removed")],
  "punctuation": [{ type: "Lowercase" }, pseq(ws, punct("Isolated"))],
  "punctuation-merged": [null, pseq(punct("MergedWithPrevious"), punct("MergedWithNext"), { type: "Split", pattern: { String: " " }, behavior: "Removed", invert: false })],
  "split-merged-next-regex": [{ type: "NFKC" }, split({ Regex: "\\s+|[\\p{P}\\p{S}]" }, "MergedWithNext")],
  "split-string-invert": [null, split({ String: "e" }, "Isolated", true)],
  "replace-decoder-regex": [{ type: "Lowercase" }, ws, { type: "Sequence", decoders: [WORDPIECE_DECODER,
    { type: "Replace", pattern: { Regex: "[aeiou]+" }, content: "<v>" }] }],
  "punctuation-contiguous": [{ type: "StripAccents" }, pseq(split({ Regex: "\\s+" }, "Removed"), punct("Contiguous"), punct("Removed"))],
};

fs.mkdirSync(outDir, { recursive: true });
const vocab = vocabulary();
for (const [name, [n, p, d]] of Object.entries(FILES)) {
  const file = path.join(outDir, `${name}.tokenizer.json`);
  fs.writeFileSync(file, JSON.stringify(tokenizer(n, p, d ?? WORDPIECE_DECODER, vocab)) + "\n");
  console.log(`${path.relative(process.cwd(), file)}: ${fs.statSync(file).size} bytes`);
}
