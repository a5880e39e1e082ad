// Writes tests/tokenizer/data/xlm-roberta-style.tokenizer.json: an XLM-R
// tokenizer.json in the layout transformers' XLMRobertaConverter writes
// (convert_slow_tokenizer.py; the layout of xlm-roberta-base, multilingual-e5
// and the bge-rerankers), built on the SentencePiece Unigram model of
// data/t5-small.tokenizer.json because no real XLM-R tokenizer.json (250002
// pieces, 17 MB) is on these machines:
//
//   vocab        <s> 0, <pad> 1, </s> 2, <unk> 3, then the SentencePiece
//                pieces from the fourth on (t5-small's pieces 3..31999, with
//                their scores: the fairseq offset of 1), then <mask>
//   unk_id       3
//   normalizer   the Precompiled charsmap (t5-small's, nmt_nfkc like XLM-R's)
//   pre_tokenizer Metaspace (replacement U+2581, add_prefix_space true)
//   post_processor TemplateProcessing "<s> $A </s>" / "<s> $A </s> </s> $B </s>"
//                (every type id 0)
//   decoder      Metaspace
//   added_tokens <s> <pad> </s> <unk> special; <mask> special with lstrip
//
//   node tests/tokenizer/gen_xlmr_style.mjs    # from the repository root; needs no package
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const t5 = JSON.parse(fs.readFileSync(path.join(here, "data", "t5-small.tokenizer.json"), "utf8"));
const pieces = t5.model.vocab.slice(3, 32000); // after <pad> </s> <unk>, before <extra_id_*>
if (pieces.some(([p]) => p.startsWith("<extra_id_"))) throw new Error("unexpected t5 vocabulary");

const vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ...pieces, ["<mask>", 0.0]];
const special = (id, content, lstrip = false) => ({
  id, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true,
});
const metaspace = { type: "Metaspace", replacement: "\u2581", add_prefix_space: true };
const tok = (id, type_id = 0) => ({ SpecialToken: { id, type_id } });
const seq = (id) => ({ Sequence: { id, type_id: 0 } });
const out = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>"),
                 special(vocab.length - 1, "<mask>", true)],
  normalizer: t5.normalizer,
  pre_tokenizer: metaspace,
  post_processor: {
    type: "TemplateProcessing",
    single: [tok("<s>"), seq("A"), tok("</s>")],
    pair: [tok("<s>"), seq("A"), tok("</s>"), tok("</s>"), seq("B"), tok("</s>")],
    special_tokens: {
      "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] },
      "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] },
    },
  },
  decoder: metaspace,
  model: { type: "Unigram", unk_id: 3, vocab },
};
fs.writeFileSync(path.join(here, "data", "xlm-roberta-style.tokenizer.json"), JSON.stringify(out) + "\n");
console.log(`xlm-roberta-style.tokenizer.json: ${vocab.length} pieces`);
