/* Lowercase: each code point by Rust's char::to_lowercase (one code point
 * may become several, each keeping its original's offsets). */
#include <stdlib.h>

#include "tokenizer_internal.h"

static er_status lowercase_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                     tk_normalized *out, er_err *err) {
    (void)self;
    uint32_t buf[8];
    for (size_t k = a; k < b; k++) {
        size_t m = tk_fold(cps[k], false, true, buf);
        er_status st = tk_normalized_reserve(out, m, err);
        if (st) return st;
        for (size_t i = 0; i < m; i++) tk_normalized_push(out, buf[i], (uint32_t)k);
    }
    return ER_OK;
}

static void lowercase_free(tk_normalizer *self) { free(self); }

/* {"type": "Lowercase"}: no options. */
er_status tk_lowercase_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    (void)json;
    tk_normalizer *n = malloc(sizeof *n);
    if (!n) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *n = (tk_normalizer){lowercase_normalize, lowercase_free};
    *out = n;
    return ER_OK;
}
