/* The scalar approximations behind the elementwise kernels (kernels.c),
 * shared with the GEMM epilogue (gemm.c) so that an activation fused into a
 * GEMM computes exactly what er_bias_act computes.  Branch-free so that gcc
 * vectorises the loops that call them.  Not a public header. */
#ifndef ER_KERNELS_MATH_H
#define ER_KERNELS_MATH_H

#include <stdint.h>
#include <string.h>

static inline float clampf(float x, float lo, float hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (+-1 beyond in float); the minimax
 * coefficients used by Eigen and XLA. */
static inline float erf_approx(float x) {
    x = clampf(x, -4.0f, 4.0f);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return p / q;
}

/* exp(x) = 2^n e^r, |r| <= ln2/2, with Cephes' degree-6 polynomial for e^r.
 * n = round(x / ln2) by the 1.5 * 2^23 trick: floorf/rintf are library calls
 * in a portable build and would stop vectorisation. */
static inline float exp_approx(float x) {
    x = clampf(x, -87.0f, 88.3762626647949f);
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float gelu_erf1(float x) { return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f)); }

/* 0.5 x (1 + tanh(u)), tanh(u) = 1 - 2 / (e^{2u} + 1) */
static inline float gelu_tanh1(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float t = 1.0f - 2.0f / (exp_approx(2.0f * u) + 1.0f);
    return 0.5f * x * (1.0f + t);
}

#endif
