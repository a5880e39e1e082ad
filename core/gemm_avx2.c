/* AVX2 + FMA fp32 kernels on the AVX-512 kernels' packed layout
 * (gemm_avx2.h).  Blocking as gemm.c's: the caller's rows in blocks copied
 * into a thread-local x block as 6-row groups [kc, 6]; the reduction split
 * only beyond KB; per 32-column panel, two halves of 16 columns, each a
 * 6 x 16 tile in 12 ymm accumulators (per k: two panel loads and 6
 * broadcasts feed 12 FMAs; 15 of the 16 ymm registers). */
#include "gemm_avx2.h"

#include <stddef.h>
#include <stdint.h>

#include "kernels_math.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define PNR 32           /* columns per packed panel (gemm.c NR) */
#define TR 6             /* rows per tile */
#define XROWS 96         /* most rows per block */
#define KB 4096          /* longest reduction block */
#define XFLOATS (96 * 768) /* floats of the x block per thread (288 KiB, in L2) */

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

/* The activation on n stored values, compiled for AVX2 so that GELU's
 * polynomial runs 8 lanes at a time (the same function, so the same value
 * per element, whatever the tile). */
static AVX2 void act_row(float *c, int n, er_epi act) {
    switch (act) {
    case ER_EPI_NONE: break;
    case ER_EPI_GELU: for (int j = 0; j < n; j++) c[j] = gelu_erf1(c[j]); break;
    case ER_EPI_GELU_TANH: for (int j = 0; j < n; j++) c[j] = gelu_tanh1(c[j]); break;
    case ER_EPI_RELU: for (int j = 0; j < n; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f; break;
    }
}

/* Adds the earlier k blocks' sums, then (last block) the bias; stores the
 * valid columns; then the activation on the stored rows. */
static inline __attribute__((always_inline)) AVX2 void tile_store(const int mr, const tile *t,
                                                                  __m256 acc[][2]) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(t->valid), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(t->valid - 8), lane);
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (t->last && t->bias) {
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
        if (t->last && t->bias) {
            acc[i][0] = _mm256_add_ps(acc[i][0], bias0);
            acc[i][1] = _mm256_add_ps(acc[i][1], bias1);
        }
        _mm256_maskstore_ps(c, m0, acc[i][0]);
        _mm256_maskstore_ps(c + 8, m1, acc[i][1]);
    }
    if (t->last && t->act != ER_EPI_NONE)
        for (int i = 0; i < mr; i++) act_row(t->c + i * t->ldc, t->valid, t->act);
}

static inline __attribute__((always_inline)) AVX2 void tile_f32(const int mr, const tile *t) {
    __m256 acc[TR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *b = t->b, *a = t->a;
    for (int k = 0; k < t->kc; k++, b += PNR, a += TR) {
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

/* Rows [m0, m0 + mc) and k [k0, k0 + kc) of x[., in] into xblock as 6-row
 * groups [kc, TR] (the last group's missing rows are never read). */
static void copy_x(const float *x, int in, int m0, int mc, int k0, int kc) {
    for (int i0 = 0; i0 < mc; i0 += TR) {
        const int mr = mc - i0 < TR ? mc - i0 : TR;
        float *dst = xblock + (size_t)i0 * kc; // [kc, TR]
        for (int i = 0; i < mr; i++) {
            const float *src = x + (size_t)(m0 + i0 + i) * in + k0; // [kc]
            for (int k = 0; k < kc; k++) dst[k * TR + i] = src[k];
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
            for (int i0 = 0; i0 < mc; i0 += TR) {
                const int mr = mc - i0 < TR ? mc - i0 : TR;
                t.a = xblock + (size_t)i0 * t.kc;
                t.c = y->dst[s] + (size_t)(m0 + i0) * seg + (c0 - s * seg);
                tiles[mr](&t);
            }
        }
    }
}

void er_gemm_avx2_range(const float *x, int n, int in, const float *packed, int out, int p0,
                        int p1, const float *b, er_epi act, const er_gemm_out *y) {
    const int blocks = (in + KB - 1) / KB, kcb = (in + blocks - 1) / blocks;
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
