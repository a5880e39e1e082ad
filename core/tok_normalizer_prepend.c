/* Prepend: puts a string in front of every non-empty span.  As in the
 * Rust NormalizedString::prepend, the added code points take the offsets
 * of the span's first code point. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_normalizer base;
    size_t n;
    uint32_t cps[]; /* the string, as code points */
} prepend;

static er_status prepend_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                   tk_normalized *out, er_err *err) {
    const prepend *p = (const prepend *)self;
    if (a >= b) return ER_OK;
    er_status st = tk_normalized_reserve(out, p->n + b - a, err);
    if (st) return st;
    for (size_t i = 0; i < p->n; i++) tk_normalized_push(out, p->cps[i], (uint32_t)a);
    for (size_t k = a; k < b; k++) tk_normalized_push(out, cps[k], (uint32_t)k);
    return ER_OK;
}

static void prepend_free(tk_normalizer *self) { free(self); }

/* {"type": "Prepend", "prepend": "▁"} */
er_status tk_prepend_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    json_t *v = json_object_get(json, "prepend");
    size_t len = json_string_length(v), n_cp;
    if (!json_is_string(v) || len > TK_MAX_TOKEN_BYTES)
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Prepend needs a \"prepend\" string (at most %d bytes)",
                      TK_MAX_TOKEN_BYTES);
    const uint8_t *s = (const uint8_t *)json_string_value(v);
    size_t bad;
    if (!tk_utf8_valid(s, len, &bad, &n_cp))
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Prepend string is not UTF-8");
    prepend *p = malloc(sizeof *p + n_cp * sizeof *p->cps);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    p->base = (tk_normalizer){prepend_normalize, prepend_free};
    p->n = n_cp;
    for (size_t i = 0, pos = 0; i < n_cp; i++) pos += tk_utf8_next(s + pos, &p->cps[i]);
    *out = &p->base;
    return ER_OK;
}
