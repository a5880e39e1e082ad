/* The ByteLevel decoder {"type": "ByteLevel", ...}: every token made only
 * of the byte-level alphabet's characters becomes the bytes they stand for
 * (any other token stays as its own UTF-8), and the bytes of all tokens
 * are one string, decoded as UTF-8 with each invalid sequence replaced by
 * U+FFFD the way Rust's String::from_utf8_lossy does. */
#include <stdlib.h>

#include "tokenizer_internal.h"

/* GPT-2's bytes_to_unicode: the printable bytes 33-126, 161-172 and
 * 174-255 are their own code point; the other 68 bytes, in order, are
 * U+0100 onwards.  The byte code point cp stands for, -1 if none. */
static int byte_of(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68) return -1;
    int k = (int)(cp - 0x100); /* the k-th byte that is not printable */
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        if (!printable && k-- == 0) return b;
    }
    return -1;
}

/* The bytes token s[0, n) stands for, appended to out; false (nothing
 * appended) when a character is not of the byte-level alphabet. */
static bool put_bytes_of(const char *s, size_t n, tk_pieces *out, er_err *err, er_status *st) {
    size_t start = out->len;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += tk_utf8_next((const uint8_t *)s + i, &cp);
        int b = byte_of(cp);
        if (b < 0) {
            out->len = start;
            return false;
        }
        char c = (char)b;
        if ((*st = tk_pieces_put(out, &c, 1, err))) return true;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at s[0, n), or 0 with *bad the length
 * of the maximal invalid prefix to replace by one U+FFFD. */
static size_t valid_utf8_at(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    size_t need = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    *bad = 1;
    if (need <= 1) return need;
    uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (size_t k = 1; k < need; k++) {
        if (k >= n || s[k] < (k == 1 ? lo : 0x80) || s[k] > (k == 1 ? hi : 0xBF)) return 0;
        *bad = k + 1;
    }
    return need;
}

er_status tk_put_utf8_lossy(tk_pieces *out, const uint8_t *s, size_t n, er_err *err) {
    er_status st = ER_OK;
    for (size_t i = 0; i < n && !st;) {
        size_t bad, ok = valid_utf8_at(s + i, n - i, &bad);
        st = ok ? tk_pieces_put(out, s + i, ok, err) : tk_pieces_put(out, "\xEF\xBF\xBD", 3, err);
        i += ok ? ok : bad;
    }
    return st;
}

static er_status byte_level_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    (void)self;
    tk_pieces raw = {0};
    er_status st = ER_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        if (!put_bytes_of(s, n, &raw, err, &st)) st = tk_pieces_put(&raw, s, n, err);
    }
    if (!st) st = tk_put_utf8_lossy(out, (const uint8_t *)raw.bytes, raw.len, err);
    if (!st) st = tk_pieces_close(out, err);
    tk_pieces_free(&raw);
    return st;
}

static void byte_level_decoder_free(tk_decoder *self) { free(self); }

er_status tk_byte_level_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    (void)json; /* add_prefix_space, trim_offsets, use_regex: the decoder uses none */
    tk_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *d = (tk_decoder){byte_level_decode_chain, byte_level_decoder_free};
    *out = d;
    return ER_OK;
}
