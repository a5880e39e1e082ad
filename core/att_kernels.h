/* er_att_qk / er_att_pv: the two small GEMMs of one attention work item
 * (core/attention.c), on erserve's AVX-512 code where the GEMM backend is
 * ER_GEMM_AVX512 (gemm.h), else cblas_sgemm.
 *
 * Why not cblas everywhere: OpenBLAS picks its kernels from the CPU model
 * (OPENBLAS_CORETYPE=Haswell halves their speed on an AVX-512 core) and its
 * per-call overhead is large next to a [128, 64] x [64, 128] product.
 *
 * Exactness: every output element is one sum over the reduction in index
 * order (one FMA chain from the first term), whatever its row's position in
 * the block and the block's size, so an attention row does not depend on
 * what it is computed with.  Neither function allocates. */
#ifndef ER_ATT_KERNELS_H
#define ER_ATT_KERNELS_H

#include <stddef.h>

/* Keys per packed panel of er_att_qk (kpack holds one panel). */
#define ER_ATT_PANEL 32

/* tile[rows, cols] (row stride ldt) = scale * q[rows, d] . k[cols, d]^T,
 * q and k row-strided (ldq, ldk floats).  kpack: scratch of
 * ER_ATT_PANEL * d floats (one panel of keys, transposed).  rows, cols,
 * d >= 1. */
void er_att_qk(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols, int d,
               float scale, float *tile, size_t ldt, float *kpack);

/* acc[rows, d] (row stride ldacc) += p[rows, cols] (row stride ldp) .
 * v[cols, d] (row stride ldv).  rows, cols, d >= 1. */
void er_att_pv(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols, int d,
               float *acc, size_t ldacc);

#endif
