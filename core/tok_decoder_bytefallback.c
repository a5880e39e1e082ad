/* The ByteFallback decoder {"type": "ByteFallback"}: a run of byte tokens
 * "<0xNN>" becomes the string those bytes spell when they are valid UTF-8,
 * else one U+FFFD per byte; every other token stays as it is. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a token "<0xNN>", -1 if it is not one.  Rust's
 * u8::from_str_radix takes a sign too: "<0x+F>" is byte 15. */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = s[3] == '+' ? 0 : hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* The pending bytes as one piece, or one U+FFFD piece per byte. */
static er_status flush_bytes(tk_pieces *bytes, tk_pieces *out, er_err *err) {
    size_t bad, n_cp;
    er_status st = ER_OK;
    if (!bytes->len) return ER_OK;
    if (tk_utf8_valid((const uint8_t *)bytes->bytes, bytes->len, &bad, &n_cp)) {
        st = tk_pieces_put(out, bytes->bytes, bytes->len, err);
        if (!st) st = tk_pieces_close(out, err);
    } else {
        for (size_t i = 0; i < bytes->len && !st; i++) {
            st = tk_pieces_put(out, "\xEF\xBF\xBD", 3, err);
            if (!st) st = tk_pieces_close(out, err);
        }
    }
    tk_pieces_clear(bytes);
    return st;
}

static er_status byte_fallback_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out,
                                            er_err *err) {
    (void)self;
    tk_pieces bytes = {0};
    er_status st = ER_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        int b = byte_token(s, n);
        char c = (char)b;
        if (b >= 0) {
            st = tk_pieces_put(&bytes, &c, 1, err);
            continue;
        }
        st = flush_bytes(&bytes, out, err);
        if (!st) st = tk_pieces_put(out, s, n, err);
        if (!st) st = tk_pieces_close(out, err);
    }
    if (!st) st = flush_bytes(&bytes, out, err);
    tk_pieces_free(&bytes);
    return st;
}

static void byte_fallback_decoder_free(tk_decoder *self) { free(self); }

er_status tk_byte_fallback_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    (void)json;
    tk_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *d = (tk_decoder){byte_fallback_decode_chain, byte_fallback_decoder_free};
    *out = d;
    return ER_OK;
}
