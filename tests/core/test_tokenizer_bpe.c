/* BPE model options, its tokenizer.json forms and ByteLevel, on small
 * hand-made tokenizers (the Rust goldens cover gpt2 and roberta-base in
 * test_tokenizer_parity.c). */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "../check_main.h"
#include "tokenizer_test_util.h"
#include "../tmpdir.h"
#include "tokenizer.h"

#define GPT2 "tests/tokenizer/data/gpt2.tokenizer.json"


/* The tokens of text, space-separated, without special tokens. */
static void tokens_of(er_tokenizer *t, const char *text, char *out, size_t cap) {
    er_tokenize_params p = er_tokenize_default_params();
    p.add_special_tokens = 0;
    er_encoding *e = NULL;
    er_err err;
    ck_assert_msg(er_tokenizer_encode(t, text, strlen(text), NULL, 0, &p, &e, &err) == ER_OK, "%s", err.msg);
    out[0] = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (i) strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, e->tokens[i], cap - strlen(out) - 1);
    }
    er_encoding_free(e);
}

static void expect_tokens(er_tokenizer *t, const char *text, const char *want) {
    char got[1024];
    tokens_of(t, text, got, sizeof got);
    ck_assert_msg(!strcmp(got, want), "\"%s\": got \"%s\", want \"%s\"", text, got, want);
}

#define VOCAB "\"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2, \"c\": 3, \"ab\": 4, \"bc\": 5, \"abc\": 6}"

START_TEST(merges_as_strings_or_pairs) {
    er_err err;
    const char *forms[] = {
        "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"#version: 0.2\", \"b c\", \"a bc\"]}}",
        "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"b\", \"c\"], [\"a\", \"bc\"]]}}",
        /* the old serialization: no "type", "merges" says BPE */
        "{\"model\": {" VOCAB ", \"merges\": [\"b c\", \"a bc\"], \"unk_token\": \"<unk>\"}}",
    };
    for (size_t i = 0; i < 3; i++) {
        er_tokenizer *t = load_json_expect(forms[i], ER_OK, &err);
        expect_tokens(t, "abc", "abc");
        expect_tokens(t, "abab", "a b a b"); /* no "a b" merge */
        er_tokenizer_free(t);
    }
}
END_TEST

/* Lowest rank first, leftmost on a tie. */
START_TEST(merge_order) {
    er_err err;
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", \"b c\"]}}",
                                ER_OK, &err);
    expect_tokens(t, "abc", "ab c");
    expect_tokens(t, "bcab", "bc ab");
    er_tokenizer_free(t);
    t = load_json_expect("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1}, \"merges\": [\"a a\"]}}",
                  ER_OK, &err);
    expect_tokens(t, "aaa", "aa a");
    er_tokenizer_free(t);
}
END_TEST

START_TEST(prefix_and_suffix) {
    er_err err;
    er_tokenizer *t = load_json_expect(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"##b</w>\": 1, \"ab</w>\": 2, \"##b\": 3, "
        "\"a</w>\": 4}, \"merges\": [[\"a\", \"##b</w>\"]], \"continuing_subword_prefix\": \"##\", "
        "\"end_of_word_suffix\": \"</w>\"}}",
        ER_OK, &err);
    expect_tokens(t, "ab", "ab</w>");
    expect_tokens(t, "a", "a</w>");
    er_tokenizer_free(t);
}
END_TEST

START_TEST(unknown_code_points) {
    er_err err;
    /* unk_token, fused or not */
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"unk_token\": \"<unk>\"}}",
                                ER_OK, &err);
    expect_tokens(t, "axyb", "a <unk> <unk> b");
    er_tokenizer_free(t);
    t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"unk_token\": \"<unk>\", "
                  "\"fuse_unk\": true}}", ER_OK, &err);
    expect_tokens(t, "axyb", "a <unk> b");
    er_tokenizer_free(t);
    /* no unk_token: dropped, as the Rust library does */
    t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": []}}", ER_OK, &err);
    expect_tokens(t, "axyb", "a b");
    er_tokenizer_free(t);
    /* byte_fallback: the bytes of é, when all are in the vocabulary */
    t = load_json_expect("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1, \"<0xC3>\": 2, \"<0xA9>\": 3}, "
                  "\"merges\": [], \"unk_token\": \"<unk>\", \"byte_fallback\": true}}", ER_OK, &err);
    expect_tokens(t, "a\xc3\xa9x", "a <0xC3> <0xA9> <unk>");
    er_tokenizer_free(t);
    /* an unk_token outside the vocabulary fails when it is needed */
    t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"unk_token\": \"<nope>\"}}",
                  ER_OK, &err);
    expect_tokens(t, "ab", "a b");
    er_encoding *e = NULL;
    ck_assert_int_eq(er_tokenizer_encode(t, "ax", 2, NULL, 0, NULL, &e, &err), ER_ERR_FORMAT);
    ck_assert_ptr_null(e);
    er_tokenizer_free(t);
}
END_TEST

START_TEST(ignore_merges) {
    er_err err;
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\"], "
                                "\"ignore_merges\": true}}", ER_OK, &err);
    expect_tokens(t, "bc", "bc");   /* in the vocabulary: whole, though no merge makes it */
    expect_tokens(t, "abb", "ab b"); /* not: merged */
    er_tokenizer_free(t);
}
END_TEST

START_TEST(refused) {
    er_err err;
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"dropout\": 0.1}}", ER_ERR_UNSUPPORTED, &err);
    ck_assert_msg(strstr(err.msg, "dropout") != NULL, "%s", err.msg);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB "}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a x\"]}}", ER_ERR_FORMAT, &err);
    ck_assert_msg(strstr(err.msg, "\"x\"") != NULL, "%s", err.msg);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"b c a\"]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"c a\"]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"a\"]]}}", ER_ERR_FORMAT, &err);
    load_json_expect("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [3]}}", ER_ERR_FORMAT, &err);
    /* a vocab of [piece, score] pairs without a type is Unigram */
    er_tokenizer_free(load_json_expect("{\"model\": {\"vocab\": [[\"a\", -1.0]], \"unk_id\": 0}}", ER_OK, &err));
}
END_TEST

/* ByteLevel: bytes in the GPT-2 alphabet, offsets in the original text
 * (a token with part of a code point's bytes gets the whole code point). */
START_TEST(byte_level_offsets) {
    er_err err;
    er_tokenizer *t = load_json_expect(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u0120\": 0, \"\\u00c3\": 1, \"\\u00a9\": 2, \"h\": 3, "
        "\"\\u0120h\": 4, \"\\u00c3\\u00a9\": 5}, \"merges\": [\"\\u0120 h\"]}, "
        "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true}, "
        "\"post_processor\": {\"type\": \"ByteLevel\", \"trim_offsets\": true}}",
        ER_OK, &err);
    er_encoding *e = NULL;
    const char *text = "h\xc3\xa9 h";
    ck_assert_int_eq(er_tokenizer_encode(t, text, strlen(text), NULL, 0, NULL, &e, &err), ER_OK);
    /* " h\xc3\xa9" and " h" (the prefix space counts as the first code
     * point); Ġh trimmed of its space but the one add_prefix_space put */
    ck_assert_uint_eq(e->n, 4);
    const int32_t ids[] = {4, 1, 2, 4};
    const uint32_t cs[] = {0, 1, 1, 3}, ce[] = {1, 2, 2, 4}, bs[] = {0, 1, 1, 4}, be[] = {1, 3, 3, 5};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(e->ids[i], ids[i]);
        ck_assert_uint_eq(e->offsets[i].start, cs[i]);
        ck_assert_uint_eq(e->offsets[i].end, ce[i]);
        ck_assert_uint_eq(e->byte_offsets[i].start, bs[i]);
        ck_assert_uint_eq(e->byte_offsets[i].end, be[i]);
    }
    er_encoding_free(e);
    er_tokenizer_free(t);
}
END_TEST

/* The word cache answers for its own model only, even for a model loaded
 * where a freed one was. */
START_TEST(word_cache_per_model) {
    er_err err;
    const char *merged = "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\"]}}";
    const char *plain = "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": []}}";
    er_tokenizer *x = load_json_expect(merged, ER_OK, &err), *y = load_json_expect(plain, ER_OK, &err);
    for (int i = 0; i < 3; i++) {
        expect_tokens(x, "ab", "ab");
        expect_tokens(y, "ab", "a b");
    }
    er_tokenizer_free(x);
    x = load_json_expect(plain, ER_OK, &err);
    expect_tokens(x, "ab", "a b");
    er_tokenizer_free(x);
    er_tokenizer_free(y);
}
END_TEST

/* A word longer than the model's stack buffers. */
START_TEST(long_word) {
    er_err err;
    er_tokenizer *t = load_json_expect("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1, \"aaaa\": 2}, "
                                "\"merges\": [\"a a\", \"aa aa\"]}}", ER_OK, &err);
    static char text[5003];
    memset(text, 'a', 5002);
    er_encoding *e = NULL;
    ck_assert_int_eq(er_tokenizer_encode(t, text, 5002, NULL, 0, NULL, &e, &err), ER_OK);
    ck_assert_uint_eq(e->n, 1251);
    ck_assert_int_eq(e->ids[1250], 1);
    ck_assert_uint_eq(e->offsets[1250].start, 5000);
    er_encoding_free(e);
    er_tokenizer_free(t);
}
END_TEST

/* gpt2.tokenizer.json written out as vocab.json + merges.txt +
 * tokenizer_config.json (its added tokens as added_tokens_decoder). */
static void write_legacy_gpt2(const char *dir) {
    json_error_t je;
    json_t *tj = json_load_file(GPT2, 0, &je), *model = json_object_get(tj, "model");
    ck_assert_ptr_nonnull(tj);
    char path[256];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    ck_assert_int_eq(json_dump_file(json_object_get(model, "vocab"), path, 0), 0);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#version: 0.2\n");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(model, "merges"), i, m)
        fprintf(f, "%s %s\n", json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)));
    fclose(f);
    json_t *cfg = json_pack("{s:s,s:b,s:i,s:{}}", "tokenizer_class", "GPT2Tokenizer", "add_prefix_space", 0,
                            "model_max_length", 1024, "added_tokens_decoder"), *a;
    json_array_foreach(json_object_get(tj, "added_tokens"), i, a) {
        char id[16];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(a, "id")));
        json_object_set(json_object_get(cfg, "added_tokens_decoder"), id, a);
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    ck_assert_int_eq(json_dump_file(cfg, path, 0), 0);
    json_decref(cfg);
    json_decref(tj);
}

static bool same_encoding(const er_encoding *x, const er_encoding *y) {
    if (x->n != y->n) return false;
    for (size_t i = 0; i < x->n; i++)
        if (x->ids[i] != y->ids[i] || strcmp(x->tokens[i], y->tokens[i]) ||
            x->offsets[i].start != y->offsets[i].start || x->offsets[i].end != y->offsets[i].end ||
            x->byte_offsets[i].start != y->byte_offsets[i].start || x->byte_offsets[i].end != y->byte_offsets[i].end)
            return false;
    return true;
}

/* The legacy layout gives what tokenizer.json gives, on every gpt2 golden text. */
START_TEST(legacy_vocab_json_and_merges) {
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "bpe_legacy");
    write_legacy_gpt2(dir);
    er_err err;
    er_tokenizer *legacy = er_tokenizer_load(dir, &err);
    ck_assert_msg(legacy != NULL, "%s", legacy ? "" : err.msg);
    er_tokenizer *ref = er_tokenizer_load(GPT2, &err);
    ck_assert_uint_eq(er_tokenizer_model_max_length(legacy), 1024);
    json_error_t je;
    json_t *g = json_load_file("tests/tokenizer/golden-rust/gpt2.json", JSON_ALLOW_NUL, &je), *c;
    size_t i, compared = 0;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        json_t *text = json_object_get(c, "text");
        er_encoding *x = NULL, *y = NULL;
        ck_assert_int_eq(er_tokenizer_encode(ref, json_string_value(text), json_string_length(text), NULL, 0, NULL, &x, &err), ER_OK);
        ck_assert_int_eq(er_tokenizer_encode(legacy, json_string_value(text), json_string_length(text), NULL, 0, NULL, &y, &err), ER_OK);
        ck_assert_msg(same_encoding(x, y), "case %zu differs", i);
        er_encoding_free(x);
        er_encoding_free(y);
        compared++;
    }
    ck_assert_uint_gt(compared, 600);
    json_decref(g);
    er_tokenizer_free(ref);
    er_tokenizer_free(legacy);
    er_test_rmtree(dir);
}
END_TEST

/* A SentencePiece .model alone: refused, saying how to get a tokenizer.json. */
START_TEST(sentencepiece_model_refused) {
    char dir[64], path[128];
    er_test_mkdtemp(dir, sizeof dir, "bpe_spm");
    snprintf(path, sizeof path, "%s/spiece.model", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("x", f);
    fclose(f);
    er_err err;
    ck_assert_ptr_null(er_tokenizer_load(dir, &err));
    ck_assert_int_eq(err.code, ER_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "tokenizer.json") != NULL, "%s", err.msg);
    ck_assert_ptr_null(er_tokenizer_load(path, &err));
    ck_assert_int_eq(err.code, ER_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "save_pretrained") != NULL, "%s", err.msg);
    er_test_rmtree(dir);
}
END_TEST

static Suite *tokenizer_bpe_suite(void) {
    Suite *s = suite_create("tokenizer_bpe");
    TCase *tc = tcase_create("bpe");
    tcase_add_test(tc, merges_as_strings_or_pairs);
    tcase_add_test(tc, merge_order);
    tcase_add_test(tc, prefix_and_suffix);
    tcase_add_test(tc, unknown_code_points);
    tcase_add_test(tc, ignore_merges);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, byte_level_offsets);
    tcase_add_test(tc, long_word);
    tcase_add_test(tc, word_cache_per_model);
    tcase_add_test(tc, legacy_vocab_json_and_merges);
    tcase_add_test(tc, sentencepiece_model_refused);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tokenizer_bpe_suite)
