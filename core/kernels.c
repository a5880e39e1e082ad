#include "kernels.h"
#include "kernels_math.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The elementwise kernels are compiled for several instruction sets and the
 * best one the CPU has is picked at load (GCC target_clones, via ifunc), so
 * the portable build still runs AVX2/AVX-512 code where it can.  Clang builds
 * (the fuzzers) use the portable version only. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define ER_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ER_VECTOR_CLONES
#endif

/* Float sums are not reassociated by the compiler (no -ffast-math), so
 * reductions keep 16 partial sums by hand to let them vectorise. */
#define LANES 16

ER_VECTOR_CLONES
void er_linear(const float *x, int n, int in, const float *W, const float *b, int out, float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, W, in, 0.0f, y,
                out);
    if (b)
        for (int i = 0; i < n; i++) {
            float *row = y + (size_t)i * out;
            for (int j = 0; j < out; j++) row[j] += b[j];
        }
}

/* The approximations below are branch-free so that gcc vectorises the loops
 * that call them (glibc's erff/expf are scalar calls and would cost ~10% of a
 * bert-base forward).  Accuracy is checked against libm in the kernel tests. */

/* Sum of x[0..n) with LANES independent partial sums. */
static inline float lane_sum(const float *x, int n) {
    float part[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) part[k] += x[j + k];
    float s = 0.0f;
    for (; j < n; j++) s += x[j];
    for (int k = 0; k < LANES; k++) s += part[k];
    return s;
}

/* Max of x[0..n), n >= 1, with LANES independent partial maxima (a single
 * running max is a serial chain of compares). */
static inline float lane_max(const float *x, int n) {
    float part[LANES];
    for (int k = 0; k < LANES; k++) part[k] = x[0];
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) part[k] = x[j + k] > part[k] ? x[j + k] : part[k];
    float m = x[0];
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    for (int k = 0; k < LANES; k++) m = part[k] > m ? part[k] : m;
    return m;
}

float er_erf(float x) { return erf_approx(x); }
float er_exp(float x) { return exp_approx(x); }

/* The attention's online softmax runs these on every score: like
 * er_softmax_rows they need the AVX2 / AVX-512 clones (measured: without
 * them the tiled attention was 13% slower than the untiled one at 1x512). */
ER_VECTOR_CLONES
float er_max(const float *x, int n) { return lane_max(x, n); }

ER_VECTOR_CLONES
float er_exp_sub_sum(float *x, int n, float m) {
    for (int j = 0; j < n; j++) x[j] = exp_approx(x[j] - m);
    return lane_sum(x, n);
}

ER_VECTOR_CLONES
void er_gelu_erf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = gelu_erf1(x[i]);
}

ER_VECTOR_CLONES
void er_gelu_tanh(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = gelu_tanh1(x[i]);
}

ER_VECTOR_CLONES
void er_relu(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void er_tanh(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

ER_VECTOR_CLONES
void er_bias_act(float *x, int n, int d, const float *b, er_act act) {
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * d;
        switch (act) {
        case ER_ACT_GELU:
            for (int j = 0; j < d; j++) row[j] = gelu_erf1(row[j] + b[j]);
            break;
        case ER_ACT_GELU_TANH:
            for (int j = 0; j < d; j++) row[j] = gelu_tanh1(row[j] + b[j]);
            break;
        case ER_ACT_RELU:
            for (int j = 0; j < d; j++) {
                float v = row[j] + b[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        }
    }
}

ER_VECTOR_CLONES
void er_add_layernorm(const float *x, const float *residual, const float *bias,
                      const float *gamma, const float *beta, float eps, int n, int d, float *out) {
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * d;
        const float *rr = residual ? residual + (size_t)i * d : NULL;
        float *o = out + (size_t)i * d;
        if (rr && bias) for (int j = 0; j < d; j++) o[j] = xr[j] + rr[j] + bias[j];
        else if (rr) for (int j = 0; j < d; j++) o[j] = xr[j] + rr[j];
        else if (bias) for (int j = 0; j < d; j++) o[j] = xr[j] + bias[j];
        else if (o != xr) memcpy(o, xr, (size_t)d * sizeof *o);
        float mean = lane_sum(o, d) / (float)d;
        float part[LANES] = {0};
        int j = 0;
        for (; j + LANES <= d; j += LANES)
            for (int k = 0; k < LANES; k++) {
                float c = o[j + k] - mean;
                part[k] += c * c;
            }
        float var = 0.0f;
        for (; j < d; j++) var += (o[j] - mean) * (o[j] - mean);
        for (int k = 0; k < LANES; k++) var += part[k];
        float inv = 1.0f / sqrtf(var / (float)d + eps);
        if (beta)
            for (j = 0; j < d; j++) o[j] = (o[j] - mean) * inv * gamma[j] + beta[j];
        else /* LayerNorm(bias=False): ModernBERT, NomicBERT */
            for (j = 0; j < d; j++) o[j] = (o[j] - mean) * inv * gamma[j];
    }
}

ER_VECTOR_CLONES
void er_softmax_rows(float *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * d;
        float mx = lane_max(row, d);
        for (int j = 0; j < d; j++) row[j] = exp_approx(row[j] - mx);
        float inv = 1.0f / lane_sum(row, d);
        for (int j = 0; j < d; j++) row[j] *= inv;
    }
}

void er_l2_normalize(float *x, int n) {
    double ss = 0.0;
    for (int j = 0; j < n; j++) ss += (double)x[j] * x[j];
    float norm = (float)sqrt(ss);
    float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
    for (int j = 0; j < n; j++) x[j] *= inv;
}
