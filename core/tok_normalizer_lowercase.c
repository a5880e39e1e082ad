/* Lowercase: each code point by Rust's char::to_lowercase (one code point
 * may become several, each keeping its original's offsets). */
#include <stdlib.h>

#include "tokenizer_internal.h"

/* The lowercase mappings of Unicode 16.0 that this utf8proc (Unicode 15.1)
 * lacks and Rust's char::to_lowercase has (sorted; found by lowercasing
 * every code point with both). */
static const uint32_t UNICODE_16_LOWER[][2] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0x264}, {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF}, {0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D5},
    {0xA7DA, 0xA7DB}, {0xA7DC, 0x19B}, {0x10D50, 0x10D70}, {0x10D51, 0x10D71}, {0x10D52, 0x10D72},
    {0x10D53, 0x10D73}, {0x10D54, 0x10D74}, {0x10D55, 0x10D75}, {0x10D56, 0x10D76}, {0x10D57, 0x10D77},
    {0x10D58, 0x10D78}, {0x10D59, 0x10D79}, {0x10D5A, 0x10D7A}, {0x10D5B, 0x10D7B}, {0x10D5C, 0x10D7C},
    {0x10D5D, 0x10D7D}, {0x10D5E, 0x10D7E}, {0x10D5F, 0x10D7F}, {0x10D60, 0x10D80}, {0x10D61, 0x10D81},
    {0x10D62, 0x10D82}, {0x10D63, 0x10D83}, {0x10D64, 0x10D84}, {0x10D65, 0x10D85}, {0x16EA0, 0x16EBB},
    {0x16EA1, 0x16EBC}, {0x16EA2, 0x16EBD}, {0x16EA3, 0x16EBE}, {0x16EA4, 0x16EBF}, {0x16EA5, 0x16EC0},
    {0x16EA6, 0x16EC1}, {0x16EA7, 0x16EC2}, {0x16EA8, 0x16EC3}, {0x16EA9, 0x16EC4}, {0x16EAA, 0x16EC5},
    {0x16EAB, 0x16EC6}, {0x16EAC, 0x16EC7}, {0x16EAD, 0x16EC8}, {0x16EAE, 0x16EC9}, {0x16EAF, 0x16ECA},
    {0x16EB0, 0x16ECB}, {0x16EB1, 0x16ECC}, {0x16EB2, 0x16ECD}, {0x16EB3, 0x16ECE}, {0x16EB4, 0x16ECF},
    {0x16EB5, 0x16ED0}, {0x16EB6, 0x16ED1}, {0x16EB7, 0x16ED2}, {0x16EB8, 0x16ED3},
};

static size_t lower(uint32_t cp, uint32_t out[8]) {
    if (cp >= UNICODE_16_LOWER[0][0])
        for (size_t i = 0; i < sizeof UNICODE_16_LOWER / sizeof *UNICODE_16_LOWER; i++)
            if (UNICODE_16_LOWER[i][0] == cp) {
                out[0] = UNICODE_16_LOWER[i][1];
                return 1;
            }
    return tk_fold(cp, false, true, out);
}

static er_status lowercase_normalize(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                                     tk_normalized *out, er_err *err) {
    (void)self;
    uint32_t buf[8];
    for (size_t k = a; k < b; k++) {
        size_t m = lower(cps[k], buf);
        er_status st = tk_normalized_reserve(out, m, err);
        if (st) return st;
        for (size_t i = 0; i < m; i++) tk_normalized_push(out, buf[i], (uint32_t)k);
    }
    return ER_OK;
}

static void lowercase_free(tk_normalizer *self) { free(self); }

/* {"type": "Lowercase"}: no options. */
er_status tk_lowercase_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    (void)t;
    (void)json;
    tk_normalizer *n = malloc(sizeof *n);
    if (!n) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *n = (tk_normalizer){lowercase_normalize, lowercase_free};
    *out = n;
    return ER_OK;
}
