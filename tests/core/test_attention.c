/* The rotary table (core/rope.c) against its formula, and the tiled
 * attention (core/attention.c) against a direct float64 softmax
 * attention: sequences longer than one key tile and one query block, an
 * additive bias through the callback, a local window, a strided (fused QKV)
 * layout, and independence from the thread count. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "att_kernels.h"
#include "att_kernels_avx2.h"
#include "encoder_internal.h"
#include "gemm.h"
#include "gemm_avx2.h"
#include "kernels.h"

#include <cblas.h>

#define MODEL "tests/fixtures/models/bert-seqcls" /* hidden 48: heads x head_dim fit */

enum { N_HEADS = 3, HEAD_DIM = 16, HID = N_HEADS * HEAD_DIM };

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f) * 2.0f;
}

/* A bias that differs per head, query and key, so a misplaced tile shows. */
static void test_bias(const er_att_bias *self, int seq, int head, int i0, int i1, int j0, int j1,
                      float *tile, int ld) {
    (void)self;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++)
            tile[(size_t)(i - i0) * ld + (j - j0)] +=
                0.01f * (float)((i * 7 + j * 3 + head * 5 + seq) % 23) - 0.1f;
}

/* Reference: out[t, h*d..] for each sequence, in double. */
static void reference(const er_batch *b, const float *q, const float *k, const float *v, int ld,
                      int nh, int hd, float scale, const er_att_bias *bias, double *out) {
    int off = 0;
    double *p = malloc(sizeof(double) * 4096);
    for (int s = 0; s < b->n_seqs; s++) {
        const int n = b->seq_len[s];
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < n; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < n; j++) {
                    double dot = 0;
                    for (int c = 0; c < hd; c++)
                        dot += (double)q[(size_t)(off + i) * ld + h * hd + c] *
                               k[(size_t)(off + j) * ld + h * hd + c];
                    dot = (double)(float)(dot * scale);
                    if (bias && bias->add) {
                        float t = 0.0f;
                        bias->add(bias, s, h, i, i + 1, j, j + 1, &t, 1);
                        dot += t;
                    }
                    if (bias && bias->window > 0 && abs(i - j) > bias->window) dot = -INFINITY;
                    p[j] = dot;
                    if (dot > mx) mx = dot;
                }
                double sum = 0;
                for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int c = 0; c < hd; c++) {
                    double a = 0;
                    for (int j = 0; j < n; j++)
                        a += p[j] * v[(size_t)(off + j) * ld + h * hd + c];
                    out[(size_t)(off + i) * (nh * hd) + h * hd + c] = a / sum;
                }
            }
        off += n;
    }
    free(p);
}

/* Runs er_attention on random q, k, v (row stride ld) with `threads`, nh
 * heads of hd (nh * hd <= HID) and returns the worst abs error against the
 * reference (0 without computing it when out_copy is set and check is
 * false: the caller compares bits). */
static double run_heads(int threads, int ld, int nh, int hd, const er_att_bias *bias,
                        float *out_copy, bool check) {
    er_model *m = NULL;
    er_err err = {0};
    ck_assert_int_eq(er_model_load(MODEL, NULL, &m, &err), ER_OK);
    er_ctx_params cp = er_ctx_default_params();
    cp.max_tokens = 2000;
    cp.n_threads = threads;
    er_ctx *x = NULL;
    ck_assert_int_eq(er_ctx_init(m, &cp, &x, &err), ER_OK);
    const int lens[3] = {1100, 7, 600}; /* > one key tile, < one query block, 5 blocks */
    const int T = 1707;
    int32_t *ids = calloc(T, sizeof *ids);
    er_batch b = {.n_seqs = 3, .seq_len = lens, .ids = ids, .type_ids = NULL};
    float *qkv = malloc(sizeof(float) * (size_t)T * ld); // [T, ld]
    unsigned seed = 12345;
    for (size_t i = 0; i < (size_t)T * ld; i++) qkv[i] = frand(&seed);
    const float *q = qkv, *k = qkv + (ld > HID ? HID : 0), *v = qkv + (ld > HID ? 2 * HID : 0);
    float *out = malloc(sizeof(float) * (size_t)T * HID); // [T, HID]
    er_att_args a = {.q = q, .k = k, .v = v, .ld = ld, .out = out, .n_heads = nh,
                     .head_dim = hd, .scale = 0.25f, .bias = bias};
    er_attention(x, &b, &a);
    double *ref = malloc(sizeof(double) * (size_t)T * HID);
    double worst = 0;
    if (check || !out_copy) {
        reference(&b, q, k, v, ld, nh, hd, 0.25f, bias, ref);
        for (size_t i = 0; i < (size_t)T * nh * hd; i++) worst = fmax(worst, fabs(out[i] - ref[i]));
    }
    if (out_copy) memcpy(out_copy, out, sizeof(float) * (size_t)T * nh * hd);
    free(ref); free(out); free(qkv); free(ids);
    er_ctx_free(x);
    er_model_free(m);
    return worst;
}

static double run_case(int threads, int ld, const er_att_bias *bias, float *out_copy) {
    return run_heads(threads, ld, N_HEADS, HEAD_DIM, bias, out_copy, true);
}

START_TEST(plain_long_sequences_match_reference) {
    double e = run_case(1, HID, NULL, NULL);
    ck_assert_msg(e < 2e-5, "max abs error %g", e);
}
END_TEST

START_TEST(bias_and_window_match_reference) {
    er_att_bias bias = {.add = test_bias, .arg = NULL, .window = 0};
    double e = run_case(1, HID, &bias, NULL);
    ck_assert_msg(e < 2e-5, "bias: max abs error %g", e);
    er_att_bias window = {.add = NULL, .arg = NULL, .window = 64}; /* ModernBERT's 128 / 2 */
    e = run_case(1, HID, &window, NULL);
    ck_assert_msg(e < 2e-5, "window: max abs error %g", e);
    er_att_bias both = {.add = test_bias, .arg = NULL, .window = 300};
    e = run_case(1, HID, &both, NULL);
    ck_assert_msg(e < 2e-5, "bias + window: max abs error %g", e);
}
END_TEST

/* The team's thread count must not change a bit.  OpenBLAS's own threading
 * may (it blocks small GEMMs differently), so it is fixed at one here, as a
 * server worker runs it. */
START_TEST(fused_qkv_stride_and_threads) {
    openblas_set_num_threads(1);
    float *one = malloc(sizeof(float) * 1707 * HID), *two = malloc(sizeof(float) * 1707 * HID);
    double e = run_case(1, 3 * HID, NULL, one);
    ck_assert_msg(e < 2e-5, "strided: max abs error %g", e);
    run_case(2, 3 * HID, NULL, two);
    ck_assert_msg(memcmp(one, two, sizeof(float) * 1707 * HID) == 0,
                  "results depend on the thread count");
    free(one);
    free(two);
}
END_TEST

/* Head dims that are not multiples of 16 (DeBERTa-v3-xsmall's 32 as 2 x 24
 * here, 13, a 48 wide chunk), through the whole tiled attention, on 1 and 2
 * team threads (bit for bit). */
START_TEST(odd_head_dims_match_reference) {
    const int dims[][2] = {{2, 24}, {3, 13}, {1, 48}, {4, 12}}; /* heads, head_dim */
    openblas_set_num_threads(1); /* as fused_qkv_stride_and_threads (cblas fallback) */
    float *one = malloc(sizeof(float) * 1707 * HID), *two = malloc(sizeof(float) * 1707 * HID);
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        const int nh = dims[i][0], hd = dims[i][1];
        er_att_bias both = {.add = test_bias, .arg = NULL, .window = 300};
        double e = run_heads(1, 3 * HID, nh, hd, i % 2 ? &both : NULL, one, true);
        ck_assert_msg(e < 2e-5, "%d heads of %d: max abs error %g", nh, hd, e);
        run_heads(2, 3 * HID, nh, hd, i % 2 ? &both : NULL, two, false);
        ck_assert_msg(memcmp(one, two, sizeof(float) * 1707 * (size_t)(nh * hd)) == 0,
                      "%d heads of %d: results depend on the thread count", nh, hd);
    }
    free(one);
    free(two);
}
END_TEST

/* er_att_qk and er_att_pv alone, against double sums, over shapes that hit
 * every tile tail (rows and keys not multiples of 12 / 6 / 32, d not a
 * multiple of 16, d past one 64-column chunk), with strided operands; and a
 * row gives the same bits whatever block it is computed in. */
static void check_kernels(int rows, int cols, int d) {
    const size_t ld = (size_t)d + 5, ldt = (size_t)cols + 3; /* strided, like a fused QKV */
    float *q = malloc(sizeof(float) * rows * ld), *k = malloc(sizeof(float) * cols * ld);
    float *v = malloc(sizeof(float) * cols * ld), *t = malloc(sizeof(float) * rows * ldt);
    float *t2 = malloc(sizeof(float) * rows * ldt), *acc = malloc(sizeof(float) * rows * d);
    float *acc2 = malloc(sizeof(float) * rows * d), *kpack = malloc(sizeof(float) * ER_ATT_PANEL * d);
    unsigned seed = (unsigned)(rows * 131 + cols * 7 + d);
    for (size_t i = 0; i < rows * ld; i++) q[i] = frand(&seed);
    for (size_t i = 0; i < cols * ld; i++) k[i] = frand(&seed), v[i] = frand(&seed);
    for (int i = 0; i < rows * d; i++) acc[i] = acc2[i] = frand(&seed);
    er_att_qk(q, ld, k, ld, rows, cols, d, 0.5f, t, ldt, kpack, NULL);
    er_att_pv(t, ldt, v, ld, rows, cols, d, acc, (size_t)d);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += (double)q[i * ld + c] * k[j * ld + c];
            ck_assert_msg(fabs(t[i * ldt + j] - 0.5 * s) < 1e-5 * (1 + d),
                          "qk %dx%dx%d [%d,%d]: %g vs %g", rows, cols, d, i, j, t[i * ldt + j], 0.5 * s);
        }
        for (int c = 0; c < d; c++) {
            double s = acc2[i * d + c];
            for (int j = 0; j < cols; j++) s += (double)t[i * ldt + j] * v[j * ld + c];
            ck_assert_msg(fabs(acc[i * d + c] - s) < 1e-5 * (1 + cols),
                          "pv %dx%dx%d [%d,%d]: %g vs %g", rows, cols, d, i, c, acc[i * d + c], s);
        }
    }
    if (er_gemm_attention_kernels() == ER_ATT_ON_OPENBLAS) goto done; /* no such promise */
    const int r0 = rows / 3; /* rows [r0, rows) alone: each row as in the full block */
    er_att_qk(q + r0 * ld, ld, k, ld, rows - r0, cols, d, 0.5f, t2, ldt, kpack, NULL);
    for (int i = r0; i < rows; i++) /* the row's scores, not the stride's gap */
        ck_assert(memcmp(t2 + (i - r0) * ldt, t + i * ldt, sizeof(float) * cols) == 0);
    er_att_pv(t + r0 * ldt, ldt, v, ld, rows - r0, cols, d, acc2 + r0 * d, (size_t)d);
    ck_assert(memcmp(acc2 + r0 * d, acc + r0 * d, sizeof(float) * (rows - r0) * d) == 0);
done:
    free(q); free(k); free(v); free(t); free(t2); free(acc); free(acc2); free(kpack);
}

START_TEST(kernels_match_reference_odd_shapes) {
    if (er_gemm_attention_kernels() == ER_ATT_ON_AVX2)
        printf("attention kernels: GEMM backend AVX2 (no AVX-512F, or ERSERVE_GEMM=avx2): "
               "checking the AVX2 kernels\n");
    else if (er_gemm_attention_kernels() == ER_ATT_ON_OPENBLAS)
        printf("attention kernels: GEMM backend OpenBLAS (ERSERVE_GEMM=openblas, or a CPU without "
               "AVX2+FMA): checking the cblas fallback\n");
    const int rows[] = {1, 5, 12, 13, 100, 128}, cols[] = {1, 17, 32, 33, 100, 512};
    const int dims[] = {1, 7, 16, 24, 32, 33, 48, 64, 80, 96, 100, 128};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++)
            for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++)
                check_kernels(rows[i], cols[j], dims[c]);
}
END_TEST

/* Rotary embeddings against the formula in double, at positions up to 8191. */
START_TEST(rope_matches_formula) {
    er_model *m = NULL;
    er_err err = {0};
    ck_assert_int_eq(er_model_load(MODEL, NULL, &m, &err), ER_OK);
    er_rope_table t;
    ck_assert_int_eq(er_rope_table_init(m, 160000.0, 12, 8192, &t, &err), ER_OK);
    ck_assert_int_eq(er_rope_table_init(m, 1.0, 12, 8192, &t, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(er_rope_table_init(m, 10000.0, 11, 8192, &t, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(er_rope_table_init(m, 10000.0, 12, 8192, &t, &err), ER_OK);
    const int32_t pos[4] = {0, 1, 37, 8191};
    float x[4 * 2 * HEAD_DIM], x0[4 * 2 * HEAD_DIM]; /* 4 tokens, 2 heads of 16, rot_dim 12 */
    unsigned seed = 7;
    for (int i = 0; i < 4 * 2 * HEAD_DIM; i++) x0[i] = x[i] = frand(&seed);
    er_rope_apply(&t, x, 2 * HEAD_DIM, 4, 2, HEAD_DIM, pos);
    for (int tok = 0; tok < 4; tok++)
        for (int h = 0; h < 2; h++) {
            const float *a = x0 + tok * 2 * HEAD_DIM + h * HEAD_DIM;
            const float *r = x + tok * 2 * HEAD_DIM + h * HEAD_DIM;
            for (int i = 0; i < 6; i++) {
                double ang = pos[tok] * pow(10000.0, -2.0 * i / 12);
                double e1 = a[i] * cos(ang) - a[i + 6] * sin(ang);
                double e2 = a[i + 6] * cos(ang) + a[i] * sin(ang);
                ck_assert_msg(fabs(r[i] - e1) < 1e-6 && fabs(r[i + 6] - e2) < 1e-6,
                              "token %d head %d dim %d", tok, h, i);
            }
            for (int i = 12; i < HEAD_DIM; i++) ck_assert(r[i] == a[i]); /* past rot_dim */
        }
    er_model_free(m);
}
END_TEST

/* The AVX2 kernels give the AVX-512 kernels' bits (one numerics class for
 * the recycling store): scores and context on odd shapes, both ways. */
START_TEST(avx2_equals_avx512_bits) {
    if (er_gemm_backend_get() != ER_GEMM_AVX512 || !er_gemm_avx2_cpu())
        ER_SKIP("needs the AVX-512 backend and AVX2+FMA (%s)", er_gemm_describe());
    const int rows[] = {1, 7, 8, 13, 128}, cols[] = {1, 17, 33, 100}, dims[] = {1, 7, 16, 33, 64, 80};
    const int ld = 3 * 128 + 5;
    float *q = malloc(sizeof(float) * 128 * ld), *k = malloc(sizeof(float) * 128 * ld);
    float *t = malloc(sizeof(float) * 128 * 100), *t2 = malloc(sizeof(float) * 128 * 100);
    float *acc = malloc(sizeof(float) * 128 * 80), *acc2 = malloc(sizeof(float) * 128 * 80);
    float *kpack = malloc(sizeof(float) * ER_ATT_PANEL * 80);
    for (int i = 0; i < 128 * ld; i++) {
        q[i] = (float)rand() / RAND_MAX - 0.5f;
        k[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 6; c++) {
                const int r = rows[a], n = cols[b], d = dims[c];
                er_att_qk(q, ld, k, ld, r, n, d, 0.125f, t, (size_t)n, kpack, NULL);
                er_att_qk_avx2(q, ld, k, ld, r, n, d, 0.125f, t2, (size_t)n, kpack, NULL);
                ck_assert_msg(!memcmp(t, t2, sizeof(float) * r * n), "qk %dx%dx%d", r, n, d);
                for (int i = 0; i < r * d; i++) acc[i] = acc2[i] = q[i];
                er_att_pv(t, (size_t)n, k, ld, r, n, d, acc, (size_t)d);
                er_att_pv_avx2(t, (size_t)n, k, ld, r, n, d, acc2, (size_t)d);
                ck_assert_msg(!memcmp(acc, acc2, sizeof(float) * r * d), "pv %dx%dx%d", r, n, d);
            }
    free(q); free(k); free(t); free(t2); free(acc); free(acc2); free(kpack);
}
END_TEST

/* er_att_exp_sum gives er_exp_sub_sum's values and sum bit for bit (the
 * same additions in the same order) over lengths with and without tails of
 * 16 and 8 and maxima below, at and above the values (the clamp at -87). */
START_TEST(exp_sum_equals_two_pass_bits) {
    float x[300], a[300], b[300];
    unsigned seed = 99;
    for (int i = 0; i < 300; i++) x[i] = 30.0f * frand(&seed);
    const float ms[] = {0.0f, 30.0f, -5.0f, 100.0f, 12.25f};
    for (int n = 0; n <= 300; n = n < 70 ? n + 1 : n + 23)
        for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++) {
            memcpy(a, x, sizeof a);
            memcpy(b, x, sizeof b);
            const float sa = er_att_exp_sum(a, n, ms[k]);
            const float sb = n > 0 ? er_exp_sub_sum(b, n, ms[k]) : 0.0f;
            ck_assert_msg(!memcmp(&sa, &sb, sizeof sa), "sum n %d m %g: %a vs %a", n, ms[k], sa, sb);
            ck_assert_msg(!memcmp(a, b, sizeof a), "values n %d m %g", n, ms[k]);
            if (!er_gemm_avx2_cpu()) continue;
            memcpy(a, x, sizeof a);
            const float s2 = er_att_exp_sum_avx2(a, n, ms[k]);
            ck_assert_msg(!memcmp(&s2, &sb, sizeof s2), "avx2 sum n %d m %g", n, ms[k]);
            ck_assert_msg(!memcmp(a, b, sizeof a), "avx2 values n %d m %g", n, ms[k]);
        }
}
END_TEST

/* The partial row maxima er_att_qk leaves in rmax give each row's max of
 * the scores it stored (keys past a panel's end not counted), on the
 * dispatched kernels and on the AVX2 ones. */
START_TEST(qk_row_max_matches_scores) {
    const int rows[] = {1, 7, 13, 128}, cols[] = {1, 16, 17, 33, 100}, dims[] = {7, 16, 64, 80};
    const int ld = 90;
    float *q = malloc(sizeof(float) * 128 * ld), *k = malloc(sizeof(float) * 100 * ld);
    float *t = malloc(sizeof(float) * 128 * 100), *rm = malloc(sizeof(float) * 128 * ER_ATT_RMAX);
    float *kpack = malloc(sizeof(float) * ER_ATT_PANEL * 80);
    unsigned seed = 5;
    for (int i = 0; i < 128 * ld; i++) q[i] = frand(&seed) - 0.7f; /* mostly negative scores */
    for (int i = 0; i < 100 * ld; i++) k[i] = frand(&seed);
    for (int avx2 = 0; avx2 < 2; avx2++) {
        if (avx2 && !er_gemm_avx2_cpu()) break;
        for (size_t a = 0; a < 4; a++)
            for (size_t b = 0; b < 5; b++)
                for (size_t c = 0; c < 4; c++) {
                    const int r = rows[a], n = cols[b], d = dims[c];
                    if (avx2)
                        er_att_qk_avx2(q, ld, k, ld, r, n, d, 0.125f, t, (size_t)n, kpack, rm);
                    else
                        er_att_qk(q, ld, k, ld, r, n, d, 0.125f, t, (size_t)n, kpack, rm);
                    for (int i = 0; i < r; i++) {
                        float want = t[(size_t)i * n], got = rm[(size_t)i * ER_ATT_RMAX];
                        for (int j = 1; j < n; j++) want = fmaxf(want, t[(size_t)i * n + j]);
                        for (int j = 1; j < ER_ATT_RMAX; j++)
                            got = fmaxf(got, rm[(size_t)i * ER_ATT_RMAX + j]);
                        ck_assert_msg(got == want, "%s %dx%dx%d row %d: %g vs %g",
                                      avx2 ? "avx2" : "qk", r, n, d, i, got, want);
                    }
                }
    }
    free(q); free(k); free(t); free(rm); free(kpack);
}
END_TEST

/* er_att_normalize: out = acc * (1 / l) per row, bit for bit, on strided
 * rows of every width tail, writing nothing past d. */
START_TEST(normalize_matches_scalar_bits) {
    const int dims[] = {1, 7, 16, 33, 64, 80};
    float acc[5 * 90], out[5 * 100], l[5];
    unsigned seed = 3;
    for (int i = 0; i < 5 * 90; i++) acc[i] = 10.0f * frand(&seed);
    for (int r = 0; r < 5; r++) l[r] = 1.0f + 7.0f * (frand(&seed) + 1.0f);
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const int d = dims[k];
        for (int i = 0; i < 5 * 100; i++) out[i] = -1.0f;
        er_att_normalize(acc, 90, 5, d, l, out, 100);
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 100; c++) {
                const float want = c < d ? acc[r * 90 + c] * (1.0f / l[r]) : -1.0f;
                ck_assert_msg(!memcmp(&out[r * 100 + c], &want, sizeof want), "d %d [%d,%d]", d, r, c);
            }
    }
}
END_TEST

static Suite *attention_suite(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("tiled");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plain_long_sequences_match_reference);
    tcase_add_test(tc, bias_and_window_match_reference);
    tcase_add_test(tc, fused_qkv_stride_and_threads);
    tcase_add_test(tc, rope_matches_formula);
    suite_add_tcase(s, tc);
    TCase *kc = tcase_create("kernels"); /* att_kernels.c: CK_RUN_CASE=kernels */
    tcase_set_timeout(kc, 120);
    tcase_add_test(kc, odd_head_dims_match_reference);
    tcase_add_test(kc, kernels_match_reference_odd_shapes);
    tcase_add_test(kc, avx2_equals_avx512_bits);
    tcase_add_test(kc, exp_sum_equals_two_pass_bits);
    tcase_add_test(kc, qk_row_max_matches_scores);
    tcase_add_test(kc, normalize_matches_scalar_bits);
    suite_add_tcase(s, kc);
    return s;
}

ER_CHECK_MAIN(attention_suite)
