/* Post-processors, decoders and truncation windows against the Rust
 * library's goldens (tests/tokenizer/golden-rust, gen_goldens_rust.mjs):
 * RobertaProcessing on all-mpnet-base-v2 (WordPiece + BertNormalizer +
 * RobertaProcessing), field by field, truncation with direction and stride
 * and its overflowing windows included; decode of every golden case, the
 * byte-level and Metaspace decoders on their files' vocabularies; the
 * other decoders on the Rust library's own examples. */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "tokenizer.h"

static json_t *field(json_t *c, const char *k) { return json_object_get(c, k); }

static bool same_ints(json_t *arr, const int32_t *v, size_t n) {
    if (json_array_size(arr) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != v[i]) return false;
    return true;
}

static bool same_offsets(json_t *arr, const er_offset *o, size_t n) {
    if (json_array_size(arr) != n) return false;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(arr, i);
        if ((json_int_t)o[i].start != json_integer_value(json_array_get(p, 0)) ||
            (json_int_t)o[i].end != json_integer_value(json_array_get(p, 1)))
            return false;
    }
    return true;
}

/* The first field of one golden window (the case itself or an overflowing
 * one) that e does not reproduce, NULL if none. */
static const char *window_differs(json_t *w, const er_encoding *e, bool pair) {
    if (!same_ints(field(w, "ids"), e->ids, e->n)) return "ids";
    if (!same_ints(field(w, "type_ids"), e->type_ids, e->n)) return "type_ids";
    for (size_t k = 0; k < e->n; k++)
        if (strcmp(e->tokens[k], json_string_value(json_array_get(field(w, "tokens"), k)))) return "tokens";
    json_t *mask = field(w, "special_mask"), *seq = field(w, "sequence_ids");
    for (size_t k = 0; k < e->n; k++)
        if (json_integer_value(json_array_get(mask, k)) != e->special_mask[k]) return "special_mask";
    for (size_t k = 0; pair && seq && k < e->n; k++) {
        json_t *s = json_array_get(seq, k);
        if ((json_is_null(s) ? -1 : json_integer_value(s)) != e->sequence_ids[k]) return "sequence_ids";
    }
    if (!same_offsets(field(w, "offsets"), e->offsets, e->n)) return "offsets";
    if (!same_offsets(field(w, "byte_offsets"), e->byte_offsets, e->n)) return "byte_offsets";
    return NULL;
}

/* Encodes golden case c; the field that differs, NULL if none. */
static const char *case_differs(const er_tokenizer *t, json_t *c) {
    json_t *text = field(c, "text"), *pair = field(c, "pair"), *ml = field(c, "max_length");
    er_tokenize_params p = er_tokenize_default_params();
    if (ml) {
        p.max_length = (size_t)json_integer_value(ml);
        p.truncation = er_truncation_parse(json_string_value(field(c, "strategy")));
        p.stride = (size_t)json_integer_value(field(c, "stride"));
        p.direction = er_truncation_direction_parse(json_string_value(field(c, "direction")));
        p.return_overflowing = 1;
    }
    er_encoding *e = NULL;
    er_err err;
    er_status st = er_tokenizer_encode(t, json_string_value(text), json_string_length(text),
                                       pair ? json_string_value(pair) : NULL, pair ? json_string_length(pair) : 0,
                                       &p, &e, &err);
    const char *bad = NULL;
    if (field(c, "error"))
        bad = st != ER_OK && !strcmp(er_strerror(st), json_string_value(field(c, "error"))) ? NULL : "error";
    else if (st != ER_OK)
        bad = "status";
    else if (json_is_true(field(c, "truncated")) != (e->truncated != 0))
        bad = "truncated";
    else
        bad = window_differs(c, e, pair != NULL);
    json_t *over = field(c, "overflowing");
    if (!bad && e && json_array_size(over) != e->n_overflowing) bad = "overflowing count";
    for (size_t k = 0; !bad && e && k < e->n_overflowing; k++)
        if (window_differs(json_array_get(over, k), e->overflowing[k], pair != NULL)) bad = "an overflowing window";
    er_encoding_free(e);
    return bad;
}

static json_t *load_golden(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/tokenizer/golden-rust/%s.json", name);
    json_error_t je;
    json_t *g = json_load_file(path, JSON_ALLOW_NUL, &je);
    ck_assert_msg(g != NULL, "%s: %s", path, je.text);
    return g;
}

/* Every case of golden-rust/<name>.json; asserts some ran and all matched. */
static void run_golden(const char *name) {
    json_t *g = load_golden(name);
    er_err err;
    er_tokenizer *t = er_tokenizer_load(json_string_value(field(g, "tokenizer")), &err);
    ck_assert_msg(t != NULL, "%s: %s", name, t ? "" : err.msg);
    size_t i, checked = 0, bad = 0;
    json_t *c;
    json_array_foreach(field(g, "cases"), i, c) {
        const char *what = case_differs(t, c);
        checked++;
        if (what && bad++ < 40) {
            char *s = json_dumps(c, JSON_COMPACT);
            fprintf(stderr, "%s case %zu: %s differs: %.300s\n", name, i, what, s);
            free(s);
        }
    }
    printf("golden-rust %s: %zu/%zu identical\n", name, checked - bad, checked);
    er_tokenizer_free(t);
    json_decref(g);
    ck_assert_msg(checked > 0, "%s: no cases checked", name);
    ck_assert_msg(bad == 0, "%s: %zu of %zu cases differ", name, bad, checked);
}

START_TEST(roberta_processing_mpnet) { run_golden("all-mpnet-base-v2"); }
END_TEST
START_TEST(byte_level_bpe) {
    run_golden("gpt2");
    run_golden("roberta-base");
}
END_TEST
START_TEST(unigram_t5) { run_golden("t5-small"); }
END_TEST
START_TEST(template_processing_wordpiece) {
    run_golden("bert-base-uncased");
    run_golden("all-MiniLM-L6-v2");
    run_golden("bert-cased-legacy");
}
END_TEST

/* er_tokenizer_decode(ids, skip) is the string want. */
static bool decodes_to(const er_tokenizer *t, json_t *ids, bool skip, json_t *want) {
    size_t n = json_array_size(ids);
    int32_t *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t k = 0; k < n; k++) v[k] = (int32_t)json_integer_value(json_array_get(ids, k));
    char *s = NULL;
    size_t len = 0;
    er_err err;
    er_status st = er_tokenizer_decode(t, v, n, skip, &s, &len, &err);
    bool same = st == ER_OK && len == json_string_length(want) && !memcmp(s, json_string_value(want), len) &&
                strlen(s) == strlen(json_string_value(want));
    if (!same)
        fprintf(stderr, "  decode(skip=%d) gave \"%s\" (%s), want \"%s\"\n", skip, s ? s : "",
                st ? err.msg : "ok", json_string_value(want));
    free(v);
    free(s);
    return same;
}

/* Both decodings of every golden case with ids; asserts some ran and all matched. */
static void check_decoding(const char *name, const er_tokenizer *t, json_t *g) {
    size_t i, checked = 0, bad = 0;
    json_t *c;
    json_array_foreach(field(g, "cases"), i, c) {
        if (!field(c, "ids") || !field(c, "decoded")) continue;
        checked++;
        if (decodes_to(t, field(c, "ids"), true, field(c, "decoded")) &&
            decodes_to(t, field(c, "ids"), false, field(c, "decoded_with_special")))
            continue;
        if (bad++ < 5) fprintf(stderr, "%s case %zu decodes differently\n", name, i);
    }
    printf("golden-rust %s decode: %zu/%zu identical\n", name, checked - bad, checked);
    ck_assert_msg(checked > 0, "%s: no cases decoded", name);
    ck_assert_msg(bad == 0, "%s: %zu of %zu cases decode differently", name, bad, checked);
}

/* The tokenizers that load: decoded and decoded_with_special of every case. */
static void run_decode_golden(const char *name) {
    json_t *g = load_golden(name);
    er_err err;
    er_tokenizer *t = er_tokenizer_load(json_string_value(field(g, "tokenizer")), &err);
    ck_assert_msg(t != NULL, "%s: %s", name, t ? "" : err.msg);
    check_decoding(name, t, g);
    er_tokenizer_free(t);
    json_decref(g);
}

START_TEST(decode_wordpiece_goldens) {
    run_decode_golden("bert-base-uncased");
    run_decode_golden("all-MiniLM-L6-v2");
    run_decode_golden("all-mpnet-base-v2");
    run_decode_golden("bert-cased-legacy");
}
END_TEST

/* Every file of tests/tokenizer/data/synthetic (gen_synthetic.mjs: one
 * normalizer / pre-tokenizer setting each) against its Rust golden,
 * golden-rust/synthetic-<name>.json: encodings and both decodings. */
START_TEST(synthetic_components) {
    DIR *d = opendir("tests/tokenizer/data/synthetic");
    ck_assert_ptr_nonnull(d);
    size_t files = 0;
    const char suffix[] = ".tokenizer.json";
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n <= sizeof suffix - 1 || strcmp(e->d_name + n - (sizeof suffix - 1), suffix)) continue;
        char name[200];
        snprintf(name, sizeof name, "synthetic-%.*s", (int)(n - (sizeof suffix - 1)), e->d_name);
        run_golden(name);
        run_decode_golden(name);
        files++;
    }
    closedir(d);
    ck_assert_uint_ge(files, 13);
}
END_TEST

START_TEST(decode_byte_level_gpt2) { run_decode_golden("gpt2"); }
END_TEST
START_TEST(decode_byte_level_roberta) { run_decode_golden("roberta-base"); }
END_TEST
START_TEST(decode_metaspace_t5) { run_decode_golden("t5-small"); }
END_TEST

/* A tokenizer whose vocabulary is tokens[] (plus [UNK]) and whose decoder
 * is decoder_json decodes tokens[] to want. */
static void assert_decodes(const char *decoder_json, const char *const *tokens, size_t n, const char *want) {
    json_t *vocab = json_pack("{s:i}", "[UNK]", 0);
    int32_t ids[64];
    ck_assert_uint_le(n, 64);
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_object_get(vocab, tokens[i]);
        if (!id) json_object_set_new(vocab, tokens[i], id = json_integer((json_int_t)json_object_size(vocab)));
        ids[i] = (int32_t)json_integer_value(id);
    }
    json_t *dec = json_loads(decoder_json, 0, NULL);
    ck_assert_msg(dec != NULL, "%s", decoder_json);
    json_t *tj = json_pack("{s:{s:s, s:o, s:s}, s:o}", "model", "type", "WordPiece", "vocab", vocab, "unk_token",
                           "[UNK]", "decoder", dec);
    char *text = json_dumps(tj, JSON_COMPACT), *got = NULL;
    er_err err;
    er_tokenizer *t = er_tokenizer_load_json(text, strlen(text), &err);
    ck_assert_msg(t != NULL, "%s: %s", decoder_json, t ? "" : err.msg);
    ck_assert_int_eq(er_tokenizer_decode(t, ids, n, 1, &got, NULL, &err), ER_OK);
    ck_assert_msg(!strcmp(got, want), "%s: \"%s\", want \"%s\"", decoder_json, got, want);
    free(got);
    er_tokenizer_free(t);
    free(text);
    json_decref(tj);
}

#define DECODES(decoder, want, ...)                                                  \
    do {                                                                             \
        const char *const toks_[] = {__VA_ARGS__};                                   \
        assert_decodes(decoder, toks_, sizeof toks_ / sizeof *toks_, want);          \
    } while (0)

/* Expected strings from the Rust library's own decoder tests. */
START_TEST(decoders_by_hand) {
    DECODES("{\"type\": \"Strip\", \"content\": \"H\", \"start\": 1, \"stop\": 0}", "ey friend!HH", "Hey",
            " friend!", "HHH");
    DECODES("{\"type\": \"Strip\", \"content\": \"y\", \"start\": 0, \"stop\": 1}", "He friend!", "Hey", " friend!");
    DECODES("{\"type\": \"ByteFallback\"}", "\xe5\x8f\xab" "a", "<0xE5>", "<0x8f>", "<0xab>", "a");
    DECODES("{\"type\": \"ByteFallback\"}", "\xef\xbf\xbd\xef\xbf\xbd" "a", "<0xE5>", "<0x8f>", "a");
    DECODES("{\"type\": \"CTC\"}", "hello world", "<pad>", "<pad>", "h", "e", "e", "l", "l", "<pad>", "l", "o",
            "o", "o", "<pad>", "<pad>", "|", "<pad>", "w", "o", "o", "o", "r", "<pad>", "<pad>", "l", "l", "d");
    DECODES("{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"CTC\"}, {\"type\": \"Metaspace\","
            " \"replacement\": \"\\u2581\", \"prepend_scheme\": \"always\"}]}",
            "Hi you", "\u2581", "\u2581", "H", "H", "i", "i", "\u2581", "y", "o", "u");
    DECODES("{\"type\": \"BPEDecoder\", \"suffix\": \"</w>\"}", "hello world", "hel", "lo</w>", "wor", "ld</w>");
    /* Llama's: Replace, ByteFallback, Fuse, Strip */
    DECODES("{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\":"
            " \"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
            " {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}",
            "Hello world!", "\u2581Hello", "\u2581world", "<0x21>");
    DECODES("{\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true}", "I don't know, do not.", "I",
            "do", "n't", "know", ",", "do", "not", ".");
}
END_TEST

/* An id outside the vocabulary is an error naming it; NULLs are refused. */
START_TEST(decode_errors) {
    er_err err;
    er_tokenizer *t = er_tokenizer_load("tests/tokenizer/data/bert-base-uncased.tokenizer.json", &err);
    ck_assert_ptr_nonnull(t);
    char *s = (char *)1;
    size_t len = 7;
    ck_assert_int_eq(er_tokenizer_decode(t, (const int32_t[]){101, 30522, 102}, 3, 1, &s, &len, &err),
                     ER_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    ck_assert_uint_eq(len, 0);
    ck_assert_msg(strstr(err.msg, "30522") != NULL, "%s", err.msg);
    ck_assert_int_eq(er_tokenizer_decode(t, (const int32_t[]){-5}, 1, 1, &s, &len, &err), ER_ERR_INVALID_ARG);
    ck_assert_msg(strstr(err.msg, "-5") != NULL, "%s", err.msg);
    ck_assert_int_eq(er_tokenizer_decode(NULL, NULL, 0, 1, &s, &len, &err), ER_ERR_INVALID_ARG);
    ck_assert_int_eq(er_tokenizer_decode(t, NULL, 0, 1, &s, &len, &err), ER_OK);
    ck_assert_str_eq(s, "");
    free(s);
    er_tokenizer_free(t);
    /* A Regex pattern that does not compile: the engine's message. */
    const char *bad = "{\"model\": {\"vocab\": {\"[UNK]\": 0}}, \"decoder\": {\"type\": \"Replace\","
                      " \"pattern\": {\"Regex\": \"a(+\"}, \"content\": \"b\"}}";
    ck_assert_ptr_null(er_tokenizer_load_json(bad, strlen(bad), &err));
    ck_assert_int_eq(err.code, ER_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "regular expression") != NULL, "%s", err.msg);
    const char *unknown = "{\"model\": {\"vocab\": {\"[UNK]\": 0}}, \"decoder\": {\"type\": \"Nope\"}}";
    ck_assert_ptr_null(er_tokenizer_load_json(unknown, strlen(unknown), &err));
    ck_assert_msg(strstr(err.msg, "Nope") != NULL, "%s", err.msg);
}
END_TEST

static er_tokenizer *load_json(const char *json) {
    er_err err;
    er_tokenizer *t = er_tokenizer_load_json(json, strlen(json), &err);
    ck_assert_msg(t != NULL, "%s", t ? "" : err.msg);
    return t;
}

#define MINI_VOCAB "\"model\": {\"vocab\": {\"[UNK]\": 0, \"<s>\": 1, \"</s>\": 2, \"ab\": 3, \"cd\": 4}}," \
                   " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}"

/* A Sequence of one RobertaProcessing builds what the processor alone does;
 * two members that both add tokens are refused. */
START_TEST(sequence_processor) {
    er_tokenizer *t = load_json("{" MINI_VOCAB ", \"post_processor\": {\"type\": \"Sequence\", \"processors\": "
                                "[{\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], \"cls\": [\"<s>\", 1]}]}}");
    ck_assert_int_eq(er_tokenizer_num_special_tokens(t, 1), 4);
    er_encoding *e = NULL;
    er_err err;
    ck_assert_int_eq(er_tokenizer_encode(t, "ab", 2, "cd ab", 5, NULL, &e, &err), ER_OK);
    const int32_t want[] = {1, 3, 2, 2, 4, 3, 2};
    ck_assert_int_eq(e->n, 7);
    for (size_t i = 0; i < 7; i++) {
        ck_assert_int_eq(e->ids[i], want[i]);
        ck_assert_int_eq(e->type_ids[i], 0);
    }
    ck_assert_int_eq(e->offsets[5].start, 3);
    er_encoding_free(e);
    er_tokenizer_free(t);
    const char *two = "{" MINI_VOCAB ", \"post_processor\": {\"type\": \"Sequence\", \"processors\": ["
                      "{\"type\": \"RobertaProcessing\"}, {\"type\": \"BertProcessing\", \"sep\": [\"</s>\", 2],"
                      " \"cls\": [\"<s>\", 1]}]}}";
    ck_assert_ptr_null(er_tokenizer_load_json(two, strlen(two), &err));
    ck_assert_int_eq(err.code, ER_ERR_UNSUPPORTED);
    /* a member that adds nothing runs first, without special tokens */
    t = load_json("{" MINI_VOCAB ", \"post_processor\": {\"type\": \"Sequence\", \"processors\": ["
                  "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
                  " \"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\","
                  " \"type_id\": 1}}], \"special_tokens\": {}},"
                  " {\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], \"cls\": [\"<s>\", 1]}]}}");
    ck_assert_int_eq(er_tokenizer_encode(t, "ab", 2, "cd ab", 5, NULL, &e, &err), ER_OK);
    ck_assert_int_eq(e->n, 7);
    for (size_t i = 0; i < 7; i++) ck_assert_int_eq(e->ids[i], want[i]);
    ck_assert_int_eq(e->offsets[5].start, 3);
    ck_assert_int_eq(e->byte_offsets[5].end, 5);
    er_encoding_free(e);
    er_tokenizer_free(t);
    const char *reorder = "{" MINI_VOCAB ", \"post_processor\": {\"type\": \"Sequence\", \"processors\": ["
                          "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\","
                          " \"type_id\": 0}}], \"pair\": [{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}},"
                          " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {}},"
                          " {\"type\": \"RobertaProcessing\"}]}}";
    t = load_json(reorder);
    ck_assert_int_eq(er_tokenizer_encode(t, "ab", 2, "cd", 2, NULL, &e, &err), ER_ERR_UNSUPPORTED);
    er_tokenizer_free(t);
    const char *empty = "{" MINI_VOCAB ", \"post_processor\": {\"type\": \"Sequence\", \"processors\": []}}";
    ck_assert_ptr_null(er_tokenizer_load_json(empty, strlen(empty), &err));
    ck_assert_int_eq(err.code, ER_ERR_FORMAT);
}
END_TEST

/* trim_offsets: a token whose string starts or ends with spaces (here an
 * added token " x ") loses them from its offsets; a first token keeps one
 * leading space under add_prefix_space (the Rust library's process_offsets). */
static void assert_trimmed(bool add_prefix_space, const char *text, const uint32_t (*want)[2], size_t n) {
    char json[1024];
    snprintf(json, sizeof json,
             "{" MINI_VOCAB ", \"added_tokens\": [{\"id\": 5, \"content\": \" x \", \"normalized\": false}],"
             " \"post_processor\": {\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], \"cls\": [\"<s>\", 1],"
             " \"trim_offsets\": true, \"add_prefix_space\": %s}}",
             add_prefix_space ? "true" : "false");
    er_tokenizer *t = load_json(json);
    er_encoding *e = NULL;
    er_err err;
    ck_assert_int_eq(er_tokenizer_encode(t, text, strlen(text), NULL, 0, NULL, &e, &err), ER_OK);
    ck_assert_uint_eq(e->n, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(e->offsets[i].start == want[i][0] && e->offsets[i].end == want[i][1],
                      "%s token %zu: (%u, %u)", text, i, e->offsets[i].start, e->offsets[i].end);
        ck_assert(e->byte_offsets[i].start == want[i][0] && e->byte_offsets[i].end == want[i][1]);
    }
    er_encoding_free(e);
    er_tokenizer_free(t);
}

START_TEST(roberta_trim_offsets) {
    const uint32_t mid[][2] = {{0, 0}, {0, 1}, {2, 3}, {4, 5}, {0, 0}};
    assert_trimmed(false, "a x b", mid, 5);
    assert_trimmed(true, "a x b", mid, 5);
    const uint32_t first_kept[][2] = {{0, 0}, {0, 2}, {3, 4}, {0, 0}};
    assert_trimmed(true, " x b", first_kept, 4);
    const uint32_t first_cut[][2] = {{0, 0}, {1, 2}, {3, 4}, {0, 0}};
    assert_trimmed(false, " x b", first_cut, 4);
}
END_TEST

static Suite *tokenizer_post_suite(void) {
    const TTest *const tests[] = {roberta_processing_mpnet, byte_level_bpe, unigram_t5, template_processing_wordpiece, sequence_processor,
                                  roberta_trim_offsets,     decode_wordpiece_goldens,      decode_byte_level_gpt2,
                                  decode_byte_level_roberta, decode_metaspace_t5,          decoders_by_hand,
                                  decode_errors,            synthetic_components};
    Suite *s = suite_create("tokenizer_post");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tokenizer_post_suite)
