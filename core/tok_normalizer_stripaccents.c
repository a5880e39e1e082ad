/* StripAccents: drops every combining mark (General Category M: Mn, Mc,
 * Me), the Rust is_combining_mark.  Unlike BertNormalizer's strip_accents
 * it does not decompose first: a precomposed é stays (an NFD before it in
 * a Sequence is what makes it e). */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* The Rust library's is_combining_mark comes from its unicode-normalization-
 * alignments crate, whose tables predate Unicode 11: the marks added since
 * are not marks to it (these ranges), and U+1CF2, U+1CF3 (Mc then, Lo
 * now) still are.  Found by running every code point through both. */
static const uint32_t NEWER_MARKS[][2] = {
    {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8D3}, {0x9FE, 0x9FE}, {0xAFA, 0xAFF}, {0xB55, 0xB55},
    {0xC04, 0xC04}, {0xC3C, 0xC3C}, {0xCF3, 0xCF3}, {0xD00, 0xD00}, {0xD3B, 0xD3C}, {0xD81, 0xD81},
    {0xEBA, 0xEBA}, {0xECE, 0xECE}, {0x1715, 0x1715}, {0x180F, 0x180F}, {0x1ABF, 0x1ACE}, {0x1CF7, 0x1CF7},
    {0x1DF6, 0x1DFA}, {0xA82C, 0xA82C}, {0xA8FF, 0xA8FF}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC},
    {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074},
    {0x110C2, 0x110C2}, {0x11145, 0x11146}, {0x111C9, 0x111C9}, {0x111CE, 0x111CF}, {0x11241, 0x11241},
    {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x1182C, 0x1183A}, {0x11930, 0x11935}, {0x11937, 0x11938},
    {0x1193B, 0x1193E}, {0x11940, 0x11940}, {0x11942, 0x11943}, {0x119D1, 0x119D7}, {0x119DA, 0x119E0},
    {0x119E4, 0x119E4}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A39}, {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47},
    {0x11A51, 0x11A5B}, {0x11A8A, 0x11A99}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D},
    {0x11D3F, 0x11D45}, {0x11D47, 0x11D47}, {0x11D8A, 0x11D8E}, {0x11D90, 0x11D91}, {0x11D93, 0x11D97},
    {0x11EF3, 0x11EF6}, {0x11F00, 0x11F01}, {0x11F03, 0x11F03}, {0x11F34, 0x11F3A}, {0x11F3E, 0x11F42},
    {0x13440, 0x13440}, {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16F7F, 0x16F87}, {0x16FE4, 0x16FE4},
    {0x16FF0, 0x16FF1}, {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136},
    {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
};

static bool is_mark(uint32_t cp) {
    if (cp < 0x300) return false;
    if (cp == 0x1CF2 || cp == 0x1CF3) return true;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if (c != UTF8PROC_CATEGORY_MN && c != UTF8PROC_CATEGORY_MC && c != UTF8PROC_CATEGORY_ME) return false;
    return !TK_IN_RANGES(cp, NEWER_MARKS);
}

static er_status strip_accents_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                         tk_normalized *out, er_err *err) {
    (void)self;
    er_status st = tk_normalized_reserve(out, b - a, err);
    if (st) return st;
    for (size_t k = a; k < b; k++)
        if (!is_mark(cps[k])) tk_normalized_push(out, cps[k], (uint32_t)k);
    return ER_OK;
}

static void strip_accents_free(tk_normalizer *self) { free(self); }

/* {"type": "StripAccents"}: no options. */
er_status tk_strip_accents_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    (void)json;
    tk_normalizer *n = malloc(sizeof *n);
    if (!n) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *n = (tk_normalizer){strip_accents_normalize, strip_accents_free};
    *out = n;
    return ER_OK;
}
