/* AVX2 + FMA fp32 kernels on the AVX-512 kernels' packed layout
 * (gemm_avx2.h).  Blocking as gemm.c's, and the reduction blocks are the
 * same ones (split only beyond KB = gemm.c's KC, into equal even blocks):
 * with one FMA chain per element in k order, the sums are then bit for bit
 * the AVX-512 kernels' (test_gemm, and the recycling store shares one
 * numerics class between the two, recycle.c).  The caller's rows go in
 * blocks copied into a thread-local x block as 6-row groups [kc, 6]; per
 * 32-column panel, two halves of 16 columns, each a 6 x 16 tile in 12 ymm
 * accumulators (per k: two panel loads and 6 broadcasts feed 12 FMAs; 15 of
 * the 16 ymm registers).  Bias and activation are applied to the tile in
 * registers before its one store (a scalar GELU on the stored rows took
 * 6.5% of a forward: gcc does not vectorise it on 16-column rows). */
#include "gemm_avx2.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define PNR 32           /* columns per packed panel (gemm.c NR) */
#define TR 6             /* rows per tile */
/* Most rows per block: the weights stream from memory once per block, so
 * a 128-token sequence is one block (96 rows, two blocks, measured 3-5%
 * slower on bert-base 8x128, one thread). */
#define XROWS 288
#define KB 3072          /* longest reduction block: gemm.c's KC (same sums) */
#define XFLOATS (288 * 768) /* floats of the x block per thread (864 KiB) */
#define PF_B 8           /* prefetch distance in k (rows of the panel) */

bool er_gemm_avx2_cpu(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* The thread's copy of the current row block of x, 6-row groups [kc, TR]:
 * the tile reads 24 contiguous bytes per k.  Thread-local storage is set up
 * when a thread starts, never on the forward path. */
static __thread float xblock[XFLOATS] __attribute__((aligned(32)));

typedef struct {
    const float *a;    /* [kc, TR]: the tile's rows of the x block */
    const float *b;    /* the panel half at the block's first k, rows PNR apart */
    int kc;
    float *c;          /* destination of the tile's first row and column */
    size_t ldc;
    int valid;         /* columns of the 16 that exist (1..16) */
    bool first, last;  /* first k block: no sum to add; last: bias and act */
    const float *bias; /* [valid] or NULL */
    er_epi act;
} tile;

/* v < lo ? lo : v, then v > hi ? hi : v, as clampf (kernels_math.h) does
 * it, NaN included (max/min would turn a NaN into the bound). */
INLINE AVX2 __m256 clamp8(__m256 v, float lo, float hi) {
    const __m256 l = _mm256_set1_ps(lo), h = _mm256_set1_ps(hi);
    v = _mm256_blendv_ps(v, l, _mm256_cmp_ps(v, l, _CMP_LT_OQ));
    return _mm256_blendv_ps(v, h, _mm256_cmp_ps(v, h, _CMP_GT_OQ));
}

/* p * x2 + c, as two roundings (kernels_math.h's statements; the build's
 * -std=c11 contracts nothing, so neither do these). */
INLINE AVX2 __m256 mul_add(__m256 a, __m256 b, float c) {
    return _mm256_add_ps(_mm256_mul_ps(a, b), _mm256_set1_ps(c));
}

/* erf_approx, eight lanes: the same operations in the same order, so the
 * same bits as the scalar function (and as er_gelu_erf's clones). */
INLINE AVX2 __m256 erf8(__m256 x) {
    x = clamp8(x, -4.0f, 4.0f);
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = mul_add(x2, _mm256_set1_ps(-2.72614225801306e-10f), 2.77068142495902e-08f);
    p = mul_add(x2, p, -2.10102402082508e-06f);
    p = mul_add(x2, p, -5.69250639462346e-05f);
    p = mul_add(x2, p, -7.34990630326855e-04f);
    p = mul_add(x2, p, -2.95459980854025e-03f);
    p = mul_add(x2, p, -1.60960333262415e-02f);
    p = _mm256_mul_ps(x, p);
    __m256 q = mul_add(x2, _mm256_set1_ps(-1.45660718464996e-05f), -2.13374055278905e-04f);
    q = mul_add(x2, q, -1.68282697438203e-03f);
    q = mul_add(x2, q, -7.37332916720468e-03f);
    q = mul_add(x2, q, -1.42647390514189e-02f);
    return _mm256_div_ps(p, q);
}

/* exp_approx, eight lanes, operation for operation. */
INLINE AVX2 __m256 exp8(__m256 x) {
    x = clamp8(x, -87.0f, 88.3762626647949f);
    const __m256 big = _mm256_set1_ps(12582912.0f);
    const __m256 n = _mm256_sub_ps(mul_add(x, _mm256_set1_ps(1.44269504088896341f), 12582912.0f), big);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = mul_add(_mm256_set1_ps(1.9875691500e-4f), r, 1.3981999507e-3f);
    p = mul_add(p, r, 8.3334519073e-3f);
    p = mul_add(p, r, 4.1665795894e-2f);
    p = mul_add(p, r, 1.6666665459e-1f);
    p = mul_add(p, r, 5.0000001201e-1f);
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/* The epilogue's activation on eight values: gelu_erf1, gelu_tanh1 or the
 * ReLU of kernels_math.h, bit for bit. */
INLINE AVX2 __m256 act8(__m256 x, er_epi act) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    switch (act) {
    case ER_EPI_NONE: break;
    case ER_EPI_GELU:
        return _mm256_mul_ps(_mm256_mul_ps(half, x),
                             _mm256_add_ps(one, erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)))));
    case ER_EPI_GELU_TANH: {
        const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), x), x);
        const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_add_ps(x, x3));
        const __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(2.0f), u));
        const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
        return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, t));
    }
    case ER_EPI_RELU: return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), x);
    }
    return x;
}

/* Adds the earlier k blocks' sums, then (last block) the bias and the
 * activation, in registers; stores the valid columns once. */
INLINE AVX2 void tile_store(const int mr, const tile *t, __m256 acc[][2]) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(t->valid), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(t->valid - 8), lane);
    const bool bias = t->last && t->bias, act = t->last && t->act != ER_EPI_NONE;
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (bias) {
        bias0 = _mm256_maskload_ps(t->bias, m0);
        bias1 = _mm256_maskload_ps(t->bias + 8, m1);
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *c = t->c + i * t->ldc;
        if (!t->first) {
            acc[i][0] = _mm256_add_ps(_mm256_maskload_ps(c, m0), acc[i][0]);
            acc[i][1] = _mm256_add_ps(_mm256_maskload_ps(c + 8, m1), acc[i][1]);
        }
        if (bias) {
            acc[i][0] = _mm256_add_ps(acc[i][0], bias0);
            acc[i][1] = _mm256_add_ps(acc[i][1], bias1);
        }
        if (act) {
            acc[i][0] = act8(acc[i][0], t->act);
            acc[i][1] = act8(acc[i][1], t->act);
        }
        _mm256_maskstore_ps(c, m0, acc[i][0]);
        _mm256_maskstore_ps(c + 8, m1, acc[i][1]);
    }
}

INLINE AVX2 void tile_f32(const int mr, const tile *t) {
    __m256 acc[TR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *b = t->b, *a = t->a;
    /* Unrolled 4 times, with the panel's line PF_B k ahead prefetched: the
     * half panel is read at a stride of two lines, which the hardware
     * prefetchers follow late (both together: 1024x3072x768 80 -> 112
     * GFLOP/s, 1024x768x3072 and 128x768x2304 95 -> 105, one thread). */
#pragma GCC unroll 4
    for (int k = 0; k < t->kc; k++, b += PNR, a += mr) {
        _mm_prefetch((const char *)(b + PF_B * PNR), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m256 av = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    tile_store(mr, t, acc);
}

#define TILE_MR(r) \
    static AVX2 void tile_f32_##r(const tile *t) { tile_f32(r, t); }
TILE_MR(1) TILE_MR(2) TILE_MR(3) TILE_MR(4) TILE_MR(5) TILE_MR(6)
static void (*const tiles[TR + 1])(const tile *) = {NULL, tile_f32_1, tile_f32_2, tile_f32_3,
                                                    tile_f32_4, tile_f32_5, tile_f32_6};

/* Rows of the tile that starts `rem` rows before the block's end: 6, but
 * the last 7 or 8 rows as 4 + 3 or 4 + 4 (a 1- or 2-row tile has too few
 * accumulators to hide the FMA latency: 2 rows ran at half speed, and
 * bert-base's 128 rows per sequence end in 32 = 5 x 6 + 2). */
static inline int tile_rows(int rem) { return rem == 7 || rem == 8 ? 4 : rem < TR ? rem : TR; }

/* Rows [m0, m0 + mc) and k [k0, k0 + kc) of x[., in] into xblock as groups
 * of tile_rows rows, each [kc, rows] (the tile reads its rows' values for one
 * k side by side), the group at row i0 starting at xblock + i0 * kc. */
static void copy_x(const float *x, int in, int m0, int mc, int k0, int kc) {
    for (int i0 = 0, mr; i0 < mc; i0 += mr) {
        mr = tile_rows(mc - i0);
        float *dst = xblock + (size_t)i0 * kc; // [kc, mr]
        for (int i = 0; i < mr; i++) {
            const float *src = x + (size_t)(m0 + i0 + i) * in + k0; // [kc]
            for (int k = 0; k < kc; k++) dst[k * mr + i] = src[k];
        }
    }
}

/* One k block of one row block over panels [p0, p1). */
static void block(const float *packed, int in, int out, int p0, int p1, const float *b,
                  const er_gemm_out *y, int m0, int mc, tile t, int k0) {
    const int seg = y->seg;
    for (int p = p0; p < p1; p++) {
        const int col = p * PNR, s = col / seg;
        for (int h = 0; h < PNR && col + h < out; h += 16) {
            const int c0 = col + h;
            t.valid = out - c0 < 16 ? out - c0 : 16;
            t.b = packed + (size_t)p * PNR * in + (size_t)k0 * PNR + h;
            t.bias = b ? b + c0 : NULL;
            for (int i0 = 0, mr; i0 < mc; i0 += mr) {
                mr = tile_rows(mc - i0);
                t.a = xblock + (size_t)i0 * t.kc;
                t.c = y->dst[s] + (size_t)(m0 + i0) * seg + (c0 - s * seg);
                tiles[mr](&t);
            }
        }
    }
}

void er_gemm_avx2_range(const float *x, int n, int in, const float *packed, int out, int p0,
                        int p1, const float *b, er_epi act, const er_gemm_out *y) {
    /* gemm.c's split of the reduction, so that every sum is the AVX-512
     * kernels' (equal blocks, even for bf16 pairs there) */
    const int blocks = (in + KB - 1) / KB, kcb = ((in + blocks - 1) / blocks + 1) & ~1;
    int mcb = XFLOATS / kcb / TR * TR; /* rows the x block holds at kcb */
    mcb = mcb > XROWS ? XROWS : mcb;
    for (int m0 = 0; m0 < n; m0 += mcb) {
        const int mc = n - m0 < mcb ? n - m0 : mcb;
        for (int k0 = 0; k0 < in; k0 += kcb) {
            tile t = {.kc = in - k0 < kcb ? in - k0 : kcb, .first = k0 == 0, .act = act,
                      .ldc = (size_t)y->seg};
            t.last = k0 + t.kc == in;
            copy_x(x, in, m0, mc, k0, t.kc);
            block(packed, in, out, p0, p1, b, y, m0, mc, t, k0);
        }
    }
}

#else /* not x86-64: never chosen (er_gemm_avx2_cpu is false) */
#include <stdlib.h>

bool er_gemm_avx2_cpu(void) { return false; }

void er_gemm_avx2_range(const float *x, int n, int in, const float *packed, int out, int p0,
                        int p1, const float *b, er_epi act, const er_gemm_out *y) {
    (void)x; (void)n; (void)in; (void)packed; (void)out; (void)p0; (void)p1; (void)b;
    (void)act; (void)y;
    abort();
}
#endif
