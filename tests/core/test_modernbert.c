/* ModernBERT beyond the goldens (test_encoder runs those): the real
 * ModernBERT-base config, refusals by field name, the lower-stack
 * fingerprint covering the family's config fields and final norm, a model
 * loaded above its lower layers, and no allocation in the forward pass. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "config.h"
#include "encoder.h"
#include "er_io.h"
#include "gemm.h"
#include "recycle_internal.h"

#define MODELS "tests/fixtures/models"

#ifndef __SANITIZE_ADDRESS__
/* Allocation counting on this thread (as test_store_noalloc.c does). */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static _Thread_local int counting;
static _Thread_local long n_alloc;
void *malloc(size_t n) { n_alloc += counting; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_alloc += counting; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { n_alloc += counting; return __libc_realloc(p, n); }
#endif

/* answerdotai/ModernBERT-base's config.json (transformers 4.48), with a
 * classification class in place of its ModernBertForMaskedLM. */
static const char BASE_CONFIG[] =
    "{\"architectures\": [\"ModernBertForSequenceClassification\"], \"attention_bias\": false,"
    " \"attention_dropout\": 0.0, \"bos_token_id\": 50281, \"classifier_activation\": \"gelu\","
    " \"classifier_bias\": false, \"classifier_dropout\": 0.0, \"classifier_pooling\": \"mean\","
    " \"cls_token_id\": 50281, \"decoder_bias\": true, \"deterministic_flash_attn\": false,"
    " \"embedding_dropout\": 0.0, \"eos_token_id\": 50282, \"global_attn_every_n_layers\": 3,"
    " \"global_rope_theta\": 160000.0, \"gradient_checkpointing\": false,"
    " \"hidden_activation\": \"gelu\", \"hidden_size\": 768, \"initializer_cutoff_factor\": 2.0,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 1152, \"layer_norm_eps\": 1e-05,"
    " \"local_attention\": 128, \"local_rope_theta\": 10000.0, \"max_position_embeddings\": 8192,"
    " \"mlp_bias\": false, \"mlp_dropout\": 0.0, \"model_type\": \"modernbert\","
    " \"norm_bias\": false, \"norm_eps\": 1e-05, \"num_attention_heads\": 12,"
    " \"num_hidden_layers\": 22, \"pad_token_id\": 50283, \"position_embedding_type\": \"absolute\","
    " \"sep_token_id\": 50282, \"tie_word_embeddings\": true, \"torch_dtype\": \"float32\","
    " \"transformers_version\": \"4.48.0.dev0\", \"vocab_size\": 50368}";

START_TEST(real_config_parses) {
    er_config c;
    er_err err;
    ck_assert_msg(er_config_parse(BASE_CONFIG, strlen(BASE_CONFIG), &c, &err) == ER_OK, "%s",
                  err.msg);
    ck_assert_str_eq(er_arch_name(c.arch), "modernbert");
    ck_assert_int_eq(c.head, ER_HEAD_SEQUENCE_CLASSIFICATION);
    ck_assert_int_eq(c.hidden_size, 768);
    ck_assert_int_eq(c.num_layers, 22);
    ck_assert_int_eq(c.intermediate_size, 1152);
    ck_assert_int_eq(c.max_positions, 8192);
    ck_assert_int_eq(c.pad_token_id, 50283);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_float_eq(c.layer_norm_eps, 1e-5f);
    ck_assert(c.modernbert.global_theta == 160000.0 && c.modernbert.local_theta == 10000.0);
    ck_assert_int_eq(c.modernbert.global_every, 3);
    ck_assert_int_eq(c.modernbert.local_attention, 128);
    ck_assert(!c.modernbert.norm_bias && !c.modernbert.attention_bias && !c.modernbert.mlp_bias);
    ck_assert(c.modernbert.mean_pooling);
    ck_assert_int_eq(c.num_labels, 2);
    er_config_free(&c);
}
END_TEST

/* BASE_CONFIG with one key set to a JSON value: the parse's status, and
 * that its message names `needle`. */
static void expect_refusal(const char *key, const char *json_value, er_status want,
                           const char *needle) {
    json_t *root = json_loads(BASE_CONFIG, 0, NULL);
    json_t *v = json_loads(json_value, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(v);
    json_object_set_new(root, key, v);
    char *text = json_dumps(root, 0);
    er_config c;
    er_err err;
    er_status st = er_config_parse(text, strlen(text), &c, &err);
    ck_assert_msg(st == want, "%s=%s: status %d, want %d", key, json_value, st, want);
    ck_assert_msg(strstr(err.msg, needle), "%s: message '%s' does not name '%s'", key, err.msg,
                  needle);
    free(text);
    json_decref(root);
}

START_TEST(refusals_name_the_field) {
    expect_refusal("classifier_pooling", "\"max\"", ER_ERR_UNSUPPORTED, "classifier_pooling");
    expect_refusal("rope_parameters",
                   "{\"sliding_attention\": {\"rope_type\": \"yarn\", \"rope_theta\": 10000.0}}",
                   ER_ERR_UNSUPPORTED, "rope_parameters.sliding_attention.rope_type");
    expect_refusal("rope_parameters", "{\"rope_theta\": 20000.0, \"rope_type\": \"default\"}",
                   ER_ERR_UNSUPPORTED, "rope_parameters.rope_t");
    expect_refusal("rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", ER_ERR_UNSUPPORTED,
                   "rope_scaling");
    expect_refusal("layer_types", "[\"full_attention\", \"full_attention\"]", ER_ERR_FORMAT,
                   "layer_types");
    expect_refusal("hidden_activation", "\"silu\"", ER_ERR_UNSUPPORTED, "hidden_activation");
    expect_refusal("local_attention", "1", ER_ERR_FORMAT, "local_attention");
    expect_refusal("global_rope_theta", "0.5", ER_ERR_FORMAT, "global_rope_theta");
    expect_refusal("norm_bias", "\"no\"", ER_ERR_FORMAT, "norm_bias");
    expect_refusal("num_attention_heads", "256", ER_ERR_FORMAT, "head size 3");
    expect_refusal("architectures", "[\"ModernBertForMaskedLM\"]", ER_ERR_UNSUPPORTED,
                   "ModernBertForMaskedLM");
    /* a layer_types list of the right pattern is accepted, a wrong one named */
    json_t *root = json_loads(BASE_CONFIG, 0, NULL);
    json_t *lt = json_array();
    for (int i = 0; i < 22; i++)
        json_array_append_new(lt, json_string(i % 3 ? "sliding_attention" : "full_attention"));
    json_object_set_new(root, "layer_types", lt);
    char *text = json_dumps(root, 0);
    er_config c;
    er_err err;
    ck_assert_msg(er_config_parse(text, strlen(text), &c, &err) == ER_OK, "%s", err.msg);
    er_config_free(&c);
    free(text);
    json_array_set_new(lt, 4, json_string("full_attention"));
    text = json_dumps(root, 0);
    ck_assert_int_eq(er_config_parse(text, strlen(text), &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "layer_types[4]"));
    free(text);
    json_decref(root);
}
END_TEST

/* A copy of fixture `from` in dir with config key set to a JSON value. */
static void variant(char *dir, const char *from, const char *key, const char *json_value) {
    er_test_mkdtemp(dir, 64, "modernbert");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r " MODELS "/%s/. %s/", from, dir);
    ck_assert_int_eq(system(cmd), 0);
    if (!key) return;
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    json_object_set_new(root, key, json_loads(json_value, JSON_DECODE_ANY, NULL));
    ck_assert_int_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
}

static void fingerprint_of(const char *dir, int cut, uint8_t fp[32]) {
    er_model *m;
    er_err err;
    ck_assert_msg(er_model_load(dir, NULL, &m, &err) == ER_OK, "%s", err.msg);
    ck_assert_int_eq(er_fingerprint(m, cut, fp, NULL, NULL, &err), ER_OK);
    er_model_free(m);
}

/* Each field that changes layers [0, cut) changes the fingerprint at cut 2;
 * the head's fields do not. */
START_TEST(fingerprint_covers_the_config) {
    static const struct {
        const char *key, *value;
        bool lower;
    } fields[] = {
        {"local_rope_theta", "10001.0", true}, {"global_rope_theta", "150000.0", true},
        {"local_attention", "10", true},       {"global_attn_every_n_layers", "2", true},
        {"hidden_activation", "\"gelu_pytorch_tanh\"", true},
        {"classifier_pooling", "\"mean\"", false}, {"classifier_activation", "\"relu\"", false},
    };
    char base[64], dir[64];
    uint8_t a[32], b[32];
    variant(base, "modernbert-seqcls", NULL, NULL);
    fingerprint_of(base, 2, a);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        variant(dir, "modernbert-seqcls", fields[i].key, fields[i].value);
        fingerprint_of(dir, 2, b);
        ck_assert_msg((memcmp(a, b, 32) != 0) == fields[i].lower, "%s: fingerprint %s",
                      fields[i].key, fields[i].lower ? "unchanged" : "changed");
        er_test_rmtree(dir);
    }
    er_test_rmtree(base);
}
END_TEST

/* The final norm belongs to layer L-1: hashed at cut L, not below. */
START_TEST(fingerprint_final_norm_at_full_cut) {
    er_model *m;
    er_err err;
    ck_assert_int_eq(er_model_load(MODELS "/modernbert-seqcls", NULL, &m, &err), ER_OK);
    const int L = er_model_config(m)->num_layers;
    for (int cut = L - 1; cut <= L; cut++) {
        uint8_t fp[32];
        er_fp_tensor *t;
        int n, found = 0;
        ck_assert_int_eq(er_fingerprint(m, cut, fp, &t, &n, &err), ER_OK);
        for (int i = 0; i < n; i++) found += strcmp(t[i].name, "final_norm.gamma") == 0;
        ck_assert_int_eq(found, cut == L);
        free(t);
    }
    er_model_free(m);
}
END_TEST

/* skip_below_layer: the upper layers and head alone, bit-identically; its
 * rotary tables come with the layers it loads. */
START_TEST(upper_layers_alone) {
    er_model *full, *upper;
    er_model_params mp = er_model_default_params();
    er_err err;
    ck_assert_int_eq(er_model_load(MODELS "/modernbert-seqcls-mean", NULL, &full, &err), ER_OK);
    const int L = er_model_config(full)->num_layers, H = er_model_config(full)->hidden_size;
    for (int k = 1; k <= L; k++) {
        mp.skip_below_layer = k;
        ck_assert_msg(er_model_load(MODELS "/modernbert-seqcls-mean", &mp, &upper, &err) == ER_OK,
                      "%s", err.msg);
        er_ctx *ctx;
        ck_assert_int_eq(er_ctx_init(full, NULL, &ctx, &err), ER_OK);
        int lens[2] = {13, 7};
        int32_t ids[20];
        for (int i = 0; i < 20; i++) ids[i] = 5 + (i * 37) % 250;
        er_batch b = {.n_seqs = 2, .seq_len = lens, .ids = ids, .type_ids = NULL};
        float *x = malloc(20 * (size_t)H * sizeof *x), *y = malloc(20 * (size_t)H * sizeof *y);
        float o1[4], o2[4];
        ck_assert_int_eq(er_forward(full, ctx, &b, x, o1, &err), ER_OK);
        ck_assert_int_eq(er_embed(full, ctx, &b, y, &err), ER_OK);
        ck_assert_int_eq(er_layers(full, ctx, &b, 0, k, y, &err), ER_OK);
        ck_assert_int_eq(er_layers(upper, ctx, &b, k, L, y, &err), ER_OK);
        ck_assert_int_eq(er_head(upper, ctx, &b, y, o2, &err), ER_OK);
        ck_assert(memcmp(x, y, 20 * (size_t)H * sizeof *x) == 0);
        ck_assert(memcmp(o1, o2, sizeof o1) == 0);
        free(x); free(y);
        er_ctx_free(ctx);
        er_model_free(upper);
    }
    er_model_free(full);
}
END_TEST

START_TEST(forward_does_not_allocate) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN) /* tests/gemm_onednn.sh */
        ER_SKIP("oneDNN allocates in every primitive execution (test_store_noalloc measures it)");
    static const char *const names[] = {"modernbert-seqcls", "modernbert-tokcls",
                                        "modernbert-embed"};
    for (size_t n = 0; n < 3; n++) {
        char dir[128];
        snprintf(dir, sizeof dir, MODELS "/%s", names[n]);
        er_model *m;
        er_ctx *ctx;
        er_err err;
        er_ctx_params cp = er_ctx_default_params();
        cp.n_threads = 2;
        ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_OK);
        ck_assert_int_eq(er_ctx_init(m, &cp, &ctx, &err), ER_OK);
        int lens[3] = {30, 2, 11};
        int32_t ids[43];
        for (int i = 0; i < 43; i++) ids[i] = 5 + (i * 53) % 190;
        er_batch b = {.n_seqs = 3, .seq_len = lens, .ids = ids, .type_ids = NULL};
        float *x = malloc(43 * 64 * sizeof *x), *out = malloc(43 * 64 * sizeof *out);
        ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_OK); /* warm-up */
        counting = 1; /* no ck_assert in here: libcheck allocates */
        er_status st = er_forward(m, ctx, &b, x, out, &err);
        counting = 0;
        ck_assert_int_eq(st, ER_OK);
        ck_assert_msg(n_alloc == 0, "%s: %ld allocations in er_forward", names[n], n_alloc);
        free(x); free(out);
        er_ctx_free(ctx);
        er_model_free(m);
    }
#endif
}
END_TEST

static Suite *modernbert_suite(void) {
    Suite *s = suite_create("modernbert");
    TCase *tc = tcase_create("modernbert");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, real_config_parses);
    tcase_add_test(tc, refusals_name_the_field);
    tcase_add_test(tc, fingerprint_covers_the_config);
    tcase_add_test(tc, fingerprint_final_norm_at_full_cut);
    tcase_add_test(tc, upper_layers_alone);
    tcase_add_test(tc, forward_does_not_allocate);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(modernbert_suite)
