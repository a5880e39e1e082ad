/* GFLOP/s of the weight-GEMM seam (gemm.h) on one shape: erserve's packed
 * kernels (AVX-512, or AVX2 with ERSERVE_GEMM=avx2) vs cblas_sgemm (whatever OPENBLAS_CORETYPE picks), same
 * inputs, best of `iters`, and their largest difference.
 *   bench_gemm M K N threads iters   (bert-base FFN: 1024 768 3072 1 5) */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemm.h"

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
    double flop = 2.0 * M * K * N, best_own = 1e9, best_blas = 1e9;
    er_gemm_out out = {.dst = {y1}, .seg = N};
    const bool own = er_gemm_supports(ER_GEMM_F32, NULL); /* AVX-512 or AVX2 kernels */
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        if (own) er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_NONE, &out);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y0, N);
        double t2 = now();
        if (t1 - t0 < best_own) best_own = t1 - t0;
        if (t2 - t1 < best_blas) best_blas = t2 - t1;
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
    double md = 0;
    if (own) er_gemm_packed(team, x, M, K, ER_GEMM_F32, p, N, NULL, ER_EPI_NONE, &out);
    for (long i = 0; own && i < (long)M * N; i++) md = fmax(md, fabs(y0[i] - y1[i]));
    printf("{\"M\":%d,\"K\":%d,\"N\":%d,\"threads\":%d,\"erserve_gflops\":%.1f,"
           "\"openblas_gflops\":%.1f,\"erserve_bf16_gflops\":%.1f,\"erserve_int8_gops\":%.1f,\"openblas_core\":\"%s\",\"max_abs_diff\":%.2e,\"backend\":\"%s\"}\n",
           M, K, N, T, own ? flop / best_own / 1e9 : 0.0,
           flop / best_blas / 1e9, best_q[0] < 1e9 ? flop / best_q[0] / 1e9 : 0.0,
           best_q[1] < 1e9 ? flop / best_q[1] / 1e9 : 0.0,
           openblas_get_corename(), md,
           er_gemm_describe());
    er_par_free(team);
    free(x); free(w); free(y0); free(y1); free(p);
    return 0;
}
