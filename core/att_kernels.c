/* The attention work item's two small GEMMs (att_kernels.h).
 *
 * QK^T: the keys are taken ER_ATT_PANEL (32) at a time and transposed into
 * kpack [d, 32] (8 KiB at d = 64, in L1) by 16 x 16 register transposes,
 * the next panel's rows prefetched meanwhile; a 12 x 32 tile of scores then
 * sits in 24 zmm accumulators over the whole reduction: per k, two kpack
 * loads and 12 broadcasts of q (straight from the strided rows: no copy of
 * q) feed 24 FMAs; the scale is applied once before the store, where each
 * row's running max is also taken (rmax), saving the softmax a pass.
 *
 * Softmax: er_att_exp_sum is er_exp_sub_sum's exp and sum fused into one
 * pass, in the same order; er_att_normalize the final acc / l, vectorised.
 *
 * P.V: v[cols, d] is already [k, n] with n = d contiguous, so no packing
 * (keys in passes of PV_KB, below):
 * the d columns go in chunks of 64 (4 zmm, 6 rows: 24 accumulators) or, for
 * the last chunk when at most 32 columns remain (d = 32, 48 = 32 + 16,
 * 80 = 64 + 16, 96 = 64 + 32 ...), 2 zmm with 12 rows; lanes past d are
 * masked.  The accumulators start from acc (the online softmax has already
 * rescaled it), so acc + sum_c p[c] v[c] is one FMA chain per element. */
#include "att_kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>

#include "att_kernels_avx2.h"
#include "gemm.h"
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ER_ATT_X86 1
#include <immintrin.h>

#include "exp_avx512.h"
#endif

#define QK_MR 12  /* score rows per tile: 12 x 2 accumulators */
#define PV_MR4 6  /* rows per tile with 4 column vectors (64 columns) */
#define PV_MR2 12 /* rows per tile with 2 column vectors (32 columns) */
/* Keys per P.V pass: v's rows are a whole hidden row apart (3 KiB at 768),
 * so a head's rows fall on a quarter of L1's sets; 32 of them (8 KiB) stay
 * in L1 while every row tile passes over them, 128 did not (measured: P.V
 * took 3x the time of QK^T).  acc is stored and reloaded between passes,
 * exactly, so the sum is the same chain as in one pass. */
#define PV_KB 32

static void qk_blas(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols,
                    int d, float scale, float *tile, size_t ldt) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, scale, q, (int)ldq, k,
                (int)ldk, 0.0f, tile, (int)ldt);
}

static void pv_blas(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols,
                    int d, float *acc, size_t ldacc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, cols, 1.0f, p, (int)ldp, v,
                (int)ldv, 1.0f, acc, (int)ldacc);
}

#ifdef ER_ATT_X86
#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

static inline __mmask16 lane_mask(int n) { /* the first n (clamped to 0..16) lanes */
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* er_att_normalize on 16 lanes (the build's baseline is SSE). */
static AVX512 void normalize_avx512(const float *acc, size_t ldacc, int rows, int d, const float *l,
                                    float *out, size_t ldo) {
    for (int r = 0; r < rows; r++) {
        const __m512 inv = _mm512_set1_ps(1.0f / l[r]);
        const float *a = acc + (size_t)r * ldacc;
        float *o = out + (size_t)r * ldo;
        for (int c = 0; c < d; c += 16) {
            const __mmask16 k = lane_mask(d - c);
            _mm512_mask_storeu_ps(o + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, a + c), inv));
        }
    }
}

/* er_att_exp_sum: lane k of acc is lane_sum's part[k] (kernels.c). */
static AVX512 float exp_sum_avx512(float *x, int n, float m) {
    const __m512 mv = _mm512_set1_ps(m);
    __m512 acc = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) { /* two exp chains side by side, added in order */
        const __m512 e0 = er_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv));
        const __m512 e1 = er_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), mv));
        _mm512_storeu_ps(x + j, e0);
        _mm512_storeu_ps(x + j + 16, e1);
        acc = _mm512_add_ps(_mm512_add_ps(acc, e0), e1);
    }
    for (; j + 16 <= n; j += 16) {
        const __m512 e = er_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv));
        _mm512_storeu_ps(x + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    float s = 0.0f, part[16];
    if (j < n) { /* the tail, added one by one before the lanes */
        const __mmask16 k = lane_mask(n - j);
        const __m512 e = er_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), mv));
        _mm512_mask_storeu_ps(x + j, k, e);
        _mm512_storeu_ps(part, e);
        for (int i = 0; i < n - j; i++) s += part[i];
    }
    _mm512_storeu_ps(part, acc);
    for (int i = 0; i < 16; i++) s += part[i];
    return s;
}

typedef struct {
    const float *q; /* the tile's first row */
    size_t ldq;
    const float *kp; /* kpack [d, ER_ATT_PANEL] */
    int d;
    float scale;
    float *t; /* the tile's first score */
    size_t ldt;
    float *rm;        /* NULL, or the tile's first row's partial maxima [mr, ER_ATT_RMAX] */
    __mmask16 m0, m1; /* valid keys of each half of the panel */
} qk_args;

INLINE AVX512 void qk_tile(const int mr, const qk_args *a) {
    __m512 acc[QK_MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *b = a->kp;
    for (int c = 0; c < a->d; c++, b += ER_ATT_PANEL) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const __m512 av = _mm512_set1_ps(a->q[(size_t)i * a->ldq + (size_t)c]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    const __m512 s = _mm512_set1_ps(a->scale);
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *t = a->t + (size_t)i * a->ldt;
        const __m512 s0 = _mm512_mul_ps(acc[i][0], s), s1 = _mm512_mul_ps(acc[i][1], s);
        _mm512_mask_storeu_ps(t, a->m0, s0);
        _mm512_mask_storeu_ps(t + 16, a->m1, s1);
        if (a->rm) { /* the row's max while its scores are in registers (keys past n masked) */
            float *r = a->rm + (size_t)i * ER_ATT_RMAX;
            __m512 mx = _mm512_loadu_ps(r);
            mx = _mm512_mask_max_ps(mx, a->m0, mx, s0);
            _mm512_storeu_ps(r, _mm512_mask_max_ps(mx, a->m1, mx, s1));
        }
    }
}

typedef struct {
    const float *p; /* the tile's first probability */
    size_t ldp;
    const float *v; /* the chunk's first column of key 0 */
    size_t ldv;
    int cols;
    float *acc; /* the tile's first accumulator */
    size_t ldacc;
    __mmask16 m[4]; /* valid columns of each vector */
} pv_args;

/* full: every lane of the nv vectors is a column (plain loads: the masked
 * ones cost a mask-register move per vector and key in the inner loop). */
INLINE AVX512 void pv_tile(const int mr, const int nv, const bool full, const pv_args *a) {
    __m512 acc[PV_MR2][4];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            acc[i][j] = _mm512_maskz_loadu_ps(a->m[j], a->acc + (size_t)i * a->ldacc + 16 * j);
    const float *v = a->v;
    for (int c = 0; c < a->cols; c++, v += a->ldv) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            b[j] = full ? _mm512_loadu_ps(v + 16 * j) : _mm512_maskz_loadu_ps(a->m[j], v + 16 * j);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const __m512 pv = _mm512_set1_ps(a->p[(size_t)i * a->ldp + (size_t)c]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_fmadd_ps(pv, b[j], acc[i][j]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_mask_storeu_ps(a->acc + (size_t)i * a->ldacc + 16 * j, a->m[j], acc[i][j]);
}

#define QK_MR_FN(r) \
    static AVX512 void qk_##r(const qk_args *a) { qk_tile(r, a); }
#define PV_MR_FN(r, nv) \
    static AVX512 void pv##nv##_##r(const pv_args *a) { pv_tile(r, nv, false, a); }
#define PV_FULL_FN(r) \
    static AVX512 void pvf_##r(const pv_args *a) { pv_tile(r, 4, true, a); }
QK_MR_FN(1) QK_MR_FN(2) QK_MR_FN(3) QK_MR_FN(4) QK_MR_FN(5) QK_MR_FN(6)
QK_MR_FN(7) QK_MR_FN(8) QK_MR_FN(9) QK_MR_FN(10) QK_MR_FN(11) QK_MR_FN(12)
PV_FULL_FN(1) PV_FULL_FN(2) PV_FULL_FN(3) PV_FULL_FN(4) PV_FULL_FN(5) PV_FULL_FN(6)
PV_MR_FN(1, 4) PV_MR_FN(2, 4) PV_MR_FN(3, 4) PV_MR_FN(4, 4) PV_MR_FN(5, 4) PV_MR_FN(6, 4)
PV_MR_FN(1, 2) PV_MR_FN(2, 2) PV_MR_FN(3, 2) PV_MR_FN(4, 2) PV_MR_FN(5, 2) PV_MR_FN(6, 2)
PV_MR_FN(7, 2) PV_MR_FN(8, 2) PV_MR_FN(9, 2) PV_MR_FN(10, 2) PV_MR_FN(11, 2) PV_MR_FN(12, 2)
static void (*const qk_tiles[QK_MR + 1])(const qk_args *) = {
    NULL, qk_1, qk_2, qk_3, qk_4, qk_5, qk_6, qk_7, qk_8, qk_9, qk_10, qk_11, qk_12};
static void (*const pv4_tiles[PV_MR4 + 1])(const pv_args *) = {
    NULL, pv4_1, pv4_2, pv4_3, pv4_4, pv4_5, pv4_6};
static void (*const pvf_tiles[PV_MR4 + 1])(const pv_args *) = {
    NULL, pvf_1, pvf_2, pvf_3, pvf_4, pvf_5, pvf_6};
static void (*const pv2_tiles[PV_MR2 + 1])(const pv_args *) = {
    NULL, pv2_1, pv2_2, pv2_3, pv2_4, pv2_5, pv2_6, pv2_7, pv2_8, pv2_9, pv2_10, pv2_11, pv2_12};

/* r[i] = row i of a 16 x 16 block -> r[j] = column j: pairs, then fours
 * within each 128-bit lane, then the four lanes across rows 0-3, 4-7 ... */
INLINE AVX512 void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) { /* r[i + j]: column 4b + j of rows i..i+3 in lane b */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    __m512 u[16];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        u[4 * j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44);     /* lanes 0, 1 */
        u[4 * j + 1] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE); /* lanes 2, 3 */
        u[4 * j + 2] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44);
        u[4 * j + 3] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(u[4 * j], u[4 * j + 2], 0x88);
        r[4 + j] = _mm512_shuffle_f32x4(u[4 * j], u[4 * j + 2], 0xDD);
        r[8 + j] = _mm512_shuffle_f32x4(u[4 * j + 1], u[4 * j + 3], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(u[4 * j + 1], u[4 * j + 3], 0xDD);
    }
}

/* kpack[c][j] = key j's element c for the panel's keys [0, n) (n <= 32),
 * zeros for the rest: 16 x 16 register transposes of keys x elements (the
 * gathers of one element of 16 keys they replace cost half as much as the
 * tile's FMAs; a scalar transpose as much). */
static AVX512 void pack_keys(const float *k, size_t ldk, int n, int d, float *kpack) {
    for (int h = 0; h < ER_ATT_PANEL; h += 16) {
        if (h >= n) { /* an empty second half: zeros, as the tiles read it */
            for (int c = 0; c < d; c++) _mm512_storeu_ps(kpack + c * ER_ATT_PANEL + h, _mm512_setzero_ps());
            continue;
        }
        for (int c0 = 0; c0 < d; c0 += 16) {
            const __mmask16 m = lane_mask(d - c0);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = h + i < n ? _mm512_maskz_loadu_ps(m, k + (size_t)(h + i) * ldk + c0)
                                 : _mm512_setzero_ps();
            transpose16(r);
            const int nc = d - c0 < 16 ? d - c0 : 16;
            for (int j = 0; j < nc; j++) _mm512_storeu_ps(kpack + (size_t)(c0 + j) * ER_ATT_PANEL + h, r[j]);
        }
    }
}

/* Rows [0, n) of x (stride ld floats) of d floats each towards L1: a head's
 * keys and values are rows a hidden row apart, which the hardware
 * prefetchers do not follow. */
static void prefetch_rows(const float *x, size_t ld, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c += 16) _mm_prefetch((const char *)(x + (size_t)i * ld + c), _MM_HINT_T0);
}

static void qk_avx512(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols,
                      int d, float scale, float *tile, size_t ldt, float *kpack, float *rmax) {
    qk_args a = {.ldq = ldq, .kp = kpack, .d = d, .scale = scale, .ldt = ldt};
    if (rmax)
        for (int i = 0; i < rows * ER_ATT_RMAX; i++) rmax[i] = -INFINITY;
    for (int j0 = 0; j0 < cols; j0 += ER_ATT_PANEL) {
        const int n = cols - j0 < ER_ATT_PANEL ? cols - j0 : ER_ATT_PANEL;
        pack_keys(k + (size_t)j0 * ldk, ldk, n, d, kpack);
        if (j0 + ER_ATT_PANEL < cols) /* the next panel's keys, under this one's tiles */
            prefetch_rows(k + (size_t)(j0 + ER_ATT_PANEL) * ldk, ldk,
                          cols - j0 - ER_ATT_PANEL < ER_ATT_PANEL ? cols - j0 - ER_ATT_PANEL
                                                                   : ER_ATT_PANEL, d);
        a.m0 = lane_mask(n);
        a.m1 = lane_mask(n - 16);
        for (int i0 = 0; i0 < rows; i0 += QK_MR) {
            const int mr = rows - i0 < QK_MR ? rows - i0 : QK_MR;
            a.q = q + (size_t)i0 * ldq;
            a.t = tile + (size_t)i0 * ldt + (size_t)j0;
            a.rm = rmax ? rmax + (size_t)i0 * ER_ATT_RMAX : NULL;
            qk_tiles[mr](&a);
        }
    }
}

static void pv_avx512(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols,
                      int d, float *acc, size_t ldacc) {
    pv_args a = {.ldp = ldp, .ldv = ldv, .ldacc = ldacc};
    for (int k0 = 0; k0 < cols; k0 += PV_KB) {
        a.cols = cols - k0 < PV_KB ? cols - k0 : PV_KB;
        for (int c0 = 0; c0 < d; c0 += 64) {
            const int w = d - c0 < 64 ? d - c0 : 64; /* the chunk's columns */
            const bool wide = w > 32;
            for (int j = 0; j < 4; j++) a.m[j] = lane_mask(w - 16 * j);
            a.v = v + (size_t)k0 * ldv + (size_t)c0;
            const int mrmax = wide ? PV_MR4 : PV_MR2;
            for (int i0 = 0; i0 < rows; i0 += mrmax) {
                const int mr = rows - i0 < mrmax ? rows - i0 : mrmax;
                a.p = p + (size_t)i0 * ldp + (size_t)k0;
                a.acc = acc + (size_t)i0 * ldacc + (size_t)c0;
                (w == 64 ? pvf_tiles : wide ? pv4_tiles : pv2_tiles)[mr](&a);
            }
        }
    }
}
#endif

void er_att_qk(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols, int d,
               float scale, float *tile, size_t ldt, float *kpack, float *rmax) {
#ifdef ER_ATT_X86 /* the own code where the weight GEMMs run, or beside oneDNN's */
    switch (er_gemm_attention_kernels()) {
    case ER_ATT_ON_AVX512:
        qk_avx512(q, ldq, k, ldk, rows, cols, d, scale, tile, ldt, kpack, rmax);
        return;
    case ER_ATT_ON_AVX2:
        er_att_qk_avx2(q, ldq, k, ldk, rows, cols, d, scale, tile, ldt, kpack, rmax);
        return;
    case ER_ATT_ON_OPENBLAS: break;
    }
#endif
    (void)kpack;
    qk_blas(q, ldq, k, ldk, rows, cols, d, scale, tile, ldt);
    if (rmax) /* the row's max in lane 0, -inf in the others */
        for (int i = 0; i < rows; i++) {
            rmax[(size_t)i * ER_ATT_RMAX] = er_max(tile + (size_t)i * ldt, cols);
            for (int j = 1; j < ER_ATT_RMAX; j++) rmax[(size_t)i * ER_ATT_RMAX + j] = -INFINITY;
        }
}

void er_att_normalize(const float *acc, size_t ldacc, int rows, int d, const float *l, float *out,
                      size_t ldo) {
#ifdef ER_ATT_X86
    if (er_gemm_attention_kernels() == ER_ATT_ON_AVX512) {
        normalize_avx512(acc, ldacc, rows, d, l, out, ldo);
        return;
    }
#endif
    for (int r = 0; r < rows; r++) {
        const float inv = 1.0f / l[r];
        for (int c = 0; c < d; c++) out[(size_t)r * ldo + c] = acc[(size_t)r * ldacc + c] * inv;
    }
}

float er_att_exp_sum(float *x, int n, float m) {
#ifdef ER_ATT_X86
    switch (er_gemm_attention_kernels()) {
    case ER_ATT_ON_AVX512: return exp_sum_avx512(x, n, m);
    case ER_ATT_ON_AVX2: return er_att_exp_sum_avx2(x, n, m);
    case ER_ATT_ON_OPENBLAS: break;
    }
#endif
    return n > 0 ? er_exp_sub_sum(x, n, m) : 0.0f;
}

void er_att_pv(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols, int d,
               float *acc, size_t ldacc) {
#ifdef ER_ATT_X86
    switch (er_gemm_attention_kernels()) {
    case ER_ATT_ON_AVX512:
        pv_avx512(p, ldp, v, ldv, rows, cols, d, acc, ldacc);
        return;
    case ER_ATT_ON_AVX2:
        er_att_pv_avx2(p, ldp, v, ldv, rows, cols, d, acc, ldacc);
        return;
    case ER_ATT_ON_OPENBLAS: break;
    }
#endif
    pv_blas(p, ldp, v, ldv, rows, cols, d, acc, ldacc);
}
