/* Encoding: added-token split, BertNormalizer with alignments,
 * BertPreTokenizer, WordPiece, truncation and the post-processor. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

enum { CL_NONE = 0, CL_WS = 1, CL_PUNCT = 2 };

typedef struct {
    int32_t id;
    uint32_t tok; /* arena offset of the token string */
    uint32_t cs, ce, bs, be;
} tk_tok;

typedef struct {
    tk_tok *v;
    size_t n, cap;
} tk_seq;

typedef struct {
    const er_tokenizer *t;
    const uint8_t *text;
    uint32_t *ob;  /* [n_cp + 1] byte offset of each original code point */
    uint32_t *ocp; /* [n_cp] original code points */
    size_t n_cp;
    /* the normalized span being processed */
    uint8_t *nu;
    size_t nu_len, nu_cap;
    uint32_t *nb;  /* [nn + 1] byte offset in nu of each normalized code point */
    uint32_t *src; /* [nn] original code point index */
    uint32_t *ncp; /* [nn] normalized code point */
    uint8_t *cls;  /* [nn] CL_* */
    size_t nn, n_cap;
    tk_seq *seq;
    er_err *err;
} tk_ws;

static er_status nomem(er_err *err) { return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory"); }

static void ws_free(tk_ws *w) {
    free(w->ob);
    free(w->ocp);
    free(w->nu);
    free(w->nb);
    free(w->src);
    free(w->ncp);
    free(w->cls);
    memset(w, 0, sizeof *w);
}

static er_status seq_push(tk_ws *w, tk_tok tk) {
    tk_seq *s = w->seq;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tk_tok *v = realloc(s->v, cap * sizeof *v);
        if (!v) return nomem(w->err);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = tk;
    return ER_OK;
}

static er_status norm_reserve(tk_ws *w, size_t extra_cp) {
    if (w->nn + extra_cp + 1 > w->n_cap) {
        size_t cap = w->n_cap ? w->n_cap : 256;
        while (cap < w->nn + extra_cp + 1) cap *= 2;
        uint32_t *nb = realloc(w->nb, cap * sizeof *nb);
        if (nb) w->nb = nb;
        uint32_t *src = realloc(w->src, cap * sizeof *src);
        if (src) w->src = src;
        uint32_t *ncp = realloc(w->ncp, cap * sizeof *ncp);
        if (ncp) w->ncp = ncp;
        uint8_t *cls = realloc(w->cls, cap);
        if (cls) w->cls = cls;
        if (!nb || !src || !ncp || !cls) return nomem(w->err);
        w->n_cap = cap;
    }
    if (w->nu_len + 4 * extra_cp > w->nu_cap) {
        size_t cap = w->nu_cap ? w->nu_cap : 1024;
        while (cap < w->nu_len + 4 * extra_cp) cap *= 2;
        if (cap > UINT32_MAX) return er_set(w->err, ER_ERR_CAPACITY, "tokenizer: text too large");
        uint8_t *nu = realloc(w->nu, cap);
        if (!nu) return nomem(w->err);
        w->nu = nu;
        w->nu_cap = cap;
    }
    return ER_OK;
}

/* BertNormalizer on one code point (Rust order: clean_text,
 * handle_chinese_chars, strip_accents, lowercase).  Returns the count. */
static size_t norm_cp(const er_tokenizer *t, uint32_t c, uint32_t out[12]) {
    if (!t->has_normalizer) {
        out[0] = c;
        return 1;
    }
    if (t->clean_text) {
        if (c == 0 || c == 0xFFFD || tk_is_control(c)) return 0;
        if (tk_is_whitespace(c)) {
            out[0] = ' ';
            return 1;
        }
    }
    if (t->handle_chinese && c >= 0x3400 && tk_is_chinese(c)) {
        out[0] = ' ';
        size_t n = tk_fold(c, t->strip_accents, t->lowercase, out + 1);
        out[n + 1] = ' ';
        return n + 2;
    }
    return tk_fold(c, t->strip_accents, t->lowercase, out);
}

static uint8_t classify(uint32_t c) {
    if (c == ' ') return CL_WS;
    if (tk_is_whitespace(c)) return CL_WS;
    if (tk_is_punct(c)) return CL_PUNCT;
    return CL_NONE;
}

/* Normalizes original code points [a, b) into the span buffers. */
static er_status normalize_span(tk_ws *w, size_t a, size_t b) {
    w->nn = 0;
    w->nu_len = 0;
    uint32_t out[12];
    for (size_t k = a; k < b; k++) {
        size_t n = norm_cp(w->t, w->ocp[k], out);
        if (!n) continue;
        er_status st = norm_reserve(w, n);
        if (st) return st;
        for (size_t i = 0; i < n; i++) {
            w->nb[w->nn] = (uint32_t)w->nu_len;
            w->src[w->nn] = (uint32_t)k;
            w->ncp[w->nn] = out[i];
            w->cls[w->nn] = classify(out[i]);
            w->nu_len += tk_utf8_put(w->nu + w->nu_len, out[i]);
            w->nn++;
        }
    }
    if (w->nb) w->nb[w->nn] = (uint32_t)w->nu_len;
    return ER_OK;
}

static tk_tok make_tok(const tk_ws *w, int32_t id, uint32_t tok, size_t cs, size_t ce) {
    tk_tok tk = {id, tok, (uint32_t)cs, (uint32_t)ce, w->ob[cs], w->ob[ce]};
    return tk;
}

/* WordPiece on normalized code points [i0, i1). */
static er_status wordpiece(tk_ws *w, size_t i0, size_t i1) {
    if (i0 >= i1) return ER_OK;
    const er_tokenizer *t = w->t;
    size_t mark = w->seq->n;
    if (i1 - i0 <= t->max_chars_per_word) {
        const uint8_t *pre = (const uint8_t *)t->arena + t->prefix_off;
        size_t start = i0;
        while (start < i1) {
            size_t plen = start > i0 ? t->prefix_len : 0, end = i1;
            while (end > start && w->nb[end] - w->nb[start] + plen > t->max_key_len) end--;
            int32_t id = -1;
            for (; end > start; end--) {
                id = tk_vocab_find(t, pre, plen, w->nu + w->nb[start], w->nb[end] - w->nb[start]);
                if (id >= 0) break;
            }
            if (id < 0) break;
            uint32_t off = t->id_off[id] != TK_NONE ? t->id_off[id] : t->unk_off;
            er_status st = seq_push(w, make_tok(w, id, off, w->src[start], w->src[end - 1] + 1));
            if (st) return st;
            start = end;
        }
        if (start == i1) return ER_OK;
    }
    w->seq->n = mark; /* the whole word is unknown */
    return seq_push(w, make_tok(w, t->unk_id, t->unk_off, w->src[i0], w->src[i1 - 1] + 1));
}

static er_status pretokenize(tk_ws *w, size_t i0, size_t i1) {
    if (!w->t->has_pretokenizer) return wordpiece(w, i0, i1);
    size_t s = i0;
    er_status st = ER_OK;
    for (size_t i = i0; i < i1 && !st; i++) {
        if (w->cls[i] == CL_WS) {
            st = wordpiece(w, s, i);
            s = i + 1;
        } else if (w->cls[i] == CL_PUNCT) {
            st = wordpiece(w, s, i);
            if (!st) st = wordpiece(w, i, i + 1);
            s = i + 1;
        }
    }
    if (!st) st = wordpiece(w, s, i1);
    return st;
}

/* Finds the added token (leftmost-longest) matching at position i of a code
 * point sequence; flags from Hugging Face's AddedVocabulary::find_matches.
 * cps/pos describe the sequence: pos[i] byte offsets into bytes.  On a
 * match, [*ms, *me) is the (possibly l/r-stripped) code point range. */
typedef struct {
    const uint8_t *bytes;
    const uint32_t *pos, *cps;
    size_t n, floor;
} tk_view;

static const tk_added *match_added(const er_tokenizer *t, const tk_view *v, size_t i, bool normalized,
                                   size_t *ms, size_t *me) {
    const tk_added *best = NULL;
    size_t best_end = 0, avail = v->pos[v->n] - v->pos[i];
    for (size_t k = 0; k < t->n_added; k++) {
        const tk_added *a = &t->added[k];
        if (a->normalized != normalized) continue;
        uint32_t off = normalized ? a->noff : a->off, len = normalized ? a->nlen : a->len;
        if (!len || len > avail || (best && len <= v->pos[best_end] - v->pos[i])) continue;
        if (memcmp(v->bytes + v->pos[i], t->arena + off, len) != 0) continue;
        size_t e = i;
        while (e < v->n && v->pos[e] < v->pos[i] + len) e++;
        if (v->pos[e] != v->pos[i] + len) continue; /* not on a code point boundary */
        best = a;
        best_end = e;
    }
    if (!best) return NULL;
    size_t s = i, e = best_end;
    if (best->single_word && ((s > 0 && tk_is_word_char(v->cps[s - 1])) ||
                              (e < v->n && tk_is_word_char(v->cps[e]))))
        return NULL;
    if (best->lstrip)
        while (s > v->floor && tk_is_whitespace(v->cps[s - 1])) s--;
    if (best->rstrip)
        while (e < v->n && tk_is_whitespace(v->cps[e])) e++;
    *ms = s;
    *me = e;
    return best;
}

/* A normalized span: split out normalized added tokens, pre-tokenize the rest. */
static er_status process_normalized(tk_ws *w) {
    const er_tokenizer *t = w->t;
    if (!t->any_norm_added) return pretokenize(w, 0, w->nn);
    tk_view v = {w->nu, w->nb, w->ncp, w->nn, 0};
    size_t seg = 0;
    for (size_t i = 0; i < w->nn;) {
        size_t s, e;
        const tk_added *a = match_added(t, &v, i, true, &s, &e);
        if (!a) {
            i++;
            continue;
        }
        er_status st = pretokenize(w, seg, s);
        if (!st) st = seq_push(w, make_tok(w, a->id, a->off, w->src[s], w->src[e - 1] + 1));
        if (st) return st;
        seg = v.floor = i = e;
    }
    return pretokenize(w, seg, w->nn);
}

static er_status process_plain(tk_ws *w, size_t a, size_t b) {
    if (a >= b) return ER_OK;
    er_status st = normalize_span(w, a, b);
    return st ? st : process_normalized(w);
}

static er_status encode_seq(tk_ws *w, const char *text, size_t len) {
    const er_tokenizer *t = w->t;
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
    if (!t->any_raw_added) return process_plain(w, 0, n_cp);
    tk_view v = {w->text, w->ob, w->ocp, n_cp, 0};
    size_t seg = 0;
    for (size_t k = 0; k < n_cp;) {
        uint8_t c = w->text[w->ob[k]];
        size_t s, e;
        const tk_added *a = (t->raw_first[c >> 3] >> (c & 7)) & 1
                                ? match_added(t, &v, k, false, &s, &e) : NULL;
        if (!a) {
            k++;
            continue;
        }
        er_status st = process_plain(w, seg, s);
        if (!st) st = seq_push(w, make_tok(w, a->id, a->off, s, e));
        if (st) return st;
        seg = v.floor = k = e;
    }
    return process_plain(w, seg, n_cp);
}

/* Normalized content of normalized added tokens (called once at load). */
er_status tk_prepare_added(er_tokenizer *t, er_err *err) {
    for (size_t i = 0; i < t->n_added; i++) {
        tk_added *a = &t->added[i];
        if (!a->normalized) continue;
        uint8_t buf[TK_MAX_TOKEN_BYTES * 3 + 64];
        size_t n = 0, p = 0;
        uint32_t out[12];
        const uint8_t *s = (const uint8_t *)t->arena + a->off;
        while (p < a->len && n + 4 * 12 < sizeof buf) {
            uint32_t cp;
            p += tk_utf8_next(s + p, &cp);
            size_t k = norm_cp(t, cp, out);
            for (size_t j = 0; j < k; j++) n += tk_utf8_put(buf + n, out[j]);
        }
        a->nlen = 0;
        if (n) {
            er_status st = tk_arena_add(t, (const char *)buf, n > TK_MAX_TOKEN_BYTES ? TK_MAX_TOKEN_BYTES : n,
                                        &a->noff, err);
            if (st) return st;
            a->nlen = (uint32_t)(n > TK_MAX_TOKEN_BYTES ? TK_MAX_TOKEN_BYTES : n);
        }
    }
    return ER_OK;
}

/* Hugging Face truncate_encodings (direction right, stride 0). */
static er_status truncate(const er_tokenizer *t, const er_tokenize_params *p, size_t *na, size_t *nb,
                          bool pair, int *truncated, er_err *err) {
    *truncated = 0;
    if (!p->max_length) return ER_OK;
    size_t n_add = p->add_special_tokens ? er_tokenizer_num_special_tokens(t, pair) : 0;
    size_t total = *na + *nb;
    if (total + n_add <= p->max_length) return ER_OK;
    if (p->max_length < n_add)
        return er_set(err, ER_ERR_CAPACITY, "tokenizer: max_length %zu is below the %zu special tokens",
                      p->max_length, n_add);
    size_t max = p->max_length - n_add, remove = total - max;
    switch (p->truncation) {
    case ER_TRUNCATE_LONGEST_FIRST:
        if (!pair) {
            *na = max;
        } else {
            size_t n1 = *na, n2 = *nb;
            bool swap = n1 > n2;
            if (swap) { size_t x = n1; n1 = n2; n2 = x; }
            n2 = n1 > max ? n1 : (n1 > max - n1 ? n1 : max - n1);
            if (n1 + n2 > max) {
                n1 = max / 2;
                n2 = n1 + max % 2;
            }
            if (swap) { size_t x = n1; n1 = n2; n2 = x; }
            if (n1 < *na) *na = n1;
            if (n2 < *nb) *nb = n2;
        }
        break;
    case ER_TRUNCATE_ONLY_FIRST:
    case ER_TRUNCATE_ONLY_SECOND: {
        bool first = p->truncation == ER_TRUNCATE_ONLY_FIRST;
        if (!first && !pair)
            return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: only_second truncation needs a pair");
        size_t *n = first ? na : nb;
        if (*n <= remove)
            return er_set(err, ER_ERR_CAPACITY,
                          "tokenizer: %s sequence (%zu tokens) too short to remove %zu tokens",
                          first ? "first" : "second", *n, remove);
        *n -= remove;
        break;
    }
    case ER_TRUNCATE_NONE:
    default:
        return er_set(err, ER_ERR_CAPACITY, "tokenizer: %zu tokens exceed max_length %zu",
                      total + n_add, p->max_length);
    }
    *truncated = 1;
    return ER_OK;
}

static er_encoding *alloc_encoding(size_t n) {
    size_t sz = sizeof(er_encoding);
    sz = (sz + 7) & ~(size_t)7;
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

void er_encoding_free(er_encoding *e) { free(e); }

static const tk_item DEFAULT_SINGLE[] = {{TK_ITEM_A, 0, -1, TK_NONE}};
static const tk_item DEFAULT_PAIR[] = {{TK_ITEM_A, 0, -1, TK_NONE}, {TK_ITEM_B, 1, -1, TK_NONE}};

static er_encoding *assemble(const er_tokenizer *t, const tk_seq *a, size_t na, const tk_seq *b,
                             size_t nb, bool pair, bool specials) {
    const tk_item *tpl = pair ? t->pair : t->single;
    size_t nt = pair ? t->n_pair : t->n_single;
    if (!nt) {
        tpl = pair ? DEFAULT_PAIR : DEFAULT_SINGLE;
        nt = pair ? 2 : 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < nt; i++)
        n += tpl[i].kind == TK_ITEM_A ? na : tpl[i].kind == TK_ITEM_B ? nb : (specials ? 1 : 0);
    er_encoding *e = alloc_encoding(n);
    if (!e) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nt; i++) {
        const tk_item *it = &tpl[i];
        if (it->kind == TK_ITEM_SPECIAL) {
            if (!specials) continue;
            e->ids[k] = it->id;
            e->type_ids[k] = (int32_t)it->type_id;
            e->tokens[k] = t->arena + it->tok_off;
            e->special_mask[k] = 1;
            e->sequence_ids[k] = -1;
            k++;
            continue;
        }
        const tk_seq *s = it->kind == TK_ITEM_A ? a : b;
        size_t m = it->kind == TK_ITEM_A ? na : nb;
        for (size_t j = 0; j < m; j++, k++) {
            const tk_tok *tk = &s->v[j];
            e->ids[k] = tk->id;
            e->type_ids[k] = (int32_t)it->type_id;
            e->tokens[k] = t->arena + tk->tok;
            e->offsets[k] = (er_offset){tk->cs, tk->ce};
            e->byte_offsets[k] = (er_offset){tk->bs, tk->be};
            e->sequence_ids[k] = it->kind == TK_ITEM_A ? 0 : 1;
        }
    }
    return e;
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
    tk_seq sa = {0}, sb = {0};
    tk_ws w = {0};
    w.t = t;
    w.err = err;
    w.seq = &sa;
    er_status st = encode_seq(&w, text, len);
    ws_free(&w);
    w.t = t;
    w.err = err;
    w.seq = &sb;
    if (!st && pair) st = encode_seq(&w, pair, pair_len);
    ws_free(&w);
    size_t na = sa.n, nb = sb.n;
    int truncated = 0;
    if (!st) st = truncate(t, &p, &na, &nb, pair != NULL, &truncated, err);
    if (!st) {
        er_encoding *e = assemble(t, &sa, na, &sb, nb, pair != NULL, p.add_special_tokens != 0);
        if (!e) st = nomem(err);
        else {
            e->truncated = truncated;
            *out = e;
        }
    }
    free(sa.v);
    free(sb.v);
    return st;
}
