/* DeBERTa-v2/v3 beyond the goldens (test_encoder.c): config refusals by
 * name, checkpoints that lack what the config asks for, the lower-stack
 * fingerprint's coverage of DeBERTa's fields and tensors, sequences grouped
 * through the relative-table scratch, and worker scratch shared with other
 * families. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "encoder.h"
#include "encoder_internal.h"
#include "er_io.h"
#include "recycle_internal.h"

#define MODELS "tests/fixtures/models/"

/* The fixture's config.json with `key` set to the JSON text `value`. */
static char *config_with(const char *model, const char *key, const char *value) {
    char path[256], *text;
    size_t len;
    er_err err;
    snprintf(path, sizeof path, MODELS "%s/config.json", model);
    ck_assert_int_eq(er_read_file(path, 1 << 20, &text, &len, &err), ER_OK);
    json_t *cfg = json_loadb(text, len, 0, NULL);
    free(text);
    ck_assert_ptr_nonnull(cfg);
    if (key) json_object_set_new(cfg, key, json_loads(value, JSON_DECODE_ANY, NULL));
    char *out = json_dumps(cfg, 0);
    json_decref(cfg);
    return out;
}

/* Parsing the v3 config with key = value gives `want`, naming `names`. */
static void parse_expect(const char *key, const char *value, er_status want, const char *names) {
    char *text = config_with("deberta-v3-seqcls", key, value);
    er_config c;
    er_err err = {0};
    er_status st = er_config_parse(text, strlen(text), &c, &err);
    free(text);
    ck_assert_msg(st == want, "%s = %s: status %d (%s)", key, value, st, err.msg);
    if (names) ck_assert_msg(strstr(err.msg, names), "%s = %s: '%s'", key, value, err.msg);
    if (st == ER_OK) er_config_free(&c);
}

START_TEST(config_fields) {
    parse_expect(NULL, NULL, ER_OK, NULL);
    parse_expect("pos_att_type", "\"p2c|p2p\"", ER_ERR_UNSUPPORTED, "pos_att_type 'p2p'");
    parse_expect("pos_att_type", "[\"c2p\", \"xyz\"]", ER_ERR_UNSUPPORTED, "'xyz'");
    parse_expect("pos_att_type", "[\" C2P \", \"p2c\"]", ER_OK, NULL); /* lower-cased, stripped */
    parse_expect("pos_att_type", "7", ER_ERR_FORMAT, "pos_att_type");
    parse_expect("norm_rel_ebd", "\"layer_norm|batch_norm\"", ER_ERR_UNSUPPORTED, "norm_rel_ebd");
    parse_expect("conv_kernel_size", "4", ER_ERR_UNSUPPORTED, "conv_kernel_size");
    parse_expect("attention_head_size", "5", ER_ERR_UNSUPPORTED, "attention_head_size");
    parse_expect("pooler_hidden_size", "40", ER_ERR_UNSUPPORTED, "pooler_hidden_size");
    parse_expect("pooler_hidden_act", "\"gelu_new\"", ER_ERR_UNSUPPORTED, "pooler_hidden_act");
    parse_expect("pooler_hidden_act", "\"swish\"", ER_ERR_UNSUPPORTED, "swish");
    parse_expect("position_buckets", "50", ER_ERR_UNSUPPORTED, "position_buckets");
    parse_expect("relative_attention", "\"yes\"", ER_ERR_FORMAT, "relative_attention");
    /* DebertaV2Config's defaults: a config with only the sizes */
    const char *bare = "{\"model_type\": \"deberta-v2\", \"vocab_size\": 100, \"hidden_size\": 16, "
                       "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                       "\"intermediate_size\": 32}";
    er_config c;
    er_err err;
    ck_assert_int_eq(er_config_parse(bare, strlen(bare), &c, &err), ER_OK);
    ck_assert(!c.deberta.relative_attention && c.deberta.position_biased_input);
    ck_assert(!c.deberta.share_att_key && !c.deberta.c2p && !c.deberta.p2c);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_int_eq(c.deberta.scale_factor, 1);
    ck_assert_int_eq(c.deberta.max_relative_positions, 512); /* max_position_embeddings */
    ck_assert_float_eq(c.layer_norm_eps, 1e-7f);
    er_config_free(&c);
}
END_TEST

/* Loading the fixture with one config field changed: `want`, naming `names`. */
static void load_expect(const char *model, const char *key, const char *value, er_status want,
                        const char *names) {
    char dir[64], cmd[256], path[128];
    er_test_mkdtemp(dir, sizeof dir, "deberta");
    snprintf(cmd, sizeof cmd, "cp -r " MODELS "%s/. %s/", model, dir);
    ck_assert_int_eq(system(cmd), 0);
    char *text = config_with(model, key, value);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    er_model *m = NULL;
    er_err err = {0};
    er_status st = er_model_load(dir, NULL, &m, &err);
    ck_assert_msg(st == want, "%s %s = %s: status %d (%s)", model, key, value, st, err.msg);
    ck_assert_msg(strstr(err.msg, names), "%s = %s: '%s'", key, value, err.msg);
    er_model_free(m);
    er_test_rmtree(dir);
}

START_TEST(checkpoint_lacks_tensors) {
    load_expect("deberta-v3-seqcls", "share_att_key", "false", ER_ERR_NOT_FOUND,
                "deberta.encoder.layer.0.attention.self.pos_key_proj.weight");
    load_expect("deberta-v3-seqcls", "position_biased_input", "true", ER_ERR_NOT_FOUND,
                "deberta.embeddings.position_embeddings.weight");
    load_expect("deberta-v3-seqcls", "conv_kernel_size", "3", ER_ERR_NOT_FOUND,
                "deberta.encoder.conv.conv.weight");
    load_expect("deberta-tokcls", "conv_kernel_size", "5", ER_ERR_MISMATCH,
                "conv.conv.weight' has shape [36, 36, 3] but the config implies [36, 36, 5]");
    load_expect("deberta-v2-seqcls", "max_relative_positions", "7", ER_ERR_MISMATCH,
                "deberta.encoder.rel_embeddings.weight");
}
END_TEST

static void fingerprint_of(const char *model, const char *key, const char *value, int cut,
                           uint8_t fp[32]) {
    char dir[64], cmd[256], path[128];
    er_test_mkdtemp(dir, sizeof dir, "deberta");
    snprintf(cmd, sizeof cmd, "cp -r " MODELS "%s/. %s/", model, dir);
    ck_assert_int_eq(system(cmd), 0);
    char *text = config_with(model, key, value);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(dir, NULL, &m, &err) == ER_OK, "%s", err.msg);
    ck_assert_int_eq(er_fingerprint(m, cut, fp, NULL, NULL, &err), ER_OK);
    er_model_free(m);
    er_test_rmtree(dir);
}

/* Every DeBERTa config field that changes layer 0 changes the fingerprint at
 * cut 1; the same model twice does not. */
START_TEST(fingerprint_covers_fields) {
    static const char *const changes[][3] = {
        {"deberta-v3-seqcls", "max_relative_positions", "20"},
        {"deberta-v3-seqcls", "pos_att_type", "\"c2p\""},
        {"deberta-v3-seqcls", "norm_rel_ebd", "\"none\""},
        {"deberta-v3-seqcls", "relative_attention", "false"},
        {"deberta-v2-seqcls", "share_att_key", "true"},
        {"deberta-tokcls", "conv_act", "\"tanh\""},
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        uint8_t a[32], b[32], c[32];
        fingerprint_of(changes[i][0], NULL, NULL, 1, a);
        fingerprint_of(changes[i][0], NULL, NULL, 1, b);
        fingerprint_of(changes[i][0], changes[i][1], changes[i][2], 1, c);
        ck_assert_mem_eq(a, b, 32);
        ck_assert_msg(memcmp(a, c, 32) != 0, "%s: %s does not change the fingerprint",
                      changes[i][0], changes[i][1]);
    }
}
END_TEST

static bool has_tensor(const er_fp_tensor *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return true;
    return false;
}

/* The tensors outside er_model's shared slots are hashed: below the cut only. */
START_TEST(fingerprint_covers_tensors) {
    er_model *m;
    er_err err;
    uint8_t fp[32];
    er_fp_tensor *t;
    int n;
    ck_assert_int_eq(er_model_load(MODELS "deberta-v2-seqcls", NULL, &m, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint(m, 1, fp, &t, &n, &err), ER_OK);
    ck_assert(has_tensor(t, n, "deberta.emb_ln.gamma") && has_tensor(t, n, "embeddings.project.weight"));
    ck_assert(has_tensor(t, n, "deberta.rel_embeddings"));
    ck_assert(has_tensor(t, n, "deberta.layer.0.pos_k.weight"));
    ck_assert(has_tensor(t, n, "deberta.layer.0.pos_q.bias"));
    ck_assert(!has_tensor(t, n, "deberta.layer.1.pos_k.weight"));
    ck_assert(has_tensor(t, n, "embeddings.position")); /* position_biased_input */
    free(t);
    er_model_free(m);
    ck_assert_int_eq(er_model_load(MODELS "deberta-tokcls", NULL, &m, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint(m, 1, fp, &t, &n, &err), ER_OK);
    ck_assert(has_tensor(t, n, "deberta.conv.weight") && has_tensor(t, n, "deberta.conv.ln.beta"));
    ck_assert(has_tensor(t, n, "deberta.rel_ln.gamma"));
    ck_assert(!has_tensor(t, n, "embeddings.position")); /* v3: no absolute positions */
    free(t);
    ck_assert_int_eq(er_fingerprint(m, 0, fp, &t, &n, &err), ER_OK);
    ck_assert(!has_tensor(t, n, "deberta.conv.weight") && !has_tensor(t, n, "deberta.rel_embeddings"));
    free(t);
    er_model_free(m);
}
END_TEST

/* Two full-length sequences cannot share the relative-table scratch (sized
 * for one), so this batch runs in several groups: every sequence equals
 * itself alone, and 1 and 3 threads agree bit for bit. */
static void grouped_batch(const char *model) {
    er_model *m;
    er_err err;
    ck_assert_int_eq(er_model_load(model, NULL, &m, &err), ER_OK);
    const er_config *c = er_model_config(m);
    const int L = c->max_positions, H = c->hidden_size;
    int lens[5] = {L, 3, L, L - 7, 1}, T = 0;
    for (int s = 0; s < 5; s++) T += lens[s];
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(5 + (t * 37) % (c->vocab_size - 5));
    er_batch all = {.n_seqs = 5, .seq_len = lens, .ids = ids, .type_ids = NULL};
    er_ctx_params cp = er_ctx_default_params();
    er_ctx *x1, *x3;
    ck_assert_int_eq(er_ctx_init(m, &cp, &x1, &err), ER_OK);
    cp.n_threads = 3;
    ck_assert_int_eq(er_ctx_init(m, &cp, &x3, &err), ER_OK);
    ck_assert_uint_lt(x1->rel_cap, 2 * er_deberta_rel_floats(c, L));
    const size_t W = (size_t)er_model_head_width(m);
    float *h1 = malloc((size_t)T * H * sizeof *h1), *h3 = malloc((size_t)T * H * sizeof *h3);
    float *o1 = malloc((size_t)T * W * sizeof *o1), *o3 = malloc((size_t)T * W * sizeof *o3);
    float *h = malloc((size_t)L * H * sizeof *h), *o = malloc((size_t)L * W * sizeof *o);
    ck_assert_int_eq(er_forward(m, x1, &all, h1, o1, &err), ER_OK);
    ck_assert_int_eq(er_forward(m, x3, &all, h3, o3, &err), ER_OK);
    ck_assert(memcmp(h1, h3, (size_t)T * H * sizeof *h1) == 0);
    for (int s = 0, off = 0; s < 5; off += lens[s++]) {
        er_batch one = {.n_seqs = 1, .seq_len = &lens[s], .ids = ids + off, .type_ids = NULL};
        ck_assert_int_eq(er_forward(m, x1, &one, h, o, &err), ER_OK);
        for (size_t i = 0; i < (size_t)lens[s] * H; i++)
            ck_assert_msg(fabsf(h[i] - h1[(size_t)off * H + i]) <= 1e-5f, "%s seq %d", model, s);
    }
    free(ids); free(h1); free(h3); free(o1); free(o3); free(h); free(o);
    er_ctx_free(x1);
    er_ctx_free(x3);
    er_model_free(m);
}

START_TEST(grouped_sequences) {
    grouped_batch(MODELS "deberta-v3-seqcls");
    grouped_batch(MODELS "deberta-tokcls"); /* c2p only, conv */
    grouped_batch(MODELS "deberta-qa");     /* p2c only */
}
END_TEST

/* A ctx sized for BERT lacks DeBERTa's scratch; one sized for both runs both. */
START_TEST(scratch_shared_with_bert) {
    er_model *bert, *deb;
    er_err err;
    ck_assert_int_eq(er_model_load(MODELS "bert-seqcls", NULL, &bert, &err), ER_OK);
    ck_assert_int_eq(er_model_load(MODELS "deberta-tokcls", NULL, &deb, &err), ER_OK);
    er_ctx *x;
    ck_assert_int_eq(er_ctx_init(bert, NULL, &x, &err), ER_OK);
    ck_assert(!er_ctx_fits(x, deb));
    int len = 6;
    int32_t ids[6] = {1, 9, 8, 7, 6, 2};
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    float h[6 * 48], out[6 * 8];
    ck_assert_int_eq(er_forward(deb, x, &b, h, out, &err), ER_ERR_INVALID_ARG);
    er_ctx_free(x);
    const er_model *both[2] = {bert, deb};
    ck_assert_int_eq(er_ctx_init_models(both, 2, NULL, &x, &err), ER_OK);
    ck_assert(er_ctx_fits(x, bert) && er_ctx_fits(x, deb));
    ck_assert_int_eq(er_forward(deb, x, &b, h, out, &err), ER_OK);
    ck_assert_int_eq(er_forward(bert, x, &b, h, out, &err), ER_OK);
    er_ctx_free(x);
    er_model_free(bert);
    er_model_free(deb);
}
END_TEST

static Suite *deberta_suite(void) {
    Suite *s = suite_create("deberta");
    TCase *tc = tcase_create("deberta");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_fields);
    tcase_add_test(tc, checkpoint_lacks_tensors);
    tcase_add_test(tc, fingerprint_covers_fields);
    tcase_add_test(tc, fingerprint_covers_tensors);
    tcase_add_test(tc, grouped_sequences);
    tcase_add_test(tc, scratch_shared_with_bert);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(deberta_suite)
