/* PEFT LoRA adapters as tasks: merged and unmerged application agree; an
 * adapter whose layers all sit above the cut shares its base's lower stack
 * and store namespace (its first run on a document the base warmed is a
 * hit, and equals er_forward bit for bit); one below the cut lowers its own
 * cut or is refused under an explicit cut; adapter_config.json fields and
 * saved tensors it does not implement are refused by name.  (Goldens against
 * the PyTorch reference: test_encoder; recycled = full: test_recycle.) */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "er_log.h"
#include "log_capture.h"
#include "model_internal.h"
#include "recycle.h"

#define MODELS "tests/fixtures/models"

static char dir[64];

/* Two sequences every fixture vocabulary holds. */
static int32_t ids[] = {2, 40, 77, 9, 120, 3, 2, 18, 199, 3, 51, 3};
static int lens[] = {6, 6};

static er_batch batch(void) { return (er_batch){2, lens, ids, NULL}; }

static void forward(const char *mdir, bool merge, float *out, float *hidden) {
    er_model_params p = er_model_default_params();
    p.lora_merge = merge;
    er_model *m;
    er_ctx *ctx;
    er_err e;
    ck_assert_msg(er_model_load(mdir, &p, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, NULL), ER_OK);
    er_batch b = batch();
    ck_assert_msg(er_forward(m, ctx, &b, hidden, out, &e) == ER_OK, "%s", e.msg);
    er_ctx_free(ctx);
    er_model_free(m);
}

static er_taskset *load(const er_task_spec *specs, int n, int cut, const char *store, er_err *e);

/* Every adapter fixture and its base. */
static const char *const ADAPTERS[][2] = {
    {"lora-bert-seqcls", "bert-seqcls"},
    {"lora-roberta-rslora", "roberta-seqcls"},
    {"lora-distilbert-seqcls", "distilbert-seqcls"},
    {"lora-minilm-embed", "minilm-embed"},
    {"lora-mpnet-seqcls", "mpnet-seqcls"},
    {"lora-deberta-v3-seqcls", "deberta-v3-seqcls"},
    {"lora-modernbert-seqcls", "modernbert-seqcls"},
    {"lora-nomic-embed", "nomic-embed"},
    {"lora-gte-seqcls", "gte-seqcls"},
};
#define N_ADAPTERS ((int)(sizeof ADAPTERS / sizeof *ADAPTERS))

/* The model's hidden size and head output floats for batch(). */
static void sizes(const char *mdir, int *hidden, size_t *n_out) {
    er_model *m;
    er_err e;
    ck_assert_msg(er_model_load(mdir, NULL, &m, &e) == ER_OK, "%s", e.msg);
    er_batch b = batch();
    *hidden = er_model_config(m)->hidden_size;
    *n_out = er_head_out_size(m, &b);
    er_model_free(m);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t j = 0; j < n; j++) worst = fmax(worst, fabs((double)a[j] - b[j]));
    return worst;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t j = 0; j < n; j++) m = fmax(m, fabs(a[j]));
    return m;
}

/* lora_merge (W + scale B A, a copy of each adapted matrix) computes what the
 * unmerged pair beside the base GEMM does, on every family, fused modules
 * and heads included; and the adapter changes the base's output. */
START_TEST(merged_equals_unmerged) {
    for (int i = 0; i < N_ADAPTERS; i++) {
        char mdir[128], bdir[128];
        snprintf(mdir, sizeof mdir, MODELS "/%s", ADAPTERS[i][0]);
        snprintf(bdir, sizeof bdir, MODELS "/%s", ADAPTERS[i][1]);
        int H;
        size_t n_out;
        sizes(mdir, &H, &n_out);
        const size_t nh = 12 * (size_t)H;
        float a[256], b[256], ha[12 * 64], hb[12 * 64];
        ck_assert(n_out <= 256 && nh <= 12 * 64);
        forward(mdir, false, a, ha);
        forward(mdir, true, b, hb);
        double dh = max_diff(ha, hb, nh), dout = max_diff(a, b, n_out);
        fprintf(stderr, "  %-24s merged vs unmerged: hidden %.1e, head %.1e (max|hidden| %.2f)\n",
                ADAPTERS[i][0], dh, dout, max_abs(ha, nh));
        ck_assert_msg(dh <= 1e-5 && dout <= 1e-5, "%s: merged vs unmerged hidden %g head %g",
                      ADAPTERS[i][0], dh, dout);
        forward(bdir, false, b, hb); /* the adapter does something */
        double moved = max_diff(ha, hb, nh);
        ck_assert_msg(moved > 1e-2, "%s: adapter changes nothing (%g)", ADAPTERS[i][0], moved);
    }
}
END_TEST

/* A LoRA on a fused matrix is one A [r, in] and one B [out_total, r]: each
 * view (q/k/v of Wqkv, the GeGLU input and gate of Wi, GTE's up and gate)
 * shares A and takes its own rows of B; layers_to_transform leaves the
 * others bare; the head's dense gets its pair (head.dense, classifier.dense
 * inside modules_to_save, pooler.dense). */
START_TEST(fused_views_share_a_and_split_b) {
    er_model *m;
    er_err e;
    ck_assert_msg(er_model_load(MODELS "/lora-modernbert-seqcls", NULL, &m, &e) == ER_OK, "%s",
                  e.msg);
    const int H = m->cfg.hidden_size, F = m->cfg.intermediate_size;
    for (int i = 0; i < m->cfg.num_layers; i++) {
        const er_layer_w *L = &m->layers[i];
        if (i != 1 && i != 2) { /* layers_to_transform [1, 2] */
            ck_assert_ptr_null(L->q.lora_a);
            ck_assert_ptr_null(L->ffn_in.lora_a);
            continue;
        }
        const int r = L->q.lora_r;
        ck_assert_int_eq(r, 4);
        ck_assert_ptr_eq(L->q.lora_a, L->k.lora_a);
        ck_assert_ptr_eq(L->q.lora_a, L->v.lora_a);
        ck_assert_ptr_eq(L->k.lora_b, L->q.lora_b + (size_t)H * r);
        ck_assert_ptr_eq(L->v.lora_b, L->q.lora_b + (size_t)2 * H * r);
        ck_assert_ptr_eq(L->ffn_in.lora_a, L->gate.lora_a);
        ck_assert_ptr_eq(L->gate.lora_b, L->ffn_in.lora_b + (size_t)F * r);
        ck_assert_ptr_null(L->o.lora_a);
        ck_assert_ptr_null(L->ffn_out.lora_a);
    }
    ck_assert_ptr_nonnull(m->head_dense.lora_a); /* head.dense, named exactly */
    ck_assert_ptr_null(m->head_out.lora_a);
    er_model_free(m);
    ck_assert_int_eq(er_model_load(MODELS "/lora-gte-seqcls", NULL, &m, NULL), ER_OK);
    const er_layer_w *G = &m->layers[0];
    ck_assert_ptr_eq(G->ffn_in.lora_a, G->gate.lora_a);
    ck_assert_ptr_eq(G->gate.lora_b, G->ffn_in.lora_b + (size_t)m->cfg.intermediate_size * 8);
    ck_assert_ptr_nonnull(m->head_dense.lora_a); /* new.pooler.dense */
    er_model_free(m);
    static const char *const HEADS[] = {"lora-mpnet-seqcls", "lora-deberta-v3-seqcls"};
    for (int i = 0; i < 2; i++) { /* classifier.dense in the saved copy; DeBERTa's pooler.dense */
        char mdir[128];
        snprintf(mdir, sizeof mdir, MODELS "/%s", HEADS[i]);
        ck_assert_int_eq(er_model_load(mdir, NULL, &m, NULL), ER_OK);
        ck_assert_msg(m->head_dense.lora_a != NULL, "%s: no LoRA on the head's dense", HEADS[i]);
        er_model_free(m);
    }
}
END_TEST

/* Adapters above the cut on the newer families share the base's lower stack
 * too: the first run on a batch the base warmed is a hit and equals
 * er_forward bit for bit. */
START_TEST(newer_families_share_and_hit) {
    static const char *const PAIRS[][2] = {{"lora-modernbert-seqcls", "modernbert-seqcls"},
                                           {"lora-nomic-embed", "nomic-embed"}};
    for (int i = 0; i < 2; i++) {
        er_test_mkdtemp(dir, sizeof dir, "lora");
        char store[128], adir[128], bdir[128];
        snprintf(store, sizeof store, "%s/store", dir);
        snprintf(adir, sizeof adir, MODELS "/%s", PAIRS[i][0]);
        snprintf(bdir, sizeof bdir, MODELS "/%s", PAIRS[i][1]);
        er_task_spec specs[] = {{"base", bdir, 0, ER_COMPUTE_FP32}, {"lora", adir, 0, ER_COMPUTE_FP32}};
        er_err e;
        er_taskset *ts = load(specs, 2, 1, store, &e);
        ck_assert_msg(ts, "%s: %s", PAIRS[i][0], e.msg);
        ck_assert_int_eq(er_taskset_lower_stacks(ts), 1);
        er_worker *w;
        ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
        er_batch b = batch();
        uint8_t hit[2];
        float got[256], ref[256], h[12 * 64];
        ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, got, hit, NULL, &e), ER_OK);
        er_store_flush(er_taskset_store(ts));
        ck_assert_msg(er_run(w, er_taskset_at(ts, 1), &b, 0, got, hit, NULL, &e) == ER_OK, "%s",
                      e.msg);
        ck_assert_msg(hit[0] && hit[1], "%s: the adapter task's first run missed", PAIRS[i][0]);
        forward(adir, false, ref, h);
        size_t n_out = er_head_out_size(er_task_model(er_taskset_at(ts, 1)), &b);
        ck_assert_mem_eq(got, ref, n_out * sizeof *got);
        er_worker_free(w);
        er_taskset_free(ts);
        er_test_rmtree(dir);
    }
}
END_TEST

static er_taskset *load(const er_task_spec *specs, int n, int cut, const char *store, er_err *e) {
    er_taskset_params p = er_taskset_default_params();
    p.cut = cut;
    p.store_path = store;
    p.store.dtype = ER_DTYPE_FP32;
    p.store.budget_bytes = 16u << 20;
    p.store.queue_bytes = 4u << 20;
    er_taskset *ts = NULL;
    er_status st = er_taskset_load(specs, n, &p, &ts, e);
    return st == ER_OK ? ts : NULL;
}

START_TEST(shares_base_stack_and_hits) {
    er_test_mkdtemp(dir, sizeof dir, "lora");
    char store[128];
    snprintf(store, sizeof store, "%s/store", dir);
    er_task_spec specs[] = {{"base", MODELS "/bert-seqcls", 0, ER_COMPUTE_FP32},
                            {"lora", MODELS "/lora-bert-seqcls", 0, ER_COMPUTE_FP32}};
    er_err e;
    er_taskset *ts = load(specs, 2, -1, store, &e);
    ck_assert_msg(ts, "%s", e.msg);
    const er_task *base = er_taskset_at(ts, 0), *lora = er_taskset_at(ts, 1);
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 1);
    ck_assert_mem_eq(er_task_fingerprint(base), er_task_fingerprint(lora), 32);
    ck_assert_int_eq(er_task_cut(lora), 1);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    er_batch b = batch();
    uint8_t hit[2];
    float got[64], ref[64], h[12 * 64];
    ck_assert_int_eq(er_run(w, base, &b, 0, got, hit, NULL, &e), ER_OK); /* warms */
    ck_assert(!hit[0] && !hit[1]);
    er_store_flush(er_taskset_store(ts));
    er_run_stats rs;
    ck_assert_msg(er_run(w, lora, &b, 0, got, hit, &rs, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(hit[0] && hit[1], "the adapter task's first run is not a store hit");
    forward(MODELS "/lora-bert-seqcls", false, ref, h);
    ck_assert_mem_eq(got, ref, 2 * 3 * sizeof(float)); /* fp32 store: bit for bit */
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
}
END_TEST


START_TEST(below_the_cut) {
    er_task_spec specs[] = {{"base", MODELS "/roberta-seqcls", 0, ER_COMPUTE_FP32},
                            {"low", MODELS "/lora-roberta-rslora", 0, ER_COMPUTE_FP32}};
    er_err e;
    er_test_log_start();
    er_taskset *ts = load(specs, 2, -1, NULL, &e);
    er_test_log_stop();
    ck_assert_msg(ts, "%s", e.msg);
    ck_assert_int_eq(er_taskset_cut(ts), 1);
    ck_assert_int_eq(er_task_cut(er_taskset_at(ts, 1)), 0); /* layer 0 is adapted */
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 2);
    ck_assert_msg(strstr(er_test_logbuf, "task low: its LoRA adapter changes layer 0"),
                  "%s", er_test_logbuf);
    /* it still computes the adapter's answer */
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t rids[] = {0, 40, 77, 9, 120, 2};
    int rlen = 6;
    er_batch b = {1, &rlen, rids, NULL};
    float got[8], ref[8];
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 1), &b, 0, got, NULL, NULL, &e), ER_OK);
    er_model *m;
    er_ctx *ctx;
    ck_assert_int_eq(er_model_load(MODELS "/lora-roberta-rslora", NULL, &m, NULL), ER_OK);
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, NULL), ER_OK);
    float hid[6 * 48];
    ck_assert_int_eq(er_forward(m, ctx, &b, hid, ref, NULL), ER_OK);
    ck_assert_int_eq(er_model_config(m)->num_labels, 5);
    ck_assert_mem_eq(got, ref, 5 * sizeof(float));
    er_ctx_free(ctx);
    er_model_free(m);
    er_worker_free(w);
    er_taskset_free(ts);
    /* an explicit cut above the adapter is refused, naming the layer */
    ck_assert_ptr_null(load(specs, 2, 1, NULL, &e));
    ck_assert_int_eq(e.code, ER_ERR_INVALID_ARG);
    ck_assert_msg(strstr(e.msg, "task low") && strstr(e.msg, "layer 0"), "%s", e.msg);
}
END_TEST

/* A copy of lora-bert-seqcls whose adapter_config.json has `key` replaced
 * by the JSON value `json`; loads it and returns the error. */
static er_status load_from(const char *src, const char *base, const char *key, const char *json,
                           const char *root, er_err *e) {
    char cmd[1024], adir[128];
    snprintf(adir, sizeof adir, "%s/a", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp " MODELS "/%s/* %s && "
             "/usr/bin/env python3 -c \"import json,sys; p='%s/adapter_config.json'; "
             "c=json.load(open(p)); c['%s']=json.loads(sys.argv[1]); json.dump(c, open(p,'w'))\" "
             "'%s'", adir, src, adir, adir, key, json);
    ck_assert_int_eq(system(cmd), 0);
    char bdir[128];
    snprintf(bdir, sizeof bdir, MODELS "/%s", base);
    er_model_params p = er_model_default_params();
    p.base_dir = root ? NULL : bdir;
    p.model_root = root;
    er_model *m = NULL;
    er_status st = er_model_load(adir, &p, &m, e);
    er_model_free(m);
    return st;
}

static er_status load_with(const char *key, const char *json, const char *root, er_err *e) {
    return load_from("lora-bert-seqcls", "bert-seqcls", key, json, root, e);
}

START_TEST(refusals) {
    er_test_mkdtemp(dir, sizeof dir, "lora");
    er_err e;
    struct { const char *key, *json, *word; er_status want; } cases[] = {
        {"bias", "\"all\"", "bias 'all'", ER_ERR_UNSUPPORTED},
        {"peft_type", "\"IA3\"", "peft_type 'IA3'", ER_ERR_UNSUPPORTED},
        {"use_dora", "true", "use_dora", ER_ERR_UNSUPPORTED},
        {"fan_in_fan_out", "true", "fan_in_fan_out", ER_ERR_UNSUPPORTED},
        {"rank_pattern", "{\"query\": 2}", "rank_pattern", ER_ERR_UNSUPPORTED},
        {"target_modules", "[\"query\", \"word_embeddings\"]", "'word_embeddings'",
         ER_ERR_UNSUPPORTED},
        {"task_type", "\"CAUSAL_LM\"", "task_type 'CAUSAL_LM'", ER_ERR_UNSUPPORTED},
        {"r", "8", "adapter tensor", ER_ERR_MISMATCH}, /* saved tensors are rank 4 */
        {"r", "0", "'r'", ER_ERR_FORMAT},
        {"layers_to_transform", "[2]", "layers_to_transform", ER_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        er_status st = load_with(cases[i].key, cases[i].json, NULL, &e);
        ck_assert_msg(st == cases[i].want && strstr(e.msg, cases[i].word), "%s=%s: %d %s",
                      cases[i].key, cases[i].json, st, e.msg);
    }
    /* base_model_name_or_path is looked up under the model root, and must stay in it */
    ck_assert_int_eq(load_with("base_model_name_or_path", "\"bert-seqcls\"", MODELS, &e), ER_OK);
    er_status st = load_with("base_model_name_or_path", "\"../models/bert-seqcls\"",
                             MODELS "/../golden", &e);
    ck_assert_msg(st == ER_ERR_INVALID_ARG && strstr(e.msg, "outside the model root"), "%s",
                  e.msg);
    st = load_with("base_model_name_or_path", "\"no-such-model\"", MODELS, &e);
    ck_assert_msg(st == ER_ERR_NOT_FOUND && strstr(e.msg, "no-such-model"), "%s", e.msg);
    /* the newer families: names the module and lists the family's own */
    st = load_from("lora-modernbert-seqcls", "modernbert-seqcls", "target_modules",
                   "[\"Wqkv\", \"query\"]", NULL, &e);
    ck_assert_msg(st == ER_ERR_UNSUPPORTED && strstr(e.msg, "'query'") &&
                  strstr(e.msg, "attn.Wqkv") && strstr(e.msg, "head.dense"), "%s", e.msg);
    st = load_from("lora-modernbert-seqcls", "modernbert-seqcls", "layers_to_transform", "[1]",
                   NULL, &e);
    ck_assert_msg(st == ER_ERR_FORMAT && strstr(e.msg, "layer 2") &&
                  strstr(e.msg, "layers.2.attn.Wqkv"), "%s", e.msg);
    st = load_from("lora-gte-seqcls", "gte-seqcls", "r", "4", NULL, &e); /* saved rank 8 */
    ck_assert_msg(st == ER_ERR_MISMATCH && strstr(e.msg, "lora_A"), "%s", e.msg);
    /* a module's whole name is a key too (peft's exact match); one of no layer is not */
    st = load_from("lora-mpnet-seqcls", "mpnet-seqcls", "target_modules",
                   "[\"mpnet.encoder.layer.0.attention.attn.q\", \"v\", \"dense\"]", NULL, &e);
    ck_assert_msg(st == ER_OK, "%s", e.msg);
    st = load_from("lora-mpnet-seqcls", "mpnet-seqcls", "target_modules",
                   "[\"mpnet.encoder.layer.9.attention.attn.q\"]", NULL, &e);
    ck_assert_msg(st == ER_ERR_UNSUPPORTED && strstr(e.msg, "layer.9"), "%s", e.msg);
    /* an embedding task's unused pooler.dense is a target peft accepts; nothing to apply */
    st = load_from("lora-minilm-embed", "minilm-embed", "target_modules",
                   "[\"query\", \"value\", \"pooler.dense\"]", NULL, &e);
    ck_assert_msg(st == ER_OK, "%s", e.msg);
    st = load_from("lora-nomic-embed", "nomic-embed", "target_modules", "[\"fc1\"]", NULL, &e);
    ck_assert_msg(st == ER_ERR_UNSUPPORTED && strstr(e.msg, "'fc1'") && strstr(e.msg, "mlp.fc12"),
                  "%s", e.msg);
    er_test_rmtree(dir);
}
END_TEST


/* Appends LoRA tensors on pooler.dense [H, H] (r = 8) to the adapter's
 * safetensors in dir/a, as peft saves them for an embedding task over a
 * *Model with a pooler. */
static void add_pooler_pair(int H) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "/usr/bin/env python3 -c \"import json,struct,sys\n"
             "p=sys.argv[1]; b=open(p,'rb').read(); n=struct.unpack('<Q',b[:8])[0]\n"
             "h=json.loads(b[8:8+n]); d=b[8+n:]\n"
             "for nm,sh in (('lora_A',[8,%d]),('lora_B',[%d,8])):\n"
             "  k=sh[0]*sh[1]; h['base_model.model.pooler.dense.'+nm+'.weight']={'dtype':'F32',"
             "'shape':sh,'data_offsets':[len(d),len(d)+4*k]}; d+=struct.pack('<%%df'%%k,*([0.5]*k))\n"
             "j=json.dumps(h).encode(); j+=b' '*((8-len(j)%%8)%%8)\n"
             "open(p,'wb').write(struct.pack('<Q',len(j))+j+d)\" %s/a/adapter_model.safetensors",
             H, H, dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A LoRA pair on a module the task does not compute (an embedding task's
 * pooler) changes nothing and is not refused: the adapter's output is the
 * one without it, bit for bit. */
START_TEST(unused_pooler_pair_ignored) {
    er_test_mkdtemp(dir, sizeof dir, "lora");
    char cmd[300], adir[128];
    snprintf(adir, sizeof adir, "%s/a", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp " MODELS "/lora-minilm-embed/* %s", adir, adir);
    ck_assert_int_eq(system(cmd), 0);
    int H;
    size_t n_out;
    sizes(MODELS "/minilm-embed", &H, &n_out);
    add_pooler_pair(H);
    er_model_params p = er_model_default_params();
    p.base_dir = MODELS "/minilm-embed";
    er_model *m;
    er_ctx *ctx;
    er_err e;
    ck_assert_msg(er_model_load(adir, &p, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, NULL), ER_OK);
    er_batch b = batch();
    float got[256], ref[256], h[12 * 64];
    ck_assert_int_eq(er_forward(m, ctx, &b, h, got, NULL), ER_OK);
    forward(MODELS "/lora-minilm-embed", false, ref, h);
    ck_assert_mem_eq(got, ref, n_out * sizeof *got);
    er_ctx_free(ctx);
    er_model_free(m);
    er_test_rmtree(dir);
}
END_TEST

/* Tasks added while serving share the lower stack by fingerprint, so a new
 * adapter task's first run on a batch the base warmed is a hit; removal
 * waits for held calls, and the base's stack outlives the base. */
START_TEST(add_and_remove_while_serving) {
    er_test_mkdtemp(dir, sizeof dir, "lora");
    char store[128];
    snprintf(store, sizeof store, "%s/store", dir);
    er_task_spec base = {"base", MODELS "/bert-seqcls", 0, ER_COMPUTE_FP32};
    er_err e;
    er_taskset *ts = load(&base, 1, -1, store, &e);
    ck_assert_msg(ts, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    er_batch b = batch();
    uint8_t hit[2];
    float got[64], ref[64], h[12 * 64];
    ck_assert_int_eq(er_run(w, er_taskset_find(ts, "base"), &b, 0, got, hit, NULL, &e), ER_OK);
    er_store_flush(er_taskset_store(ts));

    er_task_spec lora = {"lora", MODELS "/lora-bert-seqcls", 0, ER_COMPUTE_FP32};
    ck_assert_msg(er_taskset_add(ts, &lora, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_taskset_add(ts, &lora, &e), ER_ERR_INVALID_ARG); /* served already */
    const er_task *t = er_taskset_find(ts, "lora");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 1);
    ck_assert_int_eq(er_run(w, t, &b, 0, got, hit, NULL, &e), ER_OK);
    ck_assert_msg(hit[0] && hit[1], "a task added at run time missed the warmed store");
    forward(MODELS "/lora-bert-seqcls", false, ref, h);
    ck_assert_mem_eq(got, ref, 6 * sizeof(float));

    /* a bad one is refused and leaves nothing behind */
    er_task_spec bad = {"bad", MODELS "/no-such-model", 0, ER_COMPUTE_FP32};
    ck_assert_int_ne(er_taskset_add(ts, &bad, &e), ER_OK);
    ck_assert_ptr_null(er_taskset_find(ts, "bad"));

    /* removal while a call holds it: still runs until released */
    ck_assert(er_task_acquire(ts, t));
    ck_assert_int_eq(er_taskset_remove(ts, "lora", &e), ER_OK);
    ck_assert_ptr_null(er_taskset_find(ts, "lora"));
    ck_assert(!er_task_live(t));
    ck_assert(!er_task_acquire(ts, t));
    ck_assert_int_eq(er_run(w, t, &b, 0, got, hit, NULL, &e), ER_OK);
    ck_assert_mem_eq(got, ref, 6 * sizeof(float));
    er_task_release(ts, t);
    ck_assert_int_eq(er_taskset_remove(ts, "lora", &e), ER_ERR_NOT_FOUND);

    /* the same name again, then the base goes: its stack stays for the adapter */
    ck_assert_msg(er_taskset_add(ts, &lora, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_taskset_remove(ts, "base", &e), ER_OK);
    t = er_taskset_find(ts, "lora");
    ck_assert_int_eq(er_run(w, t, &b, 0, got, hit, NULL, &e), ER_OK);
    ck_assert(hit[0] && hit[1]);
    ck_assert_mem_eq(got, ref, 6 * sizeof(float));
    ck_assert_int_eq(er_taskset_remove(ts, "lora", &e), ER_OK);
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
}
END_TEST


/* Models over one checkpoint file map it once (RSS counts it once): the
 * base, a second load of it and an adapter over it share the mapping, which
 * lives until the last of them is freed. */
START_TEST(one_mapping_per_file) {
    er_model *a, *b, *l;
    ck_assert_int_eq(er_model_load(MODELS "/bert-seqcls", NULL, &a, NULL), ER_OK);
    ck_assert_int_eq(er_model_load(MODELS "/bert-seqcls/", NULL, &b, NULL), ER_OK);
    ck_assert_int_eq(er_model_load(MODELS "/lora-bert-seqcls", NULL, &l, NULL), ER_OK);
    ck_assert_ptr_eq(a->files[0], b->files[0]);
    ck_assert_ptr_eq(a->files[0], l->files[0]);
    er_model_free(a);
    er_model_free(b);
    er_ctx *ctx;
    ck_assert_int_eq(er_ctx_init(l, NULL, &ctx, NULL), ER_OK);
    er_batch bt = batch();
    float h[12 * 64], out[8], ref[8], h2[12 * 64];
    ck_assert_int_eq(er_forward(l, ctx, &bt, h, out, NULL), ER_OK);
    forward(MODELS "/lora-bert-seqcls", false, ref, h2);
    ck_assert_mem_eq(out, ref, 6 * sizeof(float));
    er_ctx_free(ctx);
    er_model_free(l);
}
END_TEST

static Suite *lora_suite(void) {
    Suite *s = suite_create("lora");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, merged_equals_unmerged);
    tcase_add_test(tc, fused_views_share_a_and_split_b);
    tcase_add_test(tc, newer_families_share_and_hit);
    tcase_add_test(tc, unused_pooler_pair_ignored);
    tcase_add_test(tc, shares_base_stack_and_hits);
    tcase_add_test(tc, below_the_cut);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, add_and_remove_while_serving);
    tcase_add_test(tc, one_mapping_per_file);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(lora_suite)
