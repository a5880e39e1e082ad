/* The weight-GEMM seam (gemm.h): backend choice, weight packing and the
 * AVX-512 kernels.
 *
 * Blocking: each thread owns a contiguous range of 32-column panels; the
 * caller's rows go in blocks of up to MC rows, copied into the thread's
 * apack (or read in place where an earlier GEMM wrote them in a layout for
 * it: er_gemm_out.xbf16 / xf32), and the reduction is split only beyond KC
 * (so a tile's sums stay in
 * registers from the first k to the epilogue: the blocked (BLIS) order with
 * KC = 256 reloads C and measured 10-25% slower here).  For one row block a
 * thread walks its panels; a panel (K x 32, 96 KiB at K = 768) stays in L2
 * while the block's 12-row groups pass over it, and the next panel is
 * prefetched into L2 meanwhile (block_panels).  The micro-kernel keeps a
 * 12 x 32 tile in 24 zmm accumulators: per k, two panel loads and 12
 * broadcasts feed 24 FMAs; bias and activation are applied in registers. */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_avx2.h"
#include "gemm_dnnl.h"
#include "kernels_math.h"

#define NR 32  /* columns per panel: two zmm */
#define MR 12  /* rows per micro-tile: 24 accumulators */
#define KC 3072 /* longest reduction block: bert-base's FFN output in one */
#define MC 96   /* most rows per block */
#define PF_X 128  /* bf16 x copy: prefetch each row this many floats ahead */
#define APACK (MC * 768) /* floats of packed x per thread (288 KiB, in L2) */

#if defined(__x86_64__) && defined(__GNUC__)
#define ER_GEMM_X86 1
#include <immintrin.h>

#include "exp_avx512.h"
#endif

static er_gemm_backend backend;
static bool has_bf16, has_vnni, has_avx512, has_avx2;
static char describe[400];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *selected; /* er_gemm_select's name, else NULL: ERSERVE_GEMM decides */
static er_err dnnl_refused;  /* why onednn was asked for and not taken */

/* onednn (gemm_dnnl.c): only when asked for, never by auto (oneDNN 2.6
 * allocates in every execute, core/GEMM.md); true when it can run here. */
static bool choose_dnnl(const char *env) {
    if (!env || strcmp(env, "onednn") != 0) return false;
    if (er_dnnl_init(&dnnl_refused) != ER_OK) return false;
    snprintf(describe, sizeof describe, "gemm: %s (fp32; bf16 and int8 refused: they need "
             "erserve's AVX-512 kernels) (chosen: onednn)", er_dnnl_describe());
    return true;
}

static void choose(void) {
    const char *env = selected ? selected : getenv("ERSERVE_GEMM");
    bool want_blas = env && strcmp(env, "openblas") == 0;
    bool want_avx2 = env && strcmp(env, "avx2") == 0; /* the AVX2 kernels on any AVX2 host */
    bool avx512 = false, avx2 = er_gemm_avx2_cpu();
    has_avx2 = avx2;
#ifdef ER_GEMM_X86
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    has_avx512 = avx512;
    has_bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    has_vnni = avx512 && __builtin_cpu_supports("avx512vnni");
#endif
    /* auto on a host with AVX2+FMA but no AVX-512F takes the AVX2 kernels:
     * as fast as OpenBLAS's Haswell kernels on bert-base (core/GEMM.md),
     * independent of OPENBLAS_CORETYPE, and the same bits as the AVX-512
     * kernels (one numerics class for the recycling store) */
    backend = want_blas ? ER_GEMM_OPENBLAS : avx512 && !want_avx2 ? ER_GEMM_AVX512
              : avx2 ? ER_GEMM_AVX2 : ER_GEMM_OPENBLAS;
    if (choose_dnnl(env)) backend = ER_GEMM_ONEDNN;
    else if (backend == ER_GEMM_AVX2)
        snprintf(describe, sizeof describe, "gemm: erserve AVX2+FMA kernels on packed weights "
                 "(fp32; bf16 and int8 refused: they need AVX-512) (%s)",
                 want_avx2 ? "chosen: avx2" : "no AVX-512F");
    else if (backend == ER_GEMM_AVX512)
        snprintf(describe, sizeof describe, "gemm: erserve AVX-512F kernels on packed weights "
                 "(fp32; bf16 %s; int8 %s)", has_bf16 ? "with AVX512-BF16" : "refused: no AVX512-BF16",
                 has_vnni ? "with AVX512-VNNI" : "refused: no AVX512-VNNI");
    else
        snprintf(describe, sizeof describe, "gemm: OpenBLAS %s (%s)", openblas_get_corename(),
                 want_blas ? (selected ? "chosen: openblas" : "ERSERVE_GEMM=openblas")
                 : "this CPU has neither AVX-512F nor AVX2+FMA");
    if (dnnl_refused.code != ER_OK) { /* ERSERVE_GEMM=onednn and it cannot run: say so */
        size_t len = strlen(describe);
        snprintf(describe + len, sizeof describe - len, "; onednn refused: %s", dnnl_refused.msg);
    }
}

er_status er_gemm_select(const char *name, er_err *err) {
    const bool avx2 = name && !strcmp(name, "avx2");
    const bool own = avx2 || (name && (!strcmp(name, "own") || !strcmp(name, "avx512")));
    const bool blas = name && !strcmp(name, "openblas");
    const bool dnnl = name && !strcmp(name, "onednn");
    if (!own && !blas && !dnnl && !(name && !strcmp(name, "auto")))
        return er_set(err, ER_ERR_INVALID_ARG, "GEMM backend \"%s\": auto, own, avx2, openblas "
                      "or onednn", name ? name : "(null)");
    if (!selected) /* before the once: it reads it */
        selected = blas ? "openblas" : avx2 ? "avx2" : own ? "own" : dnnl ? "onednn" : "auto";
    pthread_once(&once, choose);
    if (dnnl != (backend == ER_GEMM_ONEDNN) && (dnnl || own || blas)) {
        if (dnnl && dnnl_refused.code != ER_OK) {
            if (err) *err = dnnl_refused;
            return dnnl_refused.code;
        }
        return er_set(err, ER_ERR_INVALID_ARG, "GEMM backend %s: the backend was already chosen (%s)",
                      name, describe);
    }
    if (blas != (backend == ER_GEMM_OPENBLAS) && (blas || own))
        return er_set(err, blas ? ER_ERR_INVALID_ARG : ER_ERR_UNSUPPORTED,
                      blas ? "GEMM backend openblas: the backend was already chosen (%s)"
                           : "GEMM backend own: erserve's kernels need AVX-512F or AVX2+FMA (%s)",
                      describe);
    return ER_OK;
}

bool er_gemm_rows_independent(void) {
    pthread_once(&once, choose);
    return backend == ER_GEMM_ONEDNN ? er_dnnl_rows_independent() : backend != ER_GEMM_OPENBLAS;
}

er_att_kernels er_gemm_attention_kernels(void) {
    pthread_once(&once, choose);
    /* oneDNN does the weight GEMMs only: attention takes the own kernels the
     * CPU runs, as under auto */
    const bool dnnl = backend == ER_GEMM_ONEDNN;
    if (backend == ER_GEMM_AVX512 || (dnnl && has_avx512)) return ER_ATT_ON_AVX512;
    if (backend == ER_GEMM_AVX2 || (dnnl && has_avx2)) return ER_ATT_ON_AVX2;
    return ER_ATT_ON_OPENBLAS;
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
    if (backend == ER_GEMM_ONEDNN && kind != ER_GEMM_F32)
        why = "erserve's AVX-512 GEMM kernels (the onednn backend runs fp32 only)";
    else if (backend == ER_GEMM_ONEDNN)
        why = NULL;
    else if (backend == ER_GEMM_OPENBLAS)
        why = "erserve's GEMM kernels (this CPU has neither AVX-512F nor AVX2+FMA, or the "
              "OpenBLAS backend was chosen)";
    else if (backend == ER_GEMM_AVX2 && kind != ER_GEMM_F32)
        why = "the erserve AVX-512 GEMM backend (this CPU has no AVX-512F, or avx2 was chosen)";
    else if (kind == ER_GEMM_BF16 && !has_bf16)
        why = "the CPU feature AVX512-BF16 (VDPBF16PS)";
    else if (kind == ER_GEMM_INT8 && !has_vnni)
        why = "the CPU feature AVX512-VNNI (VPDPBUSD)";
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
static inline int quads(int in) { return (in + 3) / 4; }

er_status er_gemm_prepare(er_gemm_kind kind, int out, int in, er_err *err) {
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN && kind == ER_GEMM_F32)
        return er_dnnl_prepare(out, in, err);
    return ER_OK;
}

size_t er_gemm_packed_bytes(er_gemm_kind kind, int out, int in) {
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN && kind == ER_GEMM_F32)
        return er_dnnl_packed_bytes(out, in);
    size_t cols = (size_t)((out + NR - 1) / NR) * NR;
    switch (kind) {
    case ER_GEMM_BF16: return cols * (size_t)pairs(in) * 2 * sizeof(uint16_t);
    case ER_GEMM_INT8: return cols * (size_t)quads(in) * 4 + cols * (sizeof(float) + sizeof(int32_t));
    case ER_GEMM_F32: break;
    }
    return cols * (size_t)in * sizeof(float);
}

size_t er_gemm_xbf16_bytes(int n, int in) {
    return (size_t)((n + MR - 1) / MR) * MR * (size_t)pairs(in) * sizeof(uint32_t);
}

bool er_gemm_xbf16_supported(int in) { return in <= KC; }

size_t er_gemm_xf32_floats(int n, int in) {
    return (size_t)((n + MR - 1) / MR) * MR * (size_t)((in + 15) / 16) * 16;
}

bool er_gemm_xf32_supported(int in) { return er_gemm_backend_get() == ER_GEMM_AVX512 && in <= KC; }

/* Symmetric int8 of v / scale, rounded half away from zero, in [-127, 127]. */
static inline int8_t quant8(float v) {
    float r = v + (v >= 0.0f ? 0.5f : -0.5f);
    r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
    return (int8_t)(int)r;
}

/* INT8 layout: panels [quads(in), NR, 4] int8 (four consecutive k of a
 * column side by side, VPDPBUSD's signed operand), then scale[cols] floats
 * (the column's max |w| / 127) and comp[cols] int32 = 128 * sum of the
 * column's int8 values: x is fed unsigned as x_q + 128, and comp takes the
 * 128 back out. */
static void pack_int8(const float *W, int out, int in, void *packed) {
    const int panels = (out + NR - 1) / NR, kq = quads(in), cols = panels * NR;
    int8_t *q = packed;
    float *scale = (float *)(q + (size_t)cols * kq * 4);
    int32_t *comp = (int32_t *)(scale + cols);
    for (int n = 0; n < cols; n++) {
        const float *w = n < out ? W + (size_t)n * in : NULL; // [in]
        float mx = 0.0f;
        for (int k = 0; w && k < in; k++) mx = fabsf(w[k]) > mx ? fabsf(w[k]) : mx;
        const float sw = mx > 0.0f ? mx / 127.0f : 1.0f;
        int32_t sum = 0;
        for (int k = 0; k < 4 * kq; k++) {
            int8_t v = w && k < in ? quant8(w[k] / sw) : 0;
            q[(((size_t)(n / NR) * kq + k / 4) * NR + n % NR) * 4 + k % 4] = v;
            sum += v;
        }
        scale[n] = w ? sw : 0.0f;
        comp[n] = 128 * sum;
    }
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
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN && kind == ER_GEMM_F32) {
        er_dnnl_pack(W, out, in, packed);
        return;
    }
    if (kind == ER_GEMM_INT8) {
        pack_int8(W, out, in, packed);
        return;
    }
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
#define AVX512VNNI __attribute__((target("avx512f,avx512vnni")))

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
    const float *wscale;  /* int8: [NR] column scales at the panel's first column */
    const int32_t *comp;  /* int8: [NR] 128 * column sums */
    const float *xscale;  /* int8: [mr] the tile's row scales */
    const char *pf;       /* this tile's share of the next panel, prefetched (into L2)
                             one line a step: see block_panels */
    size_t pf_step;       /* bytes of that share per k */
    float *xf32;          /* F32, one k block: the tile's place in er_gemm_out.xf32
                             (two [MR, 16] chunks of its 12-row group), instead of c;
                             or NULL */
} tile;

/* The activations of kernels_math.h on 16 lanes, operation for operation
 * (no contraction: -std=c11 compiles with -ffp-contract=off, and neither
 * these nor the scalar ones use an FMA), so each lane is bit for bit what
 * er_bias_act computes.  clampf's x < lo ? lo : x is max(lo, x) and
 * x > hi ? hi : x is min(hi, x) (MAXPS / MINPS return the second operand
 * when one is NaN, as the scalar selects do). */
static inline __attribute__((always_inline)) AVX512 __m512 clamp16(__m512 x, float lo, float hi) {
    return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
}

#define MUL _mm512_mul_ps
#define ADD _mm512_add_ps
#define SET _mm512_set1_ps
static inline __attribute__((always_inline)) AVX512 __m512 erf16(__m512 x) {
    x = clamp16(x, -4.0f, 4.0f);
    const __m512 x2 = MUL(x, x);
    __m512 p = ADD(MUL(x2, SET(-2.72614225801306e-10f)), SET(2.77068142495902e-08f));
    p = ADD(MUL(x2, p), SET(-2.10102402082508e-06f));
    p = ADD(MUL(x2, p), SET(-5.69250639462346e-05f));
    p = ADD(MUL(x2, p), SET(-7.34990630326855e-04f));
    p = ADD(MUL(x2, p), SET(-2.95459980854025e-03f));
    p = ADD(MUL(x2, p), SET(-1.60960333262415e-02f));
    p = MUL(x, p);
    __m512 q = ADD(MUL(x2, SET(-1.45660718464996e-05f)), SET(-2.13374055278905e-04f));
    q = ADD(MUL(x2, q), SET(-1.68282697438203e-03f));
    q = ADD(MUL(x2, q), SET(-7.37332916720468e-03f));
    q = ADD(MUL(x2, q), SET(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

static inline __attribute__((always_inline)) AVX512 __m512 act16(__m512 x, er_epi act) {
    switch (act) {
    case ER_EPI_NONE: break;
    case ER_EPI_GELU: /* 0.5 x (1 + erf(x / sqrt 2)) */
        return MUL(MUL(SET(0.5f), x), ADD(SET(1.0f), erf16(MUL(x, SET(0.70710678118654752f)))));
    case ER_EPI_GELU_TANH: { /* 0.5 x (1 + tanh(u)), tanh(u) = 1 - 2 / (e^{2u} + 1) */
        const __m512 x3 = MUL(MUL(MUL(SET(0.044715f), x), x), x);
        const __m512 u = MUL(SET(0.7978845608028654f), ADD(x, x3));
        const __m512 e = er_exp16(MUL(SET(2.0f), u));
        const __m512 th = _mm512_sub_ps(SET(1.0f), _mm512_div_ps(SET(2.0f), ADD(e, SET(1.0f))));
        return MUL(MUL(SET(0.5f), x), ADD(SET(1.0f), th));
    }
    case ER_EPI_RELU: return _mm512_max_ps(x, _mm512_setzero_ps()); /* x > 0 ? x : 0 */
    }
    return x;
}
#undef MUL
#undef ADD
#undef SET

/* Adds the tile's earlier k blocks, then (last block) the bias and the
 * activation, in registers; stores, as rows at t->c, or (t->xf32 not NULL)
 * into er_gemm_out.xf32's layout: each half's 16 columns are a 16-k chunk
 * of the next GEMM's x, row i at t->xf32 + i * 16 (second half: one chunk
 * on), the same whole-vector stores as rows. */
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
        if (t->last && t->act != ER_EPI_NONE) {
            acc[i][0] = act16(acc[i][0], t->act);
            acc[i][1] = act16(acc[i][1], t->act);
        }
        if (t->xf32) {
            _mm512_mask_storeu_ps(t->xf32 + i * 16, t->m0, acc[i][0]);
            if (t->m1) _mm512_mask_storeu_ps(t->xf32 + (MR + i) * 16, t->m1, acc[i][1]);
            continue;
        }
        _mm512_mask_storeu_ps(c, t->m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + 16, t->m1, acc[i][1]);
    }
}

static inline __attribute__((always_inline)) AVX512 void tile_f32(const int mr, const tile *t) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *b = t->b, *a = t->a;
    const char *pf = t->pf;
    for (int k = 0; k < t->kc; k++, b += NR, a += MR, pf += t->pf_step) {
        _mm_prefetch(pf, _MM_HINT_T1);
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

/* The fp32 tile on x in er_gemm_out.xf32's layout, a [MR, 16] chunk per 16
 * k (row i's value k at a[i * 16 + k % 16]): the same sums in the same
 * order as tile_f32. */
static inline __attribute__((always_inline)) AVX512 void tile_f32x(const int mr, const tile *t) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *b = t->b, *a = t->a;
    const char *pf = t->pf;
    for (int k0 = 0; k0 < t->kc; k0 += 16, a += MR * 16) {
        const int n = t->kc - k0 < 16 ? t->kc - k0 : 16;
        for (int k = 0; k < n; k++, b += NR, pf += t->pf_step) {
            _mm_prefetch(pf, _MM_HINT_T1);
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
            for (int i = 0; i < mr; i++) {
                __m512 av = _mm512_set1_ps(a[i * 16 + k]);
                acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
            }
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
    const char *pf = t->pf;
    for (int k = 0; k < t->kc; k += 2, b += 2 * NR, a += MR, pf += 2 * t->pf_step) {
        _mm_prefetch(pf, _MM_HINT_T1);
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

/* int8: u8 (x_q + 128) times s8 (w_q), four products per lane per
 * VPDPBUSD, exact int32 sums; then (sum - comp) * w scale * x scale in fp32.
 * The reduction is always one block (gemm_range), so no partial sums. */
static inline __attribute__((always_inline)) AVX512VNNI void tile_int8(const int mr,
                                                                       const tile *t) {
    /* Accumulators as __v16si, VPDPBUSD's own element type: as __m512i gcc
     * 12 spills them on every step (measured 250 instead of ~590 GOP/s). */
    __v16si acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = (__v16si)_mm512_setzero_si512();
    const int8_t *b = t->b;
    const uint32_t *a = t->a;
    const char *pf = t->pf;
    for (int k = 0; k < t->kc; k += 4, b += 4 * NR, a += MR, pf += 4 * t->pf_step) {
        _mm_prefetch(pf, _MM_HINT_T1);
        __v16si b0 = (__v16si)_mm512_loadu_si512(b), b1 = (__v16si)_mm512_loadu_si512(b + 2 * NR);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            __v16si av = (__v16si)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = (__v16si)_mm512_dpbusd_epi32((__m512i)acc[i][0], (__m512i)av, (__m512i)b0);
            acc[i][1] = (__v16si)_mm512_dpbusd_epi32((__m512i)acc[i][1], (__m512i)av, (__m512i)b1);
        }
    }
    const __m512i c0 = _mm512_maskz_loadu_epi32(t->m0, t->comp);
    const __m512i c1 = _mm512_maskz_loadu_epi32(t->m1, t->comp + 16);
    const __m512 s0 = _mm512_maskz_loadu_ps(t->m0, t->wscale);
    const __m512 s1 = _mm512_maskz_loadu_ps(t->m1, t->wscale + 16);
    __m512 f[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        const __m512 xs = _mm512_set1_ps(t->xscale[i]);
        f[i][0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32((__m512i)acc[i][0], c0)),
                                _mm512_mul_ps(s0, xs));
        f[i][1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32((__m512i)acc[i][1], c1)),
                                _mm512_mul_ps(s1, xs));
    }
    tile_store(mr, t, f);
}

#define TILE_MR(r) \
    static AVX512 void tile_f32_##r(const tile *t) { tile_f32(r, t); } \
    static AVX512 void tile_f32x_##r(const tile *t) { tile_f32x(r, t); } \
    static AVX512BF16 void tile_bf16_##r(const tile *t) { tile_bf16(r, t); } \
    static AVX512VNNI void tile_int8_##r(const tile *t) { tile_int8(r, t); }
TILE_MR(1) TILE_MR(2) TILE_MR(3) TILE_MR(4) TILE_MR(5) TILE_MR(6)
TILE_MR(7) TILE_MR(8) TILE_MR(9) TILE_MR(10) TILE_MR(11) TILE_MR(12)
static void (*const tiles[3][MR + 1])(const tile *) = {
    {NULL, tile_f32_1, tile_f32_2, tile_f32_3, tile_f32_4, tile_f32_5, tile_f32_6,
     tile_f32_7, tile_f32_8, tile_f32_9, tile_f32_10, tile_f32_11, tile_f32_12},
    {NULL, tile_bf16_1, tile_bf16_2, tile_bf16_3, tile_bf16_4, tile_bf16_5, tile_bf16_6,
     tile_bf16_7, tile_bf16_8, tile_bf16_9, tile_bf16_10, tile_bf16_11, tile_bf16_12},
    {NULL, tile_int8_1, tile_int8_2, tile_int8_3, tile_int8_4, tile_int8_5, tile_int8_6,
     tile_int8_7, tile_int8_8, tile_int8_9, tile_int8_10, tile_int8_11, tile_int8_12}};
static void (*const tiles_f32x[MR + 1])(const tile *) = {
    NULL, tile_f32x_1, tile_f32x_2, tile_f32x_3, tile_f32x_4, tile_f32x_5, tile_f32x_6,
    tile_f32x_7, tile_f32x_8, tile_f32x_9, tile_f32x_10, tile_f32x_11, tile_f32x_12};

typedef struct {
    const float *x, *bias;
    const uint32_t *xbf16; /* x already in the bf16 layout (er_gemm_packed_xbf16), or NULL */
    const float *xf32;     /* x already in the fp32 layout (er_gemm_packed_xf32), or NULL */
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
static __thread float xscale[MC]; /* int8: each packed row's scale */
static __thread float ctile[MR * NR] __attribute__((aligned(64))); /* [MR, NR] a tile on its way
                                                                       to er_gemm_out.xbf16 */

/* int8: a row's scale, max |x| / 127 over its kc values (1 for a row of
 * zeros): dynamic, per token. */
static AVX512 float row_scale_int8(const float *src, int kc) {
    __m512 vmax = _mm512_setzero_ps();
    for (int k = 0; k < kc; k += 16) {
        __mmask16 m = kc - k >= 16 ? 0xFFFF : (__mmask16)((1u << (kc - k)) - 1);
        vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, src + k)));
    }
    const float mx = _mm512_reduce_max_ps(vmax);
    return mx > 0.0f ? mx / 127.0f : 1.0f;
}

/* r[16] rows of 16 dwords -> r[j] = column j of the input (lane i = row i):
 * 32-bit, then 64-bit unpacks within 128-bit lanes, then two rounds of
 * 128-bit lane shuffles. */
static inline __attribute__((always_inline)) AVX512 void transpose16(__m512i r[16]) {
    __m512i t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) { /* r[i + j], lane L: rows i..i+3 of column 4L + j */
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512i u0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88);
        __m512i u1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xDD);
        __m512i u2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88);
        __m512i u3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xDD);
        t[j] = _mm512_shuffle_i32x4(u0, u2, 0x88);
        t[4 + j] = _mm512_shuffle_i32x4(u1, u3, 0x88);
        t[8 + j] = _mm512_shuffle_i32x4(u0, u2, 0xDD);
        t[12 + j] = _mm512_shuffle_i32x4(u1, u3, 0xDD);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) r[j] = t[j];
}

/* The bf16 pairs of a 12-row group, src [mr, kc] with row stride ldx, into
 * dst [pairs(kc), MR]: 32 values of each row a step, rounded to nearest even
 * (VCVTNE2PS2BF16, as to_bf16 on finite values; past kc: zeros), then
 * transposed in registers so that each pair index gets one 48-byte store.
 * (The element-wise scatter of the rows measured 10-15% of a bf16 GEMM on
 * bert-base shapes; this pass is a few percent.)  Rows mr..MR-1 of dst are
 * written with zeros, which the kernels for mr rows never read. */
static AVX512BF16 void pack_x_bf16(const float *src, size_t ldx, int mr, int kc, uint32_t *dst) {
    const int kp = pairs(kc);
    for (int k = 0; k < kc; k += 32) {
        const int n = kc - k, np = kp - k / 2 < 16 ? kp - k / 2 : 16;
        const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
        const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
        __m512i r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) r[i] = _mm512_setzero_si512();
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const float *s = src + (size_t)i * ldx + k; // [32] of row i
            _mm_prefetch((const char *)(s + PF_X), _MM_HINT_T0);
            _mm_prefetch((const char *)(s + PF_X + 16), _MM_HINT_T0);
            r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, s + 16),
                                                _mm512_maskz_loadu_ps(m0, s));
        }
        transpose16(r);
        for (int j = 0; j < np; j++)
            _mm512_mask_storeu_epi32(dst + (size_t)(k / 2 + j) * MR, 0x0FFF, r[j]);
    }
}

/* int8: a 12-row group, src [mr, kc] with row stride ldx, as u8 quads into
 * dst [quads(kc), MR]: x_q + 128 with x_q = x * (1 / scale) rounded to
 * nearest even and clamped to [-127, 127] (past kc: 0 + 128); each row's
 * scale goes to scales[i].  64 values of each row a step (16 quads), then
 * the same in-register transpose as bf16. */
static AVX512 void pack_x_int8(const float *src, size_t ldx, int mr, int kc, float *scales,
                               uint32_t *dst) {
    float inv[MR];
    for (int i = 0; i < mr; i++) {
        scales[i] = row_scale_int8(src + (size_t)i * ldx, kc);
        inv[i] = 1.0f / scales[i];
    }
    const int kq = quads(kc);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    const __m512i off = _mm512_set1_epi32(128);
    for (int k = 0; k < kc; k += 64) {
        const int np = kq - k / 4 < 16 ? kq - k / 4 : 16;
        __m512i r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) r[i] = _mm512_setzero_si512();
        for (int i = 0; i < mr; i++) {
            const float *s = src + (size_t)i * ldx + k; // [64] of row i
            const __m512 vinv = _mm512_set1_ps(inv[i]);
            __m128i b[4];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const int n = kc - k - 16 * c;
                const __mmask16 m = n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
                __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + 16 * c), vinv));
                q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), off);
                b[c] = _mm512_cvtepi32_epi8(q);
            }
            __m512i v = _mm512_castsi128_si512(b[0]);
            v = _mm512_inserti32x4(v, b[1], 1);
            v = _mm512_inserti32x4(v, b[2], 2);
            r[i] = _mm512_inserti32x4(v, b[3], 3);
        }
        transpose16(r);
        for (int j = 0; j < np; j++)
            _mm512_mask_storeu_epi32(dst + (size_t)(k / 4 + j) * MR, 0x0FFF, r[j]);
    }
}

/* fp32 rows [i0, i0 + mr) of the block as [kc, MR]: 16 k of the group's
 * rows at a time, transposed in registers (the scalar copy, one 4-byte store
 * per value, took ~5% of a forward and twice that on 2 threads, where each
 * thread copies the whole block). */
static AVX512 void pack_x_f32(const float *x, size_t ldx, int i0, int mr, int kc) {
    float *dst = apack.f + (size_t)i0 * kc; // [kc, MR]
    const __mmask16 rows = (__mmask16)((1u << mr) - 1);
    for (int k = 0; k < kc; k += 16) {
        const int n = kc - k < 16 ? kc - k : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        __m512i r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + (size_t)(i0 + i) * ldx + k))
                          : _mm512_setzero_si512();
        transpose16(r);
        for (int j = 0; j < n; j++)
            _mm512_mask_storeu_ps(dst + (size_t)(k + j) * MR, rows, _mm512_castsi512_ps(r[j]));
    }
}

static void pack_x(er_gemm_kind kind, const float *x, size_t ldx, int mc, int kc) {
    for (int i0 = 0; i0 < mc; i0 += MR) {
        const int mr = mc - i0 < MR ? mc - i0 : MR;
        if (kind == ER_GEMM_BF16) {
            pack_x_bf16(x + (size_t)i0 * ldx, ldx, mr, kc, apack.u + (size_t)i0 * pairs(kc));
            continue;
        }
        if (kind == ER_GEMM_INT8) {
            pack_x_int8(x + (size_t)i0 * ldx, ldx, mr, kc, xscale + i0,
                        apack.u + (size_t)i0 * quads(kc));
            continue;
        }
        pack_x_f32(x, ldx, i0, mr, kc);
    }
}

/* Bytes of x one packed row of kc values takes in apack. */
static size_t row_bytes(er_gemm_kind kind, int kc) {
    return kind == ER_GEMM_INT8 ? (size_t)quads(kc) * 4 : kind == ER_GEMM_BF16 ? (size_t)pairs(kc) * 4
                                                                               : (size_t)kc * 4;
}

/* Offset (in pairs) of the 12-row group of row `row` (a multiple of MR) in
 * the xbf16 layout of rows of `in` values: [groups, pairs(in), MR]. */
static inline size_t xbf16_group(int row, int in) {
    return (size_t)(row / MR) * (size_t)pairs(in) * MR;
}

/* Offset (in floats) of the 12-row group of row `row` (a multiple of MR)
 * in the xf32 layout of rows of `in` values: [groups, ceil(in / 16), MR, 16]. */
static inline size_t xf32_group(int row, int in) {
    return (size_t)(row / MR) * (size_t)((in + 15) / 16) * 16 * MR;
}

/* Where a panel's reduction block k0 starts in the packed weights. */
static inline const char *panel_at(const gemm_job *j, int p, int k0) {
    return (const char *)j->packed + (size_t)p * NR * row_bytes(j->kind, j->in) +
           NR * row_bytes(j->kind, k0);
}

/* One row block [m0, m0 + mc) and reduction block [k0, k0 + t->kc) (x
 * already in apack, or in the xbf16 layout) over panels [p0, p1), a panel at
 * a time, its 12-row tiles in turn.  Meanwhile the next panel (the range's
 * first again after the last, for the next row block) is prefetched into L2,
 * one line per k step, each tile a share: weights are read once per forward,
 * so the first row block would otherwise wait on memory for every panel
 * (core/GEMM.md: 1x128 forward ~10-18% less CPU time, 8x128 ~9%).  A
 * block of a single tile (at most 12 rows) takes two lines a step and so
 * prefetches every other line of the next panel. */
static void block_panels(const gemm_job *j, tile *t, int m0, int mc, int k0, int p0, int p1) {
    const int seg = j->y->seg, kind = (int)j->kind, ntiles = (mc + MR - 1) / MR;
    const size_t share = (size_t)ntiles * t->kc;
    t->pf_step = (NR * row_bytes(j->kind, t->kc) + share - 1) / share;
    const size_t cols = (size_t)j->panels * NR;
    const float *wscale = (const float *)((const char *)j->packed + cols * row_bytes(j->kind, j->in));
    const int32_t *comp = (const int32_t *)(wscale + cols);
    for (int p = p0; p < p1; p++) {
        const int col = p * NR, s = col / seg, valid = j->out - col;
        t->m0 = valid >= 16 ? 0xFFFF : (__mmask16)((1u << valid) - 1);
        t->m1 = valid >= 32 ? 0xFFFF : valid <= 16 ? 0 : (__mmask16)((1u << (valid - 16)) - 1);
        t->bias = j->bias ? j->bias + col : NULL;
        t->b = panel_at(j, p, k0);
        t->wscale = wscale + col;
        t->comp = comp + col;
        const char *pf = panel_at(j, p + 1 < p1 ? p + 1 : p0, k0);
        for (int i0 = 0; i0 < mc; i0 += MR) {
            const int mr = mc - i0 < MR ? mc - i0 : MR;
            t->pf = pf + (size_t)(i0 / MR) * t->kc * t->pf_step;
            t->a = j->xbf16 ? (const void *)(j->xbf16 + xbf16_group(m0 + i0, j->in) +
                                             (size_t)k0 / 2 * MR)
                   : j->xf32 ? (const void *)(j->xf32 + xf32_group(m0 + i0, j->in)) /* k0 = 0 */
                             : (const char *)apack.u + (size_t)i0 * row_bytes(j->kind, t->kc);
            t->xscale = xscale + i0;
            if (j->y->xbf16) { /* one k block (er_gemm_xbf16_supported) */
                t->c = ctile;
                t->ldc = NR;
                tiles[kind][mr](t);
                pack_x_bf16(ctile, NR, mr, valid < NR ? valid : NR,
                            (uint32_t *)j->y->xbf16 + xbf16_group(m0 + i0, j->out) +
                                (size_t)col / 2 * MR);
                continue;
            }
            if (j->y->xf32) { /* one k block (er_gemm_xf32_supported): tile_store */
                t->xf32 = j->y->xf32 + xf32_group(m0 + i0, j->out) + (size_t)col * MR;
                /* (col / 16 chunks of MR * 16 floats: col * MR) */
                t->c = t->xf32; /* never dereferenced: the first k block, stores to xf32 */
                t->ldc = 0;
                (j->xf32 ? tiles_f32x : tiles[kind])[mr](t);
                continue;
            }
            t->c = j->y->dst[s] + (size_t)(m0 + i0) * seg + (col - s * seg);
            (j->xf32 ? tiles_f32x : tiles[kind])[mr](t);
        }
    }
}

/* Panels [p0, p1) of the whole product: rows by blocks, then panels, then
 * 12-row tiles; the reduction is split only when longer than KC (int8:
 * never, the row scale and comp cover all of k). */
static void gemm_range(const gemm_job *j, int p0, int p1) {
    if (backend == ER_GEMM_AVX2) { /* fp32 only: er_gemm_supports */
        er_gemm_avx2_range(j->x, j->n, j->in, j->packed, j->out, p0, p1, j->bias, j->act, j->y);
        return;
    }
    const int blocks = j->kind == ER_GEMM_INT8 ? 1 : (j->in + KC - 1) / KC;
    const int kcb = ((j->in + blocks - 1) / blocks + 1) & ~1; /* even: whole bf16 pairs */
    int mcb = (int)(sizeof apack / row_bytes(j->kind, kcb)) / MR * MR; /* rows apack holds */
    mcb = mcb > MC ? MC : mcb;
    for (int m0 = 0; m0 < j->n; m0 += mcb) {
        const int mc = j->n - m0 < mcb ? j->n - m0 : mcb;
        for (int k0 = 0; k0 < j->in; k0 += kcb) {
            tile t = {.kc = j->in - k0 < kcb ? j->in - k0 : kcb, .first = k0 == 0, .act = j->act,
                      .ldc = (size_t)j->y->seg};
            t.last = k0 + t.kc == j->in;
            if (!j->xbf16 && !j->xf32)
                pack_x(j->kind, j->x + (size_t)m0 * j->in + k0, (size_t)j->in, mc, t.kc);
            block_panels(j, &t, m0, mc, k0, p0, p1);
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

/* The entry points: x as fp32 rows, or (xbf16 / xf32 not NULL) in the bf16 /
 * fp32 layout. */
static void gemm_run(er_par *team, const float *x, const void *xbf16, const float *xf32, int n,
                     int in, er_gemm_kind kind, const void *packed, int out, const float *b,
                     er_epi act, const er_gemm_out *y) {
    if (backend == ER_GEMM_ONEDNN) { /* fp32 only: er_gemm_supports */
        er_dnnl_gemm(team, x, n, in, packed, out, b, act, y);
        return;
    }
#ifdef ER_GEMM_X86
    gemm_job j = {.x = x, .xbf16 = xbf16, .xf32 = xf32, .packed = packed, .bias = b, .n = n,
                  .in = in, .out = out, .panels = (out + NR - 1) / NR, .kind = kind, .act = act,
                  .y = y};
    j.chunks = team ? er_par_threads(team) : 1;
    if (j.chunks > j.panels) j.chunks = j.panels;
    if (team && j.chunks > 1) er_par_run(team, gemm_item, &j, j.chunks);
    else gemm_range(&j, 0, j.panels);
#else
    (void)x; (void)n; (void)in; (void)kind; (void)packed; (void)out; (void)b; (void)act; (void)y;
    (void)team; (void)xbf16; (void)xf32;
    abort(); /* er_gemm_supports is false for every kind here */
#endif
}

void er_gemm_packed(er_par *team, const float *x, int n, int in, er_gemm_kind kind,
                    const void *packed, int out, const float *b, er_epi act,
                    const er_gemm_out *y) {
    gemm_run(team, x, NULL, NULL, n, in, kind, packed, out, b, act, y);
}

void er_gemm_packed_xbf16(er_par *team, const void *xbf16, int n, int in, const void *packed,
                          int out, const float *b, er_epi act, const er_gemm_out *y) {
    gemm_run(team, NULL, xbf16, NULL, n, in, ER_GEMM_BF16, packed, out, b, act, y);
}

void er_gemm_packed_xf32(er_par *team, const float *xf32, int n, int in, const void *packed,
                         int out, const float *b, er_epi act, const er_gemm_out *y) {
    gemm_run(team, NULL, NULL, xf32, n, in, ER_GEMM_F32, packed, out, b, act, y);
}
