/* WhitespaceSplit: the words are the maximal runs of code points that are
 * not whitespace (Rust's char::is_whitespace); the whitespace goes. */
#include <stdlib.h>

#include "tokenizer_internal.h"

static er_status whitespace_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                  tk_word_sink *sink, er_err *err) {
    (void)self, (void)err;
    size_t k = a;
    while (k < b) {
        while (k < b && tk_is_whitespace(s->cps[k])) k++;
        size_t start = k;
        while (k < b && !tk_is_whitespace(s->cps[k])) k++;
        if (k > start) {
            er_status st = sink->word(sink, s, start, k);
            if (st) return st;
        }
    }
    return ER_OK;
}

static void whitespace_free(tk_pre_tokenizer *self) { free(self); }

/* {"type": "WhitespaceSplit"} */
er_status tk_whitespace_split_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t, (void)json;
    tk_pre_tokenizer *p = malloc(sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = (tk_pre_tokenizer){whitespace_split, whitespace_free};
    *out = p;
    return ER_OK;
}
