/* NomicBERT and GTE v1.5 beyond the goldens (test_encoder.c runs those for
 * every layer, head, split and thread count): refusals by name, the sizes
 * and lengths derived from their configs, and the lower-stack fingerprint
 * covering the rotary and gated-MLP fields and tensors. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "encoder.h"
#include "er_io.h"
#include "model_internal.h"
#include "recycle.h"
#include "recycle_internal.h"

#define MODELS "tests/fixtures/models/"

static json_t *config_of(const char *model) {
    char path[256];
    snprintf(path, sizeof path, MODELS "%s/config.json", model);
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr);
    ck_assert_msg(c != NULL, "%s: %s", path, jerr.text);
    return c;
}

/* Parses model's config.json with key set to the JSON text `value` (NULL:
 * key removed). */
static er_status parse_with(const char *model, const char *key, const char *value, er_config *c,
                            er_err *err) {
    json_t *cfg = config_of(model);
    if (value) ck_assert_int_eq(json_object_set_new(cfg, key, json_loads(value, JSON_DECODE_ANY, NULL)), 0);
    else json_object_del(cfg, key);
    char *text = json_dumps(cfg, 0);
    er_status st = er_config_parse(text, strlen(text), c, err);
    free(text);
    json_decref(cfg);
    return st;
}

static const struct {
    const char *model, *key, *value, *says;
} REFUSED[] = {
    {"nomic-embed", "rotary_emb_interleaved", "true", "rotary_emb_interleaved"},
    {"nomic-embed", "prenorm", "true", "prenorm"},
    {"nomic-embed", "activation_function", "\"gelu\"", "activation_function 'gelu'"},
    {"nomic-embed", "rotary_emb_scale_base", "512", "rotary_emb_scale_base"},
    {"nomic-embed", "rotary_emb_fraction", "0.0", "rotary_emb_fraction"},
    {"nomic-embed", "num_heads_kv", "2", "num_heads_kv"},
    {"nomic-embed", "use_rms_norm", "true", "use_rms_norm"},
    {"nomic-embed", "parallel_block", "true", "parallel_block"},
    {"gte-embed", "rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2.0}",
     "rope_scaling type 'dynamic'"},
    {"gte-embed", "rope_scaling", "{\"type\": \"ntk\", \"factor\": 2.0, \"mixed_b\": 0.5}",
     "mixed_b"},
    {"gte-embed", "position_embedding_type", "\"absolute\"", "position_embedding_type 'absolute'"},
    {"gte-embed", "logn_attention_scale", "true", "logn_attention_scale"},
    {"gte-embed", "pack_qkv", "false", "pack_qkv"},
    {"gte-embed", "layer_norm_type", "\"rms_norm\"", "layer_norm_type 'rms_norm'"},
    {"gte-embed", "hidden_act", "\"mish\"", "hidden_act 'mish'"},
};

START_TEST(refusals_name_the_field) {
    er_config c;
    er_err err;
    int i = _i;
    er_status st = parse_with(REFUSED[i].model, REFUSED[i].key, REFUSED[i].value, &c, &err);
    ck_assert_msg(st == ER_ERR_UNSUPPORTED, "%s %s=%s: status %d (%s)", REFUSED[i].model,
                  REFUSED[i].key, REFUSED[i].value, st, st ? err.msg : "");
    ck_assert_msg(strstr(err.msg, REFUSED[i].says), "'%s' does not say '%s'", err.msg,
                  REFUSED[i].says);
}
END_TEST

/* Malformed (not unsupported) values are format errors naming the field. */
START_TEST(bad_values_are_format_errors) {
    er_config c;
    er_err err;
    /* 0.3 of a 12-dimension head is not an even number of dimensions */
    ck_assert_int_eq(parse_with("nomic-embed", "rotary_emb_fraction", "0.3", &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "rotary_emb_fraction"));
    ck_assert_int_eq(parse_with("nomic-embed", "n_embd", NULL, &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "n_embd"));
    ck_assert_int_eq(parse_with("gte-embed", "rope_scaling", "{\"type\": \"ntk\"}", &c, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "factor"));
    ck_assert_int_eq(parse_with("gte-embed", "rope_theta", "\"big\"", &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "rope_theta"));
}
END_TEST

/* The sizes the modeling code derives: vocab padded to
 * pad_vocab_size_multiple, n_inner rounded up to 256, NTK's base and
 * frequency scale, and the lengths served. */
START_TEST(derived_sizes_and_lengths) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse_with("nomic-embed", "vocab_size", "250", &c, &err), ER_OK);
    ck_assert_int_eq(c.vocab_size, 256);
    ck_assert_int_eq(c.intermediate_size, 256);
    ck_assert_int_eq(c.rope_glu.rope_dim, 12);
    ck_assert_int_eq(c.rope_glu.gate_act, ER_GLU_SILU);
    ck_assert(!c.rope_glu.qkv_bias && !c.rope_glu.up_bias && !c.rope_glu.down_bias);
    ck_assert_int_eq(c.rope_glu.max_len, 40); /* rotary_scaling_factor null: n_positions */
    /* absent, NomicBertConfig's default 1.0 is dynamic NTK: up to max_trained_positions */
    ck_assert_int_eq(parse_with("nomic-embed", "rotary_scaling_factor", NULL, &c, &err), ER_OK);
    ck_assert_int_eq(c.rope_glu.max_len, 40);
    json_t *cfg = config_of("nomic-embed");
    json_object_del(cfg, "rotary_scaling_factor");
    json_object_set_new(cfg, "max_trained_positions", json_integer(16));
    char *text = json_dumps(cfg, 0);
    ck_assert_int_eq(er_config_parse(text, strlen(text), &c, &err), ER_OK);
    ck_assert_int_eq(c.rope_glu.max_len, 16);
    free(text);
    json_decref(cfg);
    ck_assert_int_eq(parse_with("gte-seqcls", "type_vocab_size", "2", &c, &err), ER_OK);
    ck_assert_double_eq_tol(c.rope_glu.rope_theta, 320000.0, 1e-9);
    ck_assert_double_eq_tol(c.rope_glu.rope_freq_scale, pow(2.0, -2.0 / 8), 1e-15);
    er_config_free(&c);
    ck_assert_int_eq(parse_with("gte-seqcls", "rope_scaling", "{\"type\": \"ntk\", \"factor\": 1.0}",
                                &c, &err), ER_OK); /* factor 1: NTK leaves the table as it is */
    ck_assert_double_eq_tol(c.rope_glu.rope_theta, 160000.0, 1e-9);
    ck_assert(c.rope_glu.rope_freq_scale == 1.0);
    er_config_free(&c);
    /* nomic-seqcls: rotary_scaling_factor 2 and max_trained_positions 24 < n_positions 36 */
    er_model *m = NULL;
    ck_assert_int_eq(er_model_load(MODELS "nomic-seqcls", NULL, &m, &err), ER_OK);
    ck_assert_int_eq(er_model_max_seq_len(m), 24);
    er_ctx *ctx;
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, &err), ER_OK);
    int32_t ids[25] = {0};
    int len = 25;
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    float x[25 * 48], out[3];
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_CAPACITY);
    len = 24;
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_OK);
    er_ctx_free(ctx);
    er_model_free(m);
}
END_TEST

static void fingerprint(const char *dir, int cut, uint8_t fp[32]) {
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(dir, NULL, &m, &err) == ER_OK, "%s", err.msg);
    ck_assert_int_eq(er_fingerprint(m, cut, fp, NULL, NULL, &err), ER_OK);
    er_model_free(m);
}

/* A copy of `model` in dir with key set to value in its config.json. */
static void variant(char *dir, const char *model, const char *key, const char *value) {
    er_test_mkdtemp(dir, 64, "rg");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r " MODELS "%s/. %s/", model, dir);
    ck_assert_int_eq(system(cmd), 0);
    json_t *cfg = config_of(model);
    if (key) json_object_set_new(cfg, key, json_loads(value, JSON_DECODE_ANY, NULL));
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ck_assert_int_eq(json_dump_file(cfg, path, 0), 0);
    json_decref(cfg);
}

static const struct {
    const char *model, *key, *value;
} CHANGES[] = {
    {"nomic-embed", "rotary_emb_base", "2000"},
    {"nomic-embed", "rotary_emb_fraction", "0.5"},
    {"nomic-embed", "activation_function", "\"geglu\""},
    {"gte-seqcls", "rope_theta", "10000"},
    {"gte-seqcls", "rope_scaling", "{\"type\": \"ntk\", \"factor\": 3.0}"},
    {"gte-seqcls", "rope_scaling", "null"},
    {"gte-seqcls", "hidden_act", "\"gelu_new\""},
};

/* Each rotary / MLP field changes the fingerprint at every cut >= 1; the
 * unchanged copy keeps it. */
START_TEST(fingerprint_covers_config_fields) {
    char orig[128], copy[64], dir[64];
    uint8_t a[32], b[32];
    snprintf(orig, sizeof orig, MODELS "%s", CHANGES[_i].model);
    variant(copy, CHANGES[_i].model, NULL, NULL);
    variant(dir, CHANGES[_i].model, CHANGES[_i].key, CHANGES[_i].value);
    fingerprint(orig, 1, a);
    fingerprint(copy, 1, b);
    ck_assert(memcmp(a, b, 32) == 0); /* a rewritten but equal config.json */
    fingerprint(dir, 1, b);
    ck_assert_msg(memcmp(a, b, 32) != 0, "%s=%s left the fingerprint unchanged", CHANGES[_i].key,
                  CHANGES[_i].value);
    er_test_rmtree(copy);
    er_test_rmtree(dir);
}
END_TEST

/* Adds 1 to the first float of a tensor in dir/model.safetensors. */
static void bump_tensor(const char *dir, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    uint64_t n;
    ck_assert_int_eq(fread(&n, 8, 1, f), 1);
    char *h = calloc(1, n + 1);
    ck_assert_int_eq(fread(h, 1, n, f), n);
    json_t *hdr = json_loads(h, 0, NULL);
    json_t *off = json_object_get(json_object_get(hdr, name), "data_offsets");
    ck_assert_ptr_nonnull(off);
    long at = 8 + (long)n + (long)json_integer_value(json_array_get(off, 0));
    float v;
    ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
    ck_assert_int_eq(fread(&v, 4, 1, f), 1);
    v += 1.0f;
    ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
    ck_assert_int_eq(fwrite(&v, 4, 1, f), 1);
    fclose(f);
    json_decref(hdr);
    free(h);
}

/* The gate projection lives outside er_model's shared slots: a change to
 * layer 1's gate changes the fingerprint at cut 2, not at cut 1. */
START_TEST(fingerprint_covers_gate_tensors) {
    static const char *const GATES[][2] = {{"nomic-embed", "encoder.layers.1.mlp.fc12.weight"},
                                           {"gte-embed", "encoder.layer.1.mlp.up_gate_proj.weight"}};
    char dir[64];
    uint8_t a[32], b[32];
    for (int g = 0; g < 2; g++) {
        char orig[128];
        snprintf(orig, sizeof orig, MODELS "%s", GATES[g][0]);
        variant(dir, GATES[g][0], NULL, NULL);
        bump_tensor(dir, GATES[g][1]);
        fingerprint(orig, 1, a);
        fingerprint(dir, 1, b);
        ck_assert(memcmp(a, b, 32) == 0);
        fingerprint(orig, 2, a);
        fingerprint(dir, 2, b);
        ck_assert_msg(memcmp(a, b, 32) != 0, "%s: %s not in the fingerprint", GATES[g][0],
                      GATES[g][1]);
        er_test_rmtree(dir);
    }
}
END_TEST

/* One worker serves a BERT task next to a GTE task whose gated MLP needs a
 * gate buffer the (wider-scoring) BERT model does not: its ctx takes every
 * size from every task, and the GTE task computes what er_forward does. */
START_TEST(mixed_taskset_worker) {
    er_task_spec specs[] = {{"bert", MODELS "bert-seqcls", 0, ER_COMPUTE_FP32},
                            {"gte", MODELS "gte-seqcls", 0, ER_COMPUTE_FP32}};
    er_taskset_params p = er_taskset_default_params();
    er_taskset *ts;
    er_err err;
    ck_assert_msg(er_taskset_load(specs, 2, &p, &ts, &err) == ER_OK, "%s", err.msg);
    er_worker *w;
    ck_assert_msg(er_worker_init(ts, NULL, &w, &err) == ER_OK, "%s", err.msg);
    int32_t ids[9] = {2, 5, 6, 7, 3, 2, 8, 9, 3};
    int lens[2] = {5, 4};
    er_batch b = {2, lens, ids, NULL};
    float out[8], ref[8], x[9 * 48]; /* bert-seqcls: 2 x 3 labels; hidden up to 48 */
    uint8_t hit[2];
    er_run_stats st;
    ck_assert_msg(er_run(w, er_taskset_at(ts, 1), &b, 0, out, hit, &st, &err) == ER_OK, "%s",
                  err.msg);
    er_model *m;
    er_ctx *ctx;
    ck_assert_int_eq(er_model_load(MODELS "gte-seqcls", NULL, &m, &err), ER_OK);
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, &err), ER_OK);
    ck_assert_int_eq(er_forward(m, ctx, &b, x, ref, &err), ER_OK);
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(out[i], ref[i], 1e-5f);
    ck_assert_msg(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, &st, &err) == ER_OK, "%s",
                  err.msg);
    er_ctx_free(ctx);
    er_model_free(m);
    er_worker_free(w);
    er_taskset_free(ts);
}
END_TEST

static Suite *nomic_gte_suite(void) {
    Suite *s = suite_create("nomic_gte");
    TCase *tc = tcase_create("config");
    tcase_add_loop_test(tc, refusals_name_the_field, 0, (int)(sizeof REFUSED / sizeof REFUSED[0]));
    tcase_add_test(tc, bad_values_are_format_errors);
    tcase_add_test(tc, derived_sizes_and_lengths);
    tcase_add_test(tc, mixed_taskset_worker);
    suite_add_tcase(s, tc);
    TCase *fp = tcase_create("fingerprint");
    tcase_set_timeout(fp, 60);
    tcase_add_loop_test(fp, fingerprint_covers_config_fields, 0,
                        (int)(sizeof CHANGES / sizeof CHANGES[0]));
    tcase_add_test(fp, fingerprint_covers_gate_tensors);
    suite_add_tcase(s, fp);
    return s;
}

ER_CHECK_MAIN(nomic_gte_suite)
