/* The Sequence decoder {"type": "Sequence", "decoders": [...]}: each
 * decoder runs on the list the previous one made. */
#include <stdlib.h>

#include "tokenizer_internal.h"

#define MAX_MEMBERS 16

typedef struct {
    tk_decoder base;
    tk_decoder *members[MAX_MEMBERS];
    size_t n;
} sequence_decoder;

/* Two lists take turns: a member reads one and writes the other. */
static er_status sequence_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const sequence_decoder *d = (const sequence_decoder *)self;
    tk_pieces turn[2] = {{0}, {0}};
    const tk_pieces *from = in;
    er_status st = ER_OK;
    for (size_t i = 0; i < d->n && !st; i++) {
        tk_pieces *to = i + 1 == d->n ? out : &turn[i % 2];
        tk_pieces_clear(to);
        st = d->members[i]->decode_chain(d->members[i], from, to, err);
        from = to;
    }
    tk_pieces_free(&turn[0]);
    tk_pieces_free(&turn[1]);
    return st;
}

static void sequence_decoder_free(tk_decoder *self) {
    sequence_decoder *d = (sequence_decoder *)self;
    for (size_t i = 0; i < d->n; i++) d->members[i]->free(d->members[i]);
    free(d);
}

er_status tk_sequence_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    json_t *list = json_object_get(json, "decoders");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: decoder Sequence needs a decoders array");
    if (json_array_size(list) > MAX_MEMBERS)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: decoder Sequence of more than %d", MAX_MEMBERS);
    sequence_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){sequence_decode_chain, sequence_decoder_free};
    er_status st = ER_OK;
    for (size_t i = 0; i < json_array_size(list) && !st; i++) {
        json_t *m = json_array_get(list, i);
        st = json_is_null(m) ? er_set(err, ER_ERR_FORMAT, "tokenizer.json: decoder Sequence member %zu is null", i)
                             : tk_decoder_load(t, m, &d->members[d->n], err);
        if (!st) d->n++;
    }
    if (st) {
        sequence_decoder_free(&d->base);
        return st;
    }
    *out = &d->base;
    return ER_OK;
}
