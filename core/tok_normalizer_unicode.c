/* NFD, NFKD, NFC, NFKC with utf8proc's tables, with the offsets the Rust
 * library gives (its unicode-normalization-alignments crate): every output
 * code point carries a change, 0 for the first code point of a
 * decomposition and +1 for each further one; canonical ordering sorts the
 * code points with their changes; a composition merges two code points
 * into one whose change is the sum of theirs less one.  The changes are
 * then read as the Rust NormalizedString::transform reads them: a code
 * point with change <= 0 takes the next original code point and skips
 * -change more, one with change > 0 is inserted and shares the offsets of
 * the last original code point taken (not always the output code point
 * before it: U+0344 is U+0308 U+0301, and in NFC a + U+0308 compose,
 * taking a and U+0344, so U+0301 gets U+0344's offsets).  So reordered
 * marks keep the offsets of the position they land on, and a composed
 * code point those of its first original.
 *
 * Decomposition: each code point's full decomposition (canonical, or
 * compatibility for the K forms), each new code point moved back past the
 * marks of a higher combining class (a stable sort).  Composition (NFC,
 * NFKC) is the standard algorithm over that, in place: a code point
 * composes with the last starter unless blocked; utf8proc says whether a
 * pair has a primary composite.  The changes live in src until the end. */
#include <stdint.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

#define MAX_DECOMPOSITION 32 /* the longest (U+FDFA) is 18 */

typedef struct {
    tk_normalizer base;
    bool compat, compose;
} unicode_normalizer;

static int ccc(uint32_t cp) { return cp < 0x300 ? 0 : utf8proc_get_property((utf8proc_int32_t)cp)->combining_class; }

/* Code points whose decomposition is newer than the Rust library's tables
 * (its unicode-normalization-alignments crate predates Unicode 12.1): it
 * leaves them as they are.  Found by normalizing every code point with
 * both; only U+11938 has a canonical decomposition, the rest are
 * compatibility ones. */
static const uint32_t NOT_DECOMPOSED[][2] = {
    {0x32FF, 0x32FF},   {0xA7F2, 0xA7F4},   {0xAB69, 0xAB69},   {0x10781, 0x10785}, {0x10787, 0x107B0},
    {0x107B2, 0x107BA}, {0x11938, 0x11938}, {0x1E030, 0x1E06D}, {0x1F16C, 0x1F16C}, {0x1FBF0, 0x1FBF9},
};

/* Appends cp's decomposition with its changes, in canonical order. */
static er_status push_decomposed(tk_normalized *out, size_t floor, uint32_t cp, bool compat, er_err *err) {
    utf8proc_int32_t d[MAX_DECOMPOSITION];
    utf8proc_ssize_t m = 1;
    d[0] = (utf8proc_int32_t)cp;
    if (cp >= 0xA0 && !TK_IN_RANGES(cp, NOT_DECOMPOSED)) {
        int boundclass = 0;
        m = utf8proc_decompose_char((utf8proc_int32_t)cp, d, MAX_DECOMPOSITION,
                                    UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), &boundclass);
        if (m < 1 || m > MAX_DECOMPOSITION) d[0] = (utf8proc_int32_t)cp, m = 1;
    }
    er_status st = tk_normalized_reserve(out, (size_t)m, err);
    if (st) return st;
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        uint32_t c = (uint32_t)d[i];
        int cc = ccc(c);
        size_t j = out->n;
        out->cps[j] = c;
        out->src[j] = i ? 1 : 0;
        out->n++;
        out->n_bytes += 4; /* room held for its UTF-8, written at the end */
        while (cc && j > floor && ccc(out->cps[j - 1]) > cc) {
            uint32_t tc = out->cps[j - 1], ts = out->src[j - 1];
            out->cps[j - 1] = out->cps[j], out->src[j - 1] = out->src[j];
            out->cps[j] = tc, out->src[j] = ts;
            j--;
        }
    }
    return ER_OK;
}

/* The primary composite of a + b, or 0.  No canonical decomposition ends
 * in a code point below U+0300 (the second of a pair is a mark, a jamo or
 * a vowel sign), so plain text never reaches utf8proc here. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (b < 0x300) return 0;
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t m = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    /* utf8proc composes a pair even into a composition exclusion (U+2ADC,
     * the musical symbols U+1D15E...), which NFC never produces. */
    if (m != 1 || utf8proc_get_property(buf[0])->comp_exclusion) return 0;
    return (uint32_t)buf[0];
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
            out->src[starter] = (uint32_t)((int32_t)out->src[starter] + (int32_t)out->src[r] - 1);
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
    if (a >= b) return ER_OK; /* out may have no memory yet: nothing to write */
    size_t from = out->n, bytes_from = out->n_bytes;
    for (size_t k = a; k < b; k++) {
        er_status st = push_decomposed(out, from, cps[k], u->compat, err);
        if (st) return st;
    }
    if (u->compose) compose(out, from);
    /* Changes to original code points. */
    size_t next = a;
    for (size_t i = from; i < out->n; i++) {
        int32_t change = (int32_t)out->src[i];
        if (change > 0) {
            out->src[i] = (uint32_t)(next > a ? next - 1 : a); /* the last original taken */
        } else {
            out->src[i] = (uint32_t)(next < b ? next : b - 1);
            next += (size_t)(1 - change);
        }
    }
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
