/* MPNet beyond the goldens (tests/core/test_encoder.c runs those): the
 * relative-position buckets against torch's over a long range, the
 * refusal of a bucket table too small, the lower-stack fingerprint covering
 * the relative bias table, and the upper layers running alone (the bias
 * table loads without the embeddings). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "arch.h"
#include "er_io.h"
#include "recycle_internal.h"

#define FIXTURES "tests/fixtures"

/* modeling_mpnet.py's relative_position_bucket(torch.arange(-9000, 9001)),
 * run with torch 1.13 (Debian's python3-torch): for n = |j - i| >= 8 the
 * bucket within a direction is 8 + (number of thresholds <= n), capped at 15;
 * keys after the query (j > i) add 16. */
static int torch_bucket(int rel) {
    static const int thresholds[] = {8, 12, 16, 23, 32, 46, 64, 91};
    int n = rel < 0 ? -rel : rel, base = rel > 0 ? 16 : 0;
    if (n < 8) return base + n;
    int b = 7;
    for (size_t k = 0; k < sizeof thresholds / sizeof thresholds[0]; k++) b += n >= thresholds[k];
    return base + b;
}

START_TEST(buckets_match_torch) {
    for (int rel = -9000; rel <= 9000; rel++)
        ck_assert_msg(er_mpnet_bucket(rel) == torch_bucket(rel), "j - i = %d: bucket %d, torch %d",
                      rel, er_mpnet_bucket(rel), torch_bucket(rel));
    ck_assert_int_eq(er_mpnet_bucket(0), 0);
    ck_assert_int_eq(er_mpnet_bucket(-1), 1);  /* key before the query */
    ck_assert_int_eq(er_mpnet_bucket(1), 17);  /* key after it */
    ck_assert_int_eq(er_mpnet_bucket(90), 30);
    ck_assert_int_eq(er_mpnet_bucket(-91), 15);
}
END_TEST

static char *config_text(const char *model) {
    char path[256], *text;
    size_t len;
    er_err err;
    snprintf(path, sizeof path, FIXTURES "/models/%s/config.json", model);
    ck_assert_int_eq(er_read_file(path, 1 << 20, &text, &len, &err), ER_OK);
    return text;
}

START_TEST(config_refusals) {
    char *text = config_text("mpnet-seqcls");
    json_t *cfg = json_loads(text, 0, NULL);
    free(text);
    er_config c;
    er_err err;
    json_object_set_new(cfg, "relative_attention_num_buckets", json_integer(16));
    char *s = json_dumps(cfg, 0);
    ck_assert_int_eq(er_config_parse(s, strlen(s), &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "relative_attention_num_buckets 16"));
    free(s);
    json_object_set_new(cfg, "relative_attention_num_buckets", json_integer(32));
    json_object_set_new(cfg, "max_position_embeddings", json_integer(2));
    s = json_dumps(cfg, 0);
    ck_assert_int_eq(er_config_parse(s, strlen(s), &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_position_embeddings"));
    free(s);
    json_object_set_new(cfg, "max_position_embeddings", json_integer(514));
    json_object_set_new(cfg, "hidden_act", json_string("swish"));
    s = json_dumps(cfg, 0);
    ck_assert_int_eq(er_config_parse(s, strlen(s), &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "swish"));
    free(s);
    json_object_set_new(cfg, "hidden_act", json_string("gelu"));
    s = json_dumps(cfg, 0);
    ck_assert_int_eq(er_config_parse(s, strlen(s), &c, &err), ER_OK);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_int_eq(c.mpnet.relative_buckets, 32);
    ck_assert_str_eq(er_arch_name(c.arch), "mpnet");
    er_config_free(&c);
    free(s);
    json_decref(cfg);
}
END_TEST

static er_model *load(const char *dir, int skip_below) {
    er_model_params mp = er_model_default_params();
    mp.skip_below_layer = skip_below;
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(dir, &mp, &m, &err) == ER_OK, "%s", err.msg);
    return m;
}

/* A copy of mpnet-seqcls whose relative_attention_bias differs in one value. */
static void bias_variant(char *dir, size_t cap) {
    er_test_mkdtemp(dir, cap, "mpnet");
    char cmd[512], path[300];
    snprintf(cmd, sizeof cmd, "cp -r " FIXTURES "/models/mpnet-seqcls/. %s/", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char *data;
    size_t len;
    er_err err;
    ck_assert_int_eq(er_read_file(path, 1 << 24, &data, &len, &err), ER_OK);
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    json_t *h = json_loadb(data + 8, (size_t)hlen, 0, NULL);
    json_t *t = json_object_get(h, "mpnet.encoder.relative_attention_bias.weight");
    ck_assert_ptr_nonnull(t);
    size_t at = 8 + (size_t)hlen + (size_t)json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
    float v;
    memcpy(&v, data + at + 4 * 5, 4);
    v += 0.5f;
    memcpy(data + at + 4 * 5, &v, 4);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    json_decref(h);
    free(data);
}

/* The bias table changes every layer: a stack with any layer differs when
 * it does, an embeddings-only stack (cut 0) does not. */
START_TEST(fingerprint_covers_relative_bias) {
    char dir[64];
    bias_variant(dir, sizeof dir);
    er_model *a = load(FIXTURES "/models/mpnet-seqcls", 0), *b = load(dir, 0);
    uint8_t fa[32], fb[32];
    er_err err;
    ck_assert_int_eq(er_fingerprint(a, 0, fa, NULL, NULL, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint(b, 0, fb, NULL, NULL, &err), ER_OK);
    ck_assert_mem_eq(fa, fb, 32);
    ck_assert_int_eq(er_fingerprint(a, 1, fa, NULL, NULL, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint(b, 1, fb, NULL, NULL, &err), ER_OK);
    ck_assert(memcmp(fa, fb, 32) != 0);
    er_model_free(a);
    er_model_free(b);
    er_test_rmtree(dir);
}
END_TEST

/* skip_below_layer: the upper layer runs with the bias table although the
 * embeddings were never loaded, bit-identically to the full model. */
START_TEST(upper_layers_alone) {
    er_model *full = load(FIXTURES "/models/mpnet-seqcls", 0);
    er_model *upper = load(FIXTURES "/models/mpnet-seqcls", 1);
    er_ctx *ctx;
    er_err err;
    ck_assert_int_eq(er_ctx_init(full, NULL, &ctx, &err), ER_OK);
    enum { N = 140 }; /* two blocks of query rows */
    int len = N;
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = i == 0 ? 0 : i == N - 1 ? 2 : 4 + (i * 37) % 200;
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    static float x[N * 32], y[N * 32];
    float o1[2], o2[2];
    ck_assert_int_eq(er_forward(full, ctx, &b, x, o1, &err), ER_OK);
    ck_assert_int_eq(er_embed(full, ctx, &b, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(full, ctx, &b, 0, 1, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(upper, ctx, &b, 1, 2, y, &err), ER_OK);
    ck_assert_int_eq(er_head(upper, ctx, &b, y, o2, &err), ER_OK);
    ck_assert(memcmp(x, y, sizeof x) == 0);
    ck_assert(memcmp(o1, o2, sizeof o1) == 0);
    er_ctx_free(ctx);
    er_model_free(full);
    er_model_free(upper);
}
END_TEST

/* all-mpnet-base-v2 as published: config.json names MPNetForMaskedLM, and
 * modules.json loads the directory as a sentence-transformers Transformer
 * (AutoModel: the base model).  It serves as the embedding model it is,
 * bit-identically to the same weights under MPNetModel; without modules.json
 * the masked-LM class is refused by name. */
START_TEST(sentence_transformers_masked_lm_config) {
    char dir[64], cmd[512], path[300];
    er_test_mkdtemp(dir, sizeof dir, "mpnet");
    snprintf(cmd, sizeof cmd, "cp -r " FIXTURES "/models/mpnet-embed/. %s/ && sed -i "
             "'s/\"MPNetModel\"/\"MPNetForMaskedLM\"/' %s/config.json", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    er_model *want = load(FIXTURES "/models/mpnet-embed", 0), *got = load(dir, 0);
    const er_config *c = er_model_config(got);
    ck_assert_int_eq(c->head, ER_HEAD_EMBEDDING);
    ck_assert(c->normalize);
    ck_assert_int_eq(c->pooling, ER_POOLING_MEAN);
    er_ctx *ctx;
    er_err err;
    ck_assert_int_eq(er_ctx_init(want, NULL, &ctx, &err), ER_OK);
    int len = 6;
    int32_t ids[6] = {0, 9, 77, 1, 130, 2};
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    float x[6 * 48], y[6 * 48], e1[48], e2[48];
    ck_assert_int_eq(er_forward(want, ctx, &b, x, e1, &err), ER_OK);
    ck_assert_int_eq(er_forward(got, ctx, &b, y, e2, &err), ER_OK);
    ck_assert(memcmp(e1, e2, sizeof e1) == 0);
    er_ctx_free(ctx);
    er_model_free(want);
    er_model_free(got);
    snprintf(path, sizeof path, "%s/modules.json", dir);
    ck_assert_int_eq(unlink(path), 0);
    er_model *m = NULL;
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "MPNetForMaskedLM"));
    er_test_rmtree(dir);
    /* a cross-encoder's modules.json (no Pooling) leaves its class alone */
    er_test_mkdtemp(dir, sizeof dir, "mpnet");
    snprintf(cmd, sizeof cmd, "cp -r " FIXTURES "/models/mpnet-seqcls/. %s/ && echo '[{\"idx\": 0, "
             "\"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models."
             "Transformer\"}]' > %s/modules.json", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    m = load(dir, 0);
    ck_assert_int_eq(er_model_config(m)->head, ER_HEAD_SEQUENCE_CLASSIFICATION);
    er_model_free(m);
    er_test_rmtree(dir);
}
END_TEST

static Suite *mpnet_suite(void) {
    Suite *s = suite_create("mpnet");
    TCase *tc = tcase_create("mpnet");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, buckets_match_torch);
    tcase_add_test(tc, config_refusals);
    tcase_add_test(tc, fingerprint_covers_relative_bias);
    tcase_add_test(tc, upper_layers_alone);
    tcase_add_test(tc, sentence_transformers_masked_lm_config);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(mpnet_suite)
