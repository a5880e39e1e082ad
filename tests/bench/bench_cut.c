/* Recycling benchmark of one model: a miss (the full forward) against a hit
 * at cut K (what a hit still computes: layers [K, L) and the head, on the
 * hidden states the store would return; the store read itself is
 * bench_store's).
 *
 *   bench_cut MODEL_DIR BATCH SEQ THREADS ITERS CUT
 *
 * Prints one JSON line: tokens/s and ms per batch of both, and their ratio
 * (also as process CPU ms: the figure to compare on a loaded host).
 * Medians over ITERS after one warm-up, miss and hit alternating. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "encoder.h"

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: bench_cut MODEL_DIR BATCH SEQ THREADS ITERS CUT\n");
        return 2;
    }
    int B = atoi(argv[2]), S = atoi(argv[3]), threads = atoi(argv[4]), iters = atoi(argv[5]);
    int K = atoi(argv[6]);
    if (B < 1 || S < 1 || threads < 1 || iters < 1 || iters > 1000) return 2;
    openblas_set_num_threads(threads);
    er_err err;
    er_model *m;
    er_ctx *ctx;
    er_ctx_params cp = {.max_tokens = B * S, .max_seqs = B, .max_seq_len = S, .n_threads = threads};
    er_model_params mp = bench_model_params();
    if (er_model_load(argv[1], &mp, &m, &err) != ER_OK || er_ctx_init(m, &cp, &ctx, &err) != ER_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const er_config *c = er_model_config(m);
    const int T = B * S, H = c->hidden_size, L = c->num_layers;
    if (K < 0 || K > L) return 2;
    int *lens = malloc((size_t)B * sizeof *lens);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *x = malloc((size_t)T * (size_t)H * sizeof *x);      // [T, H]
    float *cut = malloc((size_t)T * (size_t)H * sizeof *cut);  // [T, H] hidden states at K
    float *out = malloc((size_t)T * (size_t)(H > 16 ? H : 16) * sizeof *out); // head output
    srand(1);
    for (int s = 0; s < B; s++) lens[s] = S;
    for (int t = 0; t < T; t++) ids[t] = 1000 + rand() % (c->vocab_size - 1000);
    er_batch b = {.n_seqs = B, .seq_len = lens, .ids = ids, .type_ids = NULL};
    if (er_embed(m, ctx, &b, cut, &err) != ER_OK || er_layers(m, ctx, &b, 0, K, cut, &err) != ER_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double *tm = malloc((size_t)iters * sizeof *tm), *th = malloc((size_t)iters * sizeof *th);
    double *cm = malloc((size_t)iters * sizeof *cm), *ch = malloc((size_t)iters * sizeof *ch);
    for (int i = -1; i < iters; i++) {
        double t0 = now_s(), c0 = process_cpu_s();
        er_status st = er_forward(m, ctx, &b, x, out, &err);
        double t1 = now_s(), c1 = process_cpu_s();
        memcpy(x, cut, (size_t)T * (size_t)H * sizeof *x);
        if (st == ER_OK) st = er_layers(m, ctx, &b, K, L, x, &err);
        if (st == ER_OK) st = er_head(m, ctx, &b, x, out, &err);
        if (st != ER_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        if (i >= 0) {
            tm[i] = t1 - t0;
            th[i] = now_s() - t1;
            cm[i] = c1 - c0;
            ch[i] = process_cpu_s() - c1;
        }
    }
    double miss = median(tm, iters), hit = median(th, iters);
    printf("{\"model\":\"%s\",\"batch\":%d,\"seq\":%d,\"threads\":%d,\"cut\":%d,\"layers\":%d,"
           "\"miss_ms\":%.2f,\"hit_ms\":%.2f,\"miss_tokens_per_s\":%.0f,\"hit_tokens_per_s\":%.0f,"
           "\"hit_speedup\":%.2f,\"compute\":\"%s\",\"miss_cpu_ms\":%.2f,\"hit_cpu_ms\":%.2f}\n",
           c->architecture, B, S, threads, K, L, 1e3 * miss, 1e3 * hit, T / miss, T / hit,
           miss / hit, er_compute_name(er_model_compute(m)), 1e3 * median(cm, iters),
           1e3 * median(ch, iters));
    free(cm); free(ch);
    free(tm); free(th); free(lens); free(ids); free(x); free(cut); free(out);
    er_ctx_free(ctx);
    er_model_free(m);
    return 0;
}
