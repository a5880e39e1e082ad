/* Whitespace: words are the matches of \w+|[^\w\s]+ (runs of word
 * characters, runs of other non-space characters); whitespace is dropped.
 * The Rust library runs that pattern with its regex crate, whose \w is
 * Unicode's: Alphabetic, marks, Nd, Pc and Join_Control.  Oniguruma's \w
 * differs (it takes every N*, and not U+200C / U+200D), so the classes
 * are tested here directly; the pattern then reduces to maximal runs of
 * one class. */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

enum { SPACE, WORD, OTHER };

/* Alphabetic beyond the letters and Nl: Other_Alphabetic's symbols (the
 * circled and squared Latin letters); its marks are marks already. */
static bool other_alphabetic_symbol(uint32_t cp) {
    return (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
           (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189);
}

/* The word characters of Unicode 16.0 that this utf8proc (Unicode 15.1)
 * does not know yet (it calls them unassigned); the Rust regex crate's
 * tables have them.  Found by running every code point through both. */
static const uint32_t UNICODE_16_WORD[][2] = {
    {0x897, 0x897}, {0x1C89, 0x1C8A}, {0xA7CB, 0xA7CD}, {0xA7DA, 0xA7DC}, {0x105C0, 0x105F3},
    {0x10D40, 0x10D65}, {0x10D69, 0x10D6D}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x10EFC, 0x10EFC},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113C0},
    {0x113C2, 0x113C2}, {0x113C5, 0x113C5}, {0x113C7, 0x113CA}, {0x113CC, 0x113D3}, {0x113E1, 0x113E2},
    {0x116D0, 0x116E3}, {0x11BC0, 0x11BE0}, {0x11BF0, 0x11BF9}, {0x11F5A, 0x11F5A}, {0x13460, 0x143FA},
    {0x16100, 0x16139}, {0x16D40, 0x16D6C}, {0x16D70, 0x16D79}, {0x18CFF, 0x18CFF}, {0x1CCF0, 0x1CCF9},
    {0x1E5D0, 0x1E5FA}, {0x2EBF0, 0x2EE5D}
};

static int char_class(uint32_t cp) {
    if (cp < 0x80) {
        if (tk_is_whitespace(cp)) return SPACE;
        bool w = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
        return w ? WORD : OTHER;
    }
    if (tk_is_whitespace(cp)) return SPACE;
    if (cp == 0x200C || cp == 0x200D || other_alphabetic_symbol(cp)) return WORD;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
        return WORD;
    case UTF8PROC_CATEGORY_CN:
        return TK_IN_RANGES(cp, UNICODE_16_WORD) ? WORD : OTHER;
    default:
        return OTHER;
    }
}

static er_status whitespace_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                  tk_word_sink *sink, er_err *err) {
    (void)self;
    (void)err; /* only the sink fails */
    er_status st = ER_OK;
    for (size_t i = a; i < b && !st;) {
        int c = char_class(s->cps[i]);
        size_t j = i + 1;
        while (j < b && char_class(s->cps[j]) == c) j++;
        if (c != SPACE) st = sink->word(sink, s, i, j);
        i = j;
    }
    return st;
}

static void whitespace_free(tk_pre_tokenizer *self) { free(self); }

/* {"type": "Whitespace"}: no options. */
er_status tk_whitespace_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    (void)json;
    tk_pre_tokenizer *w = malloc(sizeof *w);
    if (!w) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *w = (tk_pre_tokenizer){whitespace_split, whitespace_free};
    *out = w;
    return ER_OK;
}
