/* Store benchmark: full forward vs a recycled hit, LMDB read latency, bytes
 * per token, warm throughput, and the head error fp16 / int8 storage adds.
 *
 *   bench_store MODEL_DIR STORE_BASE BATCH SEQ ITERS
 *   bench_store --rss DIR...   RSS after running one sequence through each
 *                              task of a set made of the DIRs (cut L/2)
 *
 * Prints human-readable lines; medians over ITERS after one warm-up. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "er_log.h"
#include "recycle.h"

static int B, S, ITERS;
static const char *MODEL, *BASE;

static void die(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

static er_taskset *open_set(int cut, er_dtype d, const char *name) {
    char path[512], cmd[600];
    snprintf(path, sizeof path, "%s/%s", BASE, name);
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    if (system(cmd)) exit(1);
    er_task_spec spec = {"bench", MODEL, 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.cut = cut;
    p.store_path = path;
    p.store.dtype = d;
    p.store.budget_bytes = 1ull << 30;
    er_taskset *ts;
    er_err e;
    if (er_taskset_load(&spec, 1, &p, &ts, &e) != ER_OK) die(e.msg);
    return ts;
}

static void make_batch(int32_t *ids, int seed) {
    srand((unsigned)seed);
    for (int s = 0; s < B; s++)
        for (int i = 0; i < S; i++)
            ids[s * S + i] = i == 0 ? 101 : i == S - 1 ? 102 : 1000 + rand() % 28000;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int rss_mode(int n, char **dirs) {
    er_task_spec specs[16];
    char names[16][8];
    for (int i = 0; i < n && i < 16; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        specs[i] = (er_task_spec){names[i], dirs[i], 0, ER_COMPUTE_FP32};
    }
    er_taskset *ts;
    er_err e;
    if (er_taskset_load(specs, n, NULL, &ts, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    er_ctx_params cp = {.max_tokens = 128, .max_seqs = 1, .max_seq_len = 128};
    er_worker *w;
    if (er_worker_init(ts, &cp, &w, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t ids[128];
    int len = 128;
    for (int i = 0; i < 128; i++) ids[i] = 1000 + i * 97;
    er_batch b = {1, &len, ids, NULL};
    float out[64];
    for (int i = 0; i < n; i++) er_run(w, er_taskset_at(ts, i), &b, 0, out, NULL, NULL, NULL);
    printf("RSS with %d task(s), %d lower stack(s): %.0f MiB\n", n, er_taskset_lower_stacks(ts),
           rss_kb() / 1024.0);
    er_worker_free(w);
    er_taskset_free(ts);
    return 0;
}

/* The batch every measurement runs: B sequences of S tokens. */
typedef struct {
    int *lens;
    int32_t *ids;
    er_batch b;
    er_ctx_params cp;
    uint8_t hit[256];
} bench_batch;

static er_worker *worker(er_taskset *ts, const bench_batch *bb) {
    er_worker *w;
    er_err e;
    if (er_worker_init(ts, &bb->cp, &w, &e) != ER_OK) die(e.msg);
    return w;
}

/* Full forward (er_run without a store computes everything) and hits at cut
 * L/2 and 3L/4 with an fp16 store, measured in turn in each iteration so
 * that machine noise hits all three alike.  ref = the full-precision head
 * output of batch 1, for the dtype errors.  Returns the layer count. */
static int bench_hits(bench_batch *bb, float *ref, float *got) {
    er_taskset *ts[3];
    er_worker *w[3];
    er_task_spec spec = {"bench", MODEL, 0, ER_COMPUTE_FP32};
    er_err e;
    if (er_taskset_load(&spec, 1, NULL, &ts[0], &e) != ER_OK) die(e.msg);
    int L = er_model_config(er_task_model(er_taskset_at(ts[0], 0)))->num_layers;
    int cuts[3] = {0, L / 2, 3 * L / 4};
    ts[1] = open_set(cuts[1], ER_DTYPE_FP16, "hit6");
    ts[2] = open_set(cuts[2], ER_DTYPE_FP16, "hit9");
    make_batch(bb->ids, 1);
    for (int k = 0; k < 3; k++) {
        w[k] = worker(ts[k], bb);
        if (k) {
            er_warm(w[k], er_taskset_at(ts[k], 0), &bb->b, 0, bb->hit, NULL, NULL);
            er_store_flush(er_taskset_store(ts[k]));
        }
    }
    double *tk[3], read[3] = {0, 0, 0};
    er_run_stats rs[3];
    for (int k = 0; k < 3; k++) tk[k] = malloc((size_t)(ITERS + 1) * sizeof(double));
    for (int i = 0; i <= ITERS; i++)
        for (int k = 0; k < 3; k++) {
            double t0 = now_s();
            if (er_run(w[k], er_taskset_at(ts[k], 0), &bb->b, 0, got, bb->hit, &rs[k], &e) != ER_OK)
                die(e.msg);
            tk[k][i] = now_s() - t0;
            if (i) read[k] += rs[k].store_read_ns * 1e-9 / ITERS;
        }
    double full = median(tk[0] + 1, ITERS);
    printf("full forward %dx%d: %.1f ms/batch, %.2f batches/s, %.1f seqs/s\n", B, S, full * 1e3,
           1 / full, B / full);
    for (int k = 1; k < 3; k++) {
        double h = median(tk[k] + 1, ITERS), ideal = (double)L / (L - cuts[k]);
        printf("hit at cut %d (fp16): %.1f ms/batch, %.2f batches/s, speedup %.2fx vs ideal %.2fx "
               "(%.0f%% of ideal); store read %.2f ms/batch (%d/%d hits)\n",
               cuts[k], h * 1e3, 1 / h, full / h, ideal, 100 * (full / h) / ideal, read[k] * 1e3,
               rs[k].hits, B);
    }
    make_batch(bb->ids, 1); /* the storeless set: the full-precision forward */
    er_run(w[0], er_taskset_at(ts[0], 0), &bb->b, 0, ref, bb->hit, NULL, NULL);
    for (int k = 0; k < 3; k++) {
        er_worker_free(w[k]);
        er_taskset_free(ts[k]);
        free(tk[k]);
    }
    return L;
}

/* Warm throughput: documents/s over three batches of distinct documents,
 * after a warm-up batch that faults the weights in. */
static double warm_rate(er_worker *w, const er_task *task, er_taskset *ts, bench_batch *bb) {
    make_batch(bb->ids, 99);
    er_warm(w, task, &bb->b, 0, bb->hit, NULL, NULL);
    int docs = 0;
    double t0 = now_s();
    for (int r = 0; r < 3; r++) {
        make_batch(bb->ids, 100 + r);
        er_warm(w, task, &bb->b, 0, bb->hit, NULL, NULL);
        docs += B;
    }
    er_store_flush(er_taskset_store(ts));
    return docs / (now_s() - t0);
}

/* Microseconds of one sequence's er_store_get (lookup, checksum, decode),
 * repeated; *ok counts the hits of n_get tries. */
static double read_latency_us(er_taskset *ts, const er_task *task, const bench_batch *bb, int cut,
                              int H, int n_get, int *ok) {
    er_store_reader *rd;
    er_store_reader_new(er_taskset_store(ts), &rd, NULL);
    uint8_t key[32];
    er_store_key(er_task_fingerprint(task), cut, S, bb->ids, NULL, 0, key);
    float *x = malloc((size_t)S * H * sizeof *x);
    *ok = 0;
    double g0 = now_s();
    for (int i = 0; i < n_get; i++) *ok += er_store_get(rd, key, cut, S, H, x, NULL) == ER_OK;
    double us = (now_s() - g0) / n_get * 1e6;
    free(x);
    er_store_reader_free(rd);
    return us;
}

/* Per dtype at cut L/2: bytes/token, read latency alone, the head error of
 * a hit on batch 1 against ref, warm documents/s. */
static void bench_dtype(er_dtype d, int L, bench_batch *bb, const float *ref, float *got) {
    er_taskset *ts = open_set(L / 2, d, er_dtype_name(d));
    er_worker *w = worker(ts, bb);
    const er_task *task = er_taskset_at(ts, 0);
    const int H = er_model_config(er_task_model(task))->hidden_size;
    double docs_per_s = warm_rate(w, task, ts, bb);
    make_batch(bb->ids, 1);
    size_t n_out = er_head_out_size(er_task_model(task), &bb->b);
    er_run(w, task, &bb->b, 0, got, bb->hit, NULL, NULL); /* miss: fills the store */
    er_store_flush(er_taskset_store(ts));
    er_run(w, task, &bb->b, 0, got, bb->hit, NULL, NULL); /* hit */
    double amax = 0, emax = 0;
    for (size_t i = 0; i < n_out; i++) {
        amax = fmax(amax, fabs(ref[i]));
        emax = fmax(emax, fabs(ref[i] - got[i]));
    }
    int n_get = 200, ok;
    double get_us = read_latency_us(ts, task, bb, L / 2, H, n_get, &ok);
    printf("%s: %.0f bytes/token, LMDB read+decode %.0f us per %d-token sequence (%d/%d hits), "
           "head max|err| %.2e (max|logit| %.2f, rel %.2e), warm %.1f docs/s\n",
           er_dtype_name(d), (double)er_store_value_size(d, S, H) / S, get_us, S, ok, n_get, emax,
           amax, emax / fmax(amax, 1e-9), docs_per_s);
    er_worker_free(w);
    er_taskset_free(ts);
}

int main(int argc, char **argv) {
    er_log_setup("bench_store", ER_LOG_WARN); /* not the task sets' summaries */
    if (argc > 2 && !strcmp(argv[1], "--rss")) return rss_mode(argc - 2, argv + 2);
    if (argc != 6) {
        fprintf(stderr, "usage: bench_store MODEL_DIR STORE_BASE BATCH SEQ ITERS\n");
        return 2;
    }
    MODEL = argv[1];
    BASE = argv[2];
    B = atoi(argv[3]);
    S = atoi(argv[4]);
    ITERS = atoi(argv[5]);
    bench_batch bb = {.lens = malloc((size_t)B * sizeof *bb.lens),
                      .ids = malloc((size_t)B * S * sizeof *bb.ids),
                      .cp = {.max_tokens = B * S, .max_seqs = B, .max_seq_len = S}};
    for (int s = 0; s < B; s++) bb.lens[s] = S;
    bb.b = (er_batch){B, bb.lens, bb.ids, NULL};
    float *ref = malloc(4096 * sizeof *ref), *got = malloc(4096 * sizeof *got);
    int L = bench_hits(&bb, ref, got);
    const er_dtype dtypes[] = {ER_DTYPE_FP32, ER_DTYPE_FP16, ER_DTYPE_INT8};
    for (int d = 0; d < 3; d++) bench_dtype(dtypes[d], L, &bb, ref, got);
    free(bb.lens); free(bb.ids); free(ref); free(got);
    return 0;
}
