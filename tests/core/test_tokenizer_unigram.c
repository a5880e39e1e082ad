/* Unigram, the Precompiled normalizer, Metaspace, WhitespaceSplit and the
 * pre-tokenizer Sequence on small hand-made tokenizers (t5-small's goldens
 * are in test_tokenizer_parity.c and test_tokenizer_post.c).  Expected
 * values follow the Rust library's code (models/unigram/model.rs,
 * normalizers/precompiled.rs, pre_tokenizers/metaspace.rs). */
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../check_main.h"
#include "tokenizer_test_util.h"
#include "tokenizer.h"

#define T5 "tests/tokenizer/data/t5-small.tokenizer.json"


/* "tok[s,e] tok[s,e] ..." (code point offsets) of text, no special tokens. */
static void expect(const er_tokenizer *t, const char *text, const char *want) {
    er_tokenize_params p = er_tokenize_default_params();
    p.add_special_tokens = 0;
    er_encoding *e = NULL;
    er_err err;
    ck_assert_msg(er_tokenizer_encode(t, text, strlen(text), NULL, 0, &p, &e, &err) == ER_OK, "%s", err.msg);
    char got[2048] = "";
    for (size_t i = 0; i < e->n; i++) {
        size_t n = strlen(got);
        snprintf(got + n, sizeof got - n, "%s%s#%d[%u,%u]", i ? " " : "", e->tokens[i], e->ids[i],
                 e->offsets[i].start, e->offsets[i].end);
    }
    er_encoding_free(e);
    ck_assert_msg(!strcmp(got, want), "\"%s\": got \"%s\", want \"%s\"", text, got, want);
}

#define VOCAB "[[\"<unk>\", 0.0], [\"a\", -1.0], [\"b\", -1.0], [\"ab\", -1.5], [\"c\", -3.0]]"

/* The best-scoring cut; unknown code points fused into one unk token whose
 * string is the text it covers. */
START_TEST(viterbi_and_fused_unknowns) {
    er_err err;
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": " VOCAB "}}", ER_OK, &err);
    expect(t, "ab", "ab#3[0,2]");
    expect(t, "abc", "ab#3[0,2] c#4[2,3]");
    expect(t, "aab", "a#1[0,1] ab#3[1,3]");
    expect(t, "xyab", "xy#0[0,2] ab#3[2,4]");
    expect(t, "a\xC3\xA9\xE2\x82\xAC" "b", "a#1[0,1] \xC3\xA9\xE2\x82\xAC#0[1,3] b#2[3,4]");
    expect(t, "x", "x#0[0,1]");
    er_tokenizer_free(t);
}
END_TEST

/* byte_fallback: an unknown run whose every byte has a <0xAB> piece
 * becomes those pieces, each with the run's offsets; else it is unk. */
START_TEST(byte_fallback) {
    er_err err;
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"byte_fallback\": true, \"vocab\": "
                                "[[\"<unk>\", 0.0], [\"a\", -1.0], [\"<0x78>\", -5.0], [\"<0x79>\", -5.0]]}}",
                                ER_OK, &err);
    expect(t, "axy", "a#1[0,1] <0x78>#2[1,3] <0x79>#3[1,3]");
    expect(t, "xz", "xz#0[0,2]");
    er_tokenizer_free(t);
}
END_TEST

START_TEST(refused) {
    er_err err;
    load_json_expect("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", \"x\"]]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"Unigram\", \"unk_id\": 5, \"vocab\": " VOCAB "}}", ER_ERR_FORMAT, &err);
    /* No unk_id: unknown text is an error, known text is fine. */
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"Unigram\", \"vocab\": " VOCAB "}}", ER_OK, &err);
    expect(t, "ab", "ab#3[0,2]");
    er_encoding *e = NULL;
    ck_assert_int_ne(er_tokenizer_encode(t, "ax", 2, NULL, 0, NULL, &e, &err), ER_OK);
    ck_assert_ptr_null(e);
    er_tokenizer_free(t);
}
END_TEST

#define PIECES                                                                                                \
    "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], [\"\xE2\x96\x81hi\", -1.0], " \
    "[\"hi\", -1.0], [\"\xE2\x96\x81there\", -1.0], [\"\xE2\x96\x81\", -2.0], [\"\xE2\x96\x81hi\xE2\x96\x81there\", -0.5]]}"

static er_tokenizer *metaspace(const char *opts) {
    char json[1024];
    snprintf(json, sizeof json, "{" PIECES ", \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\"%s}}",
             opts);
    er_err err;
    return load_json_expect(json, ER_OK, &err);
}

/* Spaces become the replacement, which starts every word (split); one is
 * prepended unless the scheme says not to.  The prepended one has the
 * offsets of the word's first code point, a replacement those of its space. */
START_TEST(metaspace_schemes) {
    static const struct {
        const char *opts, *text, *want;
    } cases[] = {
        {"", "hi there", "\xE2\x96\x81hi#1[0,2] \xE2\x96\x81there#3[2,8]"},
        {"", " hi", "\xE2\x96\x81hi#1[0,3]"},
        {", \"prepend_scheme\": \"never\"", "hi there", "hi#2[0,2] \xE2\x96\x81there#3[2,8]"},
        {", \"add_prefix_space\": false, \"prepend_scheme\": \"never\"", "hi", "hi#2[0,2]"},
        {", \"prepend_scheme\": \"first\"", "hi there", "\xE2\x96\x81hi#1[0,2] \xE2\x96\x81there#3[2,8]"},
        /* split false: one word, which the longer piece covers */
        {", \"split\": false", "hi there", "\xE2\x96\x81hi\xE2\x96\x81there#5[0,8]"},
        /* t5-small's older fields: add_prefix_space true, str_rep */
        {", \"add_prefix_space\": true, \"str_rep\": \"\xE2\x96\x81\"", "hi", "\xE2\x96\x81hi#1[0,2]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        er_tokenizer *t = metaspace(cases[i].opts);
        expect(t, cases[i].text, cases[i].want);
        er_tokenizer_free(t);
    }
    er_err err;
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Metaspace\", \"add_prefix_space\": false}}", ER_ERR_FORMAT,
              &err);
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Metaspace\", \"prepend_scheme\": \"sometimes\"}}",
              ER_ERR_FORMAT, &err);
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"ab\"}}", ER_ERR_FORMAT, &err);
}
END_TEST

/* WhitespaceSplit drops every whitespace run; in a Sequence, Metaspace then
 * prepends to each word (t5-small's pre-tokenizer). */
START_TEST(whitespace_split_sequence) {
    er_err err;
    er_tokenizer *t = load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                                "[{\"type\": \"WhitespaceSplit\"}, {\"type\": \"Metaspace\"}]}}", ER_OK, &err);
    expect(t, " \thi \n there  ", "\xE2\x96\x81hi#1[2,4] \xE2\x96\x81there#3[7,12]");
    er_tokenizer_free(t);
    /* prepend_scheme first: only the word at the text's start */
    t = load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                  "\"WhitespaceSplit\"}, {\"type\": \"Metaspace\", \"prepend_scheme\": \"first\"}]}}", ER_OK, &err);
    expect(t, "hi hi", "\xE2\x96\x81hi#1[0,2] hi#2[3,5]");
    er_tokenizer_free(t);
    t = load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}", ER_OK, &err);
    expect(t, "hi  hi", "hi#2[0,2] hi#2[4,6]");
    er_tokenizer_free(t);
    t = load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": []}}", ER_OK, &err);
    expect(t, "hi", "hi#2[0,2]");
    er_tokenizer_free(t);
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\"}}", ER_ERR_FORMAT, &err);
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [3]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{" PIECES ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Nope\"}]}}",
              ER_ERR_UNSUPPORTED, &err);
}
END_TEST

/* A charsmap: u32 trie size, the units, the pool; base64 into out. */
static void charsmap(const uint32_t *units, size_t n_units, const char *pool, size_t pool_n, char *out, size_t cap) {
    uint8_t blob[1536];
    size_t n = 0;
    uint32_t size = (uint32_t)(4 * n_units);
    for (int k = 0; k < 4; k++) blob[n++] = (uint8_t)(size >> (8 * k));
    ck_assert_uint_le(4 + 4 * n_units + pool_n, sizeof blob);
    for (size_t i = 0; i < n_units; i++)
        for (int k = 0; k < 4; k++) blob[n++] = (uint8_t)(units[i] >> (8 * k));
    memcpy(blob + n, pool, pool_n);
    n += pool_n;
    ck_assert_ptr_nonnull(sodium_bin2base64(out, cap, blob, n, sodium_base64_VARIANT_ORIGINAL));
}

static er_tokenizer *precompiled(const char *b64, er_status want) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"%s\"}, \"model\": {\"type\": "
             "\"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], [\"b\", -1.0], [\"c\", -1.0], [\"z\", -1.0]]}}",
             b64);
    er_err err;
    return load_json_expect(json, want, &err);
}

/* A hand-built double array: the root's offset is 1, so key byte c lands on
 * unit 1 ^ c (label c, has a leaf, offset 1) and its value on unit c.
 * Rules: a -> "b", q -> "" (removed), z -> "zz". */
START_TEST(precompiled_rules_and_offsets) {
    uint32_t units[128] = {0};
    units[0] = 1u << 10;
    const struct {
        uint8_t key;
        uint32_t at;
    } rules[] = {{'a', 0}, {'q', 2}, {'z', 3}};
    for (size_t i = 0; i < 3; i++) {
        units[1 ^ rules[i].key] = rules[i].key | 1u << 8 | 1u << 10;
        units[rules[i].key] = rules[i].at;
    }
    char b64[2048];
    charsmap(units, 128, "b\0\0zz\0", 6, b64, sizeof b64);
    er_tokenizer *t = precompiled(b64, ER_OK);
    expect(t, "cac", "c#2[0,1] b#1[1,2] c#2[2,3]");
    /* z -> zz: the second z is an insertion, aligned with the z before it */
    expect(t, "z", "z#3[0,1] z#3[0,1]");
    /* q -> "": the removal folds into the char emitted before it (b, from a) */
    expect(t, "aqc", "b#1[0,1] c#2[2,3]");
    /* ...and with nothing before it, the Rust library's transform aligns the
     * next char with the removed one (its quirk, kept) */
    expect(t, "qc", "c#2[0,1]");
    /* a grapheme under 6 bytes that a key starts is replaced whole: the
     * combining accent after a goes with it (spm_precompiled's first match),
     * its offsets too (a removal keeps the first char's alignment) */
    expect(t, "a\xCC\x81" "c", "b#1[0,1] c#2[2,3]");
    er_tokenizer_free(t);
}
END_TEST

/* A malformed charsmap is a format error at load, or, where only a lookup
 * would go astray, never matches: no crash, no read outside it. */
START_TEST(precompiled_malformed) {
    char b64[2048];
    precompiled("", ER_ERR_FORMAT);
    precompiled("@@@@", ER_ERR_FORMAT);
    precompiled("AAA=", ER_ERR_FORMAT); /* 2 bytes: no trie size */
    uint32_t units[4] = {0xFFFFFFFFu, 0x12345678u, 1u << 10, 0};
    charsmap(units, 4, "b\0", 2, b64, sizeof b64);
    b64[0] = 'Z'; /* trie size far past the end */
    precompiled(b64, ER_ERR_FORMAT);
    charsmap(units, 4, "\xFF\0", 2, b64, sizeof b64); /* pool not UTF-8 */
    precompiled(b64, ER_ERR_FORMAT);
    er_err err;
    const char *no_map = "{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": {\"type\": \"Unigram\", "
                         "\"vocab\": [[\"a\", 0.0]]}}";
    load_json_expect(no_map, ER_ERR_FORMAT, &err);
    /* garbage units, a value past the pool, an offset into a code point */
    uint32_t bad[300];
    for (size_t i = 0; i < 300; i++) bad[i] = (uint32_t)(i * 2654435761u);
    bad[0] = 1u << 10;
    bad[1 ^ 'b'] = 'b' | 1u << 8 | 1u << 10;
    bad['b'] = 1000;
    bad[1 ^ 'd'] = 'd' | 1u << 8 | 1u << 10;
    bad['d'] = 1; /* inside the 2-byte é */
    charsmap(bad, 300, "\xC3\xA9\0", 3, b64, sizeof b64);
    er_tokenizer *t = precompiled(b64, ER_OK);
    expect(t, "bd", "b#1[0,1] d#0[1,2]");
    const char *texts[] = {"", "\x01\x7F", "\xF0\x9F\xA4\x97 \xE2\x80\x8B", "\xC3\xA9\xCC\x81\xCC\x81\xCC\x81", "zzzzzz"};
    for (size_t i = 0; i < 5; i++) {
        er_encoding *e = NULL;
        ck_assert_int_eq(er_tokenizer_encode(t, texts[i], strlen(texts[i]), NULL, 0, NULL, &e, &err), ER_OK);
        er_encoding_free(e);
    }
    er_tokenizer_free(t);
}
END_TEST

/* t5-small's real charsmap: NFKC-like folding, offsets in the original. */
START_TEST(t5_charsmap) {
    er_err err;
    er_tokenizer *t = er_tokenizer_load(T5, &err);
    ck_assert_msg(t != NULL, "%s", t ? "" : err.msg);
    expect(t, "\xEF\xBC\xA8\xEF\xBD\x85\xEF\xBD\x8C\xEF\xBD\x8C\xEF\xBD\x8F", "\xE2\x96\x81Hello#8774[0,5]");
    expect(t, "\xEF\xAC\x81 x", "\xE2\x96\x81\x66i#361[0,1] \xE2\x96\x81#3[2,3] x#226[2,3]");
    er_tokenizer_free(t);
}
END_TEST

static Suite *tokenizer_unigram_suite(void) {
    Suite *s = suite_create("tokenizer_unigram");
    TCase *tc = tcase_create("unigram");
    tcase_add_test(tc, viterbi_and_fused_unknowns);
    tcase_add_test(tc, byte_fallback);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, metaspace_schemes);
    tcase_add_test(tc, whitespace_split_sequence);
    tcase_add_test(tc, precompiled_rules_and_offsets);
    tcase_add_test(tc, precompiled_malformed);
    tcase_add_test(tc, t5_charsmap);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tokenizer_unigram_suite)
