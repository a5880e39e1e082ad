/* Strip: removes the whitespace (Rust char::is_whitespace) at the left
 * and / or right end of the span.  The span is what lies between added
 * tokens, as the Rust library normalizes each such piece on its own. */
#include <stdlib.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_normalizer base;
    bool left, right;
} strip;

static er_status strip_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                 tk_normalized *out, er_err *err) {
    const strip *s = (const strip *)self;
    if (s->left)
        while (a < b && tk_is_whitespace(cps[a])) a++;
    if (s->right)
        while (b > a && tk_is_whitespace(cps[b - 1])) b--;
    er_status st = tk_normalized_reserve(out, b - a, err);
    if (st) return st;
    for (size_t k = a; k < b; k++) tk_normalized_push(out, cps[k], (uint32_t)k);
    return ER_OK;
}

static void strip_free(tk_normalizer *self) { free(self); }

/* {"type": "Strip", "strip_left": true, "strip_right": true} */
er_status tk_strip_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    bool left, right;
    er_status st;
    if ((st = tk_json_bool(json, "strip_left", true, &left, err)) ||
        (st = tk_json_bool(json, "strip_right", true, &right, err)))
        return st;
    strip *s = malloc(sizeof *s);
    if (!s) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *s = (strip){{strip_normalize, strip_free}, left, right};
    *out = &s->base;
    return ER_OK;
}
