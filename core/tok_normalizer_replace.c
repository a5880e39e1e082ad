/* Replace: every match of the pattern ({"String": s}, taken literally, or
 * {"Regex": r}; both Oniguruma, as in the Rust library) becomes content.
 * The Rust NormalizedString::replace gives the content's code points the
 * offsets of the match's last code point; the rest keep theirs.  The
 * regex needs UTF-8, so the span is first written to a buffer of the
 * call's own (one allocation per span, none per match). */
#include <stdlib.h>
#include <string.h>

#include "tok_regex.h"
#include "tokenizer_internal.h"

typedef struct {
    tk_normalizer base;
    tk_regex *re;
    size_t n;
    uint32_t content[]; /* as code points */
} replace;

/* in's code points [i, j) to out, with their sources. */
static void copy_range(const tk_normalized *in, size_t i, size_t j, tk_normalized *out) {
    for (size_t k = i; k < j; k++) tk_normalized_push(out, in->cps[k], in->src[k]);
}

static er_status replace_all(const replace *r, const tk_normalized *in, tk_normalized *out, er_err *err) {
    tk_regex_matches m;
    tk_regex_matches_begin(&m, r->re, in->bytes, in->n_bytes);
    size_t done = 0, k = 0, ms, me;
    bool found;
    er_status st;
    while (!(st = tk_regex_next(&m, &found, &ms, &me, err)) && found) {
        while (in->byte_at[k] < ms) k++;
        size_t match_start = k;
        while (in->byte_at[k] < me) k++;
        if ((st = tk_normalized_reserve(out, match_start - done + r->n, err))) break;
        copy_range(in, done, match_start, out);
        for (size_t i = 0; i < r->n; i++) tk_normalized_push(out, r->content[i], in->src[k - 1]);
        done = k;
    }
    tk_regex_matches_end(&m);
    if (!st && !(st = tk_normalized_reserve(out, in->n - done, err))) copy_range(in, done, in->n, out);
    return st;
}

static er_status replace_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                   tk_normalized *out, er_err *err) {
    tk_normalized in = {0};
    er_status st = tk_normalized_reserve(&in, b - a, err);
    if (!st) {
        for (size_t k = a; k < b; k++) tk_normalized_push(&in, cps[k], (uint32_t)k);
        st = replace_all((const replace *)self, &in, out, err);
    }
    tk_normalized_free(&in);
    return st;
}

static void replace_free(tk_normalizer *self) {
    tk_regex_free(((replace *)self)->re);
    free(self);
}

/* {"type": "Replace", "pattern": {"String": " "}, "content": "▁"} */
er_status tk_replace_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    json_t *content = json_object_get(json, "content");
    size_t len = json_string_length(content), n_cp, bad;
    if (!json_is_string(content) || len > TK_MAX_TOKEN_BYTES)
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Replace needs a \"content\" string (at most %d bytes)",
                      TK_MAX_TOKEN_BYTES);
    const uint8_t *s = (const uint8_t *)json_string_value(content);
    if (!tk_utf8_valid(s, len, &bad, &n_cp))
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Replace content is not UTF-8");
    replace *r = malloc(sizeof *r + n_cp * sizeof *r->content);
    if (!r) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    r->base = (tk_normalizer){replace_normalize, replace_free};
    r->n = n_cp;
    for (size_t i = 0, pos = 0; i < n_cp; i++) pos += tk_utf8_next(s + pos, &r->content[i]);
    er_status st = tk_json_pattern(json_object_get(json, "pattern"), "Replace pattern", &r->re, err);
    if (st) {
        free(r);
        return st;
    }
    *out = &r->base;
    return ER_OK;
}
