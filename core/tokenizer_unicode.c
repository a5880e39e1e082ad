/* Unicode helpers for the tokenizer.  Every property comes from utf8proc;
 * the only literals are ASCII fast paths and BERT's own definitions (the CJK
 * block list of is_chinese_char, taken verbatim from Hugging Face). */
#include <utf8proc.h>

#include "tokenizer_internal.h"

size_t tk_utf8_next(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t tk_utf8_put(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
bool tk_utf8_valid(const uint8_t *s, size_t n, size_t *bad, size_t *n_cp) {
    size_t i = 0, count = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; count++; continue; }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else { *bad = i; return false; }
        if (n - i < len) { *bad = i; return false; }
        if (s[i + 1] < lo || s[i + 1] > hi) { *bad = i; return false; }
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) { *bad = i; return false; }
        i += len;
        count++;
    }
    *n_cp = count;
    return true;
}

bool tk_is_whitespace_above_ascii(uint32_t cp) {
    if (cp == 0x85) return true;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/* The Rust library's BertNormalizer and BertPreTokenizer take their
 * categories from the unicode_categories crate, whose tables are Unicode 8.0:
 * a code point assigned since then is unassigned (Cn) there, so it is
 * neither removed as a control nor split as punctuation (it becomes part of
 * a word, usually [UNK]).  These are the punctuation (P*) and format (Cf)
 * code points utf8proc knows that Unicode 8.0 did not have: utf8proc's P*
 * and Cf code points whose Age (Perl's Unicode::UCD, Unicode 14) is above
 * 8.0 or unassigned (Unicode 15).  The Rust goldens check U+0890, U+13430,
 * U+2E4F, U+2E52, U+1E95E, U+16FE2 and U+1B7D (and U+2E42, 7.0, split). */
static const uint32_t AFTER_UNICODE_8[][2] = {
    {0x61D, 0x61D},     {0x890, 0x891},     {0x8E2, 0x8E2},     {0x9FD, 0x9FD},     {0xA76, 0xA76},
    {0xC77, 0xC77},     {0xC84, 0xC84},     {0x1B7D, 0x1B7E},   {0x2E43, 0x2E4F},   {0x2E52, 0x2E5D},
    {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59}, {0x10F86, 0x10F89}, {0x110CD, 0x110CD}, {0x1144B, 0x1144F},
    {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C}, {0x116B9, 0x116B9}, {0x1183B, 0x1183B},
    {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46}, {0x11A9A, 0x11A9C}, {0x11A9E, 0x11AA2},
    {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71}, {0x11EF7, 0x11EF8}, {0x11F43, 0x11F4F},
    {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x13430, 0x1343F}, {0x16E97, 0x16E9A}, {0x16FE2, 0x16FE2},
    {0x1E95E, 0x1E95F},
};

static bool after_unicode_8(uint32_t cp) {
    size_t lo = 0, hi = sizeof AFTER_UNICODE_8 / sizeof *AFTER_UNICODE_8;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < AFTER_UNICODE_8[mid][0]) hi = mid;
        else if (cp > AFTER_UNICODE_8[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

bool tk_is_punct_above_ascii(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO && !after_unicode_8(cp);
}

/* Cc, Cf, Co (and Cs, which valid UTF-8 never holds).  Not Cn: the Rust
 * library keeps unassigned code points (noncharacters included), and so
 * they reach the model, which makes them [UNK]. */
bool tk_is_control_above_ascii(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO ||
            c == UTF8PROC_CATEGORY_CS) && !after_unicode_8(cp);
}

bool tk_is_chinese(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool tk_is_word_char(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) || c == UTF8PROC_CATEGORY_NL ||
           c == UTF8PROC_CATEGORY_PC;
}

/* Rust char::to_lowercase is the full mapping; the only unconditional
 * multi-character lowercase in SpecialCasing.txt is U+0130 -> "i\u0307".
 * utf8proc_tolower gives the simple mapping for everything else. */
static size_t lower1(uint32_t cp, uint32_t *out) {
    if (cp == 0x130) { out[0] = 'i'; out[1] = 0x307; return 2; }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

size_t tk_fold(uint32_t cp, bool strip, bool lower, uint32_t out[8]) {
    if (cp < 0x80) {
        out[0] = (lower && cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    utf8proc_int32_t dec[8];
    size_t n = 0;
    if (strip) {
        int bc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 8,
                                                     UTF8PROC_DECOMPOSE, &bc);
        if (k < 0 || k > 8) { dec[0] = (utf8proc_int32_t)cp; k = 1; }
        for (utf8proc_ssize_t i = 0; i < k; i++)
            if (utf8proc_category(dec[i]) != UTF8PROC_CATEGORY_MN) dec[n++] = dec[i];
    } else {
        dec[0] = (utf8proc_int32_t)cp;
        n = 1;
    }
    if (!lower) {
        for (size_t i = 0; i < n; i++) out[i] = (uint32_t)dec[i];
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n && m + 2 <= 8; i++) m += lower1((uint32_t)dec[i], out + m);
    return m;
}

bool tk_in_ranges(uint32_t cp, const uint32_t (*ranges)[2], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1]) return true;
    return false;
}
