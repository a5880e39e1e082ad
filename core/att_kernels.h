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

/* Partial maxima per row that er_att_qk leaves in rmax (one zmm's lanes). */
#define ER_ATT_RMAX 16

/* tile[rows, cols] (row stride ldt) = scale * q[rows, d] . k[cols, d]^T,
 * q and k row-strided (ldq, ldk floats).  kpack: scratch of
 * ER_ATT_PANEL * d floats (one panel of keys, transposed).  rmax: NULL, or
 * [rows, ER_ATT_RMAX] that is filled with partial maxima of each row's
 * scores (the max of a row's ER_ATT_RMAX values is the row's max; taken
 * while the tile is in registers, which saves the softmax a pass over it).
 * rows, cols, d >= 1. */
void er_att_qk(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols, int d,
               float scale, float *tile, size_t ldt, float *kpack, float *rmax);

/* x[j] = er_exp(x[j] - m) for j < n, returning their sum: er_exp_sub_sum
 * (kernels.h) bit for bit, same values and the same order of additions
 * (16 lane sums over whole 16s, then the tail, then the lanes), in one pass
 * over x instead of two.  n >= 0. */
float er_att_exp_sum(float *x, int n, float m);

/* out[rows, d] (row stride ldo) = acc[rows, d] (row stride ldacc) * (1 / l[r])
 * for row r: the online softmax's last step, vectorised where the kernels
 * are (the same products on every path). */
void er_att_normalize(const float *acc, size_t ldacc, int rows, int d, const float *l, float *out,
                      size_t ldo);

/* acc[rows, d] (row stride ldacc) += p[rows, cols] (row stride ldp) .
 * v[cols, d] (row stride ldv).  rows, cols, d >= 1. */
void er_att_pv(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols, int d,
               float *acc, size_t ldacc);

#endif
