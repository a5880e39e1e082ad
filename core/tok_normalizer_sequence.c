/* Sequence of normalizers: each normalizes what the one before made.  A
 * member is given the code points of the stage before, so its src values
 * index that stage; they are mapped back through the stage's own src to
 * original code points.  Two stage buffers are the call's own (allocated
 * per span, not per token). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_normalizer base;
    size_t n;
    tk_normalizer *member[]; /* n */
} sequence;

/* Member i on stage `in` (its code points all) into `out`, src mapped back. */
static er_status run_stage(const tk_normalizer *m, const tk_normalized *in, tk_normalized *out, er_err *err) {
    tk_normalized_clear(out);
    er_status st = m->normalize(m, in->cps, 0, in->n, out, err);
    if (st) return st;
    for (size_t i = 0; i < out->n; i++) out->src[i] = in->src[out->src[i]];
    return ER_OK;
}

static er_status sequence_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                    tk_normalized *out, er_err *err) {
    const sequence *q = (const sequence *)self;
    tk_normalized stage[2] = {{0}, {0}};
    er_status st = tk_normalized_reserve(&stage[0], b - a, err);
    if (!st)
        for (size_t k = a; k < b; k++) tk_normalized_push(&stage[0], cps[k], (uint32_t)k);
    size_t cur = 0;
    for (size_t i = 0; i < q->n && !st; i++, cur ^= 1) st = run_stage(q->member[i], &stage[cur], &stage[cur ^ 1], err);
    const tk_normalized *last = &stage[cur];
    if (!st && !(st = tk_normalized_reserve(out, last->n, err)))
        for (size_t k = 0; k < last->n; k++) tk_normalized_push(out, last->cps[k], last->src[k]);
    tk_normalized_free(&stage[0]);
    tk_normalized_free(&stage[1]);
    return st;
}

static void sequence_free(tk_normalizer *self) {
    sequence *q = (sequence *)self;
    for (size_t i = 0; i < q->n; i++) q->member[i]->free(q->member[i]);
    free(q);
}

/* {"type": "Sequence", "normalizers": [{...}, ...]} */
er_status tk_sequence_normalizer_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    json_t *list = json_object_get(json, "normalizers");
    if (!json_is_array(list)) return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Sequence needs \"normalizers\"");
    sequence *q = malloc(sizeof *q + json_array_size(list) * sizeof *q->member);
    if (!q) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    q->base = (tk_normalizer){sequence_normalize, sequence_free};
    q->n = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        tk_normalizer *m = NULL;
        er_status st = tk_normalizer_load(t, json_array_get(list, i), &m, err);
        if (!st && !m) st = er_set(err, ER_ERR_FORMAT, "tokenizer.json: null in a normalizer Sequence");
        if (st) {
            sequence_free(&q->base);
            return st;
        }
        q->member[q->n++] = m;
    }
    *out = &q->base;
    return ER_OK;
}
