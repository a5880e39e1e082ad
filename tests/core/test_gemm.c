/* The GEMM seam (gemm.h): packed AVX-512 kernels against a float64
 * reference on shapes with row, column and reduction tails, the fused
 * epilogues against er_bias_act, the split output of a fused QKV, and the
 * recycling property: a row's result does not depend on the other rows of
 * the call nor on the thread count (bit for bit).  Under ERSERVE_GEMM=onednn
 * (tests/gemm_onednn.sh) the same cases run on oneDNN's matmul primitives,
 * plus bert-base's shapes and its refusals. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "gemm.h"
#include "gemm_avx2.h"
#include "kernels.h"

static unsigned rng = 12345;
static float frand(void) {
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static float *rand_floats(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* fp32 on packed weights: the AVX-512 kernels, or the AVX2 ones (ERSERVE_GEMM=avx2,
 * tests/gemm_avx2.sh, or a host without AVX-512F) */
#define SKIP_WITHOUT_PACKED()                                                             \
    if (!er_gemm_supports(ER_GEMM_F32, NULL))                                             \
    ER_SKIP("the packed kernels need AVX-512F or AVX2+FMA and erserve's backend (%s)",     \
            er_gemm_describe())

/* max |y - x W^T - b| over y[n, out], relative to sum |x||W| per element. */
static double worst_rel(const float *x, const float *W, const float *b, const float *y, int n,
                        int in, int out) {
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            double s = b ? b[j] : 0.0, mag = b ? fabs(b[j]) : 0.0;
            for (int k = 0; k < in; k++) {
                s += (double)x[i * in + k] * W[j * in + k];
                mag += fabs((double)x[i * in + k] * W[j * in + k]);
            }
            double e = fabs(y[i * out + j] - s) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}

START_TEST(matches_float64_with_tails) {
    SKIP_WITHOUT_PACKED();
    static const int shapes[][3] = {{1, 1, 1},    {5, 7, 3},     {12, 256, 32}, {13, 257, 33},
                                    {25, 600, 70}, {200, 300, 64}, {37, 1030, 17},
                                    {7, 5000, 40}}; /* a reduction split in blocks */
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(3, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
        float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
        float *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, in));
        er_gemm_pack(ER_GEMM_F32, W, out, in, p);
        er_gemm_out o = {.dst = {y}, .seg = out};
        er_gemm_packed(s % 2 ? team : NULL, x, n, in, ER_GEMM_F32, p, out, b, ER_EPI_NONE, &o);
        double e = worst_rel(x, W, b, y, n, in, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%d: relative error %g", n, in, out, e);
        er_gemm_packed(team, x, n, in, ER_GEMM_F32, p, out, NULL, ER_EPI_NONE, &o);
        e = worst_rel(x, W, NULL, y, n, in, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%d without bias: relative error %g", n, in, out, e);
        free(x); free(W); free(b); free(y); free(p);
    }
    er_par_free(team);
}
END_TEST

/* GEMM + bias + act in the epilogue equals GEMM, then er_bias_act. */
START_TEST(epilogue_equals_bias_act) {
    SKIP_WITHOUT_PACKED();
    const int n = 29, in = 300, out = 70;
    const er_epi epis[] = {ER_EPI_GELU, ER_EPI_GELU_TANH, ER_EPI_RELU};
    const er_act acts[] = {ER_ACT_GELU, ER_ACT_GELU_TANH, ER_ACT_RELU};
    float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
    float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
    float *ref = malloc((size_t)n * out * sizeof *ref);
    float *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, in));
    er_gemm_pack(ER_GEMM_F32, W, out, in, p);
    for (int a = 0; a < 3; a++) {
        er_gemm_out o = {.dst = {y}, .seg = out}, r = {.dst = {ref}, .seg = out};
        er_gemm_packed(NULL, x, n, in, ER_GEMM_F32, p, out, b, epis[a], &o);
        er_gemm_packed(NULL, x, n, in, ER_GEMM_F32, p, out, NULL, ER_EPI_NONE, &r);
        er_bias_act(ref, n, out, b, acts[a]);
        for (int i = 0; i < n * out; i++)
            ck_assert_msg(fabsf(y[i] - ref[i]) <= 1e-6f * (1.0f + fabsf(ref[i])),
                          "act %d, element %d: %g vs %g", a, i, y[i], ref[i]);
    }
    free(x); free(W); free(b); free(y); free(ref); free(p);
}
END_TEST

/* The activation applied to the tile in registers is er_bias_act's bit for
 * bit, over the whole range (both clamps of erf and exp, 0, -0, tails of
 * rows and columns, NaN): with in = 1 and W = 1 each output is x[i] + b[j]. */
START_TEST(epilogue_act_bits_over_range) {
    SKIP_WITHOUT_PACKED();
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN)
        ER_SKIP("oneDNN applies GELU (erf) as its own post-op, not erserve's function: "
                "its accuracy is test_encoder's against the goldens (tests/gemm_onednn.sh)");
    const int n = 13, out = 37; /* a 12-row tile and one row; a panel and 5 columns */
    const er_epi epis[] = {ER_EPI_GELU, ER_EPI_GELU_TANH, ER_EPI_RELU};
    const er_act acts[] = {ER_ACT_GELU, ER_ACT_GELU_TANH, ER_ACT_RELU};
    float W[37], b[37], x[13], y[13 * 37], ref[13 * 37];
    float *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, 1));
    for (int j = 0; j < out; j++) W[j] = 1.0f;
    for (int round = 0; round < 40; round++) {
        for (int j = 0; j < out; j++) b[j] = (float)(j - 18) * (0.05f + 0.25f * (float)round);
        for (int i = 0; i < n; i++) x[i] = frand() * (float)(1 + round * round);
        if (round == 0) x[0] = 0.0f, x[1] = -0.0f, b[0] = -0.0f;
        er_gemm_pack(ER_GEMM_F32, W, out, 1, p);
        for (int a = 0; a < 3; a++) {
            /* NaN: not into GELU-tanh, whose exp casts it to int (undefined) */
            if (round == 0) x[2] = epis[a] == ER_EPI_GELU_TANH ? 0.5f : NAN;
            er_gemm_out o = {.dst = {y}, .seg = out}, r = {.dst = {ref}, .seg = out};
            er_gemm_packed(NULL, x, n, 1, ER_GEMM_F32, p, out, b, epis[a], &o);
            er_gemm_packed(NULL, x, n, 1, ER_GEMM_F32, p, out, NULL, ER_EPI_NONE, &r);
            er_bias_act(ref, n, out, b, acts[a]);
            for (int i = 0; i < n * out; i++)
                ck_assert_msg(isnan(y[i]) ? isnan(ref[i]) : !memcmp(&y[i], &ref[i], sizeof y[i]),
                              "act %d, x %.9g + b %.9g: %.9g vs %.9g", a, x[i / out],
                              b[i % out], y[i], ref[i]);
        }
    }
    free(p);
}
END_TEST

/* A fused [3H, H] GEMM writes its column thirds to three [n, H] matrices,
 * each equal to its own GEMM. */
START_TEST(split_output_equals_three_gemms) {
    SKIP_WITHOUT_PACKED();
    const int n = 17, H = 64;
    float *x = rand_floats((size_t)n * H), *W = rand_floats((size_t)3 * H * H);
    float *b = rand_floats((size_t)3 * H);
    float *pf = malloc(er_gemm_packed_bytes(ER_GEMM_F32, 3 * H, H));
    float *po = malloc(er_gemm_packed_bytes(ER_GEMM_F32, H, H));
    float *y[3], *one = malloc((size_t)n * H * sizeof *one);
    for (int i = 0; i < 3; i++) y[i] = malloc((size_t)n * H * sizeof *y[i]);
    er_gemm_pack(ER_GEMM_F32, W, 3 * H, H, pf);
    er_gemm_out o = {.dst = {y[0], y[1], y[2]}, .seg = H};
    er_gemm_packed(NULL, x, n, H, ER_GEMM_F32, pf, 3 * H, b, ER_EPI_NONE, &o);
    for (int i = 0; i < 3; i++) {
        er_gemm_pack(ER_GEMM_F32, W + (size_t)i * H * H, H, H, po);
        er_gemm_out s = {.dst = {one}, .seg = H};
        er_gemm_packed(NULL, x, n, H, ER_GEMM_F32, po, H, b + i * H, ER_EPI_NONE, &s);
        ck_assert_int_eq(memcmp(one, y[i], (size_t)n * H * sizeof *one), 0);
        free(y[i]);
    }
    free(x); free(W); free(b); free(pf); free(po); free(one);
}
END_TEST

/* Row r of a 300-row call equals the same row computed alone and within
 * other row offsets, with 1, 2 or 5 threads: bit for bit.  Where the
 * backend does not promise the offsets (oneDNN's gemm:jit path,
 * er_gemm_rows_independent), the whole call with 1, 2 or 5 threads. */
static void rows_independent(int in) {
    const int n = 300, out = 100;
    float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
    float *b = rand_floats((size_t)out);
    float *all = malloc((size_t)n * out * sizeof *all), *part = malloc((size_t)n * out * sizeof *part);
    float *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, in));
    er_gemm_pack(ER_GEMM_F32, W, out, in, p);
    er_gemm_out o = {.dst = {all}, .seg = out};
    er_gemm_packed(NULL, x, n, in, ER_GEMM_F32, p, out, b, ER_EPI_GELU, &o);
    static const int threads[] = {1, 2, 5};
    static const int starts[] = {0, 1, 11, 150, 299};
    for (int t = 0; t < 3; t++) {
        er_par *team;
        er_err err;
        ck_assert_int_eq(er_par_init(threads[t], &team, &err), ER_OK);
        er_gemm_out w = {.dst = {part}, .seg = out};
        er_gemm_packed(team, x, n, in, ER_GEMM_F32, p, out, b, ER_EPI_GELU, &w);
        ck_assert_msg(memcmp(part, all, (size_t)n * out * sizeof *part) == 0,
                      "%d threads change the result", threads[t]);
        for (int s = 0; s < 5 && er_gemm_rows_independent(); s++) {
            const int r0 = starts[s], rows = n - r0 < 37 ? n - r0 : 37;
            er_gemm_out q = {.dst = {part}, .seg = out};
            er_gemm_packed(team, x + (size_t)r0 * in, rows, in, ER_GEMM_F32, p, out, b, ER_EPI_GELU, &q);
            ck_assert_msg(memcmp(part, all + (size_t)r0 * out, (size_t)rows * out * sizeof *part) == 0,
                          "rows from %d with %d threads differ", r0, threads[t]);
        }
        er_par_free(team);
    }
    free(x); free(W); free(b); free(all); free(part); free(p);
}

START_TEST(rows_independent_of_batch_and_threads) {
    SKIP_WITHOUT_PACKED();
    if (!er_gemm_rows_independent())
        printf("rows_independent: %s: rows may depend on their batch; checking threads only\n",
               er_gemm_describe());
    rows_independent(700);
    rows_independent(4500); /* the reduction in blocks: earlier sums reloaded */
}
END_TEST

/* bf16 round to nearest even, as the packing does. */
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* bf16: the kernel's result is the fp32 sum of exact products of the
 * bf16-rounded operands, so against a float64 reference on those operands it
 * is as close as fp32; odd reductions, tails and the split output included;
 * and rows are bit-identical whatever the batch and threads. */
START_TEST(bf16_matches_rounded_reference) {
    const char *missing = NULL;
    if (!er_gemm_supports(ER_GEMM_BF16, &missing)) ER_SKIP("bf16 needs %s", missing);
    static const int shapes[][3] = {{1, 2, 1}, {5, 7, 3}, {13, 257, 33}, {40, 768, 96},
                                    {7, 3100, 40}};
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(2, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
        float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
        float *y1 = malloc((size_t)out * sizeof *y1);
        void *p = malloc(er_gemm_packed_bytes(ER_GEMM_BF16, out, in));
        er_gemm_pack(ER_GEMM_BF16, W, out, in, p);
        er_gemm_out o = {.dst = {y}, .seg = out};
        er_gemm_packed(team, x, n, in, ER_GEMM_BF16, p, out, b, ER_EPI_NONE, &o);
        er_gemm_out one = {.dst = {y1}, .seg = out}; /* the last row alone, no team */
        er_gemm_packed(NULL, x + (size_t)(n - 1) * in, 1, in, ER_GEMM_BF16, p, out, b,
                       ER_EPI_NONE, &one);
        ck_assert_int_eq(memcmp(y1, y + (size_t)(n - 1) * out, (size_t)out * sizeof *y1), 0);
        for (size_t i = 0; i < (size_t)n * in; i++) x[i] = bf16_round(x[i]);
        for (size_t i = 0; i < (size_t)out * in; i++) W[i] = bf16_round(W[i]);
        double e = worst_rel(x, W, b, y, n, in, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%d: relative error %g", n, in, out, e);
        free(x); free(W); free(b); free(y); free(y1); free(p);
    }
    er_par_free(team);
}
END_TEST

/* One bf16 GEMM + GELU feeding another (the BERT FFN): z = (gelu(x W1^T +
 * b1)) W2^T + b2 through the fp32 intermediate, and with the first GEMM
 * writing its output directly in the second's bf16 x layout
 * (er_gemm_out.xbf16 / er_gemm_packed_xbf16): bit for bit the same, on row
 * counts that leave a partial 12-row group, odd and partial-panel widths,
 * with and without a team, a second reduction split in two blocks (3100 >
 * 3072); and the whole chain against a float64 reference
 * on the bf16-rounded operands. */
START_TEST(bf16_chain_through_xbf16_equals_plain) {
    const char *missing = NULL;
    if (!er_gemm_supports(ER_GEMM_BF16, &missing)) ER_SKIP("bf16 needs %s", missing);
    ck_assert(er_gemm_xbf16_supported(3072));
    ck_assert(!er_gemm_xbf16_supported(3073));
    static const int shapes[][4] = {{1, 2, 1, 1}, {5, 7, 33, 3}, {13, 64, 45, 40},
                                    {29, 768, 3072, 70}, {100, 96, 97, 32}, {7, 40, 3100, 20}};
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(2, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], mid = shapes[s][2], out = shapes[s][3];
        float *x = rand_floats((size_t)n * in), *W1 = rand_floats((size_t)mid * in);
        float *W2 = rand_floats((size_t)out * mid), *b1 = rand_floats((size_t)mid);
        float *b2 = rand_floats((size_t)out), *h = malloc((size_t)n * mid * sizeof *h);
        float *z = malloc((size_t)n * out * sizeof *z), *z2 = malloc((size_t)n * out * sizeof *z2);
        void *p1 = malloc(er_gemm_packed_bytes(ER_GEMM_BF16, mid, in));
        void *p2 = malloc(er_gemm_packed_bytes(ER_GEMM_BF16, out, mid));
        void *xb = malloc(er_gemm_xbf16_bytes(n, mid));
        er_gemm_pack(ER_GEMM_BF16, W1, mid, in, p1);
        er_gemm_pack(ER_GEMM_BF16, W2, out, mid, p2);
        er_gemm_out oh = {.dst = {h}, .seg = mid}, oz = {.dst = {z}, .seg = out};
        er_gemm_packed(team, x, n, in, ER_GEMM_BF16, p1, mid, b1, ER_EPI_GELU, &oh);
        er_gemm_packed(team, h, n, mid, ER_GEMM_BF16, p2, out, b2, ER_EPI_NONE, &oz);
        for (int t = 0; t < 2; t++) {
            er_par *tm = t ? team : NULL;
            er_gemm_out ox = {.dst = {NULL}, .seg = mid, .xbf16 = xb}, oz2 = {.dst = {z2}, .seg = out};
            memset(z2, 0, (size_t)n * out * sizeof *z2);
            er_gemm_packed(tm, x, n, in, ER_GEMM_BF16, p1, mid, b1, ER_EPI_GELU, &ox);
            er_gemm_packed_xbf16(tm, xb, n, mid, p2, out, b2, ER_EPI_NONE, &oz2);
            ck_assert_msg(memcmp(z, z2, (size_t)n * out * sizeof *z) == 0,
                          "%dx%dx%dx%d, team %d: xbf16 chain differs from the plain one", n, in,
                          mid, out, t);
        }
        for (size_t i = 0; i < (size_t)n * mid; i++) h[i] = bf16_round(h[i]);
        for (size_t i = 0; i < (size_t)out * mid; i++) W2[i] = bf16_round(W2[i]);
        double e = worst_rel(h, W2, b2, z, n, mid, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%dx%d: relative error %g", n, in, mid, out, e);
        free(x); free(W1); free(W2); free(b1); free(b2); free(h); free(z); free(z2);
        free(p1); free(p2); free(xb);
    }
    er_par_free(team);
}
END_TEST

/* int8 as the packing quantises: per column of W (v / scale, rounded half
 * away from zero) and per row of x (v * (1 / scale), to nearest even),
 * symmetric, scale max |v| / 127. */
static float q8(float v) {
    float r = v + (v >= 0.0f ? 0.5f : -0.5f);
    r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
    return (float)(int)r;
}

static void quantise_rows(float *v, int rows, int n, int by_division) {
    for (int r = 0; r < rows; r++) {
        float mx = 0.0f, *x = v + (size_t)r * n;
        for (int k = 0; k < n; k++) mx = fabsf(x[k]) > mx ? fabsf(x[k]) : mx;
        const float s = mx > 0.0f ? mx / 127.0f : 1.0f, inv = 1.0f / s;
        for (int k = 0; k < n; k++) x[k] = (by_division ? q8(x[k] / s) : nearbyintf(x[k] * inv)) * s;
    }
}

/* int8: sums are exact in int32, so against a float64 reference on the
 * dequantised operands the result is as close as fp32; tails, odd
 * reductions and the split output included; rows independent of the batch
 * and threads. */
/* Row r, value k of n rows of `in` values in the fp32 x layout
 * (er_gemm_out.xf32): 12-row groups, each [ceil(in / 16), 12, 16] (gemm.h). */
static size_t xf32_at(int r, int k, int in) {
    const size_t in16 = (size_t)(in + 15) / 16 * 16;
    return (size_t)(r / 12) * in16 * 12 + (size_t)(k / 16) * 12 * 16 + (size_t)(r % 12) * 16 +
           (size_t)(k % 16);
}

/* The fp32 FFN chain (as the BERT layer runs it on the AVX-512 kernels):
 * z = gelu(x W1^T + b1) W2^T + b2 through row-major h, and with the first
 * GEMM writing er_gemm_out.xf32 and the second reading it
 * (er_gemm_packed_xf32): bit for bit the same, on row counts that leave a
 * partial 12-row group, odd and partial-panel widths, with and without a
 * team, a partial last 16-k chunk (3071).  The layout itself
 * is checked both ways (written values at their documented places, and a
 * buffer laid out by hand read as those rows), so a writer and a reader
 * that agreed on a wrong layout fail too. */
START_TEST(f32_chain_through_xf32_equals_plain) {
    if (!er_gemm_xf32_supported(768)) {
        ck_assert(er_gemm_backend_get() != ER_GEMM_AVX512);
        ER_SKIP("the fp32 x layout needs the AVX-512 kernels (%s)", er_gemm_describe());
    }
    ck_assert(er_gemm_xf32_supported(3072));
    ck_assert(!er_gemm_xf32_supported(3073));
    static const int shapes[][4] = {{1, 2, 1, 1}, {5, 7, 33, 3}, {13, 64, 45, 40},
                                    {29, 768, 3072, 70}, {100, 96, 97, 32}, {7, 40, 3071, 20},
                                    {131, 33, 200, 768}};
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(2, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], mid = shapes[s][2], out = shapes[s][3];
        float *x = rand_floats((size_t)n * in), *W1 = rand_floats((size_t)mid * in);
        float *W2 = rand_floats((size_t)out * mid), *b1 = rand_floats((size_t)mid);
        float *b2 = rand_floats((size_t)out), *h = malloc((size_t)n * mid * sizeof *h);
        float *z = malloc((size_t)n * out * sizeof *z), *z2 = malloc((size_t)n * out * sizeof *z2);
        void *p1 = malloc(er_gemm_packed_bytes(ER_GEMM_F32, mid, in));
        void *p2 = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, mid));
        const size_t xn = er_gemm_xf32_floats(n, mid);
        ck_assert(xn >= (size_t)n * mid &&
                  xn == (size_t)((n + 11) / 12) * 12 * (size_t)((mid + 15) / 16) * 16);
        float *xf = malloc(xn * sizeof *xf);
        er_gemm_pack(ER_GEMM_F32, W1, mid, in, p1);
        er_gemm_pack(ER_GEMM_F32, W2, out, mid, p2);
        er_gemm_out oh = {.dst = {h}, .seg = mid}, oz = {.dst = {z}, .seg = out};
        er_gemm_packed(team, x, n, in, ER_GEMM_F32, p1, mid, b1, ER_EPI_GELU, &oh);
        er_gemm_packed(team, h, n, mid, ER_GEMM_F32, p2, out, b2, ER_EPI_NONE, &oz);
        for (int t = 0; t < 2; t++) {
            er_par *tm = t ? team : NULL;
            er_gemm_out ox = {.dst = {NULL}, .seg = mid, .xf32 = xf}, oz2 = {.dst = {z2}, .seg = out};
            memset(z2, 0, (size_t)n * out * sizeof *z2);
            er_gemm_packed(tm, x, n, in, ER_GEMM_F32, p1, mid, b1, ER_EPI_GELU, &ox);
            for (int r = 0; r < n; r++)
                for (int k = 0; k < mid; k++)
                    ck_assert_msg(memcmp(&xf[xf32_at(r, k, mid)], &h[(size_t)r * mid + k],
                                         sizeof *h) == 0,
                                  "%dx%dx%d, team %d: xf32 row %d value %d misplaced", n, in, mid,
                                  t, r, k);
            er_gemm_packed_xf32(tm, xf, n, mid, p2, out, b2, ER_EPI_NONE, &oz2);
            ck_assert_msg(memcmp(z, z2, (size_t)n * out * sizeof *z) == 0,
                          "%dx%dx%dx%d, team %d: xf32 chain differs from the plain one", n, in,
                          mid, out, t);
        }
        /* the reader alone, on h laid out by hand (padding lanes poisoned) */
        for (size_t i = 0; i < xn; i++) xf[i] = NAN;
        for (int r = 0; r < n; r++)
            for (int k = 0; k < mid; k++) xf[xf32_at(r, k, mid)] = h[(size_t)r * mid + k];
        er_gemm_out oz3 = {.dst = {z2}, .seg = out};
        memset(z2, 0, (size_t)n * out * sizeof *z2);
        er_gemm_packed_xf32(team, xf, n, mid, p2, out, b2, ER_EPI_NONE, &oz3);
        ck_assert_msg(memcmp(z, z2, (size_t)n * out * sizeof *z) == 0,
                      "%dx%dx%dx%d: xf32 laid out by hand differs", n, in, mid, out);
        free(x); free(W1); free(W2); free(b1); free(b2); free(h); free(z); free(z2);
        free(p1); free(p2); free(xf);
    }
    er_par_free(team);
}
END_TEST

START_TEST(int8_matches_quantised_reference) {
    const char *missing = NULL;
    if (!er_gemm_supports(ER_GEMM_INT8, &missing)) ER_SKIP("int8 needs %s", missing);
    static const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 257, 33}, {40, 768, 96},
                                    {7, 3100, 40}, {100, 130, 64}};
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(3, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
        float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
        float *y1 = malloc((size_t)out * sizeof *y1);
        void *p = malloc(er_gemm_packed_bytes(ER_GEMM_INT8, out, in));
        er_gemm_pack(ER_GEMM_INT8, W, out, in, p);
        er_gemm_out o = {.dst = {y}, .seg = out}, one = {.dst = {y1}, .seg = out};
        er_gemm_packed(team, x, n, in, ER_GEMM_INT8, p, out, b, ER_EPI_NONE, &o);
        er_gemm_packed(NULL, x + (size_t)(n - 1) * in, 1, in, ER_GEMM_INT8, p, out, b,
                       ER_EPI_NONE, &one);
        ck_assert_int_eq(memcmp(y1, y + (size_t)(n - 1) * out, (size_t)out * sizeof *y1), 0);
        quantise_rows(x, n, in, 0);
        quantise_rows(W, out, in, 1);
        double e = worst_rel(x, W, b, y, n, in, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%d: relative error %g", n, in, out, e);
        free(x); free(W); free(b); free(y); free(y1); free(p);
    }
    er_par_free(team);
}
END_TEST

/* The AVX2 kernels compute the AVX-512 kernels' bits (the recycling store
 * shares one numerics class between the two, core/STORE.md): same inputs
 * through er_gemm_packed on the AVX-512 backend and er_gemm_avx2_range,
 * every epilogue, tails of rows, columns and reduction, a reduction in two
 * blocks, more rows than one block. */
START_TEST(avx2_equals_avx512_bits) {
    if (er_gemm_backend_get() != ER_GEMM_AVX512 || !er_gemm_avx2_cpu())
        ER_SKIP("needs the AVX-512 backend and AVX2+FMA (%s)", er_gemm_describe());
    static const int shapes[][3] = {{1, 1, 1}, {7, 33, 17}, {13, 768, 96}, {38, 300, 70},
                                    {300, 64, 40}, {7, 3100, 40}, {5, 4100, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
        float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
        float *y2 = malloc((size_t)n * out * sizeof *y2);
        float *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, in));
        er_gemm_pack(ER_GEMM_F32, W, out, in, p);
        for (int a = ER_EPI_NONE; a <= ER_EPI_RELU; a++) {
            er_gemm_out o = {.dst = {y}, .seg = out}, o2 = {.dst = {y2}, .seg = out};
            er_gemm_packed(NULL, x, n, in, ER_GEMM_F32, p, out, b, (er_epi)a, &o);
            er_gemm_avx2_range(x, n, in, p, out, 0, (out + 31) / 32, b, (er_epi)a, &o2);
            ck_assert_msg(memcmp(y, y2, (size_t)n * out * sizeof *y) == 0,
                          "%dx%dx%d, epilogue %d: the AVX2 kernels' bits differ", n, in, out, a);
        }
        free(x); free(W); free(b); free(y); free(y2); free(p);
    }
}
END_TEST

START_TEST(describes_backend) {
    const char *d = er_gemm_describe();
    const er_gemm_backend be = er_gemm_backend_get();
#if defined(__x86_64__) && defined(__GNUC__)
    const char *env = getenv("ERSERVE_GEMM"); /* tests/gemm_avx2.sh: not a silent fallback */
    if (env && !strcmp(env, "avx2") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        ck_assert_int_eq(be, ER_GEMM_AVX2);
#endif
    if (env && !strcmp(env, "onednn")) /* tests/gemm_onednn.sh: not a silent fallback either */
        ck_assert_msg(be == ER_GEMM_ONEDNN, "ERSERVE_GEMM=onednn, but: %s", d);
    ck_assert_ptr_nonnull(strstr(d, be == ER_GEMM_AVX512   ? "AVX-512F"
                                    : be == ER_GEMM_AVX2   ? "AVX2"
                                    : be == ER_GEMM_ONEDNN ? "oneDNN"
                                                           : "OpenBLAS"));
}
END_TEST

#define SKIP_UNLESS_ONEDNN()                                                                      \
    if (er_gemm_backend_get() != ER_GEMM_ONEDNN)                                                  \
    ER_SKIP("the onednn backend is not the one chosen (ERSERVE_GEMM=onednn, tests/gemm_onednn.sh)")

/* oneDNN's matmul primitives on bert-base's projection shapes (q/k/v fused,
 * o, the FFN's two), with row counts that take every row class and the
 * padded last row, against float64; 1 and 2 threads give the same bits. */
START_TEST(onednn_bert_shapes_match_float64) {
    SKIP_UNLESS_ONEDNN();
    static const int shapes[][3] = {{1, 768, 2304}, {43, 768, 768}, {75, 768, 3072},
                                    {128, 3072, 768}};
    er_par *team;
    er_err err;
    ck_assert_int_eq(er_par_init(2, &team, &err), ER_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = rand_floats((size_t)n * in), *W = rand_floats((size_t)out * in);
        float *b = rand_floats((size_t)out), *y = malloc((size_t)n * out * sizeof *y);
        float *y2 = malloc((size_t)n * out * sizeof *y2);
        ck_assert_int_eq(er_gemm_prepare(ER_GEMM_F32, out, in, &err), ER_OK);
        void *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, out, in));
        er_gemm_pack(ER_GEMM_F32, W, out, in, p);
        er_gemm_out o = {.dst = {y}, .seg = out}, o2 = {.dst = {y2}, .seg = out};
        er_gemm_packed(NULL, x, n, in, ER_GEMM_F32, p, out, b, ER_EPI_NONE, &o);
        er_gemm_packed(team, x, n, in, ER_GEMM_F32, p, out, b, ER_EPI_NONE, &o2);
        ck_assert_int_eq(memcmp(y, y2, (size_t)n * out * sizeof *y), 0);
        double e = worst_rel(x, W, b, y, n, in, out);
        ck_assert_msg(e < 1e-5, "%dx%dx%d: relative error %g", n, in, out, e);
        free(x); free(W); free(b); free(y); free(y2); free(p);
    }
    er_par_free(team);
}
END_TEST

/* fp32 only; a bad shape is an error naming it, not a crash; the backend
 * cannot be changed once chosen. */
START_TEST(onednn_refusals_are_errors) {
    SKIP_UNLESS_ONEDNN();
    const char *missing = NULL;
    ck_assert(!er_gemm_supports(ER_GEMM_BF16, &missing));
    ck_assert_ptr_nonnull(strstr(missing, "fp32 only"));
    ck_assert(!er_gemm_supports(ER_GEMM_INT8, NULL));
    ck_assert(er_gemm_supports(ER_GEMM_F32, NULL));
    er_err err = {0};
    ck_assert_int_eq(er_gemm_prepare(ER_GEMM_F32, -3, 5, &err), ER_ERR_INVALID_ARG);
    ck_assert_msg(strstr(err.msg, "[-3, 5]") != NULL, "%s", err.msg);
    ck_assert_int_eq(er_gemm_select("onednn", &err), ER_OK); /* the one chosen: fine */
    ck_assert_int_ne(er_gemm_select("own", &err), ER_OK);     /* too late to change */
    ck_assert_ptr_nonnull(strstr(err.msg, "already chosen"));
}
END_TEST

static Suite *gemm_suite(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, matches_float64_with_tails);
    tcase_add_test(tc, epilogue_equals_bias_act);
    tcase_add_test(tc, epilogue_act_bits_over_range);
    tcase_add_test(tc, split_output_equals_three_gemms);
    tcase_add_test(tc, rows_independent_of_batch_and_threads);
    tcase_add_test(tc, bf16_matches_rounded_reference);
    tcase_add_test(tc, bf16_chain_through_xbf16_equals_plain);
    tcase_add_test(tc, f32_chain_through_xf32_equals_plain);
    tcase_add_test(tc, int8_matches_quantised_reference);
    tcase_add_test(tc, describes_backend);
    tcase_add_test(tc, avx2_equals_avx512_bits);
    tcase_add_test(tc, onednn_bert_shapes_match_float64);
    tcase_add_test(tc, onednn_refusals_are_errors);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(gemm_suite)
