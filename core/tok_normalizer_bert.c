/* BertNormalizer: clean_text, handle_chinese_chars, strip_accents,
 * lowercase, one code point at a time (the Rust library's order). */
#include <stdlib.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_normalizer base;
    bool clean_text, handle_chinese, strip_accents, lowercase;
} bert_normalizer;

/* Writes the normalization of c into out and returns how many code points. */
static size_t normalize_code_point(const bert_normalizer *n, uint32_t c, uint32_t out[12]) {
    if (n->clean_text) {
        if (c == 0 || c == 0xFFFD || tk_is_control(c)) return 0;
        if (tk_is_whitespace(c)) {
            out[0] = ' ';
            return 1;
        }
    }
    if (n->handle_chinese && c >= 0x3400 && tk_is_chinese(c)) {
        out[0] = ' ';
        size_t k = tk_fold(c, n->strip_accents, n->lowercase, out + 1);
        out[k + 1] = ' ';
        return k + 2;
    }
    return tk_fold(c, n->strip_accents, n->lowercase, out);
}

static er_status bert_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                tk_normalized *out, er_err *err) {
    const bert_normalizer *n = (const bert_normalizer *)self;
    uint32_t buf[12];
    for (size_t k = a; k < b; k++) {
        size_t m = normalize_code_point(n, cps[k], buf);
        if (!m) continue;
        er_status st = tk_normalized_reserve(out, m, err);
        if (st) return st;
        for (size_t i = 0; i < m; i++) tk_normalized_push(out, buf[i], (uint32_t)k);
    }
    return ER_OK;
}

static void bert_normalizer_free(tk_normalizer *self) { free(self); }

er_status tk_bert_normalizer_new(bool clean_text, bool handle_chinese_chars, bool strip_accents,
                                 bool lowercase, tk_normalizer **out, er_err *err) {
    bert_normalizer *n = malloc(sizeof *n);
    if (!n) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *n = (bert_normalizer){{bert_normalize, bert_normalizer_free}, clean_text, handle_chinese_chars,
                           strip_accents, lowercase};
    *out = &n->base;
    return ER_OK;
}

/* {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
 *  "strip_accents": null, "lowercase": true} */
er_status tk_bert_normalizer_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    bool clean, chinese, lower, strip;
    er_status st;
    if ((st = tk_json_bool(json, "clean_text", true, &clean, err)) ||
        (st = tk_json_bool(json, "handle_chinese_chars", true, &chinese, err)) ||
        (st = tk_json_bool(json, "lowercase", true, &lower, err)) ||
        /* strip_accents: null follows lowercase */
        (st = tk_json_bool(json, "strip_accents", lower, &strip, err)))
        return st;
    return tk_bert_normalizer_new(clean, chinese, strip, lower, out, err);
}
