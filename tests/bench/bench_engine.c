/* Engine benchmark: full-forward throughput of a model against the sgemm-only
 * ceiling of the same shapes, measured in the same process.
 *
 *   bench_engine MODEL_DIR BATCH SEQ THREADS ITERS
 *
 * Prints one JSON line: tokens/s, ms per forward, achieved GFLOP/s, the sgemm
 * ceiling (the layer's six projections as bare cblas_sgemm calls) and their
 * ratio.  Medians over ITERS after one warm-up.
 *
 * BENCH_IDS=FILE takes the token ids (int32 little-endian, BATCH * SEQ) from
 * FILE instead of random ones; BENCH_DUMP=FILE writes the last layer's hidden
 * states [BATCH * SEQ, hidden] as float32 there (bench_compare.sh compares
 * the engines' outputs with them); BENCH_DUMP_HEAD=FILE the head's output.
 * BENCH_COMPUTE=fp32|bf16 picks the compute mode (model.h). */
#include <cblas.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "encoder.h"
#include "gemm.h"
#include "model_internal.h"

/* The layer's six projections on the model's own weights, as bare sgemm
 * calls over T tokens: the ceiling erserve can reach.  y and a are scratch
 * of [T, FF] floats, FF = the FFN input projection's width (2 x intermediate
 * for a gated MLP: ModernBERT's GeGLU). */
static void sgemm_ceiling(const er_model *m, int T, const float *x, float *y, float *a) {
    const er_config *c = er_model_config(m);
    const int H = c->hidden_size, F = c->intermediate_size, FF = m->layers[0].ffn_in.out;
    for (int l = 0; l < c->num_layers; l++) {
        const er_layer_w *w = &m->layers[l];
        const er_lin *sq[4] = {&w->q, &w->k, &w->v, &w->o};
        for (int p = 0; p < 4; p++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, H, H, 1.0f, x, H, sq[p]->w,
                        H, 0.0f, y, H);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, FF, H, 1.0f, x, H,
                    w->ffn_in.w, H, 0.0f, a, FF);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, H, F, 1.0f, a, F,
                    w->ffn_out.w, F, 0.0f, y, H);
    }
}

/* The JSON line: forward and ceiling medians (seconds) turned into rates.
 * FF: the FFN input projection's width (2 x intermediate when gated). */
static void print_result(const er_model *m, int FF, int B, int S, int threads, double fwd,
                         double gemm, double cpu, double rss, double anon) {
    const er_config *c = er_model_config(m);
    const int T = B * S, H = c->hidden_size, F = c->intermediate_size, L = c->num_layers;
    double proj_flops = 2.0 * T * ((double)4 * H * H + (double)H * (F + FF)) * L;
    double attn_flops = 4.0 * B * (double)S * S * H * L;
    double total = proj_flops + attn_flops;
    printf("{\"engine\":\"erserve\",\"batch\":%d,\"seq\":%d,\"threads\":%d,\"ms_per_forward\":%.2f,"
           "\"cpu_ms_per_forward\":%.2f,\"tokens_per_s\":%.0f,\"gflops\":%.1f,\"sgemm_peak_gflops\":%.1f,\"fraction_of_peak\":%.3f,"
           "\"blas\":\"%s\",\"compute\":\"%s\",\"rss_mib\":%.0f,\"anon_mib\":%.0f,\"gemm\":\"%s\"}\n",
           B, S, threads, 1e3 * fwd, 1e3 * cpu, T / fwd, total / fwd / 1e9, proj_flops / gemm / 1e9,
           (total / fwd) / (proj_flops / gemm), openblas_get_corename(),
           er_compute_name(er_model_compute(m)), rss, anon, er_gemm_describe());
}

static bool read_ids(const char *path, int32_t *ids, int n, int vocab) {
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(ids, sizeof *ids, (size_t)n + 1, f) : 0;
    if (f) fclose(f);
    bool ok = got == (size_t)n;
    for (int i = 0; ok && i < n; i++) ok = ids[i] >= 0 && ids[i] < vocab;
    if (!ok) fprintf(stderr, "bench_engine: %s must hold %d token ids < %d\n", path, n, vocab);
    return ok;
}

static bool write_floats(const char *path, const float *v, size_t n) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(v, sizeof *v, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) fprintf(stderr, "bench_engine: cannot write %s\n", path);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bench_engine MODEL_DIR BATCH SEQ THREADS ITERS\n");
        return 2;
    }
    int B = atoi(argv[2]), S = atoi(argv[3]), threads = atoi(argv[4]), iters = atoi(argv[5]);
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
    if (!m->layers[0].q.w || !m->layers[0].ffn_in.w) { /* F16/BF16 layers stay narrow */
        fprintf(stderr, "bench_engine: the sgemm ceiling reads fp32 layer weights; %s keeps "
                "them narrow (F16/BF16): use an F32 checkpoint\n", argv[1]);
        return 2;
    }
    const er_config *c = er_model_config(m);
    const int T = B * S, H = c->hidden_size, FF = m->layers[0].ffn_in.out;
    int *lens = malloc((size_t)B * sizeof *lens);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *x = malloc((size_t)T * (size_t)H * sizeof *x);               // [T, H]
    srand(1);
    for (int s = 0; s < B; s++) lens[s] = S;
    for (int t = 0; t < T; t++) ids[t] = 1000 + rand() % (c->vocab_size - 1000);
    const char *ids_file = getenv("BENCH_IDS"), *dump_file = getenv("BENCH_DUMP");
    if (ids_file && !read_ids(ids_file, ids, T, c->vocab_size)) return 1;
    er_batch b = {.n_seqs = B, .seq_len = lens, .ids = ids, .type_ids = NULL};
    float *out = malloc(er_head_out_size(m, &b) * sizeof *out); /* any head, SPLADE's included */
    /* The forwards first, then the ceiling: OpenBLAS's idle pool threads spin
     * (sched_yield) for 2^28 cycles after each multi-threaded call, so a
     * ceiling run right before a forward would take a core from the forward's
     * team (measured: 2-thread forwards 1.0-1.6x slower). */
    double *tf = malloc((size_t)iters * sizeof *tf), *tg = malloc((size_t)iters * sizeof *tg);
    double *tc = malloc((size_t)iters * sizeof *tc); /* process CPU time: the threads' sum */
    float *y = malloc((size_t)T * (size_t)FF * sizeof *y);
    float *a = malloc((size_t)T * (size_t)FF * sizeof *a);
    double rss = 0, anon = 0; /* after the warm-up forward, before the ceiling touches the fp32 weights */
    for (int i = -1; i < iters; i++) {
        double t0 = now_s(), c0 = process_cpu_s();
        if (er_forward(m, ctx, &b, x, out, &err) != ER_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        if (i < 0) {
            rss = bench_rss_mib();
            anon = bench_status_mib("RssAnon:"); /* without the mapped file pages */
        } else {
            tf[i] = now_s() - t0;
            tc[i] = process_cpu_s() - c0;
        }
    }
    for (int i = -1; i < iters; i++) {
        double t1 = now_s();
        sgemm_ceiling(m, T, x, y, a);
        if (i >= 0) tg[i] = now_s() - t1;
    }
    const char *dump_head = getenv("BENCH_DUMP_HEAD");
    if (dump_file || dump_head) { /* x was overwritten by the ceiling run: one more forward */
        if (er_forward(m, ctx, &b, x, out, &err) != ER_OK ||
            (dump_file && !write_floats(dump_file, x, (size_t)T * H)) ||
            (dump_head && !write_floats(dump_head, out, er_head_out_size(m, &b))))
            return 1;
    }
    print_result(m, FF, B, S, threads, median(tf, iters), median(tg, iters), median(tc, iters),
                 rss, anon);
    free(a); free(y); free(tf); free(tg); free(tc); free(lens); free(ids); free(x); free(out);
    er_ctx_free(ctx);
    er_model_free(m);
    return 0;
}
