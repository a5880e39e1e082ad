/* The Metaspace decoder {"type": "Metaspace", "replacement": "▁",
 * "prepend_scheme": "always"|"first"|"never"} (older files: "add_prefix_space":
 * false means "never"): every replacement character becomes a space, except
 * in the first token, where they are dropped unless the scheme is "never"
 * (the space the pre-tokenizer prepended). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_decoder base;
    char replacement[5]; /* one code point, UTF-8 */
    bool never_prepends;
} metaspace_decoder;

static er_status metaspace_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const metaspace_decoder *d = (const metaspace_decoder *)self;
    const char *rep = d->replacement;
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        bool drop = i == 0 && !d->never_prepends;
        er_status st = tk_put_replaced(out, s, n, rep, strlen(rep), " ", drop ? 0 : 1, err);
        if (!st) st = tk_pieces_close(out, err);
        if (st) return st;
    }
    return ER_OK;
}

static void metaspace_decoder_free(tk_decoder *self) { free(self); }

/* prepend_scheme (default "always") and the older add_prefix_space. */
static er_status parse_scheme(json_t *json, bool *never, er_err *err) {
    const char *scheme;
    bool add_prefix_space;
    er_status st = tk_json_string(json, "prepend_scheme", "always", "Metaspace prepend_scheme", &scheme, err);
    if (!st) st = tk_json_bool(json, "add_prefix_space", true, &add_prefix_space, err);
    if (st) return st;
    if (strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Metaspace prepend_scheme \"%.32s\" unknown", scheme);
    if (!add_prefix_space && strcmp(scheme, "never") && json_object_get(json, "prepend_scheme"))
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: Metaspace add_prefix_space contradicts prepend_scheme");
    *never = !add_prefix_space || !strcmp(scheme, "never");
    return ER_OK;
}

er_status tk_metaspace_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    const char *rep;
    bool never = false;
    er_status st = tk_json_string(json, "replacement", NULL, "Metaspace replacement", &rep, err);
    if (!st && !rep) st = er_set(err, ER_ERR_FORMAT, "tokenizer.json: Metaspace needs a replacement");
    if (!st && (!rep[0] || strlen(rep) != tk_utf8_next((const uint8_t *)rep, &(uint32_t){0})))
        st = er_set(err, ER_ERR_FORMAT, "tokenizer.json: Metaspace replacement must be one character");
    if (!st) st = parse_scheme(json, &never, err);
    if (st) return st;
    metaspace_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){metaspace_decode_chain, metaspace_decoder_free};
    memcpy(d->replacement, rep, strlen(rep));
    d->never_prepends = never;
    *out = &d->base;
    return ER_OK;
}
