/* The AVX2 + FMA fp32 kernels of the GEMM seam (gemm_avx2.c), for hosts
 * without AVX-512F (AMD Zen 2/3, Intel before Skylake-SP): the same packed
 * layout as the AVX-512 kernels (er_gemm_pack, ER_GEMM_F32: panels of 32
 * output columns, k-major), so a model packs once whichever runs it.  Not a
 * public header: gemm.c calls it for the ER_GEMM_AVX2 backend (gemm.h).
 *
 * Every output element is one sum over k in order 0..in-1 (fused
 * multiply-adds, one accumulator), then + bias, then the activation: the
 * same value whatever the row count, the row's position and the thread
 * count (recycling: a hit equals a miss bit for bit). */
#ifndef ER_GEMM_AVX2_H
#define ER_GEMM_AVX2_H

#include <stdbool.h>

#include "gemm.h"

/* Whether this CPU has AVX2 and FMA (x86-64 builds; false elsewhere). */
bool er_gemm_avx2_cpu(void);

/* Columns [32 p0, 32 p1) of y = act(x[n, in] . W^T + b) for W packed by
 * er_gemm_pack(ER_GEMM_F32, W, out, in, packed); b may be NULL; y as
 * er_gemm_packed documents.  No allocation (the x block is thread-local). */
void er_gemm_avx2_range(const float *x, int n, int in, const float *packed, int out, int p0,
                        int p1, const float *b, er_epi act, const er_gemm_out *y);

#endif
