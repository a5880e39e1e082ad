// Parity corpus for the WordPiece tokenizer (see gen_goldens.mjs).
// Hand-written cases plus a deterministic pseudo-random mix.

export const singles = [
  // empty and whitespace-only
  "", " ", "   ", "\t\n\r", "\u00a0\u2003\u3000", "\n\n\n",
  // English prose
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog.",
  "I can't believe it's not butter; they'd've known.",
  "Transformers are a type of neural network architecture introduced in 2017 by Vaswani et al.",
  "He said: \"Don't do that!\" (and left) -- then came back...",
  "UNBELIEVABLE Capitalised Words And MiXeD cAsE",
  "unaffable unbelievably tokenization preprocessing antidisestablishmentarianism",
  // code
  "def f(x): return x**2 + 3*x - 1  # comment",
  "int main(void) { printf(\"%d\\n\", a[i++]); return 0; }",
  "if (a && b || !c) { x->y = z::w<T>(); }",
  "const re = /^[a-z0-9_\\-]+$/gi; let s = `${a}+${b}`;",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
  // URLs and e-mail
  "Visit https://huggingface.co/docs/tokenizers/index?foo=bar&baz=1#section-2 now",
  "mailto:john.doe+tag@example.co.uk or jane_doe@mail.example.org",
  "ftp://192.168.0.1:8080/path/to/file.tar.gz",
  // numbers and currency
  "3.14159 2,718 1e-9 -42 +7 100% 1/2 ½ ¼ ¾",
  "$100.00 €50 £20 ¥1000 ₹500 ₽300 ₿0.001",
  "Call +1 (555) 123-4567 on 2024-01-15 at 09:30:00Z",
  "١٢٣ ४५६ ๗๘๙ 一二三 ⅣⅫ ①②③",
  // accents and combining marks
  "café naïve résumé coöperate façade jalapeño",
  "Crème Brûlée À LA CARTE ÉCOLE",
  "cafe\u0301 nai\u0308ve e\u0301\u0300\u0302 a\u0323\u0301",
  "Ångström Øresund Łódź Dvořák Şişli Ærø",
  "\u0301leading combining mark and trailing x\u0301",
  "Z\u0351\u0352\u0353\u0354a\u0355\u0356l\u0357\u0358g\u0359o",
  "İstanbul ıi İI",
  "Straße STRASSE ß ẞ",
  "ﬁnance ﬂow ﬀ Ⅸ ㎏ ™",
  // scripts
  "Καλημέρα κόσμε, ΟΔΟΣ ΣΟΦΙΑΣ",
  "Привет, мир! Съешь же ещё этих мягких французских булок.",
  "مرحبا بالعالم، كيف حالك؟",
  "שָׁלוֹם עוֹלָם",
  "नमस्ते दुनिया। हिन्दी",
  "สวัสดีชาวโลก ภาษาไทย",
  "Բարեւ աշխարհ ქართული ენა",
  "ሰላም ዓለም",
  "வணக்கம் உலகம் മലയാളം ಕನ್ನಡ",
  // CJK
  "你好，世界！我爱自然语言处理。",
  "日本語のテキストとカタカナとひらがな",
  "한국어 텍스트 안녕하세요",
  "mixed中文and English混合text",
  "𠀀𠮷 astral CJK 𪚥",
  "豈更車 compatibility ideographs",
  // emoji and ZWJ sequences
  "I love 🤗 and 🚀!",
  "👨‍👩‍👧‍👦 family 👩🏽‍💻 coder 🏳️‍🌈 flag",
  "😀😃😄😁 no spaces between emoji",
  "keycap 1️⃣ #️⃣ and regional 🇫🇷🇯🇵",
  "text\u200dzwj\u200cznj\u200bzwsp\ufeffbom",
  // control characters and odd whitespace
  "tab\tseparated\tvalues\nnew line\r\ncarriage",
  "null\u0000byte and bell\u0007 and esc\u001b[0m",
  "vertical\u000btab form\u000cfeed nel\u0085end",
  "del\u007fchar c1\u0080\u009fcontrols",
  "soft\u00adhyphen word\u2060joiner",
  "line\u2028sep para\u2029sep nbsp\u00a0here",
  "em\u2003space thin\u2009space ideographic\u3000space",
  "private \ue000\uf8ff use \udb80\udc00",
  "replacement \ufffd char",
  "unassigned \u0378 and \u0380 code points",
  // long words
  "a".repeat(100),
  "b".repeat(101),
  "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3),
  "x".repeat(99) + "é",
  "supercalifragilisticexpialidocious-" + "longwordwithoutspaces".repeat(6),
  // special tokens in text
  "[CLS] hello [SEP] world [MASK] [PAD] [UNK]",
  "[cls] lowercase is not special [Sep]",
  "a[MASK]b[MASK][MASK]c",
  "[CLS]",
  "[[SEP]]",
  // punctuation heavy
  "!!!???...,,,;;;:::",
  "«quoted» „German“ ‘single’ “double” — en–dash …",
  "¡Hola! ¿Qué tal? 『括弧』【test】",
  "@user #hashtag $cash %percent ^caret &amp *star",
  "~`|\\/<>{}[]()=_+-",
  // misc
  "   leading and trailing spaces   ",
  "multiple     spaces\t\tand\n\ntabs",
  "O'Neil's rock'n'roll e.g. i.e. U.S.A.",
  "x²+y³=z⁴ H₂O CO₂ α+β=γ ∑∫∂√∞",
  "©®™ §¶ †‡ • ° ′″",
  "ＦＵＬＬＷＩＤＴＨ ｌａｔｉｎ ｶﾀｶﾅ",
];

export const pairs = [
  ["", ""],
  ["Hello", ""],
  ["", "World"],
  ["What is the capital of France?", "Paris is the capital and most populous city of France."],
  ["Who wrote it?", "[SEP] was written by café owners in 你好."],
  ["short", "a much longer second sequence with many more tokens than the first one has"],
  ["a much longer first sequence with many more tokens than the second one has", "short"],
  ["émoji 🤗 test", "👨‍👩‍👧 ZWJ"],
  ["\u0000\u0001", "\t\n"],
  ["Καλημέρα", "Привет"],
];

// Deterministic pseudo-random mixed strings.
const POOL = [
  "the", "of", "and", "tokenizer", "Hello", "WORLD", "café", "naïve", " ", " ", " ", "\t", "\n",
  ",", ".", "!", "?", "-", "'", "\"", "(", ")", "[", "]", "#", "##", "@", "/",
  "你", "好", "世界", "日本", "한", "국", "Καλη", "мир", "مرحبا", "שלום", "नम", "ไทย",
  "🤗", "👩‍💻", "🇫🇷", "\u0301", "\u0308", "\u200d", "\u0000", "\u00a0", "\u3000", "\u2028",
  "[CLS]", "[SEP]", "[MASK]", "123", "4.5", "$", "€", "½", "ﬁ", "İ", "ß", "Σ", "𠮷", "\ufeff",
  "un", "##able", "believ", "ing", "ly",
];
function lcg(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}
export function randomCases(n, seed) {
  const rnd = lcg(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(rnd() * 24);
    let s = "";
    for (let j = 0; j < len; j++) s += POOL[Math.floor(rnd() * POOL.length)];
    out.push(s);
  }
  return out;
}

// Truncation cases: [text, pair-or-null, strategy, max_length]
export const truncations = [
  ["The quick brown fox jumps over the lazy dog.", null, "longest_first", 6],
  ["The quick brown fox jumps over the lazy dog.", null, "only_first", 5],
  ["The quick brown fox jumps over the lazy dog.", null, "longest_first", 2],
  ["The quick brown fox jumps over the lazy dog.", null, "longest_first", 100],
  ["unbelievably tokenization", null, "longest_first", 4],
  ["short", "a much longer second sequence with many more tokens", "longest_first", 10],
  ["a much longer first sequence with many more tokens", "short", "longest_first", 10],
  ["one two three four five six", "seven eight nine ten eleven twelve", "longest_first", 9],
  ["one two three four five six", "seven eight nine ten eleven twelve", "longest_first", 10],
  ["one two three four five six", "seven eight nine ten eleven twelve", "longest_first", 3],
  ["one two three four five six", "seven eight nine ten eleven twelve", "longest_first", 4],
  ["one two three four five six", "seven eight nine ten eleven twelve", "only_first", 10],
  ["one two three four five six", "seven eight nine ten eleven twelve", "only_second", 10],
  ["one two", "seven eight nine ten eleven twelve", "only_first", 6],
  ["one two three four five six", "seven", "only_second", 6],
  ["one two three four five six", null, "only_second", 5],
  ["你好世界，我爱自然语言处理", "émoji 🤗 test", "longest_first", 12],
];

// ---------------------------------------------------------------------------
// Added for the Rust reference (gen_goldens_rust.mjs) and the tokenizer kinds
// it covers beyond WordPiece: byte-level BPE (roberta-base, gpt2), Unigram
// with the Precompiled charsmap (t5-small) and RobertaProcessing
// (all-mpnet-base-v2).  gen_goldens.mjs does not read these, so its goldens
// are unchanged.

export const moreSingles = [
  // leading/trailing spaces and whitespace runs (ByteLevel "Ġ", Metaspace "▁",
  // WhitespaceSplit)
  " Hello world", "Hello world ", "  Hello  world  ", " ".repeat(20),
  "a" + " ".repeat(10) + "b", "a\t\t\tb", "Hello\n\n\nworld\n", "Hello\r\nworld\r\n",
  "\u3000\u3000a\u3000", "a\u00a0\u00a0b\u00a0", " \n \t ", "end with newline\n",
  // contractions and digits (the GPT-2 split regex)
  "I'm you're we've they'll he'd it's don't", "I'M YOU'RE DON'T", "'s 't 're 've 'm 'll 'd",
  "rock'n'roll '' ''' x''y", "1234567890 12 345 6789", "3.14159265358979323846",
  "2024-01-15T09:30:00.000Z", "v1.2.3-rc.4+build.5",
  // special tokens of the other tokenizers appearing in text
  "<|endoftext|>", "Hello<|endoftext|>", "<|endoftext|>Hello", "Hello <|endoftext|> world",
  "Hello  <|endoftext|>  world", "a<|endoftext|>b<|endoftext|><|endoftext|>",
  "<|endoftext|> <|endoftext|>", "<|endoftext", "<|ENDOFTEXT|>",
  "<s>", "</s>", "<s>Hello</s>", "<s> Hello </s>", "a <mask> b", "a<mask>b",
  "The capital of France is <mask>.", "  <mask>  ", "<mask><mask>", "<pad> <unk> <s></s>",
  "<extra_id_0> fills <extra_id_1> here <extra_id_99>", "</s> inside </s>",
  "translate English to German: The house is wonderful.",
  "[CLS] <s> <|endoftext|> </s> [SEP] <mask> [MASK]",
  // the pre-tokenizers' own marker characters as text
  "▁ ▁▁ a▁b ▁hello", "Ġ literal Ġhello ĠĠ Ċ ċ",
  // emoji (4-byte UTF-8, ZWJ, variation selectors, tag characters)
  "🤗", "🤗🤗🤗", "👍🏽 👍🏿", "❤️ ❤ ☺️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland", "a🤗b", "🤗 Hugging Face",
  // characters with no Latin-script byte merges: whole byte fallbacks,
  // astral planes, noncharacters
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 𝐁𝐨𝐥𝐝", "\ufffe\uffff noncharacters \u{10fffe}", "\u{e0001}\u{e0020} tags",
  "Ꭰꭰ 𐐀𐐨 ᏸ", "𓀀𓁐 hieroglyphs 𒀀 cuneiform", "ᚠᛇᚻ runes ⠓⠑⠇⠇⠕ braille",
  // CJK
  "中文分词测试：今天天气很好。", "東京都 日本語 カタカナ ﾊﾝｶｸ", "한국어 문장입니다.",
  "这是一个没有空格的很长的中文句子用来测试分词器的行为",
  // combining marks and normalization (NFKC in the t5 charsmap)
  "e\u0301\u0301\u0301", "\u0915\u094d\u0937", "n\u0303 vs \u00f1",
  "\u00c5 vs A\u030a vs \u212b", "\u1e9b\u0323 \u0149 \u01c4", "ﬀ ﬃ ﬆ ℌ ℍ ① ⑳ ㍻ ㌀",
  // long words
  "x".repeat(300), "ab".repeat(200), "🤗".repeat(50), "你".repeat(120),
  "é".repeat(150), "Lopadotemachoselachogaleokranioleipsanodrimhypotrimmatosilphioparaomelitokatakechymenokichlepikossyphophattoperisteralektryonoptekephalliokigklopeleiolagoiosiraiobaphetraganopterygon",
  // markup and mixed
  "HTML <b>bold</b> &amp; <br/> <a href=\"x\">link</a>", "{\"json\": [1, 2.5, null, true]}",
  "C'est l'été à Paris — naïve Zoë's café", "MiXeD 123abc ABC123 a1b2c3",
  // Unicode-version edges: the Rust BertNormalizer/BertPreTokenizer use older
  // category tables than Node (format chars and punctuation added in later
  // Unicode versions are neither removed nor split there); Cn is kept
  "format \u0890 \u{13430} \u{1bca0} \u061c \u180e \u2066 unassigned \ufff0 \u{10ffff} x\u0890y x\u{13430}y",
  "punct x\u2e42y x\u2e4fy x\u2e52y x\u{1e95e}y x\u{16fe2}y x\u0af0y x\u1b7dy",
];

export const morePairs = [
  ["<s>", "</s>"],
  ["Hello <mask>", " world"],
  [" leading", "trailing "],
  ["🤗", "你好"],
  ["<|endoftext|>", "<|endoftext|>"],
  ["question: what is it?", "context: <extra_id_0> is here."],
  ["  ", "   "],
  ["I'm here", "you're there"],
];

// A second pseudo-random mix, from a pool aimed at byte-level BPE and Unigram.
const POOL2 = [
  " ", " ", "  ", "\n", "\t", "Ġ", "▁", "<s>", "</s>", "<mask>", "<|endoftext|>", "<pad>", "<unk>",
  "<extra_id_0>", "[MASK]", "[CLS]", "'s", "'t", "'re", "don", "Hello", "world", "the", "123",
  "4567", "é", "e\u0301", "\u0301", "你好", "中", "🤗", "👍🏽", "👨‍👩‍👧", "ä", "ß", "ſ", "İ", "ﬁ",
  "Ω", "Ж", "ع", "ह", "ก", "한", "\u200d", "\ufeff", "\u00a0", "\u3000", ".", ",", "!", "?", "-",
  "(", ")", "\"", "'", "𝔘", "①", "ｶ", "\u0000", "\u00ad",
];
export function randomCasesBpe(n, seed) {
  const rnd = lcg(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(rnd() * 20);
    let s = "";
    for (let j = 0; j < len; j++) s += POOL2[Math.floor(rnd() * POOL2.length)];
    out.push(s);
  }
  return out;
}

// Truncation with stride (overflowing windows) and direction:
// [text, pair-or-null, strategy, max_length, stride, direction]
const FOX = "The quick brown fox jumps over the lazy dog.";
const PARIS = "Paris is the capital and most populous city of France, with an estimated population of 2,165,423 residents.";
export const strideTruncations = [
  [FOX, null, "longest_first", 6, 2, "right"],
  [FOX, null, "longest_first", 8, 3, "right"],
  [FOX, null, "longest_first", 6, 0, "left"],
  [FOX, null, "longest_first", 5, 1, "left"],
  [FOX, null, "only_first", 7, 1, "right"],
  ["What is the capital of France?", PARIS, "only_second", 16, 4, "right"],
  ["What is the capital of France?", PARIS, "only_second", 16, 4, "left"],
  ["What is the capital of France?", PARIS, "longest_first", 14, 2, "right"],
  ["one two three four five six", "seven eight nine ten eleven twelve", "longest_first", 10, 1, "right"],
  ["one two three four five six", "seven eight nine ten eleven twelve", "only_first", 10, 2, "right"],
  ["one two", "seven eight nine ten eleven twelve", "only_second", 8, 3, "right"],
  ["你好世界，我爱自然语言处理🤗", null, "longest_first", 7, 2, "right"],
  ["Hello <mask> world <|endoftext|> x </s> y <s> z", null, "longest_first", 6, 1, "right"],
  ["  leading spaces and trailing  ", null, "only_first", 5, 1, "right"],
  // the library rejects these (stride not below the room left for the
  // sequence): Rust panics, the golden records the error
  [FOX, null, "longest_first", 4, 2, "right"],
  ["one", FOX, "longest_first", 6, 2, "right"],
  // max_length below the number of special tokens
  [FOX, null, "longest_first", 1, 0, "right"],
  ["one two", "three four", "longest_first", 2, 0, "right"],
];
