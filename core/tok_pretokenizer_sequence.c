/* Sequence of pre-tokenizers: each cuts the words of the one before.  The
 * members are chained through sinks built on the stack for the call: the
 * sink of member i runs member i + 1 on each word it is sent, and the last
 * member's words go to the pipeline's sink. */
#include <stdlib.h>

#include "tokenizer_internal.h"

#define MAX_MEMBERS 16 /* deeper needs a nested Sequence */

typedef struct {
    tk_pre_tokenizer base;
    size_t n;
    tk_pre_tokenizer *member[MAX_MEMBERS];
} sequence;

typedef struct {
    tk_word_sink base; /* first: the member before sends its words here */
    const sequence *seq;
    size_t next; /* the member this sink runs */
    tk_word_sink *after; /* where that member's words go */
    er_err *err;
} link_sink;

static er_status link_word(tk_word_sink *self, const tk_normalized *s, size_t start, size_t end) {
    link_sink *l = (link_sink *)self;
    const tk_pre_tokenizer *m = l->seq->member[l->next];
    return m->split(m, s, start, end, l->after, l->err);
}

static er_status sequence_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                tk_word_sink *sink, er_err *err) {
    const sequence *q = (const sequence *)self;
    if (!q->n) return a < b ? sink->word(sink, s, a, b) : ER_OK;
    link_sink links[MAX_MEMBERS];
    tk_word_sink *after = sink;
    for (size_t i = q->n; i-- > 1;) {
        links[i] = (link_sink){{link_word, {sink->scratch[0], sink->scratch[1]}}, q, i, after, err};
        after = &links[i].base;
    }
    return q->member[0]->split(q->member[0], s, a, b, after, err);
}

static void sequence_free(tk_pre_tokenizer *self) {
    sequence *q = (sequence *)self;
    for (size_t i = 0; i < q->n; i++) q->member[i]->free(q->member[i]);
    free(q);
}

/* {"type": "Sequence", "pretokenizers": [{...}, ...]} */
er_status tk_sequence_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    json_t *list = json_object_get(json, "pretokenizers");
    if (!json_is_array(list)) return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Sequence needs \"pretokenizers\"");
    if (json_array_size(list) > MAX_MEMBERS)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer Sequence of more than %d",
                      MAX_MEMBERS);
    sequence *q = calloc(1, sizeof *q);
    if (!q) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    q->base = (tk_pre_tokenizer){sequence_split, sequence_free};
    for (size_t i = 0; i < json_array_size(list); i++) {
        tk_pre_tokenizer *m = NULL;
        er_status st = tk_pre_tokenizer_load(t, json_array_get(list, i), &m, err);
        if (!st && !m) st = er_set(err, ER_ERR_FORMAT, "tokenizer.json: null in a pre-tokenizer Sequence");
        if (st) {
            sequence_free(&q->base);
            return st;
        }
        q->member[q->n++] = m;
    }
    *out = &q->base;
    return ER_OK;
}
