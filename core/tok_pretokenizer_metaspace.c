/* Metaspace (SentencePiece): every space becomes the replacement (U+2581
 * by default), one replacement is put in front of a word that does not
 * start with it (prepend_scheme: always; first: only the text's first
 * word; never), and with split the word is cut before every replacement
 * (each one starts a word).  The rewritten text goes to the sink from a
 * scratch buffer, as ByteLevel's does: a replacement keeps the offsets of
 * the space it stands for, the prepended one those of the word's first
 * code point (the Rust library's NormalizedString::prepend). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

typedef struct {
    tk_pre_tokenizer base;
    uint32_t replacement;
    prepend_scheme prepend;
    bool split;
} metaspace;

/* The words of the rewritten text t[0, t->n): cut before every replacement. */
static er_status send_split(const metaspace *m, const tk_normalized *t, tk_word_sink *sink) {
    size_t start = 0;
    for (size_t k = 1; k <= t->n; k++) {
        if (k < t->n && t->cps[k] != m->replacement) continue;
        er_status st = sink->word(sink, t, start, k);
        if (st) return st;
        start = k;
    }
    return ER_OK;
}

static er_status metaspace_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                 tk_word_sink *sink, er_err *err) {
    const metaspace *m = (const metaspace *)self;
    if (a >= b) return ER_OK;
    tk_normalized *t = sink->scratch[0];
    tk_normalized_clear(t);
    er_status st = tk_normalized_reserve(t, b - a + 1, err);
    if (st) return st;
    uint32_t first = s->cps[a] == ' ' ? m->replacement : s->cps[a];
    bool prepend = first != m->replacement &&
                   (m->prepend == PREPEND_ALWAYS || (m->prepend == PREPEND_FIRST && s->src[a] == 0));
    if (prepend) tk_normalized_push(t, m->replacement, s->src[a]);
    for (size_t k = a; k < b; k++) tk_normalized_push(t, s->cps[k] == ' ' ? m->replacement : s->cps[k], s->src[k]);
    return m->split ? send_split(m, t, sink) : sink->word(sink, t, 0, t->n);
}

static void metaspace_free(tk_pre_tokenizer *self) { free(self); }

/* The one code point of a string setting. */
static er_status one_char(const char *s, const char *what, uint32_t *cp, er_err *err) {
    size_t bad, n_cp, n = strlen(s);
    if (!tk_utf8_valid((const uint8_t *)s, n, &bad, &n_cp) || n_cp != 1)
        return FMT("%s must be one character", what);
    tk_utf8_next((const uint8_t *)s, cp);
    return ER_OK;
}

/* {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
 *  "split": true}; older files: "add_prefix_space": false means never
 *  ("str_rep" is ignored, as by the Rust library). */
er_status tk_metaspace_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    const char *rep, *scheme;
    bool split, prefix;
    er_status st;
    if ((st = tk_json_string(json, "replacement", "\xE2\x96\x81", "Metaspace replacement", &rep, err)) ||
        (st = tk_json_string(json, "prepend_scheme", "always", "Metaspace prepend_scheme", &scheme, err)) ||
        (st = tk_json_bool(json, "split", true, &split, err)) ||
        (st = tk_json_bool(json, "add_prefix_space", true, &prefix, err)))
        return st;
    metaspace m = {{metaspace_split, metaspace_free}, 0, PREPEND_ALWAYS, split};
    if ((st = one_char(rep, "Metaspace replacement", &m.replacement, err))) return st;
    if (!strcmp(scheme, "first"))
        m.prepend = PREPEND_FIRST;
    else if (!strcmp(scheme, "never"))
        m.prepend = PREPEND_NEVER;
    else if (strcmp(scheme, "always"))
        return FMT("Metaspace prepend_scheme \"%s\" is not first, always or never", scheme);
    if (!prefix) {
        if (m.prepend != PREPEND_NEVER) return FMT("Metaspace add_prefix_space does not match prepend_scheme");
        m.prepend = PREPEND_NEVER;
    }
    metaspace *p = malloc(sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = m;
    *out = &p->base;
    return ER_OK;
}
