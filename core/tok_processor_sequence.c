/* The Sequence post-processor: {"type": "Sequence", "processors": [...]}.
 * The Rust library runs its members one after another on the encodings.
 * Here the encoding is built once, by the one member that adds special
 * tokens (the last member when none does); every other member runs first,
 * in order, without special tokens, and the offsets it gives (a ByteLevel
 * member trims them) become the builder's input.  In the files that use a
 * Sequence, [ByteLevel, TemplateProcessing], only one member adds tokens;
 * two such members would add them twice, a file nobody meant: refused. */
#include <stdlib.h>

#include "tokenizer_internal.h"

#define MAX_MEMBERS 16

typedef struct {
    tk_post_processor base;
    tk_post_processor *members[MAX_MEMBERS];
    size_t n;
    const tk_post_processor *builder; /* one of members */
} sequence_processor;

static size_t sequence_added_tokens(const tk_post_processor *self, bool pair) {
    const tk_post_processor *b = ((const sequence_processor *)self)->builder;
    return b->added_tokens(b, pair);
}

/* Member m without special tokens on the copied tokens; its offsets are
 * kept in the copy.  A member whose template puts B before A is refused. */
static er_status run_member(const tk_post_processor *m, const er_tokenizer *t, tk_token_copy *c, bool pair,
                            er_err *err) {
    er_encoding *e = NULL;
    er_status st = m->process(m, t, &c->a, c->a.n, pair ? &c->b : NULL, c->b.n, false, &e, err);
    if (st) return st;
    size_t n = c->a.n + c->b.n;
    bool in_order = e->n == n; /* A's tokens, then B's: what the copy-back below assumes */
    for (size_t i = 0; in_order && i < n; i++) in_order = e->sequence_ids[i] == (i < c->a.n ? 0 : 1);
    if (!in_order)
        st = er_set(err, ER_ERR_UNSUPPORTED, "tokenizer: post_processor Sequence member reorders the sequences");
    for (size_t i = 0; !st && i < n; i++) {
        tk_token *tk = &c->buf[i];
        tk->cs = e->offsets[i].start;
        tk->ce = e->offsets[i].end;
        tk->bs = e->byte_offsets[i].start;
        tk->be = e->byte_offsets[i].end;
    }
    er_encoding_free(e);
    return st;
}

static er_status sequence_process(const tk_post_processor *self, const er_tokenizer *t, const tk_tokens *a,
                                  size_t na, const tk_tokens *b, size_t nb, bool add_special, er_encoding **out,
                                  er_err *err) {
    const sequence_processor *p = (const sequence_processor *)self;
    tk_token_copy c;
    er_status st = tk_token_copy_make(a, na, b, nb, &c, err);
    if (st) return st;
    for (size_t i = 0; !st && i < p->n; i++)
        if (p->members[i] != p->builder) st = run_member(p->members[i], t, &c, b != NULL, err);
    if (!st) st = p->builder->process(p->builder, t, &c.a, na, b ? &c.b : NULL, nb, add_special, out, err);
    free(c.buf);
    return st;
}

static void sequence_free(tk_post_processor *self) {
    sequence_processor *p = (sequence_processor *)self;
    for (size_t i = 0; i < p->n; i++) p->members[i]->free(p->members[i]);
    free(p);
}

/* The member that builds the encoding; NULL (and err set) if two add tokens. */
static const tk_post_processor *pick_builder(const sequence_processor *p, er_err *err) {
    const tk_post_processor *builder = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const tk_post_processor *m = p->members[i];
        if (!m->added_tokens(m, false) && !m->added_tokens(m, true)) continue;
        if (builder) {
            er_set(err, ER_ERR_UNSUPPORTED,
                   "tokenizer.json: post_processor Sequence with two members that add special tokens");
            return NULL;
        }
        builder = m;
    }
    return builder ? builder : p->members[p->n - 1];
}

static er_status load_members(er_tokenizer *t, json_t *list, sequence_processor *p, er_err *err) {
    if (!json_is_array(list) || json_array_size(list) == 0)
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: post_processor Sequence needs a processors array");
    if (json_array_size(list) > MAX_MEMBERS)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: post_processor Sequence of more than %d",
                      MAX_MEMBERS);
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *m = json_array_get(list, i);
        if (json_is_null(m))
            return er_set(err, ER_ERR_FORMAT, "tokenizer.json: post_processor Sequence member %zu is null", i);
        er_status st = tk_post_processor_load(t, m, &p->members[p->n], err);
        if (st) return st;
        p->n++;
    }
    return ER_OK;
}

er_status tk_sequence_processing_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    sequence_processor *p = calloc(1, sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    p->base = (tk_post_processor){sequence_added_tokens, sequence_process, sequence_free, false};
    er_status st = load_members(t, json_object_get(json, "processors"), p, err);
    if (!st && !(p->builder = pick_builder(p, err))) st = ER_ERR_UNSUPPORTED;
    if (st) {
        sequence_free(&p->base);
        return st;
    }
    *out = &p->base;
    return ER_OK;
}
