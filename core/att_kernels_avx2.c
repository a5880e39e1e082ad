/* Attention's two small GEMMs on AVX2 + FMA (att_kernels_avx2.h).
 *
 * QK^T: keys ER_ATT_PANEL (32) at a time, transposed into kpack [d, 32] by
 * 8 x 8 register transposes; each 16-key half of the panel is a 6 x 16
 * score tile in 12 ymm accumulators over the whole of d (per c: two kpack
 * loads, six broadcasts of q from its strided rows, twelve FMAs); the scale
 * is applied once, before the masked store.
 *
 * P.V: v[cols, d] is already [k, n] with d contiguous: no packing.  d goes
 * in chunks of 16 columns (two ymm, lanes past d masked), rows in 6-row
 * tiles (12 accumulators, started from acc), keys in passes of PV_KB.
 *
 * Row tiles are 6 rows, except that the last 7 or 8 rows of a block go as
 * 4 + 3 or 4 + 4 (fewer than 4 rows leave too few accumulators to hide the
 * FMA latency).  The row split changes no sum: each element is its own FMA
 * chain. */
#include "att_kernels_avx2.h"

#include <math.h>
#include <stdbool.h>

#include "att_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define TR 6     /* rows per tile */
#define PV_KB 32 /* keys per P.V pass (att_kernels.c: v's rows share L1 sets) */

/* Rows of the tile `rem` rows before the end (see the top of the file). */
static inline int tile_rows(int rem) { return rem == 7 || rem == 8 ? 4 : rem < TR ? rem : TR; }

/* Lanes [0, n) of a ymm (n clamped to 0..8) as a maskload/maskstore mask. */
INLINE AVX2 __m256i lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* r[i] = row i of an 8 x 8 block -> r[j] = column j. */
INLINE AVX2 void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x31);
    }
}

/* kpack[c][j] = key j's element c for keys [0, n) of the panel (n <= 32),
 * zeros for the other keys of the 16-key halves that hold keys. */
static AVX2 void pack_keys(const float *k, size_t ldk, int n, int d, float *kpack) {
    const int groups = n > 16 ? 4 : 2; /* 8-key groups the tiles read */
    for (int g = 0; g < groups; g++)
        for (int c0 = 0; c0 < d; c0 += 8) {
            const __m256i m = lanes(d - c0);
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const int key = 8 * g + i;
                r[i] = key < n ? _mm256_maskload_ps(k + (size_t)key * ldk + c0, m)
                               : _mm256_setzero_ps();
            }
            transpose8(r);
            const int nc = d - c0 < 8 ? d - c0 : 8;
            for (int j = 0; j < nc; j++)
                _mm256_storeu_ps(kpack + (size_t)(c0 + j) * ER_ATT_PANEL + 8 * g, r[j]);
        }
}

typedef struct {
    const float *q; /* the tile's first row */
    size_t ldq;
    const float *kp; /* kpack at the half's first key: [d, ER_ATT_PANEL] */
    int d;
    float scale;
    float *t; /* the tile's first score */
    size_t ldt;
    float *rm;      /* NULL, or the tile's first row's partial maxima [mr, ER_ATT_RMAX] */
    __m256i m0, m1; /* valid keys of each 8 of the half */
} qk_args;

INLINE AVX2 void qk_tile(const int mr, const qk_args *a) {
    __m256 acc[TR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *b = a->kp;
    for (int c = 0; c < a->d; c++, b += ER_ATT_PANEL) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m256 av = _mm256_broadcast_ss(a->q + (size_t)i * a->ldq + (size_t)c);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    const __m256 s = _mm256_set1_ps(a->scale);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *t = a->t + (size_t)i * a->ldt;
        const __m256 s0 = _mm256_mul_ps(acc[i][0], s), s1 = _mm256_mul_ps(acc[i][1], s);
        _mm256_maskstore_ps(t, a->m0, s0);
        _mm256_maskstore_ps(t + 8, a->m1, s1);
        if (a->rm) { /* the row's max while its scores are in registers: keys past n as -inf */
            float *r = a->rm + (size_t)i * ER_ATT_RMAX;
            const __m256 ninf = _mm256_set1_ps(-INFINITY);
            const __m256 v0 = _mm256_blendv_ps(ninf, s0, _mm256_castsi256_ps(a->m0));
            const __m256 v1 = _mm256_blendv_ps(ninf, s1, _mm256_castsi256_ps(a->m1));
            _mm256_storeu_ps(r, _mm256_max_ps(_mm256_loadu_ps(r), v0));
            _mm256_storeu_ps(r + 8, _mm256_max_ps(_mm256_loadu_ps(r + 8), v1));
        }
    }
}

typedef struct {
    const float *p; /* the tile's first probability */
    size_t ldp;
    const float *v; /* the chunk's first column of the pass's first key */
    size_t ldv;
    int cols;
    float *acc; /* the tile's first accumulator */
    size_t ldacc;
    __m256i m0, m1; /* valid columns of each 8 of the chunk */
} pv_args;

/* full: all 16 columns exist (plain loads and stores). */
INLINE AVX2 void pv_tile(const int mr, const bool full, const pv_args *a) {
    __m256 acc[TR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        const float *r = a->acc + (size_t)i * a->ldacc;
        acc[i][0] = full ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, a->m0);
        acc[i][1] = full ? _mm256_loadu_ps(r + 8) : _mm256_maskload_ps(r + 8, a->m1);
    }
    const float *v = a->v;
    for (int c = 0; c < a->cols; c++, v += a->ldv) {
        const __m256 b0 = full ? _mm256_loadu_ps(v) : _mm256_maskload_ps(v, a->m0);
        const __m256 b1 = full ? _mm256_loadu_ps(v + 8) : _mm256_maskload_ps(v + 8, a->m1);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m256 pv = _mm256_broadcast_ss(a->p + (size_t)i * a->ldp + (size_t)c);
            acc[i][0] = _mm256_fmadd_ps(pv, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(pv, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *r = a->acc + (size_t)i * a->ldacc;
        if (full) {
            _mm256_storeu_ps(r, acc[i][0]);
            _mm256_storeu_ps(r + 8, acc[i][1]);
        } else {
            _mm256_maskstore_ps(r, a->m0, acc[i][0]);
            _mm256_maskstore_ps(r + 8, a->m1, acc[i][1]);
        }
    }
}

#define TILE_FNS(r) \
    static AVX2 void qk_##r(const qk_args *a) { qk_tile(r, a); } \
    static AVX2 void pvf_##r(const pv_args *a) { pv_tile(r, true, a); } \
    static AVX2 void pvm_##r(const pv_args *a) { pv_tile(r, false, a); }
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6)
static void (*const qk_tiles[TR + 1])(const qk_args *) = {NULL, qk_1, qk_2, qk_3, qk_4, qk_5, qk_6};
static void (*const pvf_tiles[TR + 1])(const pv_args *) = {NULL,  pvf_1, pvf_2, pvf_3,
                                                           pvf_4, pvf_5, pvf_6};
static void (*const pvm_tiles[TR + 1])(const pv_args *) = {NULL,  pvm_1, pvm_2, pvm_3,
                                                           pvm_4, pvm_5, pvm_6};

AVX2 void er_att_qk_avx2(const float *q, size_t ldq, const float *k, size_t ldk, int rows,
                         int cols, int d, float scale, float *tile, size_t ldt, float *kpack,
                         float *rmax) {
    qk_args a = {.ldq = ldq, .d = d, .scale = scale, .ldt = ldt};
    if (rmax)
        for (int i = 0; i < rows * ER_ATT_RMAX; i++) rmax[i] = -INFINITY;
    for (int j0 = 0; j0 < cols; j0 += ER_ATT_PANEL) {
        const int n = cols - j0 < ER_ATT_PANEL ? cols - j0 : ER_ATT_PANEL;
        pack_keys(k + (size_t)j0 * ldk, ldk, n, d, kpack);
        /* The next panel's keys under this one's tiles (att_kernels.c). */
        for (int i = j0 + ER_ATT_PANEL; i < cols && i < j0 + 2 * ER_ATT_PANEL; i++)
            for (int c = 0; c < d; c += 16) _mm_prefetch((const char *)(k + (size_t)i * ldk + c), _MM_HINT_T0);
        for (int h = 0; h < n; h += 16) {
            a.kp = kpack + h;
            a.m0 = lanes(n - h);
            a.m1 = lanes(n - h - 8);
            for (int i0 = 0, mr; i0 < rows; i0 += mr) {
                mr = tile_rows(rows - i0);
                a.q = q + (size_t)i0 * ldq;
                a.t = tile + (size_t)i0 * ldt + (size_t)(j0 + h);
                a.rm = rmax ? rmax + (size_t)i0 * ER_ATT_RMAX : NULL;
                qk_tiles[mr](&a);
            }
        }
    }
}

AVX2 void er_att_pv_avx2(const float *p, size_t ldp, const float *v, size_t ldv, int rows,
                         int cols, int d, float *acc, size_t ldacc) {
    pv_args a = {.ldp = ldp, .ldv = ldv, .ldacc = ldacc};
    for (int k0 = 0; k0 < cols; k0 += PV_KB) {
        a.cols = cols - k0 < PV_KB ? cols - k0 : PV_KB;
        for (int c0 = 0; c0 < d; c0 += 16) {
            const bool full = d - c0 >= 16;
            a.m0 = lanes(d - c0);
            a.m1 = lanes(d - c0 - 8);
            a.v = v + (size_t)k0 * ldv + (size_t)c0;
            for (int i0 = 0, mr; i0 < rows; i0 += mr) {
                mr = tile_rows(rows - i0);
                a.p = p + (size_t)i0 * ldp + (size_t)k0;
                a.acc = acc + (size_t)i0 * ldacc + (size_t)c0;
                (full ? pvf_tiles : pvm_tiles)[mr](&a);
            }
        }
    }
}

/* exp_approx (kernels_math.h) on 8 lanes, operation for operation (as
 * exp_avx512.h's er_exp16: no contraction into FMAs, clampf's selects). */
INLINE AVX2 __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), x);
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 n = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), magic), magic);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r),
                      _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Lanes 0-7 and 8-15 of the AVX-512 version's 16 lane sums in lo and hi:
 * the same sums, the same order. */
AVX2 float er_att_exp_sum_avx2(float *x, int n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv));
        const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), mv));
        _mm256_storeu_ps(x + j, e0);
        _mm256_storeu_ps(x + j + 8, e1);
        lo = _mm256_add_ps(lo, e0);
        hi = _mm256_add_ps(hi, e1);
    }
    float s = 0.0f, part[16];
    for (; j < n; j += 8) { /* the tail, added one by one before the lanes */
        const __m256i k = lanes(n - j);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), mv));
        _mm256_maskstore_ps(x + j, k, e);
        _mm256_storeu_ps(part, e);
        for (int i = 0; i < n - j && i < 8; i++) s += part[i];
    }
    _mm256_storeu_ps(part, lo);
    _mm256_storeu_ps(part + 8, hi);
    for (int i = 0; i < 16; i++) s += part[i];
    return s;
}

#else /* not x86-64: never called (the ER_GEMM_AVX2 backend is never chosen) */
#include <stdlib.h>

void er_att_qk_avx2(const float *q, size_t ldq, const float *k, size_t ldk, int rows, int cols,
                    int d, float scale, float *tile, size_t ldt, float *kpack, float *rmax) {
    (void)q; (void)ldq; (void)k; (void)ldk; (void)rows; (void)cols; (void)d; (void)scale;
    (void)tile; (void)ldt; (void)kpack; (void)rmax;
    abort();
}

float er_att_exp_sum_avx2(float *x, int n, float m) {
    (void)x; (void)n; (void)m;
    abort();
}

void er_att_pv_avx2(const float *p, size_t ldp, const float *v, size_t ldv, int rows, int cols,
                    int d, float *acc, size_t ldacc) {
    (void)p; (void)ldp; (void)v; (void)ldv; (void)rows; (void)cols; (void)d; (void)acc;
    (void)ldacc;
    abort();
}
#endif
