/* NFD, NFKD, NFC, NFKC with utf8proc's tables, done code point by code
 * point so that every normalized code point keeps the original it came
 * from, as the Rust NormalizedString alignments do: a decomposition's code
 * points all come from the decomposed one, and a composed code point takes
 * the offsets of its starter (the first of the code points it replaces);
 * reordered marks keep the offsets of the position they land on.
 *
 * Decomposition: each code point's full decomposition (canonical, or
 * compatibility for the K forms), then the canonical ordering of each run
 * of combining marks (a stable sort by combining class, carrying src).
 * Composition (NFC, NFKC) is the standard algorithm over that result, in
 * place: a mark composes with the last starter unless blocked; utf8proc
 * answers whether a pair has a primary composite. */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

#define MAX_DECOMPOSITION 32 /* the longest (U+FDFA) is 18 */
#include <stdint.h>

typedef struct {
    tk_normalizer base;
    bool compat, compose;
} unicode_normalizer;

static int ccc(uint32_t cp) { return cp < 0x300 ? 0 : utf8proc_get_property((utf8proc_int32_t)cp)->combining_class; }

/* Appends cp's decomposition, each code point moved back past the marks
 * of a higher class before it (canonical ordering, stable).  The sources
 * stay where they are: the Rust library aligns reordered marks by
 * position (the k-th code point of a run keeps the k-th original's
 * offsets), not by which mark went where. */
static er_status push_decomposed(tk_normalized *out, size_t floor, uint32_t cp, uint32_t src, bool compat,
                                 er_err *err) {
    utf8proc_int32_t d[MAX_DECOMPOSITION];
    utf8proc_ssize_t m = 1;
    d[0] = (utf8proc_int32_t)cp;
    if (cp >= 0xA0) {
        int boundclass = 0;
        m = utf8proc_decompose_char((utf8proc_int32_t)cp, d, MAX_DECOMPOSITION,
                                    compat ? UTF8PROC_COMPAT : 0, &boundclass);
        if (m < 1 || m > MAX_DECOMPOSITION) d[0] = (utf8proc_int32_t)cp, m = 1;
    }
    er_status st = tk_normalized_reserve(out, (size_t)m, err);
    if (st) return st;
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        uint32_t c = (uint32_t)d[i];
        int cc = ccc(c);
        size_t j = out->n;
        out->cps[j] = c;
        out->src[j] = src;
        out->n++;
        out->n_bytes += 4; /* room held for its UTF-8, written at the end */
        while (cc && j > floor && ccc(out->cps[j - 1]) > cc) {
            uint32_t tc = out->cps[j - 1];
            out->cps[j - 1] = out->cps[j];
            out->cps[j] = tc;
            j--;
        }
    }
    return ER_OK;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t m = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    return m == 1 ? (uint32_t)buf[0] : 0;
}

/* Canonical composition of out's code points [from, n), in place. */
static void compose(tk_normalized *out, size_t from) {
    size_t w = from, starter = SIZE_MAX;
    int last_cc = 0;
    for (size_t r = from; r < out->n; r++) {
        uint32_t c = out->cps[r];
        int cc = ccc(c);
        bool blocked = starter != SIZE_MAX && w - 1 != starter && (last_cc == 0 || last_cc >= cc);
        uint32_t comp = starter != SIZE_MAX && !blocked ? compose_pair(out->cps[starter], c) : 0;
        if (comp) {
            out->cps[starter] = comp;
            continue;
        }
        if (cc == 0) starter = w;
        out->cps[w] = c;
        out->src[w] = out->src[r];
        w++;
        last_cc = cc;
    }
    out->n = w;
}

static er_status unicode_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                   tk_normalized *out, er_err *err) {
    const unicode_normalizer *u = (const unicode_normalizer *)self;
    size_t from = out->n, bytes_from = out->n_bytes;
    for (size_t k = a; k < b; k++) {
        er_status st = push_decomposed(out, from, cps[k], (uint32_t)k, u->compat, err);
        if (st) return st;
    }
    if (u->compose) compose(out, from);
    /* The UTF-8 of what was written, from the code points. */
    size_t nb = bytes_from;
    for (size_t i = from; i < out->n; i++) {
        out->byte_at[i] = (uint32_t)nb;
        nb += tk_utf8_put(out->bytes + nb, out->cps[i]);
    }
    out->n_bytes = nb;
    out->byte_at[out->n] = (uint32_t)nb;
    return ER_OK;
}

static void unicode_free(tk_normalizer *self) { free(self); }

static er_status unicode_new(bool compat, bool compose_, tk_normalizer **out, er_err *err) {
    unicode_normalizer *u = malloc(sizeof *u);
    if (!u) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *u = (unicode_normalizer){{unicode_normalize, unicode_free}, compat, compose_};
    *out = &u->base;
    return ER_OK;
}

/* {"type": "NFC"} and the others: no options. */
er_status tk_nfd_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t, (void)json;
    return unicode_new(false, false, out, err);
}
er_status tk_nfkd_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t, (void)json;
    return unicode_new(true, false, out, err);
}
er_status tk_nfc_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t, (void)json;
    return unicode_new(false, true, out, err);
}
er_status tk_nfkc_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t, (void)json;
    return unicode_new(true, true, out, err);
}
