/* Digits: numeric code points (Rust char::is_numeric: Nd, Nl, No) split
 * from the rest, each alone (individual_digits) or in runs. */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_pre_tokenizer base;
    bool individual;
} digits;

/* Digits newer than this utf8proc (Unicode 15.1), unassigned to it, that
 * Rust's char::is_numeric knows.  Found by running every code point
 * through both. */
static const uint32_t NEWER_DIGITS[][2] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11DE0, 0x11DE9}, {0x16130, 0x16139},
    {0x16D70, 0x16D79}, {0x16FF4, 0x16FF6}, {0x1CCF0, 0x1CCF9}, {0x1E5F1, 0x1E5FA},
};

static bool is_numeric(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if (c == UTF8PROC_CATEGORY_CN) return TK_IN_RANGES(cp, NEWER_DIGITS);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

static er_status digits_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                              tk_word_sink *sink, er_err *err) {
    (void)err; /* only the sink fails */
    tk_splitter sp;
    bool individual = ((const digits *)self)->individual;
    tk_splitter_begin(&sp, individual ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS, false, s, sink);
    return tk_split_by_class(&sp, a, b, is_numeric);
}

static void digits_free(tk_pre_tokenizer *self) { free(self); }

/* {"type": "Digits", "individual_digits": false} */
er_status tk_digits_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    bool individual;
    er_status st = tk_json_bool(json, "individual_digits", false, &individual, err);
    if (st) return st;
    digits *d = malloc(sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *d = (digits){{digits_split, digits_free}, individual};
    *out = &d->base;
    return ER_OK;
}
