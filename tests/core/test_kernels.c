/* Kernels against naive double-precision loops, and the vectorisable
 * approximations against libm. */
#include <math.h>
#include <stdlib.h>

#include "../check_main.h"
#include "kernels.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rand_vec(size_t n, unsigned seed, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = scale * frand(&seed);
    return v;
}

START_TEST(linear_matches_naive) {
    /* odd shapes, including single rows and widths below any SIMD width */
    static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 48, 130}, {5, 1, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_vec((size_t)n * in, 1 + (unsigned)s, 1.0f);   // [n, in]
        float *W = rand_vec((size_t)out * in, 7 + (unsigned)s, 1.0f); // [out, in]
        float *b = rand_vec((size_t)out, 11 + (unsigned)s, 1.0f);
        float *y = malloc((size_t)n * out * sizeof *y);
        er_linear(x, n, in, W, b, out, y);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) {
                double ref = b[j];
                for (int k = 0; k < in; k++) ref += (double)x[i * in + k] * W[j * in + k];
                ck_assert_double_eq_tol(y[i * out + j], ref, 1e-5 * (1 + fabs(ref)));
            }
        er_linear(x, n, in, W, NULL, out, y); /* no bias */
        double ref0 = 0;
        for (int k = 0; k < in; k++) ref0 += (double)x[k] * W[k];
        ck_assert_double_eq_tol(y[0], ref0, 1e-5 * (1 + fabs(ref0)));
        free(x); free(W); free(b); free(y);
    }
}
END_TEST

START_TEST(erf_and_exp_approximations) {
    double worst_erf = 0, worst_exp = 0;
    for (float x = -10.0f; x <= 10.0f; x += 0.00123f) {
        worst_erf = fmax(worst_erf, fabs((double)er_erf(x) - erf((double)x)));
    }
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double ref = exp((double)x);
        worst_exp = fmax(worst_exp, fabs((double)er_exp(x) - ref) / ref);
    }
    ck_assert_msg(worst_erf < 5e-7, "erf error %g", worst_erf);
    ck_assert_msg(worst_exp < 5e-7, "exp relative error %g", worst_exp);
    ck_assert(er_exp(-1000.0f) >= 0.0f && er_exp(-1000.0f) < 2e-38f); /* clamped at -87 */
    ck_assert_float_eq(er_erf(100.0f), 1.0f);
}
END_TEST

static double gelu_ref(double x, er_act act) {
    switch (act) {
    case ER_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ER_ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case ER_ACT_RELU: return x > 0 ? x : 0;
    }
    return NAN;
}

START_TEST(activations_match_reference) {
    const int n = 7, d = 37;
    for (int a = 0; a < 3; a++) {
        er_act act = (er_act)a;
        float *x = rand_vec((size_t)n * d, 3, 6.0f);
        float *b = rand_vec((size_t)d, 5, 0.5f);
        float *y = malloc((size_t)n * d * sizeof *y);
        for (int i = 0; i < n * d; i++) y[i] = x[i];
        er_bias_act(y, n, d, b, act);
        for (int i = 0; i < n * d; i++) {
            double ref = gelu_ref((double)x[i] + b[i % d], act);
            ck_assert_msg(fabs(y[i] - ref) < 2e-6 * (1 + fabs(ref)), "act %d x %g: %g vs %g", a,
                          x[i] + b[i % d], y[i], ref);
        }
        for (int i = 0; i < n * d; i++) y[i] = x[i];
        if (act == ER_ACT_GELU) er_gelu_erf(y, n * d);
        else if (act == ER_ACT_GELU_TANH) er_gelu_tanh(y, n * d);
        else er_relu(y, n * d);
        for (int i = 0; i < n * d; i++)
            ck_assert(fabs(y[i] - gelu_ref(x[i], act)) < 2e-6 * (1 + fabs(x[i])));
        free(x); free(b); free(y);
    }
    float t[3] = {-30.0f, 0.0f, 0.5f};
    er_tanh(t, 3);
    ck_assert_float_eq(t[0], -1.0f);
    ck_assert_float_eq_tol(t[2], tanhf(0.5f), 1e-7f);
}
END_TEST

START_TEST(layernorm_matches_naive) {
    static const int dims[] = {1, 5, 16, 33, 384};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int n = 3, d = dims[s];
        float *x = rand_vec((size_t)n * d, 21, 3.0f), *r = rand_vec((size_t)n * d, 22, 1.0f);
        float *bias = rand_vec((size_t)d, 23, 0.3f);
        float *g = rand_vec((size_t)d, 24, 1.0f), *be = rand_vec((size_t)d, 25, 1.0f);
        float *out = malloc((size_t)n * d * sizeof *out);
        er_add_layernorm(x, r, bias, g, be, 1e-5f, n, d, out);
        for (int i = 0; i < n; i++) {
            double mean = 0, var = 0;
            for (int j = 0; j < d; j++) mean += (double)x[i * d + j] + r[i * d + j] + bias[j];
            mean /= d;
            for (int j = 0; j < d; j++) {
                double c = (double)x[i * d + j] + r[i * d + j] + bias[j] - mean;
                var += c * c;
            }
            var /= d;
            for (int j = 0; j < d; j++) {
                double v = ((double)x[i * d + j] + r[i * d + j] + bias[j] - mean) / sqrt(var + 1e-5);
                double ref = v * g[j] + be[j];
                ck_assert_msg(fabs(out[i * d + j] - ref) < 1e-5 * (1 + fabs(ref)), "d=%d", d);
            }
        }
        /* beta NULL (LayerNorm without bias) = beta of zeros, bit for bit */
        float *zero = calloc((size_t)d, sizeof *zero), *nb = malloc((size_t)n * d * sizeof *nb);
        er_add_layernorm(x, r, bias, g, zero, 1e-5f, n, d, out);
        er_add_layernorm(x, r, bias, g, NULL, 1e-5f, n, d, nb);
        for (int i = 0; i < n * d; i++) ck_assert(out[i] == nb[i]);
        free(zero); free(nb);
        /* in place, no residual or bias */
        er_add_layernorm(x, NULL, NULL, g, be, 1e-12f, n, d, x);
        for (int j = 0; j < d; j++) ck_assert(isfinite(x[j]));
        free(x); free(r); free(bias); free(g); free(be); free(out);
    }
}
END_TEST

START_TEST(softmax_matches_naive) {
    static const int dims[] = {1, 3, 16, 17, 130};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int n = 4, d = dims[s];
        float *x = rand_vec((size_t)n * d, 31, 20.0f);
        float *y = malloc((size_t)n * d * sizeof *y);
        for (int i = 0; i < n * d; i++) y[i] = x[i];
        er_softmax_rows(y, n, d);
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < d; j++) mx = fmax(mx, x[i * d + j]);
            for (int j = 0; j < d; j++) sum += exp((double)x[i * d + j] - mx);
            for (int j = 0; j < d; j++) {
                double ref = exp((double)x[i * d + j] - mx) / sum;
                ck_assert_msg(fabs(y[i * d + j] - ref) < 1e-6, "d=%d: %g vs %g", d, y[i * d + j], ref);
            }
        }
        free(x); free(y);
    }
}
END_TEST

static Suite *kernels_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("vs_naive");
    tcase_add_test(tc, linear_matches_naive);
    tcase_add_test(tc, erf_and_exp_approximations);
    tcase_add_test(tc, activations_match_reference);
    tcase_add_test(tc, layernorm_matches_naive);
    tcase_add_test(tc, softmax_matches_naive);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(kernels_suite)
