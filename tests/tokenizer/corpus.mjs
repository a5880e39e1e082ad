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
