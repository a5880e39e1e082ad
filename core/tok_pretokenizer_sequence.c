/* Sequence: each pre-tokenizer splits the words of the one before it (the
 * Rust library splits every piece again with the next one, which gives the
 * same words in the same order).  Words go from stage to stage through
 * sinks chained on the stack, so no list of words is built.  A stage may
 * rewrite text into its sink's scratch buffers, which the next stage then
 * reads: every stage but the last gets buffers of its own (they allocate
 * only when a stage rewrites, and live for one span); the last writes into
 * the pipeline's. */
#include <stdlib.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)
#define MAX_STAGES 16

typedef struct {
    tk_pre_tokenizer base;
    tk_pre_tokenizer **items;
    size_t n;
} sequence;

/* The sink of stage i's words: they go to stage i + 1. */
typedef struct {
    tk_word_sink sink;
    const sequence *seq;
    size_t next; /* the stage the words go to */
    tk_word_sink *after; /* that stage's sink */
    tk_normalized bufs[2];
    er_err *err;
} stage_sink;

static er_status stage_word(tk_word_sink *self, const tk_normalized *s, size_t start, size_t end) {
    stage_sink *x = (stage_sink *)self;
    const tk_pre_tokenizer *p = x->seq->items[x->next];
    return p->split(p, s, start, end, x->after, x->err);
}

static er_status sequence_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                tk_word_sink *sink, er_err *err) {
    const sequence *q = (const sequence *)self;
    if (q->n == 0) return a < b ? sink->word(sink, s, a, b) : ER_OK;
    stage_sink st_sinks[MAX_STAGES - 1];
    size_t n_links = q->n - 1;
    for (size_t i = n_links; i-- > 0;) {
        stage_sink *x = &st_sinks[i];
        *x = (stage_sink){.seq = q, .next = i + 1, .err = err};
        x->after = i + 1 < n_links ? &st_sinks[i + 1].sink : sink;
        x->sink.word = stage_word;
        x->sink.scratch[0] = &x->bufs[0];
        x->sink.scratch[1] = &x->bufs[1];
    }
    tk_word_sink *first = n_links ? &st_sinks[0].sink : sink;
    er_status st = q->items[0]->split(q->items[0], s, a, b, first, err);
    for (size_t i = 0; i < n_links; i++) {
        tk_normalized_free(&st_sinks[i].bufs[0]);
        tk_normalized_free(&st_sinks[i].bufs[1]);
    }
    return st;
}

static void sequence_free(tk_pre_tokenizer *self) {
    sequence *q = (sequence *)self;
    for (size_t i = 0; i < q->n; i++) q->items[i]->free(q->items[i]);
    free(q->items);
    free(q);
}

/* {"type": "Sequence", "pretokenizers": [{...}, ...]} */
er_status tk_sequence_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    json_t *list = json_object_get(json, "pretokenizers");
    if (!json_is_array(list)) return FMT("a pre_tokenizer Sequence needs a pretokenizers array");
    size_t n = json_array_size(list);
    if (n > MAX_STAGES)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: a pre_tokenizer Sequence of %zu (over %d)", n,
                      MAX_STAGES);
    sequence *q = calloc(1, sizeof *q);
    if (!q || (n && !(q->items = calloc(n, sizeof *q->items)))) {
        free(q);
        return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    }
    q->base = (tk_pre_tokenizer){sequence_split, sequence_free};
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i);
        er_status st = json_is_object(item) ? tk_pre_tokenizer_load(t, item, &q->items[q->n], err)
                                            : FMT("pretokenizers[%zu] must be an object", i);
        if (!st && !q->items[q->n]) st = FMT("pretokenizers[%zu] must have a type", i);
        if (st) {
            sequence_free(&q->base);
            return st;
        }
        q->n++;
    }
    *out = &q->base;
    return ER_OK;
}
