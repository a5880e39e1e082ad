/* The pipeline: added tokens are split out of the raw text, every other
 * span goes normalizer -> pre-tokenizer -> model, then truncation and the
 * post-processor build the encoding.  The components are reached through
 * their interfaces (tokenizer_internal.h), one call per span or per word. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* The Rust library gives an added token the text it matched as its string:
 * with lstrip / rstrip that includes the whitespace taken in (" <|endoftext|> ").
 * Such strings are not in the tokenizer; they are kept here per sequence
 * (token index, bytes) and copied into the encoding at the end. */
typedef struct {
    struct matched_text {
        size_t token;
        uint32_t off, len;
    } *v;
    size_t n, cap;
    char *bytes;
    size_t n_bytes, bytes_cap;
} matched_texts;

/* One sequence being encoded. */
typedef struct {
    tk_word_sink sink; /* first: the pre-tokenizer's words come back here */
    const er_tokenizer *t;
    const uint8_t *text;
    uint32_t *ob;  /* [n_cp + 1] byte offset of each original code point */
    uint32_t *ocp; /* [n_cp] original code points */
    size_t n_cp;
    tk_normalized norm; /* the span being processed */
    tk_normalized scratch[2]; /* the pre-tokenizer's rewritten words */
    tk_tokens *out;
    matched_texts *texts;
    er_err *err;
} tk_workspace;

static er_status nomem(er_err *err) { return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory"); }

static void workspace_free(tk_workspace *w) {
    free(w->ob);
    free(w->ocp);
    tk_normalized_free(&w->norm);
    tk_normalized_free(&w->scratch[0]);
    tk_normalized_free(&w->scratch[1]);
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

/* Tokens [from, n) of out hold code point ranges of s: make them original
 * code point and byte offsets. */
static void map_offsets(tk_workspace *w, const tk_normalized *s, size_t from) {
    const uint32_t *src = s->src;
    for (size_t i = from; i < w->out->n; i++) {
        tk_token *tk = &w->out->v[i];
        tk->cs = src[tk->cs];
        tk->ce = src[tk->ce - 1] + 1;
        tk->bs = w->ob[tk->cs];
        tk->be = w->ob[tk->ce];
    }
}

/* Token `token` of the sequence has the text bytes[0, n) as its string
 * (kept per sequence, copied into the encoding at the end). */
static er_status keep_text(tk_workspace *w, size_t token, const uint8_t *bytes, size_t n) {
    matched_texts *m = w->texts;
    er_status st;
    if (m->n == m->cap && (st = tk_array_grow(&m->v, &m->cap, sizeof *m->v, w->err))) return st;
    while (m->n_bytes + n + 1 > m->bytes_cap)
        if ((st = tk_array_grow(&m->bytes, &m->bytes_cap, 1, w->err))) return st;
    memcpy(m->bytes + m->n_bytes, bytes, n);
    m->bytes[m->n_bytes + n] = 0;
    m->v[m->n++] = (struct matched_text){token, (uint32_t)m->n_bytes, (uint32_t)n};
    m->n_bytes += n + 1;
    return ER_OK;
}

/* The model on the word [a, b) of s; its tokens' offsets are mapped at
 * once, while they are in the cache. */
static er_status tokenize_word(tk_word_sink *sink, const tk_normalized *s, size_t a, size_t b) {
    tk_workspace *w = (tk_workspace *)sink;
    const tk_model *m = w->t->model;
    size_t from = w->out->n;
    er_status st = m->tokenize(m, w->t, s, a, b, w->out, w->err);
    for (size_t i = from; !st && i < w->out->n; i++) {
        tk_token *tk = &w->out->v[i];
        if (tk->tok != TK_NONE) continue;
        /* The model's token whose string is its text (Unigram's unknowns);
         * the id's own string stands in until the encoding is built. */
        st = keep_text(w, i, s->bytes + s->byte_at[tk->cs], s->byte_at[tk->ce] - s->byte_at[tk->cs]);
        tk->tok = w->t->id_off[tk->id];
    }
    if (!st) map_offsets(w, s, from);
    return st;
}

/* Pre-tokenizer and model on normalized code points [a, b). */
static er_status tokenize_words(tk_workspace *w, size_t a, size_t b) {
    const tk_pre_tokenizer *pt = w->t->pre_tokenizer;
    if (pt) return pt->split(pt, &w->norm, a, b, &w->sink, w->err);
    return a < b ? tokenize_word(&w->sink, &w->norm, a, b) : ER_OK;
}

/* The added token about to be pushed as token out->n matched bytes[0, n)
 * of its text; unless that is its content, keep it as the token's string. */
static er_status keep_matched_text(tk_workspace *w, const tk_added *a, const uint8_t *bytes, size_t n) {
    const er_tokenizer *t = w->t;
    uint32_t off = a->normalized && a->nlen ? a->noff : a->off, len = a->normalized && a->nlen ? a->nlen : a->len;
    if (n == len && !memcmp(bytes, t->arena + off, n)) return ER_OK;
    return keep_text(w, w->out->n, bytes, n);
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
        if (!st) st = keep_matched_text(w, a, w->norm.bytes + w->norm.byte_at[s], w->norm.byte_at[e] - w->norm.byte_at[s]);
        if (!st) st = tk_tokens_push(w->out, (tk_token){a->id, a->off, (uint32_t)s, (uint32_t)e, 0, 0}, w->err);
        if (st) return st;
        map_offsets(w, &w->norm, w->out->n - 1);
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
        if (!st) st = keep_matched_text(w, a, w->text + w->ob[s], w->ob[e] - w->ob[s]);
        if (!st) st = tk_tokens_push(w->out, tok, w->err);
        if (st) return st;
        seg = v.floor = k = e;
    }
    return tokenize_span(w, seg, w->n_cp);
}

static er_status encode_into(const er_tokenizer *t, const char *text, size_t len, tk_tokens *out,
                             matched_texts *texts, er_err *err) {
    tk_workspace w = {0};
    w.texts = texts;
    w.sink.word = tokenize_word;
    w.sink.scratch[0] = &w.scratch[0];
    w.sink.scratch[1] = &w.scratch[1];
    w.t = t;
    w.out = out;
    w.err = err;
    er_status st = encode_sequence(&w, text, len);
    workspace_free(&w);
    return st;
}

/* An encoding of n tokens with `room` bytes after it for strings (*room_at). */
static er_encoding *encoding_alloc(size_t n, size_t room, char **room_at) {
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
    char *m = calloc(1, sz + room);
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
    if (room_at) *room_at = m + sz;
    return e;
}

er_encoding *tk_encoding_new(size_t n) { return encoding_alloc(n, 0, NULL); }

/* A copy of e with room bytes for strings after it; e is freed. */
static er_encoding *encoding_with_room(er_encoding *e, size_t room, char **room_at) {
    size_t n = e->n;
    er_encoding *c = encoding_alloc(n, room, room_at);
    if (!c) return NULL;
    memcpy(c->tokens, e->tokens, n * sizeof *e->tokens);
    memcpy(c->ids, e->ids, n * sizeof *e->ids);
    memcpy(c->type_ids, e->type_ids, n * sizeof *e->type_ids);
    memcpy(c->offsets, e->offsets, n * sizeof *e->offsets);
    memcpy(c->byte_offsets, e->byte_offsets, n * sizeof *e->byte_offsets);
    memcpy(c->special_mask, e->special_mask, n);
    memcpy(c->sequence_ids, e->sequence_ids, n);
    c->truncated = e->truncated;
    c->overflowing = e->overflowing; /* the windows move to the copy */
    c->n_overflowing = e->n_overflowing;
    free(e);
    return c;
}

/* The kept texts of both sequences become the strings of their tokens in
 * an encoding built of windows starting at token start[s] of sequence s:
 * its j-th token with sequence id s is token start[s] + j of s. */
static er_status use_matched_texts(er_encoding **out, const matched_texts texts[2], const size_t start[2],
                                   er_err *err) {
    if (!texts[0].n && !texts[1].n) return ER_OK;
    char *room;
    er_encoding *e = encoding_with_room(*out, texts[0].n_bytes + texts[1].n_bytes, &room);
    if (!e) return nomem(err);
    *out = e;
    if (texts[0].n_bytes) memcpy(room, texts[0].bytes, texts[0].n_bytes);
    if (texts[1].n_bytes) memcpy(room + texts[0].n_bytes, texts[1].bytes, texts[1].n_bytes);
    size_t seen[2] = {0, 0}, next[2] = {0, 0}, base[2] = {0, texts[0].n_bytes};
    for (size_t k = 0; k < e->n; k++) {
        int s = e->sequence_ids[k];
        if (s != 0 && s != 1) continue;
        size_t j = start[s] + seen[s]++;
        while (next[s] < texts[s].n && texts[s].v[next[s]].token < j) next[s]++;
        if (next[s] < texts[s].n && texts[s].v[next[s]].token == j)
            e->tokens[k] = room + base[s] + texts[s].v[next[s]++].off;
    }
    return ER_OK;
}

/* Every encoding tk_build_windows builds gets the kept texts. */
typedef struct {
    tk_window_hook base;
    const matched_texts *texts; /* [2] */
} texts_hook;

static er_status texts_built(const tk_window_hook *self, er_encoding **e, const size_t start[2], er_err *err) {
    return use_matched_texts(e, ((const texts_hook *)self)->texts, start, err);
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
    matched_texts texts[2] = {{0}, {0}};
    er_status st = encode_into(t, text, len, &a, &texts[0], err);
    if (!st && pair) st = encode_into(t, pair, pair_len, &b, &texts[1], err);
    size_t na = a.n, nb = b.n;
    int truncated = 0;
    if (!st) st = tk_truncate_lengths(t, &p, &na, &nb, pair != NULL, &truncated, err);
    texts_hook hook = {{texts_built}, texts};
    if (!st) st = tk_build_windows(t, &p, &a, na, pair ? &b : NULL, nb, &hook.base, out, err);
    if (!st) (*out)->truncated = truncated;
    if (!st && t->trim_offsets) {
        tk_trim_offsets(*out, t->trim_keeps_prefix_space);
        for (size_t k = 0; k < (*out)->n_overflowing; k++)
            tk_trim_offsets((*out)->overflowing[k], t->trim_keeps_prefix_space);
    }
    free(a.v);
    free(b.v);
    for (int i = 0; i < 2; i++) {
        free(texts[i].v);
        free(texts[i].bytes);
    }
    return st;
}
