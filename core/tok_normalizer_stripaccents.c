/* StripAccents: drops every combining mark (General Category M: Mn, Mc,
 * Me), the Rust is_combining_mark.  Unlike BertNormalizer's strip_accents
 * it does not decompose first: a precomposed é stays (an NFD before it in
 * a Sequence is what makes it e). */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

static bool is_mark(uint32_t cp) {
    if (cp < 0x300) return false;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
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
