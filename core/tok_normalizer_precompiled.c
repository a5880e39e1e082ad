/* Precompiled (SentencePiece's normalizer, as in t5, ALBERT, XLM-R): the
 * rules are a double-array trie (Darts) from UTF-8 keys to offsets into a
 * pool of NUL-terminated replacement strings, in precompiled_charsmap
 * (base64): u32 trie size in bytes (little-endian), the trie's u32 units,
 * then the pool.  The text is cut into extended grapheme clusters; a
 * cluster under 6 bytes that a key starts is replaced whole, else each of
 * its code points a key starts is replaced.  As spm_precompiled, the
 * first (shortest) key that is a prefix wins.  Offsets follow the Rust
 * library's NormalizedString::transform on the (char, change) list its
 * Precompiled builds, quirks included: a replacement's chars beyond the
 * replaced count are insertions (aligned to the char before them), fewer
 * chars fold the difference into the last char emitted so far.  Every
 * trie unit and pool offset is bounds-checked, at load and at use: a
 * malformed charsmap is ER_ERR_FORMAT or never matches, never a crash. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)
#define MAX_CHARSMAP (64u << 20) /* decoded bytes; real ones are ~250 KB */

typedef struct {
    tk_normalizer base;
    uint32_t *units; /* the trie */
    size_t n_units;
    char *pool; /* replacement strings, valid UTF-8 */
    size_t pool_len;
    /* The rule of each ASCII code point alone (pool offset, length; no
     * rule: TK_NONE), looked up once at load: most text is ASCII. */
    uint32_t ascii_at[128], ascii_len[128];
} precompiled;

/* Darts unit fields. */
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

/* The replacement of the shortest key that is a prefix of key[0, n):
 * *rep, *rep_n; false if none (or if the charsmap points outside itself). */
static bool lookup(const precompiled *p, const uint8_t *key, size_t n, const char **rep, size_t *rep_n) {
    if (!p->n_units) return false;
    size_t pos = unit_offset(p->units[0]);
    for (size_t i = 0; i < n && key[i]; i++) {
        pos ^= key[i];
        if (pos >= p->n_units) return false;
        uint32_t u = p->units[pos];
        if (unit_label(u) != key[i]) return false;
        pos ^= unit_offset(u);
        if (!unit_has_leaf(u)) continue;
        if (pos >= p->n_units) return false;
        size_t at = unit_value(p->units[pos]);
        if (at > p->pool_len || (at < p->pool_len && (p->pool[at] & 0xC0) == 0x80)) return false;
        const char *end = memchr(p->pool + at, 0, p->pool_len - at);
        *rep = p->pool + at;
        *rep_n = end ? (size_t)(end - *rep) : p->pool_len - at;
        return true;
    }
    return false;
}

/* The Rust library's replace(): appends rep (replacing old_count chars) to
 * the transformation list in out from index `first`, each char's change
 * held in src until apply_changes. */
static er_status push_replacement(tk_normalized *out, size_t first, size_t old_count, const char *rep,
                                  size_t rep_n, er_err *err) {
    er_status st = tk_normalized_reserve(out, rep_n, err);
    if (st) return st;
    size_t new_count = 0;
    for (size_t i = 0; i < rep_n; new_count++) {
        uint32_t cp;
        i += tk_utf8_next((const uint8_t *)rep + i, &cp);
        tk_normalized_push(out, cp, 0);
    }
    if (new_count > old_count) {
        for (size_t k = 0; k < new_count - old_count; k++) out->src[out->n - 1 - k] = 1;
    } else if (new_count < old_count && out->n > first) {
        out->src[out->n - 1] = (uint32_t)((int32_t)out->src[out->n - 1] - (int32_t)(old_count - new_count));
    }
    return ER_OK;
}

/* Turns the changes in src[first, n) into original indices, as
 * NormalizedString::transform walks the text cps[a, b) it replaces. */
static void apply_changes(tk_normalized *out, size_t first, size_t a, size_t b) {
    size_t old = a;
    for (size_t i = first; i < out->n; i++) {
        int32_t change = (int32_t)out->src[i];
        if (change > 0) {
            out->src[i] = (uint32_t)(old > a ? old - 1 : a);
        } else {
            out->src[i] = (uint32_t)(old < b ? old : b - 1);
            old += 1 + (size_t)(-(int64_t)change);
        }
    }
}

/* One grapheme cluster cps[g, e) into the transformation list. */
static er_status grapheme(const precompiled *p, const uint32_t *cps, size_t g, size_t e, tk_normalized *out,
                          size_t first, er_err *err) {
    uint8_t buf[8];
    size_t len = 0;
    const char *rep;
    size_t rep_n;
    for (size_t k = g; k < e && len < 6; k++) {
        uint8_t tmp[4];
        size_t l = tk_utf8_put(tmp, cps[k]);
        if (len + l <= sizeof buf) memcpy(buf + len, tmp, l);
        len += l;
    }
    if (len < 6 && lookup(p, buf, len, &rep, &rep_n)) return push_replacement(out, first, e - g, rep, rep_n, err);
    for (size_t k = g; k < e; k++) {
        len = tk_utf8_put(buf, cps[k]);
        bool found = lookup(p, buf, len, &rep, &rep_n);
        er_status st = found ? push_replacement(out, first, 1, rep, rep_n, err) : tk_normalized_reserve(out, 1, err);
        if (st) return st;
        if (!found) tk_normalized_push(out, cps[k], 0);
    }
    return ER_OK;
}

/* An ASCII code point followed by another (or by nothing) is a grapheme
 * of its own, but for CR LF. */
static inline bool lone_ascii(const uint32_t *cps, size_t g, size_t b) {
    return cps[g] < 0x80 && (g + 1 == b || (cps[g + 1] < 0x80 && !(cps[g] == '\r' && cps[g + 1] == '\n')));
}

static er_status precompiled_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                       tk_normalized *out, er_err *err) {
    const precompiled *p = (const precompiled *)self;
    size_t first = out->n;
    utf8proc_int32_t state = 0;
    for (size_t g = a; g < b;) {
        er_status st;
        if (lone_ascii(cps, g, b)) {
            /* utf8proc's state after an ASCII code point is that code
             * point's class, which state 0 stands for */
            state = 0;
            uint32_t c = cps[g], at = p->ascii_at[c];
            st = at == TK_NONE ? tk_normalized_reserve(out, 1, err)
                               : push_replacement(out, first, 1, p->pool + at, p->ascii_len[c], err);
            if (st) return st;
            if (at == TK_NONE) tk_normalized_push(out, c, 0);
            g++;
            continue;
        }
        size_t e = g + 1;
        while (e < b && !utf8proc_grapheme_break_stateful((utf8proc_int32_t)cps[e - 1], (utf8proc_int32_t)cps[e], &state))
            e++;
        if ((st = grapheme(p, cps, g, e, out, first, err))) return st;
        g = e;
    }
    apply_changes(out, first, a, b);
    return ER_OK;
}

static void precompiled_free(tk_normalizer *self) {
    precompiled *p = (precompiled *)self;
    if (!p) return;
    free(p->units);
    free(p->pool);
    free(p);
}

/* The decoded charsmap: trie size, units, pool (valid UTF-8). */
static er_status parse_charsmap(precompiled *p, const uint8_t *blob, size_t n, er_err *err) {
    if (n < 4) return FMT("Precompiled charsmap too short");
    uint32_t trie_size = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    size_t n_units = trie_size / 4;
    if (n_units > (n - 4) / 4) return FMT("Precompiled charsmap: trie of %u bytes past its end", trie_size);
    size_t pool_at = 4 + 4 * n_units, bad, n_cp;
    p->pool_len = n - pool_at;
    if (!tk_utf8_valid(blob + pool_at, p->pool_len, &bad, &n_cp))
        return FMT("Precompiled charsmap: invalid UTF-8 in its strings at %zu", bad);
    p->units = malloc((n_units ? n_units : 1) * sizeof *p->units);
    p->pool = malloc(p->pool_len ? p->pool_len : 1);
    if (!p->units || !p->pool) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n_units; i++) {
        const uint8_t *u = blob + 4 + 4 * i;
        p->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    p->n_units = n_units;
    if (p->pool_len) memcpy(p->pool, blob + pool_at, p->pool_len);
    for (uint8_t c = 0; c < 128; c++) {
        const char *rep;
        size_t rep_n;
        bool found = lookup(p, &c, 1, &rep, &rep_n);
        p->ascii_at[c] = found ? (uint32_t)(rep - p->pool) : TK_NONE;
        p->ascii_len[c] = found ? (uint32_t)rep_n : 0;
    }
    return ER_OK;
}

/* {"type": "Precompiled", "precompiled_charsmap": "<base64>"} */
er_status tk_precompiled_normalizer_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    json_t *b64 = json_object_get(json, "precompiled_charsmap");
    if (!json_is_string(b64)) return FMT("Precompiled needs a precompiled_charsmap string");
    size_t len = json_string_length(b64), n = 0;
    if (len / 4 * 3 > MAX_CHARSMAP) return FMT("Precompiled charsmap of %zu characters too large", len);
    uint8_t *blob = malloc(len / 4 * 3 + 3);
    precompiled *p = calloc(1, sizeof *p);
    er_status st = ER_OK;
    if (!blob || !p)
        st = er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    else if (sodium_base642bin(blob, len / 4 * 3 + 3, json_string_value(b64), len, "\n\r ", &n, NULL,
                               sodium_base64_VARIANT_ORIGINAL) != 0)
        st = FMT("Precompiled charsmap is not base64");
    if (!st) st = parse_charsmap(p, blob, n, err);
    free(blob);
    if (st) {
        if (p) precompiled_free(&p->base);
        return st;
    }
    p->base = (tk_normalizer){precompiled_normalize, precompiled_free};
    *out = &p->base;
    return ER_OK;
}
