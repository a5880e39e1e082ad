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
#include "model_internal.h"
#include "recycle.h"

#define MODELS "tests/fixtures/models"

static char dir[64];

/* Two sequences every fixture vocabulary holds. */
static int32_t ids[] = {2, 40, 77, 9, 120, 3, 2, 18, 200, 3, 51, 3};
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

START_TEST(merged_equals_unmerged) {
    static const char *const NAMES[] = {"lora-bert-seqcls", "lora-roberta-rslora",
                                        "lora-distilbert-seqcls"};
    static const char *const BASES[] = {"bert-seqcls", "roberta-seqcls", "distilbert-seqcls"};
    for (int i = 0; i < 3; i++) {
        char mdir[128];
        snprintf(mdir, sizeof mdir, MODELS "/%s", NAMES[i]);
        float a[64], b[64], ha[12 * 64], hb[12 * 64];
        forward(mdir, false, a, ha);
        forward(mdir, true, b, hb);
        double worst = 0, moved = 0;
        for (int j = 0; j < 12 * 48; j++) worst = fmax(worst, fabs(ha[j] - hb[j]));
        ck_assert_msg(worst < 1e-4, "%s: merged vs unmerged hidden %g", NAMES[i], worst);
        /* and the adapter does something: the base's own output differs */
        snprintf(mdir, sizeof mdir, MODELS "/%s", BASES[i]);
        forward(mdir, false, b, hb);
        for (int j = 0; j < 12 * 48; j++) moved = fmax(moved, fabs(ha[j] - hb[j]));
        ck_assert_msg(moved > 1e-2, "%s: adapter changes nothing (%g)", NAMES[i], moved);
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

static char logbuf[4096];
static void log_line(void *u, er_log_level l, const char *msg) {
    (void)u, (void)l;
    strncat(logbuf, msg, sizeof logbuf - strlen(logbuf) - 1);
}

START_TEST(below_the_cut) {
    er_task_spec specs[] = {{"base", MODELS "/roberta-seqcls", 0, ER_COMPUTE_FP32},
                            {"low", MODELS "/lora-roberta-rslora", 0, ER_COMPUTE_FP32}};
    er_err e;
    logbuf[0] = 0;
    er_log_set_sink(log_line, NULL);
    er_taskset *ts = load(specs, 2, -1, NULL, &e);
    er_log_set_sink(NULL, NULL);
    ck_assert_msg(ts, "%s", e.msg);
    ck_assert_int_eq(er_taskset_cut(ts), 1);
    ck_assert_int_eq(er_task_cut(er_taskset_at(ts, 1)), 0); /* layer 0 is adapted */
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 2);
    ck_assert_msg(strstr(logbuf, "task low: its LoRA adapter changes layer 0"), "%s", logbuf);
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
static er_status load_with(const char *key, const char *json, const char *root, er_err *e) {
    char cmd[1024], adir[128];
    snprintf(adir, sizeof adir, "%s/a", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp " MODELS "/lora-bert-seqcls/* %s && "
             "/usr/bin/env python3 -c \"import json,sys; p='%s/adapter_config.json'; "
             "c=json.load(open(p)); c['%s']=json.loads(sys.argv[1]); json.dump(c, open(p,'w'))\" "
             "'%s'", adir, adir, adir, key, json);
    ck_assert_int_eq(system(cmd), 0);
    er_model_params p = er_model_default_params();
    p.base_dir = root ? NULL : MODELS "/bert-seqcls";
    p.model_root = root;
    er_model *m = NULL;
    er_status st = er_model_load(adir, &p, &m, e);
    er_model_free(m);
    return st;
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
    tcase_add_test(tc, shares_base_stack_and_hits);
    tcase_add_test(tc, below_the_cut);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, add_and_remove_while_serving);
    tcase_add_test(tc, one_mapping_per_file);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(lora_suite)
