/* The heads beyond a linear layer (core/heads.h), past what the goldens of
 * test_encoder check: the SPLADE head's tiling across sequences and
 * vocabulary blocks, the Dense modules' chunking over a small ctx, output
 * widths, an upper-only model with a tied decoder, and the loader's
 * refusals for Dense and masked-LM weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "encoder.h"

#define MODELS "tests/fixtures/models/"

static er_model *load(const char *name, int skip_below) {
    er_model_params mp = er_model_default_params();
    mp.skip_below_layer = skip_below;
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(name, &mp, &m, &err) == ER_OK, "%s: %s", name, err.msg);
    return m;
}

static double max_abs(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= w)) w = e;
    }
    return w;
}

/* Three sequences of 100, 60 and 37 tokens: the 128-token logit tiles
 * straddle sequence boundaries, and the 1100-word vocabulary spans two
 * 1024-entry blocks.  Each sequence's row equals its row computed alone. */
START_TEST(sparse_tiles_across_sequences) {
    er_model *m = load(MODELS "bert-splade", 0);
    const er_config *c = er_model_config(m);
    ck_assert_int_eq(er_model_head_width(m), c->vocab_size);
    enum { S = 3, T = 197 };
    int lens[S] = {100, 60, 37};
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)(5 + (i * 131 + 7) % (c->vocab_size - 5));
    ids[0] = 2;
    er_batch all = {.n_seqs = S, .seq_len = lens, .ids = ids, .type_ids = NULL};
    er_ctx *ctx;
    er_err err;
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, &err), ER_OK);
    const size_t V = (size_t)c->vocab_size, H = (size_t)c->hidden_size;
    ck_assert_uint_eq(er_head_out_size(m, &all), S * V);
    float *x = malloc(T * H * sizeof *x), *out = malloc(S * V * sizeof *out);
    float *x1 = malloc(T * H * sizeof *x1), *o1 = malloc(V * sizeof *o1);
    ck_assert_int_eq(er_forward(m, ctx, &all, x, out, &err), ER_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < S * V; i++) {
        ck_assert_msg(out[i] >= 0 && isfinite(out[i]), "entry %zu = %g", i, out[i]);
        zeros += out[i] == 0;
    }
    ck_assert_uint_gt(zeros, 0);        /* relu cut some words ... */
    ck_assert_uint_lt(zeros, S * V / 2); /* ... not most */
    int off = 0;
    for (int s = 0; s < S; s++) {
        er_batch one = {.n_seqs = 1, .seq_len = &lens[s], .ids = ids + off, .type_ids = NULL};
        ck_assert_int_eq(er_forward(m, ctx, &one, x1, o1, &err), ER_OK);
        double e = max_abs(o1, out + (size_t)s * V, V);
        ck_assert_msg(e <= 1e-5, "sequence %d alone vs in the batch: %g", s, e);
        off += lens[s];
    }
    free(x); free(out); free(x1); free(o1);
    er_ctx_free(ctx);
    er_model_free(m);
}
END_TEST

/* A model loaded without its lower layers still has its decoder (tied to
 * the word embeddings, which it then does not otherwise load): the upper
 * part and head on recycled activations equal the full forward bit for bit. */
START_TEST(sparse_upper_only_is_exact) {
    er_model *full = load(MODELS "bert-splade", 0), *upper = load(MODELS "bert-splade", 1);
    const er_config *c = er_model_config(full);
    er_ctx *ctx;
    er_err err;
    ck_assert_int_eq(er_ctx_init(full, NULL, &ctx, &err), ER_OK);
    int len = 12;
    int32_t ids[12] = {2, 9, 80, 700, 1099, 5, 6, 7, 300, 301, 40, 3};
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    const size_t V = (size_t)c->vocab_size;
    float x[12 * 32], y[12 * 32], *o1 = malloc(V * sizeof *o1), *o2 = malloc(V * sizeof *o2);
    ck_assert_int_eq(er_forward(full, ctx, &b, x, o1, &err), ER_OK);
    ck_assert_int_eq(er_embed(full, ctx, &b, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(full, ctx, &b, 0, 1, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(upper, ctx, &b, 1, c->num_layers, y, &err), ER_OK);
    ck_assert_int_eq(er_head(upper, ctx, &b, y, o2, &err), ER_OK);
    ck_assert(memcmp(o1, o2, V * sizeof *o1) == 0);
    free(o1); free(o2);
    er_ctx_free(ctx);
    er_model_free(full);
    er_model_free(upper);
}
END_TEST

/* 20 sentences go through the Dense modules 16 (ER_DENSE_ROWS) at a time:
 * each row equals the sentence run alone, on a ctx of one token (the Dense
 * scratch does not depend on the ctx's token capacity). */
START_TEST(dense_chunks) {
    er_model *m = load(MODELS "bert-embed-dense", 0);
    ck_assert_int_eq(er_model_head_width(m), 20);
    enum { S = 20 };
    er_ctx_params one_tok = {.max_tokens = 1, .max_seqs = 1, .max_seq_len = 1, .n_threads = 1};
    er_ctx *c1, *cl;
    er_err err;
    ck_assert_int_eq(er_ctx_init(m, &one_tok, &c1, &err), ER_OK);
    ck_assert(er_ctx_fits(c1, m));
    ck_assert_int_eq(er_ctx_init(m, NULL, &cl, &err), ER_OK);
    int lens[S];
    int32_t ids[S];
    for (int s = 0; s < S; s++) lens[s] = 1, ids[s] = (int32_t)(5 + 7 * s);
    er_batch b = {.n_seqs = S, .seq_len = lens, .ids = ids, .type_ids = NULL};
    float x[S * 36], out[S * 20], o1[20];
    ck_assert_int_eq(er_forward(m, cl, &b, x, out, &err), ER_OK);
    for (int s = 0; s < S; s++) {
        er_batch one = {.n_seqs = 1, .seq_len = &lens[s], .ids = ids + s, .type_ids = NULL};
        ck_assert_int_eq(er_forward(m, c1, &one, x, o1, &err), ER_OK);
        double e = max_abs(o1, out + s * 20, 20);
        ck_assert_msg(e <= 1e-6, "sentence %d alone vs in the batch: %g", s, e);
        double n2 = 0; /* Normalize ran after the last Dense */
        for (int j = 0; j < 20; j++) n2 += (double)o1[j] * o1[j];
        ck_assert_double_eq_tol(n2, 1.0, 1e-5);
    }
    er_ctx_free(c1);
    er_ctx_free(cl);
    er_model_free(m);
}
END_TEST

START_TEST(head_widths) {
    static const struct { const char *name; int width; } W[] = {
        {"bert-embed-dense", 20}, {"bert-embed-lasttoken", 16}, {"bert-embed-wmean", 28},
        {"minilm-embed", 36}, {"bert-splade", 1100}, {"roberta-mlm", 300},
        {"distilbert-mlm", 260},
    };
    for (size_t i = 0; i < sizeof W / sizeof W[0]; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, MODELS "%s", W[i].name);
        er_model *m = load(dir, 0);
        ck_assert_msg(er_model_head_width(m) == W[i].width, "%s", W[i].name);
        er_model_free(m);
    }
}
END_TEST

/* A copy of fixture `from` in a fresh directory, then `edit` run in it. */
static void variant(char *dir, size_t cap, const char *from, const char *edit) {
    snprintf(dir, cap, "/tmp/erserve-heads-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r " MODELS "%s/. %s/ && cd %s && %s", from, dir, dir, edit);
    ck_assert_int_eq(system(cmd), 0);
}

static void expect_refused(const char *from, const char *edit, er_status want,
                           const char *named) {
    char dir[64], cmd[128];
    variant(dir, sizeof dir, from, edit);
    er_model *m = NULL;
    er_err err;
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), want);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, named), "%s: %s", edit, err.msg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(loader_refusals) {
    /* a Dense module saved by older sentence-transformers: pickle only */
    expect_refused("bert-embed-dense", "mv 2_Dense/model.safetensors 2_Dense/pytorch_model.bin",
                   ER_ERR_NOT_FOUND, "save_file");
    expect_refused("bert-embed-dense", "rm 3_Dense/model.safetensors", ER_ERR_NOT_FOUND, "3_Dense");
    /* the config says 21 outputs, the weights have 20 */
    expect_refused("bert-embed-dense", "sed -i 's/\"out_features\": 20/\"out_features\": 21/' "
                   "3_Dense/config.json", ER_ERR_MISMATCH, "linear.weight");
    expect_refused("bert-embed-dense", "sed -i 's/\"in_features\": 56/\"in_features\": 55/' "
                   "3_Dense/config.json", ER_ERR_FORMAT, "in_features");
    /* lasttoken's Dense has no bias; claiming one asks for a missing tensor */
    expect_refused("bert-embed-lasttoken", "sed -i 's/\"bias\": false/\"bias\": true/' "
                   "2_Dense/config.json", ER_ERR_NOT_FOUND, "linear.bias");
    /* masked-LM heads (tensor names changed in place, same length) */
    expect_refused("bert-splade", "sed -i 's/transform.dense.weight/transform.Dense.weight/' "
                   "model.safetensors", ER_ERR_NOT_FOUND, "cls.predictions.transform.dense.weight");
    expect_refused("bert-splade", "sed -i 's/cls.predictions.bias/cls.predictions.Bias/' "
                   "model.safetensors", ER_ERR_NOT_FOUND, "cls.predictions.bias");
    /* tie_word_embeddings false: the decoder must be in the checkpoint */
    expect_refused("roberta-mlm", "sed -i 's/lm_head.decoder.weight/lm_head.decoder.Weight/' "
                   "model.safetensors", ER_ERR_NOT_FOUND, "lm_head.decoder.weight");
    expect_refused("distilbert-mlm", "sed -i 's/\"vocab_size\": 260/\"vocab_size\": 261/' "
                   "config.json", ER_ERR_MISMATCH, "word_embeddings");
}
END_TEST

static Suite *heads_suite(void) {
    Suite *s = suite_create("heads");
    TCase *t = tcase_create("heads");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, sparse_tiles_across_sequences);
    tcase_add_test(t, sparse_upper_only_is_exact);
    tcase_add_test(t, dense_chunks);
    tcase_add_test(t, head_widths);
    tcase_add_test(t, loader_refusals);
    suite_add_tcase(s, t);
    return s;
}

ER_CHECK_MAIN(heads_suite)
