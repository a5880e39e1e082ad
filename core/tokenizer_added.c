/* Added tokens (Hugging Face AddedVocabulary): matching them in a text,
 * and their normalized forms for the ones matched after normalization. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

const tk_added *tk_added_match(const er_tokenizer *t, const tk_view *v, size_t i, bool normalized,
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

/* The normalized form of one added token's content, cut at
 * TK_MAX_TOKEN_BYTES, into the arena. */
static er_status normalize_added(er_tokenizer *t, tk_added *a, uint32_t *cps, tk_normalized *s, er_err *err) {
    size_t n = 0;
    for (size_t p = 0; p < a->len; n++) p += tk_utf8_next((const uint8_t *)t->arena + a->off + p, &cps[n]);
    tk_normalized_clear(s);
    er_status st = tk_normalize(t, cps, 0, n, s, err);
    size_t len = s->n_bytes > TK_MAX_TOKEN_BYTES ? TK_MAX_TOKEN_BYTES : s->n_bytes;
    a->nlen = 0;
    if (!st && len) st = tk_arena_add(t, (const char *)s->bytes, len, &a->noff, err);
    if (!st) a->nlen = (uint32_t)len;
    return st;
}

er_status tk_added_normalize(er_tokenizer *t, er_err *err) {
    uint32_t *cps = malloc(TK_MAX_TOKEN_BYTES * sizeof *cps);
    if (!cps) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    tk_normalized s = {0};
    er_status st = ER_OK;
    for (size_t i = 0; i < t->n_added && !st; i++)
        if (t->added[i].normalized) st = normalize_added(t, &t->added[i], cps, &s, err);
    tk_normalized_free(&s);
    free(cps);
    return st;
}
