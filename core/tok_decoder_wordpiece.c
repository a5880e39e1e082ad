/* The WordPiece decoder {"type": "WordPiece", "prefix": "##", "cleanup":
 * true}: every token but the first loses the prefix when it has it and gets
 * a space in front when it does not; with cleanup, the tokenization spaces
 * before punctuation and English contractions go (" ." -> ".", " n't" ->
 * "n't", ...), token by token, as the Rust library does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_decoder base;
    char *prefix;
    bool cleanup;
} wordpiece_decoder;

/* The Rust library's wordpiece::cleanup, in its order; every replacement
 * is no longer than what it replaces, so it runs in place. */
static const char *const CLEANUP[][2] = {
    {" .", "."},     {" ?", "?"},     {" !", "!"},   {" ,", ","},   {" ' ", "'"},   {" n't", "n't"},
    {" 'm", "'m"},   {" do not", " don't"},          {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};

void tk_wordpiece_cleanup(char *s, size_t *n) {
    for (size_t i = 0; i < sizeof CLEANUP / sizeof *CLEANUP; i++)
        tk_replace_in_place(s, n, CLEANUP[i][0], CLEANUP[i][1]);
}

static er_status wordpiece_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const wordpiece_decoder *d = (const wordpiece_decoder *)self;
    size_t prefix_n = strlen(d->prefix);
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        er_status st = ER_OK;
        if (i && n >= prefix_n && !memcmp(s, d->prefix, prefix_n)) {
            s += prefix_n;
            n -= prefix_n;
        } else if (i) {
            st = tk_pieces_put(out, " ", 1, err);
        }
        if (!st) st = tk_pieces_put(out, s, n, err);
        if (!st && d->cleanup) {
            size_t m;
            char *w = tk_pieces_open(out, &m);
            tk_wordpiece_cleanup(w, &m);
            tk_pieces_cut_open(out, m);
        }
        if (!st) st = tk_pieces_close(out, err);
        if (st) return st;
    }
    return ER_OK;
}

static void wordpiece_decoder_free(tk_decoder *self) {
    free(((wordpiece_decoder *)self)->prefix);
    free(self);
}

er_status tk_wordpiece_decoder_new(const char *prefix, bool cleanup, tk_decoder **out, er_err *err) {
    wordpiece_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){wordpiece_decode_chain, wordpiece_decoder_free};
    d->cleanup = cleanup;
    if (!(d->prefix = tk_strdup(prefix, err))) {
        free(d);
        return ER_ERR_NOMEM;
    }
    *out = &d->base;
    return ER_OK;
}

er_status tk_wordpiece_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    const char *prefix;
    bool cleanup;
    er_status st = tk_json_string(json, "prefix", "##", "decoder prefix", &prefix, err);
    if (!st) st = tk_json_bool(json, "cleanup", true, &cleanup, err);
    return st ? st : tk_wordpiece_decoder_new(prefix, cleanup, out, err);
}
