/* The weight-GEMM seam (gemm.h): backend choice, weight packing and the
 * AVX-512 kernels.
 *
 * Blocking: each thread owns a contiguous range of 32-column panels; the
 * caller's rows go in blocks of up to MC rows, copied into the thread's
 * apack, and the reduction is split only beyond KC (so a tile's sums stay in
 * registers from the first k to the epilogue: the blocked (BLIS) order with
 * KC = 256 reloads C and measured 10-25% slower here).  For one row block a
 * thread walks its panels; a panel (K x 32, 96 KiB at K = 768) stays in L2
 * while the block's 12-row groups pass over it.  The micro-kernel keeps a
 * 12 x 32 tile in 24 zmm accumulators: per k, two panel loads and 12
 * broadcasts feed 24 FMAs. */
#include "gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_math.h"

#define NR 32  /* columns per panel: two zmm */
#define MR 12  /* rows per micro-tile: 24 accumulators */
#define KC 3072 /* longest reduction block: bert-base's FFN output in one */
#define MC 96   /* most rows per block */
#define APACK (MC * 768) /* floats of packed x per thread (288 KiB, in L2) */

#if defined(__x86_64__) && defined(__GNUC__)
#define ER_GEMM_X86 1
#include <immintrin.h>
#endif

static er_gemm_backend backend;
static bool has_bf16;
static char describe[200];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const char *env = getenv("ERSERVE_GEMM");
    bool want_blas = env && strcmp(env, "openblas") == 0;
    bool avx512 = false;
#ifdef ER_GEMM_X86
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    has_bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
#endif
    backend = avx512 && !want_blas ? ER_GEMM_AVX512 : ER_GEMM_OPENBLAS;
    if (backend == ER_GEMM_AVX512)
        snprintf(describe, sizeof describe, "gemm: erserve AVX-512F kernels on packed weights "
                 "(fp32%s)", has_bf16 ? "; bf16 with AVX512-BF16" : "; no AVX512-BF16: no bf16");
    else
        snprintf(describe, sizeof describe, "gemm: OpenBLAS %s (%s)", openblas_get_corename(),
                 want_blas ? "ERSERVE_GEMM=openblas" : "this CPU has no AVX-512F");
}

er_gemm_backend er_gemm_backend_get(void) {
    pthread_once(&once, choose);
    return backend;
}

const char *er_gemm_describe(void) {
    pthread_once(&once, choose);
    return describe;
}

bool er_gemm_supports(er_gemm_kind kind, const char **missing) {
    pthread_once(&once, choose);
    const char *why = NULL;
    if (backend != ER_GEMM_AVX512)
        why = "the erserve AVX-512 GEMM backend (this CPU has no AVX-512F, or ERSERVE_GEMM=openblas)";
    else if (kind == ER_GEMM_BF16 && !has_bf16)
        why = "the CPU feature AVX512-BF16 (VDPBF16PS)";
    if (missing) *missing = why;
    return why == NULL;
}

static __thread er_par *bound;

er_par *er_gemm_bind(er_par *team) {
    er_par *prev = bound;
    bound = team;
    return prev;
}

er_par *er_gemm_bound(void) { return bound; }

static inline int pairs(int in) { return (in + 1) / 2; }

size_t er_gemm_packed_bytes(er_gemm_kind kind, int out, int in) {
    size_t cols = (size_t)((out + NR - 1) / NR) * NR;
    return kind == ER_GEMM_BF16 ? cols * (size_t)pairs(in) * 2 * sizeof(uint16_t)
                                : cols * (size_t)in * sizeof(float);
}

/* fp32 -> bfloat16, round to nearest even (weights and activations are
 * finite here). */
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void er_gemm_pack(er_gemm_kind kind, const float *W, int out, int in, void *packed) {
    const int panels = (out + NR - 1) / NR, kp = pairs(in);
    for (int p = 0; p < panels; p++)
        for (int j = 0; j < NR; j++) {
            const int n = p * NR + j;
            const float *w = n < out ? W + (size_t)n * in : NULL; // [in]
            if (kind == ER_GEMM_F32) {
                float *dst = (float *)packed + (size_t)p * NR * in; // [in, NR]
                for (int k = 0; k < in; k++) dst[(size_t)k * NR + j] = w ? w[k] : 0.0f;
            } else {
                uint16_t *dst = (uint16_t *)packed + (size_t)p * NR * kp * 2; // [kp, NR, 2]
                for (int k = 0; k < 2 * kp; k++)
                    dst[((size_t)(k / 2) * NR + j) * 2 + k % 2] = w && k < in ? to_bf16(w[k]) : 0;
            }
        }
}

#ifdef ER_GEMM_X86
#define AVX512 __attribute__((target("avx512f")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bf16")))

/* One micro-tile: what its arguments say, for kernels specialised on mr. */
typedef struct {
    const void *a;    /* the tile's rows of the packed x block: [kc, MR] floats
                         or [kc / 2, MR] bf16 pairs */
    const void *b;    /* the panel at the block's first k: [kc, NR] floats or
                         [kc / 2, NR, 2] bf16 */
    int kc;
    float *c;         /* destination of the tile's first row and column */
    size_t ldc;
    __mmask16 m0, m1; /* valid columns of each half */
    bool first, last; /* first k block: no sum to add; last: epilogue */
    const float *bias; /* [NR] at the panel's first column, or NULL */
    er_epi act;
} tile;

static inline void epilogue_row(float *c, int n, er_epi act) {
    switch (act) {
    case ER_EPI_NONE: break;
    case ER_EPI_GELU: for (int j = 0; j < n; j++) c[j] = gelu_erf1(c[j]); break;
    case ER_EPI_GELU_TANH: for (int j = 0; j < n; j++) c[j] = gelu_tanh1(c[j]); break;
    case ER_EPI_RELU: for (int j = 0; j < n; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f; break;
    }
}

/* Adds the tile's earlier k blocks, then (last block) the bias; stores;
 * then the activation on the stored rows while they are in L1. */
static inline __attribute__((always_inline)) AVX512 void tile_store(const int mr, const tile *t,
                                                                    __m512 acc[][2]) {
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (t->last && t->bias) {
        bias0 = _mm512_maskz_loadu_ps(t->m0, t->bias);
        bias1 = _mm512_maskz_loadu_ps(t->m1, t->bias + 16);
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *c = t->c + i * t->ldc;
        if (!t->first) {
            acc[i][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(t->m0, c), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(t->m1, c + 16), acc[i][1]);
        }
        if (t->last && t->bias) {
            acc[i][0] = _mm512_add_ps(acc[i][0], bias0);
            acc[i][1] = _mm512_add_ps(acc[i][1], bias1);
        }
        _mm512_mask_storeu_ps(c, t->m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + 16, t->m1, acc[i][1]);
    }
    if (t->last && t->act != ER_EPI_NONE) {
        int n = __builtin_popcount(t->m0) + __builtin_popcount(t->m1);
        for (int i = 0; i < mr; i++) epilogue_row(t->c + i * t->ldc, n, t->act);
    }
}

static inline __attribute__((always_inline)) AVX512 void tile_f32(const int mr, const tile *t) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *b = t->b, *a = t->a;
    for (int k = 0; k < t->kc; k++, b += NR, a += MR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    tile_store(mr, t, acc);
}

/* The same tile on bf16 pairs: each VDPBF16PS adds two products per lane. */
static inline __attribute__((always_inline)) AVX512BF16 void tile_bf16(const int mr,
                                                                       const tile *t) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const uint16_t *b = t->b;
    const uint32_t *a = t->a;
    for (int k = 0; k < t->kc; k += 2, b += 2 * NR, a += MR) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + NR);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
        }
    }
    tile_store(mr, t, acc);
}

#define TILE_MR(r) \
    static AVX512 void tile_f32_##r(const tile *t) { tile_f32(r, t); } \
    static AVX512BF16 void tile_bf16_##r(const tile *t) { tile_bf16(r, t); }
TILE_MR(1) TILE_MR(2) TILE_MR(3) TILE_MR(4) TILE_MR(5) TILE_MR(6)
TILE_MR(7) TILE_MR(8) TILE_MR(9) TILE_MR(10) TILE_MR(11) TILE_MR(12)
static void (*const tiles[2][MR + 1])(const tile *) = {
    {NULL, tile_f32_1, tile_f32_2, tile_f32_3, tile_f32_4, tile_f32_5, tile_f32_6,
     tile_f32_7, tile_f32_8, tile_f32_9, tile_f32_10, tile_f32_11, tile_f32_12},
    {NULL, tile_bf16_1, tile_bf16_2, tile_bf16_3, tile_bf16_4, tile_bf16_5, tile_bf16_6,
     tile_bf16_7, tile_bf16_8, tile_bf16_9, tile_bf16_10, tile_bf16_11, tile_bf16_12}};

typedef struct {
    const float *x, *bias;
    const void *packed;
    int n, in, out, panels, chunks;
    er_gemm_kind kind;
    er_epi act;
    const er_gemm_out *y;
} gemm_job;

/* Each thread's copy of the current row block of x, as 12-row groups
 * [kc, MR] (floats) or [kc / 2, MR] (bf16 pairs): the micro-kernel then
 * reads 48 contiguous bytes per step instead of 12 rows a whole row apart
 * (which share L1 sets).  Thread-local storage is set up when a thread
 * starts, never on the forward path. */
static __thread union {
    float f[APACK];
    uint32_t u[APACK];
} apack __attribute__((aligned(64)));

static void pack_x(er_gemm_kind kind, const float *x, size_t ldx, int mc, int kc) {
    for (int i0 = 0; i0 < mc; i0 += MR) {
        const int mr = mc - i0 < MR ? mc - i0 : MR;
        for (int i = 0; i < mr; i++) {
            const float *src = x + (size_t)(i0 + i) * ldx;
            if (kind == ER_GEMM_F32) {
                float *dst = apack.f + (size_t)i0 * kc; // [kc, MR]
                for (int k = 0; k < kc; k++) dst[k * MR + i] = src[k];
            } else {
                uint32_t *dst = apack.u + (size_t)i0 * kc; // [kc / 2, MR] (kc even or last)
                for (int k = 0; k < kc; k += 2) {
                    uint32_t hi = k + 1 < kc ? to_bf16(src[k + 1]) : 0;
                    dst[(k / 2) * MR + i] = to_bf16(src[k]) | hi << 16;
                }
            }
        }
    }
}

/* Panels [p0, p1) of the whole product: rows by blocks, then panels, then
 * 12-row tiles; the reduction is split only when longer than KC. */
static void gemm_range(const gemm_job *j, int p0, int p1) {
    const int seg = j->y->seg, bf = j->kind == ER_GEMM_BF16;
    const int blocks = (j->in + KC - 1) / KC;
    const int kcb = ((j->in + blocks - 1) / blocks + 1) & ~1; /* even: whole bf16 pairs */
    int mcb = APACK / kcb / MR * MR; /* rows whose kcb-long slices fill apack */
    mcb = mcb > MC ? MC : mcb;
    /* One panel: NR columns for every k (fp32) or k pair (bf16 pairs of 2-byte values). */
    const size_t panel_bytes = bf ? (size_t)NR * pairs(j->in) * 4 : (size_t)NR * j->in * 4;
    for (int m0 = 0; m0 < j->n; m0 += mcb) {
        const int mc = j->n - m0 < mcb ? j->n - m0 : mcb;
        for (int k0 = 0; k0 < j->in; k0 += kcb) {
            tile t = {.kc = j->in - k0 < kcb ? j->in - k0 : kcb, .first = k0 == 0, .act = j->act,
                      .ldc = (size_t)seg};
            t.last = k0 + t.kc == j->in;
            pack_x(j->kind, j->x + (size_t)m0 * j->in + k0, (size_t)j->in, mc, t.kc);
            for (int p = p0; p < p1; p++) {
                const int col = p * NR, s = col / seg, valid = j->out - col;
                t.m0 = valid >= 16 ? 0xFFFF : (__mmask16)((1u << valid) - 1);
                t.m1 = valid >= 32 ? 0xFFFF : valid <= 16 ? 0 : (__mmask16)((1u << (valid - 16)) - 1);
                t.bias = j->bias ? j->bias + col : NULL;
                t.b = (const char *)j->packed + p * panel_bytes + (size_t)k0 * NR * 4 / (bf ? 2 : 1);
                for (int i0 = 0; i0 < mc; i0 += MR) {
                    const int mr = mc - i0 < MR ? mc - i0 : MR;
                    t.a = apack.f + (size_t)i0 * t.kc;
                    t.c = j->y->dst[s] + (size_t)(m0 + i0) * seg + (col - s * seg);
                    tiles[bf][mr](&t);
                }
            }
        }
    }
}

static void gemm_item(void *arg, int item, int thread) {
    (void)thread;
    const gemm_job *j = arg;
    gemm_range(j, (int)((long)j->panels * item / j->chunks),
               (int)((long)j->panels * (item + 1) / j->chunks));
}
#endif

void er_gemm_packed(er_par *team, const float *x, int n, int in, er_gemm_kind kind,
                    const void *packed, int out, const float *b, er_epi act,
                    const er_gemm_out *y) {
#ifdef ER_GEMM_X86
    gemm_job j = {.x = x, .packed = packed, .bias = b, .n = n, .in = in, .out = out,
                  .panels = (out + NR - 1) / NR, .kind = kind, .act = act, .y = y};
    j.chunks = team ? er_par_threads(team) : 1;
    if (j.chunks > j.panels) j.chunks = j.panels;
    if (team && j.chunks > 1) er_par_run(team, gemm_item, &j, j.chunks);
    else gemm_range(&j, 0, j.panels);
#else
    (void)x; (void)n; (void)in; (void)kind; (void)packed; (void)out; (void)b; (void)act; (void)y;
    (void)team;
    abort(); /* er_gemm_supports is false for every kind here */
#endif
}
