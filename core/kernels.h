/* Numeric kernels of the encoder forward pass.  Row-major throughout; every
 * function works in place or on caller buffers and never allocates.
 * Thread-safety: pure functions; the BLAS calls use OpenBLAS's own threads
 * (process-wide setting, see the README's "Threads" section). */
#ifndef ER_KERNELS_H
#define ER_KERNELS_H

#include "config.h"

/* y[n, out] = x[n, in] . W^T + b, with W stored [out, in] as in nn.Linear.
 * b may be NULL.  One cblas_sgemm, then one pass for the bias. */
void er_linear(const float *x, int n, int in, const float *W, const float *b, int out, float *y);

/* x[n, d] += b[d] for every row, then applies act in the same pass. */
void er_bias_act(float *x, int n, int d, const float *b, er_act act);

/* out[n, d] = LayerNorm(x + residual + bias) * gamma + beta over each row.
 * residual, bias and beta may be NULL (beta NULL: a LayerNorm without bias);
 * out may alias x or residual. */
void er_add_layernorm(const float *x, const float *residual, const float *bias,
                      const float *gamma, const float *beta, float eps, int n, int d, float *out);

/* x[n] /= max(||x||_2, 1e-12), as torch.nn.functional.normalize (the
 * sentence-transformers Normalize module); the sum of squares in double. */
void er_l2_normalize(float *x, int n);

/* max of x[0..n), n >= 1. */
float er_max(const float *x, int n);

/* x[j] = exp(x[j] - m) for j < n (er_exp), returning the sum: the shared
 * step of a softmax and of an online (tiled) softmax. */
float er_exp_sub_sum(float *x, int n, float m);

/* Row-wise softmax of x[n, d] in place. */
void er_softmax_rows(float *x, int n, int d);

/* Elementwise activations in place over n values. */
void er_gelu_erf(float *x, int n);
void er_gelu_tanh(float *x, int n);
void er_relu(float *x, int n);
void er_tanh(float *x, int n);

/* Vectorisable approximations used above, exposed for tests:
 * er_erf: |error| < 2e-7 over all floats; er_exp: relative error < 3e-7 for
 * x in [-87, 88]; inputs below -87 give exp(-87) ~ 1.6e-38. */
float er_erf(float x);
float er_exp(float x);

#endif
