/* GFLOP/s of the weight-GEMM seam (gemm.h) on one shape: erserve's packed
 * kernels (AVX-512, or AVX2 with ERSERVE_GEMM=avx2) vs cblas_sgemm (whatever
 * OPENBLAS_CORETYPE picks) vs oneDNN's matmul primitives as the onednn
 * backend runs them (gemm_dnnl.h; where the build has oneDNN), interleaved
 * in one process, same inputs, best of `iters`, and their largest
 * differences; in bf16, also the FFN-shaped chain M x K -> N (GELU) -> K with
 * the intermediate in fp32 rows and in the bf16 x layout (er_gemm_out.xbf16),
 * interleaved; and the same chain in fp32, through fp32 rows and through the
 * fp32 x layout (er_gemm_out.xf32, AVX-512 kernels only).
 *   bench_gemm M K N threads iters   (bert-base FFN: 1024 768 3072 1 5) */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemm.h"
#include "gemm_dnnl.h"

/* CPU seconds of the process: what the FFN chain is compared by (on a
 * loaded host a 30 ms GEMM is preempted several times whatever the run). */
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    int M = atoi(argv[1]), K = atoi(argv[2]), N = atoi(argv[3]), T = atoi(argv[4]);
    int iters = atoi(argv[5]);
    if (M < 1 || K < 1 || N < 1 || T < 1 || iters < 1) return 2;
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    float *y0 = malloc(sizeof(float) * M * N), *y1 = malloc(sizeof(float) * M * N);
    void *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, N, K));
    srand(1);
    for (long i = 0; i < (long)M * K; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (long i = 0; i < (long)N * K; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    er_gemm_pack(ER_GEMM_F32, w, N, K, p);
    er_par *team = NULL;
    er_err err = {0};
    if (er_par_init(T, &team, &err) != ER_OK) return 1;
    openblas_set_num_threads(T);
    double flop = 2.0 * M * K * N, best_own = 1e9, best_blas = 1e9, best_dnnl = 1e9;
    er_gemm_out out = {.dst = {y1}, .seg = N};
    const bool own = er_gemm_supports(ER_GEMM_F32, NULL) && /* AVX-512 or AVX2 kernels */
                     er_gemm_backend_get() != ER_GEMM_ONEDNN;
    /* oneDNN beside them, whatever the process's backend (its primitives
     * and packing do not depend on it) */
    const bool dnnl = er_dnnl_init(&err) == ER_OK && er_dnnl_prepare(N, K, &err) == ER_OK;
    float *y2 = malloc(sizeof(float) * M * N);
    void *pd = dnnl ? malloc(er_dnnl_packed_bytes(N, K)) : NULL;
    if (dnnl) er_dnnl_pack(w, N, K, pd);
    er_gemm_out outd = {.dst = {y2}, .seg = N};
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        if (own) er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_NONE, &out);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y0, N);
        double t2 = now();
        if (dnnl) er_dnnl_gemm(team, x, M, K, pd, N, NULL, ER_EPI_NONE, &outd);
        double t3 = now();
        if (t1 - t0 < best_own) best_own = t1 - t0;
        if (t2 - t1 < best_blas) best_blas = t2 - t1;
        if (t3 - t2 < best_dnnl) best_dnnl = t3 - t2;
    }
    double best_q[2] = {1e9, 1e9}; /* bf16, int8 */
    const er_gemm_kind kinds[2] = {ER_GEMM_BF16, ER_GEMM_INT8};
    for (int q = 0; q < 2; q++) {
        if (!er_gemm_supports(kinds[q], NULL)) continue;
        void *pq = malloc(er_gemm_packed_bytes(kinds[q], N, K));
        er_gemm_pack(kinds[q], w, N, K, pq);
        for (int it = 0; it < iters; it++) {
            double t0 = now();
            er_gemm_packed(team, x, M, K, kinds[q], pq, N, NULL, ER_EPI_NONE, &out);
            double t1 = now();
            if (t1 - t0 < best_q[q]) best_q[q] = t1 - t0;
        }
        free(pq);
    }
    /* The BERT FFN in bf16 as two GEMMs, z = gelu(x W^T) W2^T with W2 [K, N]:
     * the intermediate through fp32 rows, and kept in the bf16 x layout
     * (er_gemm_out.xbf16); interleaved, best of `iters` each in CPU time. */
    double best_chain[2] = {1e9, 1e9};
    if (er_gemm_supports(ER_GEMM_BF16, NULL) && er_gemm_xbf16_supported(K)) {
        void *p1 = malloc(er_gemm_packed_bytes(ER_GEMM_BF16, N, K));
        void *p2 = malloc(er_gemm_packed_bytes(ER_GEMM_BF16, K, N));
        void *xb = malloc(er_gemm_xbf16_bytes(M, N));
        float *z = malloc(sizeof(float) * M * K);
        er_gemm_pack(ER_GEMM_BF16, w, N, K, p1);
        er_gemm_pack(ER_GEMM_BF16, w, K, N, p2); /* w read as [K, N]: same count */
        er_gemm_out oz = {.dst = {z}, .seg = K}, ox = {.dst = {NULL}, .seg = N, .xbf16 = xb};
        for (int it = 0; it < iters; it++) {
            double t0 = cpu();
            er_gemm_packed(team, x, M, K, ER_GEMM_BF16, p1, N, NULL, ER_EPI_GELU, &out);
            er_gemm_packed(team, y1, M, N, ER_GEMM_BF16, p2, K, NULL, ER_EPI_NONE, &oz);
            double t1 = cpu();
            er_gemm_packed(team, x, M, K, ER_GEMM_BF16, p1, N, NULL, ER_EPI_GELU, &ox);
            er_gemm_packed_xbf16(team, xb, M, N, p2, K, NULL, ER_EPI_NONE, &oz);
            double t2 = cpu();
            if (t1 - t0 < best_chain[0]) best_chain[0] = t1 - t0;
            if (t2 - t1 < best_chain[1]) best_chain[1] = t2 - t1;
        }
        free(p1); free(p2); free(xb); free(z);
    }
    /* The same chain in fp32: fp32 rows, or the fp32 x layout (xf32). */
    double best_f32[2] = {1e9, 1e9};
    if (er_gemm_xf32_supported(K)) {
        void *p2 = malloc(er_gemm_packed_bytes(ER_GEMM_F32, K, N));
        float *xf = malloc(sizeof(float) * er_gemm_xf32_floats(M, N));
        float *z = malloc(sizeof(float) * M * K);
        er_gemm_pack(ER_GEMM_F32, w, K, N, p2); /* w read as [K, N]: same count */
        er_gemm_out oz = {.dst = {z}, .seg = K}, ox = {.dst = {NULL}, .seg = N, .xf32 = xf};
        for (int it = 0; it < iters; it++) {
            double t0 = cpu();
            er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_GELU, &out);
            er_gemm_packed(team, y1, M, N, ER_GEMM_F32, p2, K, NULL, ER_EPI_NONE, &oz);
            double t1 = cpu();
            er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_GELU, &ox);
            er_gemm_packed_xf32(team, xf, M, N, p2, K, NULL, ER_EPI_NONE, &oz);
            double t2 = cpu();
            if (t1 - t0 < best_f32[0]) best_f32[0] = t1 - t0;
            if (t2 - t1 < best_f32[1]) best_f32[1] = t2 - t1;
        }
        free(p2); free(xf); free(z);
    }
    double md = 0;
    if (own) er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_NONE, &out);
    for (long i = 0; own && i < (long)M * N; i++) md = fmax(md, fabs(y0[i] - y1[i]));
    double mdd = 0; /* oneDNN vs OpenBLAS */
    for (long i = 0; dnnl && i < (long)M * N; i++) mdd = fmax(mdd, fabs(y0[i] - y2[i]));
    printf("{\"M\":%d,\"K\":%d,\"N\":%d,\"threads\":%d,\"erserve_gflops\":%.1f,"
           "\"openblas_gflops\":%.1f,\"erserve_bf16_gflops\":%.1f,\"erserve_int8_gops\":%.1f,\"openblas_core\":\"%s\",\"max_abs_diff\":%.2e,"
           "\"bf16_ffn_chain_cpu_ms\":%.3f,\"bf16_ffn_chain_xbf16_cpu_ms\":%.3f,"
           "\"f32_ffn_chain_cpu_ms\":%.3f,\"f32_ffn_chain_xf32_cpu_ms\":%.3f,\"backend\":\"%s\","
           "\"onednn_gflops\":%.1f,\"onednn_max_abs_diff\":%.2e,\"onednn\":\"%s\"}\n",
           M, K, N, T, own ? flop / best_own / 1e9 : 0.0,
           flop / best_blas / 1e9, best_q[0] < 1e9 ? flop / best_q[0] / 1e9 : 0.0,
           best_q[1] < 1e9 ? flop / best_q[1] / 1e9 : 0.0,
           openblas_get_corename(), md,
           best_chain[0] < 1e9 ? 1e3 * best_chain[0] : 0.0,
           best_chain[1] < 1e9 ? 1e3 * best_chain[1] : 0.0,
           best_f32[0] < 1e9 ? 1e3 * best_f32[0] : 0.0, best_f32[1] < 1e9 ? 1e3 * best_f32[1] : 0.0,
           er_gemm_describe(),
           dnnl ? flop / best_dnnl / 1e9 : 0.0, mdd, dnnl ? er_dnnl_describe() : err.msg);
    er_par_free(team);
    free(x); free(w); free(y0); free(y1); free(y2); free(p); free(pd);
    return 0;
}
