/* Recycling: er_run equals er_forward bit for bit with fp32 storage on every
 * fixture model and golden case, on miss and on hit; fp16 / int8 stay within
 * the documented bounds; lower stacks are shared exactly when equal; per-task
 * higher cuts; task set errors.  (erserve-cache end to end: tests/tools.) */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "er_log.h"
#include "gemm_dnnl.h"
#include "log_capture.h"
#include "recycle.h"
#include "recycle_internal.h"
#include "store.h"

/* Head error bounds for fp16 / int8 storage, relative to the largest |logit|
 * (or embedding component) of the case, measured on every golden (see
 * core/STORE.md for the figures). */
#define FP16_REL_BOUND 4e-3  /* worst measured 2.0e-3 (electra-disc) */
#define INT8_REL_BOUND 0.25  /* worst measured 0.14 (electra-disc), most 0.6e-2 to 4e-2 */

static char dir[64];

static void mk_dir(void) { er_test_mkdtemp(dir, sizeof dir, "recycle"); }
static void rm_dir(void) { er_test_rmtree(dir); }

/* ---- golden cases as packed batches ---- */

typedef struct {
    int n_seqs, seq_len[64];
    int32_t ids[4096], types[4096];
    int has_types;
} gcase;

static int load_cases(const char *name, gcase **out) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/golden/%s.json", name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", path, je.text);
    json_t *cases = json_object_get(root, "cases");
    int n = (int)json_array_size(cases);
    gcase *cs = calloc((size_t)n, sizeof *cs);
    for (int c = 0; c < n; c++) {
        json_t *jc = json_array_get(cases, (size_t)c);
        json_t *ids = json_object_get(jc, "input_ids"), *mask = json_object_get(jc, "attention_mask");
        json_t *tys = json_object_get(jc, "token_type_ids");
        gcase *g = &cs[c];
        g->n_seqs = (int)json_array_size(ids);
        g->has_types = tys != NULL;
        int t = 0;
        for (int s = 0; s < g->n_seqs; s++) {
            json_t *row = json_array_get(ids, (size_t)s);
            int len = 0;
            for (size_t i = 0; i < json_array_size(row); i++) {
                if (mask && !json_integer_value(json_array_get(json_array_get(mask, (size_t)s), i))) break;
                g->ids[t] = (int32_t)json_integer_value(json_array_get(row, i));
                g->types[t] = tys ? (int32_t)json_integer_value(json_array_get(json_array_get(tys, (size_t)s), i)) : 0;
                t++;
                len++;
            }
            g->seq_len[s] = len;
        }
    }
    json_decref(root);
    *out = cs;
    return n;
}

static er_batch batch_of(const gcase *g) {
    return (er_batch){g->n_seqs, g->seq_len, g->ids, g->has_types ? g->types : NULL};
}

static er_taskset *load_set(const er_task_spec *specs, int n, const char *store, er_dtype d,
                            int cut) {
    er_taskset_params p = er_taskset_default_params();
    p.store_path = store;
    p.store.dtype = d;
    p.store.budget_bytes = 64u << 20;
    p.store.queue_bytes = 8u << 20;
    p.cut = cut;
    er_taskset *ts = NULL;
    er_err e;
    ck_assert_msg(er_taskset_load(specs, n, &p, &ts, &e) == ER_OK, "%s", e.msg);
    return ts;
}

/* Worker scratch for the goldens: sequences up to max_tokens long
 * (modernbert-long has 1100 tokens). */
static er_ctx_params long_params(void) {
    er_ctx_params cp = er_ctx_default_params();
    cp.max_seq_len = cp.max_tokens;
    return cp;
}

/* er_forward of a fully loaded copy of dir: the reference. */
static void reference(const char *mdir, const er_batch *b, float *out) {
    er_model *m;
    er_ctx *ctx;
    er_err e;
    er_ctx_params cp = long_params();
    ck_assert_msg(er_model_load(mdir, NULL, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_ctx_init(m, &cp, &ctx, NULL), ER_OK);
    float *x = malloc(4096 * sizeof(float) * (size_t)er_model_config(m)->hidden_size);
    ck_assert_msg(er_forward(m, ctx, b, x, out, &e) == ER_OK, "%s", e.msg);
    free(x);
    er_ctx_free(ctx);
    er_model_free(m);
}

static int n_models;
static char models[64][64];

static void list_models(void) {
    if (n_models) return;
    DIR *d = opendir("tests/fixtures/golden");
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)) && n_models < 64) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".json")) {
            snprintf(models[n_models], sizeof models[0], "%.*s", (int)(len - 5), de->d_name);
            n_models++;
        }
    }
    closedir(d);
}

/* An explicit cut for the model in mdir: `cut`, or (-1 stays the default)
 * no higher than the lowest layer its LoRA adapter changes, which an
 * explicit cut above it refuses (test_lora checks that refusal). */
static int explicit_cut(const char *mdir, int cut) {
    er_model *m;
    er_err e;
    if (cut < 0) return cut;
    ck_assert_msg(er_model_load(mdir, NULL, &m, &e) == ER_OK, "%s", e.msg);
    int low = er_model_lowest_adapted(m);
    er_model_free(m);
    return low < cut ? low : cut;
}

/* Runs every golden case of every model on miss then hit; the two must agree
 * bit for bit (fp32: with er_forward too).  Returns the worst head error
 * relative to the case's largest |output| (0 when exact). */
static double run_all(er_dtype d, int cut_mode) {
    list_models();
    double worst = 0;
    float *ref = malloc(1 << 22), *got = malloc(1 << 22), *first = malloc(1 << 22);
    for (int mi = 0; mi < n_models; mi++) {
        char mdir[256];
        snprintf(mdir, sizeof mdir, "tests/fixtures/models/%s", models[mi]);
        gcase *cs;
        int nc = load_cases(models[mi], &cs);
        mk_dir();
        er_task_spec spec = {"t", mdir, 0, ER_COMPUTE_FP32};
        er_taskset *ts = load_set(&spec, 1, dir, d, explicit_cut(mdir, cut_mode));
        const er_task *t = er_taskset_at(ts, 0);
        er_worker *w;
        er_ctx_params cp = long_params();
        ck_assert_int_eq(er_worker_init(ts, &cp, &w, NULL), ER_OK);
        double model_worst = 0;
        for (int c = 0; c < nc; c++) {
            er_batch b = batch_of(&cs[c]);
            size_t n_out = er_head_out_size(er_task_model(t), &b);
            reference(mdir, &b, ref);
            uint8_t hit[64];
            for (int pass = 0; pass < 2; pass++) {
                er_run_stats st;
                er_err e;
                memset(got, 0xff, n_out * sizeof *got);
                ck_assert_msg(er_run(w, t, &b, 0, got, hit, &st, &e) == ER_OK, "%s: %s", models[mi], e.msg);
                for (int s = 0; s < b.n_seqs; s++)
                    ck_assert_msg(hit[s] == pass, "%s case %d seq %d: hit %d on pass %d", models[mi], c, s, hit[s], pass);
                ck_assert_int_eq(st.hits, pass ? b.n_seqs : 0);
                if (pass == 0) memcpy(first, got, n_out * sizeof *got);
                else /* a miss is rounded as the store rounds: the hit answers the same */
                    ck_assert_msg(!memcmp(first, got, n_out * sizeof *got),
                                  "%s case %d: the hit differs from the miss", models[mi], c);
                if (d == ER_DTYPE_FP32) {
                    ck_assert_msg(!memcmp(ref, got, n_out * sizeof *got),
                                  "%s case %d pass %d: not bit-identical to er_forward", models[mi], c, pass);
                } else {
                    double amax = 0, emax = 0;
                    for (size_t i = 0; i < n_out; i++) {
                        amax = fmax(amax, fabs(ref[i]));
                        emax = fmax(emax, fabs(ref[i] - got[i]));
                    }
                    model_worst = fmax(model_worst, emax / fmax(amax, 1e-6));
                }
                er_store_flush(er_taskset_store(ts));
            }
        }
        if (d != ER_DTYPE_FP32)
            fprintf(stderr, "  %s %-22s worst head error / max|out| = %.2e\n",
                    er_dtype_name(d), models[mi], model_worst);
        worst = fmax(worst, model_worst);
        er_worker_free(w);
        er_taskset_free(ts);
        free(cs);
        rm_dir();
    }
    free(ref);
    free(got);
    free(first);
    return worst;
}

START_TEST(test_exact_fp32) {
    run_all(ER_DTYPE_FP32, -1);
    run_all(ER_DTYPE_FP32, 1);
}
END_TEST

START_TEST(test_fp16_bound) {
    double w = run_all(ER_DTYPE_FP16, -1);
    ck_assert_msg(w <= FP16_REL_BOUND, "fp16 head error %.3e over the bound", w);
}
END_TEST

START_TEST(test_int8_bound) {
    double w = run_all(ER_DTYPE_INT8, -1);
    ck_assert_msg(w <= INT8_REL_BOUND, "int8 head error %.3e over the bound", w);
}
END_TEST

/* ---- sharing ---- */


/* Copies bert-seqcls to dst and adds delta to the first value of tensor `name`. */
static void modified_copy(const char *dst, const char *name, float delta) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp tests/fixtures/models/bert-seqcls/* %s/", dst, dst);
    ck_assert_int_eq(system(cmd), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    uint64_t hlen;
    ck_assert_int_eq(fread(&hlen, 8, 1, f), 1);
    char *h = calloc(1, hlen + 1);
    ck_assert_int_eq(fread(h, 1, hlen, f), hlen);
    json_t *root = json_loads(h, 0, NULL);
    ck_assert_ptr_nonnull(root);
    json_t *t = json_object_get(root, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    long off = 8 + (long)hlen + (long)json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
    float v;
    fseek(f, off, SEEK_SET);
    ck_assert_int_eq(fread(&v, 4, 1, f), 1);
    v += delta;
    fseek(f, off, SEEK_SET);
    ck_assert_int_eq(fwrite(&v, 4, 1, f), 1);
    fclose(f);
    json_decref(root);
    free(h);
}

/* Runs task i of ts on every bert-seqcls case twice (miss, hit) and compares
 * with er_forward of mdir bit for bit. */
static void check_task(er_taskset *ts, const char *name, const char *mdir) {
    gcase *cs;
    int nc = load_cases("bert-seqcls", &cs);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    const er_task *t = er_taskset_find(ts, name);
    ck_assert_ptr_nonnull(t);
    float ref[256], got[256];
    for (int c = 0; c < nc; c++) {
        er_batch b = batch_of(&cs[c]);
        reference(mdir, &b, ref);
        size_t n_out = er_head_out_size(er_task_model(t), &b);
        for (int pass = 0; pass < 2; pass++) {
            er_err e;
            ck_assert_msg(er_run(w, t, &b, 0, got, NULL, NULL, &e) == ER_OK, "%s", e.msg);
            ck_assert_msg(!memcmp(ref, got, n_out * sizeof *got), "task %s case %d pass %d differs",
                          name, c, pass);
            er_store_flush(er_taskset_store(ts));
        }
    }
    er_worker_free(w);
    free(cs);
}

START_TEST(test_sharing) {
    mk_dir();
    char store[128], up[128], low[128], mid[128];
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(up, sizeof up, "%s/upper", dir);
    snprintf(low, sizeof low, "%s/lower", dir);
    snprintf(mid, sizeof mid, "%s/mid", dir);
    /* 3 layers, store cut 1 */
    modified_copy(up, "bert.encoder.layer.2.output.dense.weight", 0.5f); /* above every cut */
    modified_copy(low, "bert.embeddings.word_embeddings.weight", 0.5f);  /* below the cut */
    modified_copy(mid, "bert.encoder.layer.1.output.dense.weight", 0.5f); /* in [1, 2) */
    const char *base = "tests/fixtures/models/bert-seqcls";
    er_task_spec specs[] = {{"a", base, 0, ER_COMPUTE_FP32},  {"b", base, 0, ER_COMPUTE_FP32},
                            {"up", up, 0, ER_COMPUTE_FP32},   {"low", low, 0, ER_COMPUTE_FP32},
                            {"hi", base, 2, ER_COMPUTE_FP32}, {"mid", mid, 2, ER_COMPUTE_FP32}};
    er_test_log_start();
    er_taskset *ts = load_set(specs, 6, store, ER_DTYPE_FP32, 1);
    er_test_log_stop();
    ck_assert_int_eq(er_taskset_cut(ts), 1);
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 2);
    int st[6];
    for (int i = 0; i < 6; i++) st[i] = er_task_lower_stack(er_taskset_at(ts, i));
    ck_assert(st[0] == st[1] && st[0] == st[2] && st[0] == st[4] && st[0] == st[5] && st[3] != st[0]);
    ck_assert_mem_eq(er_task_fingerprint(er_taskset_at(ts, 0)), er_task_fingerprint(er_taskset_at(ts, 2)), 32);
    ck_assert(memcmp(er_task_fingerprint(er_taskset_at(ts, 0)), er_task_fingerprint(er_taskset_at(ts, 3)), 32));
    ck_assert_int_eq(er_task_cut(er_taskset_at(ts, 4)), 2);
    ck_assert_msg(strstr(er_test_logbuf, "warning: task low cannot share") && strstr(er_test_logbuf, "embeddings.word"),
                  "%s", er_test_logbuf);
    ck_assert_msg(strstr(er_test_logbuf, "warning: task mid declares cut 2"), "%s", er_test_logbuf);
    ck_assert_msg(strstr(er_test_logbuf, "lower stack 0 (store cut 1): a(cut 1), b(cut 1)"),
                  "%s", er_test_logbuf);
    check_task(ts, "a", base);
    check_task(ts, "b", base);
    check_task(ts, "up", up);
    check_task(ts, "low", low);
    check_task(ts, "hi", base);
    check_task(ts, "mid", mid);
    er_taskset_free(ts);
    rm_dir();
}
END_TEST

/* A batch where some sequences hit and others miss gives er_forward's result
 * up to the engine's batch-composition rounding. */
START_TEST(test_mixed_batch) {
    mk_dir();
    const char *base = "tests/fixtures/models/bert-seqcls";
    er_task_spec spec = {"t", base, 0, ER_COMPUTE_FP32};
    er_taskset *ts = load_set(&spec, 1, dir, ER_DTYPE_FP32, -1);
    const er_task *t = er_taskset_at(ts, 0);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    gcase *cs;
    int nc = load_cases("bert-seqcls", &cs);
    for (int c = 0; c < nc; c++) {
        er_batch b = batch_of(&cs[c]);
        if (b.n_seqs < 2) continue;
        er_batch one = b; /* warm the second sequence alone */
        one.n_seqs = 1;
        one.seq_len = b.seq_len + 1;
        one.ids = b.ids + b.seq_len[0];
        one.type_ids = b.type_ids ? b.type_ids + b.seq_len[0] : NULL;
        uint8_t hit[64];
        er_run_stats rs;
        ck_assert_int_eq(er_warm(w, t, &one, 0, hit, &rs, NULL), ER_OK);
        ck_assert_int_eq(hit[0], 0);
        ck_assert_int_eq(rs.misses, 1);
        er_store_flush(er_taskset_store(ts));
        float ref[256], got[256];
        reference(base, &b, ref);
        ck_assert_int_eq(er_run(w, t, &b, 0, got, hit, &rs, NULL), ER_OK);
        ck_assert(hit[0] == 0 && hit[1] == 1);
        ck_assert_int_eq(rs.hits, 1);
        /* Not bit for bit: OpenBLAS's sgemm rounds a row differently with
         * the number of rows, so the engine itself gives a sequence ~1e-6
         * different results in different batches; the hit carries the
         * activations of the batch that computed them. */
        for (size_t i = 0; i < er_head_out_size(er_task_model(t), &b); i++)
            ck_assert_float_le(fabsf(ref[i] - got[i]), 1e-5f * fmaxf(1.0f, fabsf(ref[i])));
        /* another salt is another key */
        ck_assert_int_eq(er_run(w, t, &b, 1, got, hit, NULL, NULL), ER_OK);
        ck_assert_int_eq(hit[1], 0);
    }
    free(cs);
    er_worker_free(w);
    er_taskset_free(ts);
    rm_dir();
}
END_TEST

/* Long inputs: a task's limit is its own model's positions, whatever the
 * batch budget; a worker sized by er_worker_params for a small budget runs
 * a 1200-token input alone, bit-identical to er_forward, miss and hit. */
START_TEST(test_long_input_alone) {
    mk_dir();
    const char *long_dir = "tests/fixtures/models/bert-long";
    er_task_spec specs[2] = {{"short", "tests/fixtures/models/bert-seqcls", 0, ER_COMPUTE_FP32},
                             {"long", long_dir, 0, ER_COMPUTE_FP32}};
    er_taskset *ts = load_set(specs, 2, dir, ER_DTYPE_FP32, 1);
    const er_task *sh = er_taskset_at(ts, 0), *lg = er_taskset_at(ts, 1);
    ck_assert_int_eq(er_task_max_input_tokens(sh, 0), 40);
    ck_assert_int_eq(er_task_max_input_tokens(lg, 0), 1200);
    ck_assert_int_eq(er_task_max_input_tokens(lg, 500), 500);
    ck_assert_int_eq(er_task_max_input_tokens(lg, 5000), 1200);
    ck_assert_int_eq(er_taskset_longest_input(ts, 0), 1200);
    ck_assert_int_eq(er_taskset_longest_input(ts, 30), 30);
    er_ctx_params p = er_worker_params(ts, 64, 4, 0); /* budget 64 tokens */
    ck_assert_int_eq(p.max_tokens, 1200);
    ck_assert_int_eq(p.max_seq_len, 1200);
    ck_assert_int_eq(p.max_seqs, 4);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, &p, &w, NULL), ER_OK);
    /* the widest model (bert-seqcls: hidden 48, intermediate 128) at 1200
     * tokens: per token 4 H + H + F floats (ctx) and 2 H floats + 2 ids */
    size_t per_tok = (4 * 48 + 48 + 128 + 2 * 48) * sizeof(float) + 2 * sizeof(int32_t);
    ck_assert_uint_ge(er_worker_bytes(w), 1200 * per_tok);
    ck_assert_uint_le(er_worker_bytes(w), 1200 * per_tok + (2u << 20));
    gcase *cs;
    int nc = load_cases("bert-long", &cs);
    er_batch b = batch_of(&cs[nc - 1]); /* max_length: one 1200-token input */
    ck_assert_int_eq(b.n_seqs, 1);
    ck_assert_int_eq(b.seq_len[0], 1200);
    float ref[8], got[8];
    reference(long_dir, &b, ref);
    uint8_t hit[4];
    for (int pass = 0; pass < 2; pass++) {
        er_err e;
        ck_assert_msg(er_run(w, lg, &b, 0, got, hit, NULL, &e) == ER_OK, "%s", e.msg);
        ck_assert_int_eq(hit[0], pass);
        ck_assert(!memcmp(ref, got, er_head_out_size(er_task_model(lg), &b) * sizeof *got));
        er_store_flush(er_taskset_store(ts));
    }
    /* two long inputs are two batches: together they exceed the scratch */
    int lens2[2] = {1200, 1};
    er_batch two = {2, lens2, b.ids, NULL};
    er_err e;
    ck_assert_int_eq(er_run(w, lg, &two, 0, got, hit, NULL, &e), ER_ERR_CAPACITY);
    /* the short task keeps its own model's limit */
    int len41 = 41;
    er_batch over = {1, &len41, b.ids, NULL};
    ck_assert_int_eq(er_run(w, sh, &over, 0, got, hit, NULL, &e), ER_ERR_CAPACITY);
    ck_assert_ptr_nonnull(strstr(e.msg, "1 to 40"));
    free(cs);
    er_worker_free(w);
    er_taskset_free(ts);
    rm_dir();
    /* RoBERTa: 34 positions, of which padding_idx + 1 = 2 are reserved */
    er_task_spec rspec = {"r", "tests/fixtures/models/roberta-seqcls", 0, ER_COMPUTE_FP32};
    er_taskset *rts = load_set(&rspec, 1, NULL, ER_DTYPE_FP32, 1);
    ck_assert_int_eq(er_task_max_input_tokens(er_taskset_at(rts, 0), 0), 32);
    ck_assert_int_eq(er_worker_params(rts, 16, 2, 0).max_tokens, 32);
    er_taskset_free(rts);
}
END_TEST

/* The store's write queue grows at load so that the longest input's value
 * fits (a value larger than half the queue would never be cached). */
START_TEST(test_long_value_fits_queue) {
    mk_dir();
    er_task_spec spec = {"long", "tests/fixtures/models/bert-long", 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = dir;
    p.store.dtype = ER_DTYPE_FP32;
    p.store.queue_bytes = 4096; /* a 1200 x 32 fp32 value is 150 KiB */
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(&spec, 1, &p, &ts, &e) == ER_OK, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    static int32_t ids[1200];
    for (int i = 0; i < 1200; i++) ids[i] = 5 + i % 190;
    int len = 1200;
    er_batch b = {1, &len, ids, NULL};
    float out[8];
    uint8_t hit[1];
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, NULL, &e), ER_OK);
        ck_assert_int_eq(hit[0], pass);
        er_store_flush(er_taskset_store(ts));
    }
    er_store_counters c;
    er_store_stats(er_taskset_store(ts), &c);
    ck_assert_uint_eq(c.dropped, 0);
    er_worker_free(w);
    er_taskset_free(ts);
    rm_dir();
}
END_TEST

START_TEST(test_no_store_and_errors) {
    const char *base = "tests/fixtures/models/bert-seqcls";
    er_task_spec spec = {"t", base, 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    er_taskset *ts;
    ck_assert_int_eq(er_taskset_load(&spec, 1, &p, &ts, NULL), ER_OK);
    ck_assert_ptr_null(er_taskset_store(ts));
    ck_assert_int_eq(er_taskset_cut(ts), 1); /* half of 3 layers */
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[3] = {2, 5, 3};
    int len = 3;
    er_batch b = {1, &len, ids, NULL};
    float out[8];
    uint8_t hit[1] = {1};
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, NULL, NULL), ER_OK);
    ck_assert_int_eq(hit[0], 0);
    ck_assert_int_eq(er_warm(w, er_taskset_at(ts, 0), &b, 0, hit, NULL, NULL), ER_ERR_INVALID_ARG);
    ids[1] = 1 << 30;
    er_err e;
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, NULL, &e), ER_ERR_INVALID_ARG);
    er_worker_free(w);
    er_taskset_free(ts);

    er_task_spec dup[] = {{"x", base, 0, ER_COMPUTE_FP32}, {"x", base, 0, ER_COMPUTE_FP32}};
    ck_assert_int_eq(er_taskset_load(dup, 2, &p, &ts, &e), ER_ERR_INVALID_ARG);
    er_task_spec bad = {"no spaces", base, 0, ER_COMPUTE_FP32};
    ck_assert_int_eq(er_taskset_load(&bad, 1, &p, &ts, &e), ER_ERR_INVALID_ARG);
    er_task_spec high = {"h", base, 4, ER_COMPUTE_FP32};
    ck_assert_int_eq(er_taskset_load(&high, 1, &p, &ts, &e), ER_ERR_INVALID_ARG);
    ck_assert_msg(strstr(e.msg, "task h"), "%s", e.msg);
    er_task_spec low = {"l", base, 1, ER_COMPUTE_FP32};
    p.cut = 2;
    ck_assert_int_eq(er_taskset_load(&low, 1, &p, &ts, &e), ER_ERR_INVALID_ARG);
    er_task_spec missing = {"m", "tests/fixtures/models/nope", 0, ER_COMPUTE_FP32};
    ck_assert_int_ne(er_taskset_load(&missing, 1, &p, &ts, &e), ER_OK);
    ck_assert_ptr_null(ts);
}
END_TEST

/* Workers on several threads share one task set and store. */
typedef struct {
    er_taskset *ts;
    gcase *cs;
    int nc, bad;
    float (*ref)[256];
} thr_arg;

static void *worker_main(void *p) {
    thr_arg *a = p;
    er_worker *w;
    if (er_worker_init(a->ts, NULL, &w, NULL) != ER_OK) { a->bad++; return NULL; }
    float got[256];
    for (int it = 0; it < 20; it++)
        for (int c = 0; c < a->nc; c++) {
            er_batch b = batch_of(&a->cs[c]);
            const er_task *t = er_taskset_at(a->ts, it % 2);
            if (er_run(w, t, &b, 0, got, NULL, NULL, NULL) != ER_OK ||
                memcmp(got, a->ref[c], er_head_out_size(er_task_model(t), &b) * sizeof(float)))
                a->bad++;
        }
    er_worker_free(w);
    return NULL;
}

/* The store key covers the numerics class (recycle.c): the own AVX-512 and
 * AVX2 kernels compute the same bits (test_gemm, test_attention,
 * tests/gemm_avx2.sh) and share keys; OpenBLAS's sums differ, so a host on
 * OpenBLAS and one on the own kernels get different keys for the same
 * tokens, and a shared tier never serves one the other's activations.
 * DeBERTa's lower layers call OpenBLAS on any backend: its class names
 * OpenBLAS's kernel set even on the own kernels. */
static void fingerprints_on(const char *model, uint8_t own512[32], uint8_t avx2[32],
                            uint8_t blas[32]) {
    char mdir[128];
    snprintf(mdir, sizeof mdir, "tests/fixtures/models/%s", model);
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(mdir, NULL, &m, &err) == ER_OK, "%s", err.msg);
    ck_assert_int_eq(er_fingerprint_on(m, 1, ER_GEMM_AVX512, own512, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint_on(m, 1, ER_GEMM_AVX2, avx2, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint_on(m, 1, ER_GEMM_OPENBLAS, blas, &err), ER_OK);
    uint8_t here[32], here_on[32];
    ck_assert_int_eq(er_fingerprint(m, 1, here, NULL, NULL, &err), ER_OK);
    ck_assert_int_eq(er_fingerprint_on(m, 1, er_gemm_backend_get(), here_on, &err), ER_OK);
    ck_assert_mem_eq(here, here_on, 32); /* this process's key is its backend's */
    er_model_free(m);
}

START_TEST(test_numerics_class_in_key) {
    static const char *const families[] = {"bert-seqcls", "deberta-v2-seqcls"};
    const int32_t ids[4] = {101, 2023, 2003, 102};
    for (int i = 0; i < 2; i++) {
        uint8_t own512[32], avx2[32], blas[32];
        fingerprints_on(families[i], own512, avx2, blas);
        ck_assert_mem_eq(own512, avx2, 32);
        ck_assert_msg(memcmp(own512, blas, 32) != 0, "%s: OpenBLAS shares the own kernels' "
                      "fingerprint", families[i]);
        uint8_t k_own[ER_STORE_KEY_BYTES], k_avx2[ER_STORE_KEY_BYTES], k_blas[ER_STORE_KEY_BYTES];
        er_store_key(own512, 1, 4, ids, NULL, 0, k_own);
        er_store_key(avx2, 1, 4, ids, NULL, 0, k_avx2);
        er_store_key(blas, 1, 4, ids, NULL, 0, k_blas);
        ck_assert_mem_eq(k_own, k_avx2, ER_STORE_KEY_BYTES);
        ck_assert_int_ne(memcmp(k_own, k_blas, ER_STORE_KEY_BYTES), 0);
    }
    /* the class text: empty for BERT on the own kernels (fingerprints as
     * before), OpenBLAS's kernel set where it computes */
    er_model *m = NULL;
    er_err err;
    ck_assert_int_eq(er_model_load("tests/fixtures/models/bert-seqcls", NULL, &m, &err), ER_OK);
    char own[128], blas[128];
    er_numerics_class(ER_GEMM_AVX2, er_model_config(m), own, sizeof own);
    er_numerics_class(ER_GEMM_OPENBLAS, er_model_config(m), blas, sizeof blas);
    ck_assert_str_eq(own, "");
    ck_assert_msg(strstr(blas, "numerics=openblas openblas=") != NULL, "%s", blas);
    if (er_dnnl_init(&err) == ER_OK) { /* oneDNN's kernels: a class of their own */
        char dnnl[512];
        er_numerics_class(ER_GEMM_ONEDNN, er_model_config(m), dnnl, sizeof dnnl);
        ck_assert_msg(strstr(dnnl, " numerics=onednn dnnl=oneDNN ") == dnnl, "%s", dnnl);
    } else {
        printf("test_numerics_class_in_key: no oneDNN class to check: %s\n", err.msg);
    }
    er_model_free(m);
    ck_assert_int_eq(er_model_load("tests/fixtures/models/deberta-v2-seqcls", NULL, &m, &err), ER_OK);
    er_numerics_class(ER_GEMM_AVX512, er_model_config(m), own, sizeof own);
    ck_assert_msg(strstr(own, "numerics=own openblas=") != NULL, "%s", own);
    er_model_free(m);
}
END_TEST

START_TEST(test_threads) {
    mk_dir();
    const char *base = "tests/fixtures/models/bert-seqcls";
    er_task_spec specs[] = {{"a", base, 0, ER_COMPUTE_FP32}, {"b", base, 0, ER_COMPUTE_FP32}};
    er_taskset *ts = load_set(specs, 2, dir, ER_DTYPE_FP32, -1);
    gcase *cs;
    int nc = load_cases("bert-seqcls", &cs);
    static float ref[16][256];
    for (int c = 0; c < nc && c < 16; c++) {
        er_batch b = batch_of(&cs[c]);
        reference(base, &b, ref[c]);
    }
    pthread_t th[3];
    thr_arg args[3];
    for (int k = 0; k < 3; k++) {
        args[k] = (thr_arg){ts, cs, nc < 16 ? nc : 16, 0, ref};
        ck_assert_int_eq(pthread_create(&th[k], NULL, worker_main, &args[k]), 0);
    }
    for (int k = 0; k < 3; k++) {
        pthread_join(th[k], NULL);
        ck_assert_int_eq(args[k].bad, 0);
    }
    /* What the threads stored is served once committed: whether their own
     * lookups hit depends on when the writer thread commits (under valgrind
     * it may not before they finish), so hits are checked after a flush. */
    er_store_flush(er_taskset_store(ts));
    thr_arg again = {ts, cs, nc < 16 ? nc : 16, 0, ref};
    worker_main(&again);
    ck_assert_int_eq(again.bad, 0);
    er_store_counters c;
    er_store_stats(er_taskset_store(ts), &c);
    ck_assert_uint_gt(c.hits, 0);
    ck_assert_int_eq(er_store_verify(er_taskset_store(ts), false, NULL, NULL, NULL), ER_OK);
    free(cs);
    er_taskset_free(ts);
    rm_dir();
}
END_TEST

static Suite *recycle_suite(void) {
    Suite *s = suite_create("recycle");
    TCase *tc = tcase_create("recycle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exact_fp32);
    tcase_add_test(tc, test_fp16_bound);
    tcase_add_test(tc, test_int8_bound);
    tcase_add_test(tc, test_sharing);
    tcase_add_test(tc, test_mixed_batch);
    tcase_add_test(tc, test_long_input_alone);
    tcase_add_test(tc, test_long_value_fits_queue);
    tcase_add_test(tc, test_no_store_and_errors);
    tcase_add_test(tc, test_numerics_class_in_key);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(recycle_suite)
