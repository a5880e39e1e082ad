/* Decoding: ids back to text, as the Rust library's Tokenizer::decode does.
 * Each id becomes its token string (an added token's content first, then
 * the model's); with skip_special_tokens, a string that is the content of
 * a special added token is left out.  The tokenizer's decoder then turns
 * the list of strings into a new list (tk_decoder), which is joined; with
 * no decoder, the strings are joined with single spaces.  Here the lists
 * are tk_pieces, and the text helpers the decoders share live here too. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static er_status nomem(er_err *err) { return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory"); }

er_status tk_pieces_put(tk_pieces *p, const void *s, size_t n, er_err *err) {
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n + 1) cap *= 2;
        char *b = realloc(p->bytes, cap);
        if (!b) return nomem(err);
        p->bytes = b;
        p->cap = cap;
    }
    if (n) memcpy(p->bytes + p->len, s, n);
    p->len += n;
    return ER_OK;
}

er_status tk_pieces_close(tk_pieces *p, er_err *err) {
    er_status st;
    if (p->n == p->n_cap && (st = tk_array_grow(&p->end, &p->n_cap, sizeof *p->end, err))) return st;
    p->end[p->n++] = p->len;
    return ER_OK;
}

void tk_pieces_free(tk_pieces *p) {
    free(p->bytes);
    free(p->end);
    memset(p, 0, sizeof *p);
}

char *tk_strdup(const char *s, er_err *err) {
    char *d = strdup(s);
    if (!d) nomem(err);
    return d;
}

/* The length of the UTF-8 sequence led by byte c (1 for a stray byte). */
static size_t utf8_len(unsigned char c) { return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

/* An empty pattern: rep before every code point and at the end. */
static er_status put_between_chars(tk_pieces *out, const char *s, size_t n, const char *rep, size_t rep_n,
                                   er_err *err) {
    er_status st = ER_OK;
    for (size_t i = 0; i < n && !st;) {
        size_t cl = utf8_len((unsigned char)s[i]);
        if (cl > n - i) cl = n - i;
        st = tk_pieces_put(out, rep, rep_n, err);
        if (!st) st = tk_pieces_put(out, s + i, cl, err);
        i += cl;
    }
    return st ? st : tk_pieces_put(out, rep, rep_n, err);
}

er_status tk_put_replaced(tk_pieces *out, const char *s, size_t n, const char *pat, size_t pat_n, const char *rep,
                          size_t rep_n, er_err *err) {
    if (!pat_n) return put_between_chars(out, s, n, rep, rep_n, err);
    er_status st = ER_OK;
    size_t from = 0;
    for (size_t i = 0; !st && i + pat_n <= n;) {
        if (memcmp(s + i, pat, pat_n)) {
            i++;
            continue;
        }
        st = tk_pieces_put(out, s + from, i - from, err);
        if (!st) st = tk_pieces_put(out, rep, rep_n, err);
        i += pat_n;
        from = i;
    }
    return st ? st : tk_pieces_put(out, s + from, n - from, err);
}

void tk_replace_in_place(char *s, size_t *n, const char *pat, const char *rep) {
    size_t pat_n = strlen(pat), rep_n = strlen(rep), r = 0, w = 0;
    while (r < *n) {
        if (r + pat_n <= *n && !memcmp(s + r, pat, pat_n)) {
            memmove(s + w, rep, rep_n); /* w + rep_n <= r + pat_n: never past unread bytes */
            w += rep_n;
            r += pat_n;
        } else {
            s[w++] = s[r++];
        }
    }
    *n = w;
}

/* Whether s is the content of a special added token (the Rust library
 * skips by string, so a vocabulary id spelled like one is skipped too). */
static bool is_special_string(const er_tokenizer *t, const char *s, size_t n) {
    for (size_t i = 0; i < t->n_added; i++) {
        const tk_added *a = &t->added[i];
        if (a->special && a->len == n && !memcmp(t->arena + a->off, s, n)) return true;
    }
    return false;
}

/* The token strings of ids into in, one piece each. */
static er_status ids_to_pieces(const er_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                               tk_pieces *in, er_err *err) {
    for (size_t i = 0; i < n; i++) {
        const char *s = er_tokenizer_id_to_token(t, ids[i]);
        if (!s)
            return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: id %d (at %zu) is not in the vocabulary of %zu",
                          (int)ids[i], i, t->vocab_size);
        size_t len = strlen(s);
        if (skip_special && is_special_string(t, s, len)) continue;
        er_status st = tk_pieces_put(in, s, len, err);
        if (!st) st = tk_pieces_close(in, err);
        if (st) return st;
    }
    return ER_OK;
}

/* No decoder: the strings joined with single spaces, into out's one piece. */
static er_status join_with_spaces(const tk_pieces *in, tk_pieces *out, er_err *err) {
    er_status st = ER_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        size_t len;
        const char *s = tk_piece(in, i, &len);
        if (i) st = tk_pieces_put(out, " ", 1, err);
        if (!st) st = tk_pieces_put(out, s, len, err);
    }
    return st;
}

er_status er_tokenizer_decode(const er_tokenizer *t, const int32_t *ids, size_t n, int skip_special_tokens,
                              char **out, size_t *len, er_err *err) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!t || !out || (!ids && n)) return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: NULL tokenizer, ids or out");
    tk_pieces in = {0}, dec = {0};
    er_status st = ids_to_pieces(t, ids, n, skip_special_tokens != 0, &in, err);
    if (!st) st = t->decoder ? t->decoder->decode_chain(t->decoder, &in, &dec, err) : join_with_spaces(&in, &dec, err);
    if (!st) st = tk_pieces_put(&dec, "", 0, err); /* room for the NUL even when empty */
    if (!st) {
        dec.bytes[dec.len] = '\0'; /* the pieces joined are the buffer itself */
        *out = dec.bytes;
        if (len) *len = dec.len;
        dec.bytes = NULL;
    }
    tk_pieces_free(&in);
    tk_pieces_free(&dec);
    return st;
}
