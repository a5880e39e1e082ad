/* The AVX2 + FMA versions of attention's two small GEMMs (att_kernels.h),
 * for the ER_GEMM_AVX2 backend (gemm.h): hosts with AVX2 and FMA but no
 * AVX-512F, or ERSERVE_GEMM=avx2.  Not a public header: att_kernels.c
 * dispatches to them.
 *
 * Same arguments, same contract and the same sums as the AVX-512 code: each
 * score is one FMA chain over d in index order from zero, times the scale;
 * each context element one FMA chain from acc over the keys in order.  So
 * the results are bit for bit the AVX-512 kernels' (test_attention), which
 * lets AVX2 and AVX-512 hosts share recycled activations (recycle.c's
 * numerics class).  Neither function allocates. */
#ifndef ER_ATT_KERNELS_AVX2_H
#define ER_ATT_KERNELS_AVX2_H

#include <stddef.h>

/* er_att_qk on AVX2 + FMA (att_kernels.h): tile[rows, cols] (row stride ldt)
 * = scale * q[rows, d] . k[cols, d]^T; kpack: ER_ATT_PANEL * d floats of
 * scratch; rmax: NULL or [rows, ER_ATT_RMAX] partial row maxima.  rows, cols, d >= 1.  Only where er_gemm_avx2_cpu(). */
void er_att_qk_avx2(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols,
                    int d, float scale, float *tile, size_t ldt, float *kpack, float *rmax);

/* er_att_exp_sum on AVX2 (att_kernels.h): the same values and sum, bit for
 * bit.  n >= 0.  Only where er_gemm_avx2_cpu(). */
float er_att_exp_sum_avx2(float *x, int n, float m);

/* er_att_pv on AVX2 + FMA: acc[rows, d] (row stride ldacc) += p[rows, cols]
 * (row stride ldp) . v[cols, d] (row stride ldv).  rows, cols, d >= 1.  Only
 * where er_gemm_avx2_cpu(). */
void er_att_pv_avx2(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols,
                    int d, float *acc, size_t ldacc);

#endif
