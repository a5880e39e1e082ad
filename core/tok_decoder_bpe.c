/* The BPEDecoder {"type": "BPEDecoder", "suffix": "</w>"}: the end-of-word
 * suffix becomes a space, except in the last token, where it goes. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_decoder base;
    char *suffix;
} bpe_decoder;

static er_status bpe_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const char *suffix = ((const bpe_decoder *)self)->suffix;
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        bool last = i + 1 == in->n;
        er_status st = tk_put_replaced(out, s, n, suffix, strlen(suffix), " ", last ? 0 : 1, err);
        if (!st) st = tk_pieces_close(out, err);
        if (st) return st;
    }
    return ER_OK;
}

static void bpe_decoder_free(tk_decoder *self) {
    free(((bpe_decoder *)self)->suffix);
    free(self);
}

er_status tk_bpe_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    const char *suffix;
    er_status st = tk_json_string(json, "suffix", "</w>", "BPEDecoder suffix", &suffix, err);
    if (st) return st;
    bpe_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){bpe_decode_chain, bpe_decoder_free};
    if (!(d->suffix = tk_strdup(suffix, err))) {
        free(d);
        return ER_ERR_NOMEM;
    }
    *out = &d->base;
    return ER_OK;
}
