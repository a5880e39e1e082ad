/* The CTC decoder {"type": "CTC", "pad_token": "<pad>",
 * "word_delimiter_token": "|", "cleanup": true}: runs of the same token
 * become one, the pad token is removed from each, then (cleanup) the
 * WordPiece cleanup runs and the word delimiter becomes a space; tokens
 * left empty are dropped. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_decoder base;
    char *pad, *delimiter;
    bool cleanup;
} ctc_decoder;

static bool same_piece(const tk_pieces *p, size_t i, size_t j) {
    size_t ni, nj;
    const char *a = tk_piece(p, i, &ni), *b = tk_piece(p, j, &nj);
    return ni == nj && !memcmp(a, b, ni);
}

static er_status ctc_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const ctc_decoder *d = (const ctc_decoder *)self;
    for (size_t i = 0; i < in->n; i++) {
        if (i && same_piece(in, i, i - 1)) continue;
        size_t n;
        const char *s = tk_piece(in, i, &n);
        er_status st = tk_put_replaced(out, s, n, d->pad, strlen(d->pad), "", 0, err);
        if (st) return st;
        char *w = tk_pieces_open(out, &n);
        if (d->cleanup) {
            tk_wordpiece_cleanup(w, &n);
            tk_replace_in_place(w, &n, d->delimiter, " "); /* the delimiter is not empty: load checks */
        }
        tk_pieces_cut_open(out, n);
        if (n && (st = tk_pieces_close(out, err))) return st;
    }
    return ER_OK;
}

static void ctc_decoder_free(tk_decoder *self) {
    ctc_decoder *d = (ctc_decoder *)self;
    free(d->pad);
    free(d->delimiter);
    free(d);
}

er_status tk_ctc_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    const char *pad, *delim;
    bool cleanup;
    er_status st = tk_json_string(json, "pad_token", "<pad>", "CTC pad_token", &pad, err);
    if (!st) st = tk_json_string(json, "word_delimiter_token", "|", "CTC word_delimiter_token", &delim, err);
    if (!st) st = tk_json_bool(json, "cleanup", true, &cleanup, err);
    if (!st && !delim[0]) st = er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: CTC word_delimiter_token is empty");
    if (st) return st;
    ctc_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){ctc_decode_chain, ctc_decoder_free};
    d->cleanup = cleanup;
    d->pad = tk_strdup(pad, err);
    d->delimiter = d->pad ? tk_strdup(delim, err) : NULL;
    if (!d->delimiter) {
        ctc_decoder_free(&d->base);
        return ER_ERR_NOMEM;
    }
    *out = &d->base;
    return ER_OK;
}
