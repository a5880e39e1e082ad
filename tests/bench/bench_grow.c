/* Store cost as it grows: one store filled to MAX values of a small model's
 * short documents (N_TOK tokens at its hidden size, fp16), with the budget
 * at BUDGET_FRAC of the final size so eviction runs during the later part of
 * the fill.  At each decade (10^3 .. MAX) it measures, on keys still
 * present (the most recent ones):
 *   - a hit's store read (er_store_get: lookup + checksum + decode),
 *   - an end-to-end hit (er_run of one document: key, store read, upper
 *     layers and head),
 * p50 and p99 over PROBES calls, and the disk bytes per value (data.mdb's
 * allocated blocks / entries) against the value's own size.
 *
 *   bench_grow MODEL_DIR STORE_DIR MAX [PROBES [BUDGET_FRAC]]
 * Prints one line per decade and the spread of each latency against the
 * first decade's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "er_log.h"
#include "recycle.h"

#define N_TOK 16
static double BUDGET_FRAC = 0.5;

static void die(const char *m) {
    fprintf(stderr, "bench_grow: %s\n", m);
    exit(1);
}

/* Document i's ids: [CLS] 14 ids from i [SEP]; distinct for every i. */
static void doc_ids(uint64_t i, int32_t *ids) {
    ids[0] = 101;
    for (int t = 1; t < N_TOK - 1; t++) ids[t] = 1000 + (int32_t)((i >> (2 * t)) % 4 + 4 * t);
    ids[1] = 1000 + (int32_t)(i % 20000);
    ids[2] = 1000 + (int32_t)((i / 20000) % 20000);
    ids[N_TOK - 1] = 102;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

typedef struct {
    er_taskset *ts;
    const er_task *t;
    er_worker *w;
    er_store_reader *r;
    int H, cut;
    float *x, *out;
} ctx;

static void fill(ctx *c, uint64_t from, uint64_t to) {
    int32_t ids[N_TOK];
    uint8_t key[ER_STORE_KEY_BYTES];
    for (uint64_t i = from; i < to; i++) {
        doc_ids(i, ids);
        er_store_key(er_task_fingerprint(c->t), c->cut, N_TOK, ids, NULL, 0, key);
        for (int k = 0; k < N_TOK * c->H; k++) c->x[k] = (float)((i + (uint64_t)k) % 97) * 0.01f;
        er_store_put(er_taskset_store(c->ts), key, c->cut, N_TOK, c->H, c->x, true, NULL);
    }
    er_store_flush(er_taskset_store(c->ts));
}

/* p50 and p99 (µs) of `probes` hits on documents among the last `window`. */
static void probe(ctx *c, uint64_t n, uint64_t window, int probes, double *rd, double *e2e) {
    double *a = malloc((size_t)probes * sizeof *a), *b = malloc((size_t)probes * sizeof *b);
    int32_t ids[N_TOK];
    uint8_t key[ER_STORE_KEY_BYTES], hit = 0;
    int len = N_TOK;
    for (int p = 0; p < probes; p++) {
        uint64_t i = n - 1 - xr() % window;
        doc_ids(i, ids);
        double t0 = now_s();
        er_store_key(er_task_fingerprint(c->t), c->cut, N_TOK, ids, NULL, 0, key);
        if (er_store_get(c->r, key, c->cut, N_TOK, c->H, c->x, NULL) != ER_OK) die("a probe missed");
        double t1 = now_s();
        er_batch bt = {1, &len, ids, NULL};
        if (er_run(c->w, c->t, &bt, 0, c->out, &hit, NULL, NULL) != ER_OK || !hit) die("er_run missed");
        double t2 = now_s();
        a[p] = (t1 - t0) * 1e6;
        b[p] = (t2 - t1) * 1e6;
    }
    qsort(a, (size_t)probes, sizeof *a, cmp_double);
    qsort(b, (size_t)probes, sizeof *b, cmp_double);
    rd[0] = a[probes / 2], rd[1] = a[probes * 99 / 100];
    e2e[0] = b[probes / 2], e2e[1] = b[probes * 99 / 100];
    free(a);
    free(b);
}

static double disk_bytes(const char *dir) {
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return stat(p, &st) ? 0 : (double)st.st_blocks * 512.0;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: bench_grow MODEL_DIR STORE_DIR MAX [PROBES]");
    uint64_t max = strtoull(argv[3], NULL, 10);
    int probes = argc > 4 ? atoi(argv[4]) : 2000;
    if (argc > 5) BUDGET_FRAC = atof(argv[5]);
    if (probes < 100 || BUDGET_FRAC <= 0 || BUDGET_FRAC > 1) die("PROBES >= 100, 0 < BUDGET_FRAC <= 1");
    er_log_setup("bench_grow", ER_LOG_WARN);
    ctx c = {0};
    er_task_spec spec = {"t", argv[1], 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = argv[2];
    p.store.dtype = ER_DTYPE_FP16;
    er_err e;
    /* opened once to learn the hidden size, then again with the budget for it */
    if (er_taskset_load(&spec, 1, &p, &c.ts, &e) != ER_OK) die(e.msg);
    c.H = er_model_config(er_task_model(er_taskset_at(c.ts, 0)))->hidden_size;
    c.cut = er_taskset_cut(c.ts);
    size_t vsize = er_store_value_size(ER_DTYPE_FP16, N_TOK, c.H);
    er_taskset_free(c.ts);
    p.store.budget_bytes = (uint64_t)((double)max * (double)vsize * BUDGET_FRAC);
    /* A 2112-byte value is just over half a 4 KiB page: LMDB gives it a
     * whole overflow page, ~2.2x its size on disk, past the default map of
     * 2 x budget.  The map is sized for that here, so that eviction at the
     * budget is what runs (not MAP_FULL's). */
    p.store.map_bytes = p.store.budget_bytes * 4 + (64u << 20);
    if (er_taskset_load(&spec, 1, &p, &c.ts, &e) != ER_OK) die(e.msg);
    c.t = er_taskset_at(c.ts, 0);
    if (er_worker_init(c.ts, NULL, &c.w, &e) != ER_OK) die(e.msg);
    if (er_store_reader_new(er_taskset_store(c.ts), &c.r, &e) != ER_OK) die(e.msg);
    c.x = malloc((size_t)N_TOK * (size_t)c.H * sizeof *c.x);
    c.out = malloc(64 * sizeof *c.out);
    printf("== store growth: %d-token documents, hidden %d, fp16: %zu bytes per value; budget %.0f MB "
           "(%.0f%% of %llu values)\n", N_TOK, c.H, vsize, (double)p.store.budget_bytes / 1e6,
           BUDGET_FRAC * 100, (unsigned long long)max);
    printf("%10s %10s %10s %9s %9s %9s %9s %11s %8s\n", "values", "entries", "evicted", "read p50",
           "read p99", "e2e p50", "e2e p99", "disk B/val", "fill s");
    double rd0[2] = {0}, e0[2] = {0}, worst_rd = 0, worst_e = 0;
    uint64_t n = 0;
    for (uint64_t goal = 1000; goal <= max; goal *= 10) {
        double t0 = now_s();
        fill(&c, n, goal);
        double fs = now_s() - t0;
        n = goal;
        er_store_counters sc;
        er_store_stats(er_taskset_store(c.ts), &sc);
        uint64_t window = sc.entries / 2 > 0 ? sc.entries / 2 : 1;
        double rd[2], e2e[2];
        probe(&c, n, window, probes, rd, e2e);
        if (goal == 1000) memcpy(rd0, rd, sizeof rd), memcpy(e0, e2e, sizeof e2e);
        double drd = rd[0] / rd0[0] - 1, de = e2e[0] / e0[0] - 1;
        if (drd * drd > worst_rd * worst_rd) worst_rd = drd;
        if (de * de > worst_e * worst_e) worst_e = de;
        printf("%10llu %10llu %10llu %8.1fus %8.1fus %8.1fus %8.1fus %11.0f %8.1f\n",
               (unsigned long long)n, (unsigned long long)sc.entries,
               (unsigned long long)sc.evictions, rd[0], rd[1], e2e[0], e2e[1],
               disk_bytes(argv[2]) / (double)sc.entries, fs);
        fflush(stdout);
    }
    printf("p50 spread against 10^3: store read %+.1f%%, end to end %+.1f%% (target within +-10%%)\n",
           worst_rd * 100, worst_e * 100);
    free(c.x);
    free(c.out);
    er_store_reader_free(c.r);
    er_worker_free(c.w);
    er_taskset_free(c.ts);
    return 0;
}
