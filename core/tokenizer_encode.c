/* The pipeline: added tokens are split out of the raw text, every other
 * span goes normalizer -> pre-tokenizer -> model, then truncation and the
 * post-processor build the encoding.  The components are reached through
 * their interfaces (tokenizer_internal.h), one call per span or per word. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* One sequence being encoded. */
typedef struct {
    tk_word_sink sink; /* first: the pre-tokenizer's words come back here */
    const er_tokenizer *t;
    const uint8_t *text;
    uint32_t *ob;  /* [n_cp + 1] byte offset of each original code point */
    uint32_t *ocp; /* [n_cp] original code points */
    size_t n_cp;
    tk_normalized norm; /* the span being processed */
    tk_tokens *out;
    er_err *err;
} tk_workspace;

static er_status nomem(er_err *err) { return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory"); }

static void workspace_free(tk_workspace *w) {
    free(w->ob);
    free(w->ocp);
    tk_normalized_free(&w->norm);
}

er_status tk_array_grow(void *array_ptr, size_t *cap, size_t elem_size, er_err *err) {
    void *v;
    memcpy(&v, array_ptr, sizeof v);
    size_t n = *cap ? *cap * 2 : 64;
    v = realloc(v, n * elem_size);
    if (!v) return nomem(err);
    memcpy(array_ptr, &v, sizeof v);
    *cap = n;
    return ER_OK;
}

er_status tk_normalized_grow(tk_normalized *s, size_t extra_cp, er_err *err) {
    if (s->n + extra_cp + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + extra_cp + 1) cap *= 2;
        uint32_t *byte_at = realloc(s->byte_at, cap * sizeof *byte_at);
        if (byte_at) s->byte_at = byte_at;
        uint32_t *cps = realloc(s->cps, cap * sizeof *cps);
        if (cps) s->cps = cps;
        uint32_t *src = realloc(s->src, cap * sizeof *src);
        if (src) s->src = src;
        if (!byte_at || !cps || !src) return nomem(err);
        s->cap = cap;
        s->byte_at[s->n] = (uint32_t)s->n_bytes; /* the end, from the first allocation on */
    }
    if (s->n_bytes + 4 * extra_cp > s->bytes_cap) {
        size_t cap = s->bytes_cap ? s->bytes_cap : 1024;
        while (cap < s->n_bytes + 4 * extra_cp) cap *= 2;
        if (cap > UINT32_MAX) return er_set(err, ER_ERR_CAPACITY, "tokenizer: text too large");
        uint8_t *bytes = realloc(s->bytes, cap);
        if (!bytes) return nomem(err);
        s->bytes = bytes;
        s->bytes_cap = cap;
    }
    return ER_OK;
}

void tk_normalized_free(tk_normalized *s) {
    free(s->bytes);
    free(s->byte_at);
    free(s->cps);
    free(s->src);
    memset(s, 0, sizeof *s);
}

er_status tk_normalize(const er_tokenizer *t, const uint32_t *cps, size_t a, size_t b, tk_normalized *out,
                       er_err *err) {
    if (t->normalizer) return t->normalizer->normalize(t->normalizer, cps, a, b, out, err);
    er_status st = tk_normalized_reserve(out, b - a, err);
    if (st) return st;
    for (size_t k = a; k < b; k++) tk_normalized_push(out, cps[k], (uint32_t)k);
    return ER_OK;
}

/* Tokens [from, n) of out hold normalized code point ranges: make them
 * original code point and byte offsets. */
static void map_offsets(tk_workspace *w, size_t from) {
    const uint32_t *src = w->norm.src;
    for (size_t i = from; i < w->out->n; i++) {
        tk_token *tk = &w->out->v[i];
        tk->cs = src[tk->cs];
        tk->ce = src[tk->ce - 1] + 1;
        tk->bs = w->ob[tk->cs];
        tk->be = w->ob[tk->ce];
    }
}

/* The model on the word [a, b) of the normalized span; its tokens' offsets
 * are mapped at once, while they are in the cache. */
static er_status tokenize_word(tk_word_sink *sink, size_t a, size_t b) {
    tk_workspace *w = (tk_workspace *)sink;
    const tk_model *m = w->t->model;
    size_t from = w->out->n;
    er_status st = m->tokenize(m, w->t, &w->norm, a, b, w->out, w->err);
    if (!st) map_offsets(w, from);
    return st;
}

/* Pre-tokenizer and model on normalized code points [a, b). */
static er_status tokenize_words(tk_workspace *w, size_t a, size_t b) {
    const tk_pre_tokenizer *pt = w->t->pre_tokenizer;
    if (pt) return pt->split(pt, &w->norm, a, b, &w->sink, w->err);
    return a < b ? tokenize_word(&w->sink, a, b) : ER_OK;
}

/* The normalized span: split out normalized added tokens, tokenize the rest. */
static er_status tokenize_normalized(tk_workspace *w) {
    const er_tokenizer *t = w->t;
    if (!t->any_norm_added) return tokenize_words(w, 0, w->norm.n);
    tk_view v = {w->norm.bytes, w->norm.byte_at, w->norm.cps, w->norm.n, 0};
    size_t seg = 0;
    for (size_t i = 0; i < w->norm.n;) {
        size_t s, e;
        const tk_added *a = tk_added_match(t, &v, i, true, &s, &e);
        if (!a) {
            i++;
            continue;
        }
        er_status st = tokenize_words(w, seg, s);
        if (!st) st = tk_tokens_push(w->out, (tk_token){a->id, a->off, (uint32_t)s, (uint32_t)e, 0, 0}, w->err);
        if (st) return st;
        map_offsets(w, w->out->n - 1);
        seg = v.floor = i = e;
    }
    return tokenize_words(w, seg, w->norm.n);
}

/* Original code points [a, b) with no added token among them. */
static er_status tokenize_span(tk_workspace *w, size_t a, size_t b) {
    if (a >= b) return ER_OK;
    tk_normalized_clear(&w->norm);
    er_status st = tk_normalize(w->t, w->ocp, a, b, &w->norm, w->err);
    return st ? st : tokenize_normalized(w);
}

/* Validates the text and decodes its code points and their byte offsets. */
static er_status decode_text(tk_workspace *w, const char *text, size_t len) {
    size_t bad, n_cp;
    if (len > ER_TOKENIZER_MAX_INPUT)
        return er_set(w->err, ER_ERR_CAPACITY, "tokenizer: input of %zu bytes exceeds %zu", len,
                      ER_TOKENIZER_MAX_INPUT);
    if (!tk_utf8_valid((const uint8_t *)text, len, &bad, &n_cp))
        return er_set(w->err, ER_ERR_FORMAT, "tokenizer: invalid UTF-8 at byte offset %zu", bad);
    w->text = (const uint8_t *)text;
    w->n_cp = n_cp;
    w->ob = malloc((n_cp + 1) * sizeof *w->ob);
    w->ocp = malloc((n_cp + 1) * sizeof *w->ocp);
    if (!w->ob || !w->ocp) return nomem(w->err);
    size_t pos = 0;
    for (size_t k = 0; k < n_cp; k++) {
        w->ob[k] = (uint32_t)pos;
        pos += tk_utf8_next(w->text + pos, &w->ocp[k]);
    }
    w->ob[n_cp] = (uint32_t)pos;
    return ER_OK;
}

/* One sequence into w->out: raw (non-normalized) added tokens first. */
static er_status encode_sequence(tk_workspace *w, const char *text, size_t len) {
    const er_tokenizer *t = w->t;
    er_status st = decode_text(w, text, len);
    if (st) return st;
    if (!t->any_raw_added) return tokenize_span(w, 0, w->n_cp);
    tk_view v = {w->text, w->ob, w->ocp, w->n_cp, 0};
    size_t seg = 0;
    for (size_t k = 0; k < w->n_cp;) {
        uint8_t c = w->text[w->ob[k]];
        size_t s, e;
        const tk_added *a = (t->raw_first[c >> 3] >> (c & 7)) & 1
                                ? tk_added_match(t, &v, k, false, &s, &e) : NULL;
        if (!a) {
            k++;
            continue;
        }
        tk_token tok = {a->id, a->off, (uint32_t)s, (uint32_t)e, w->ob[s], w->ob[e]};
        st = tokenize_span(w, seg, s);
        if (!st) st = tk_tokens_push(w->out, tok, w->err);
        if (st) return st;
        seg = v.floor = k = e;
    }
    return tokenize_span(w, seg, w->n_cp);
}

static er_status encode_into(const er_tokenizer *t, const char *text, size_t len, tk_tokens *out,
                             er_err *err) {
    tk_workspace w = {0};
    w.sink.word = tokenize_word;
    w.t = t;
    w.out = out;
    w.err = err;
    er_status st = encode_sequence(&w, text, len);
    workspace_free(&w);
    return st;
}

er_encoding *tk_encoding_new(size_t n) {
    size_t sz = (sizeof(er_encoding) + 7) & ~(size_t)7;
    size_t o_tok = sz;
    sz += n * sizeof(char *);
    size_t o_ids = sz;
    sz += n * sizeof(int32_t);
    size_t o_typ = sz;
    sz += n * sizeof(int32_t);
    size_t o_off = sz;
    sz += n * sizeof(er_offset);
    size_t o_boff = sz;
    sz += n * sizeof(er_offset);
    size_t o_mask = sz;
    sz += n;
    size_t o_seq = sz;
    sz += n;
    char *m = calloc(1, sz);
    if (!m) return NULL;
    er_encoding *e = (er_encoding *)m;
    e->n = n;
    e->tokens = (const char **)(m + o_tok);
    e->ids = (int32_t *)(m + o_ids);
    e->type_ids = (int32_t *)(m + o_typ);
    e->offsets = (er_offset *)(m + o_off);
    e->byte_offsets = (er_offset *)(m + o_boff);
    e->special_mask = (uint8_t *)(m + o_mask);
    e->sequence_ids = (int8_t *)(m + o_seq);
    return e;
}

void er_encoding_free(er_encoding *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_overflowing; i++) er_encoding_free(e->overflowing[i]);
    free(e->overflowing);
    free(e);
}

er_status er_tokenizer_encode(const er_tokenizer *t, const char *text, size_t len, const char *pair,
                              size_t pair_len, const er_tokenize_params *params, er_encoding **out,
                              er_err *err) {
    if (out) *out = NULL;
    if (!t || !out || (!text && len))
        return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: NULL tokenizer, text or out");
    if (!text) text = "";
    er_tokenize_params p = params ? *params : er_tokenize_default_params();
    if ((int)p.truncation < ER_TRUNCATE_NONE || p.truncation > ER_TRUNCATE_ONLY_SECOND)
        return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: unknown truncation strategy %d", (int)p.truncation);
    if (p.direction != ER_TRUNCATE_RIGHT && p.direction != ER_TRUNCATE_LEFT)
        return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: unknown truncation direction %d", (int)p.direction);
    tk_tokens a = {0}, b = {0};
    er_status st = encode_into(t, text, len, &a, err);
    if (!st && pair) st = encode_into(t, pair, pair_len, &b, err);
    size_t na = a.n, nb = b.n;
    int truncated = 0;
    if (!st) st = tk_truncate_lengths(t, &p, &na, &nb, pair != NULL, &truncated, err);
    if (!st) st = tk_build_windows(t, &p, &a, na, pair ? &b : NULL, nb, out, err);
    if (!st) (*out)->truncated = truncated;
    free(a.v);
    free(b.v);
    return st;
}
