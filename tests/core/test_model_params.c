/* er_model_params' head options for the server's TEI routes: raw_embeddings
 * (the Normalize module left to the caller) and token_embeddings (every
 * token's last hidden state, unpooled), against the default load of the same
 * sentence-transformers model (mean pooling + Normalize). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "encoder.h"
#include "model.h"

#define MODEL "tests/fixtures/models/minilm-embed"

static er_model *load(const char *dir, bool raw, bool tokens, er_status want) {
    er_model_params p = er_model_default_params();
    p.raw_embeddings = raw;
    p.token_embeddings = tokens;
    er_model *m = NULL;
    er_err err = {0};
    ck_assert_msg(er_model_load(dir, &p, &m, &err) == want, "%s", err.msg);
    return m;
}

/* The head output of m for one sequence of ids; *n floats. */
static float *run(const er_model *m, const int32_t *ids, int len, size_t *n) {
    er_ctx *ctx = NULL;
    er_ctx_params cp = er_ctx_default_params();
    er_err err = {0};
    ck_assert_int_eq(er_ctx_init(m, &cp, &ctx, &err), ER_OK);
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids};
    int H = er_model_config(m)->hidden_size;
    float *x = malloc((size_t)len * (size_t)H * sizeof *x);
    *n = er_head_out_size(m, &b);
    float *out = malloc(*n * sizeof *out);
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_OK);
    free(x);
    er_ctx_free(ctx);
    return out;
}

START_TEST(raw_and_token_embeddings) {
    static const int32_t ids[] = {2, 17, 40, 3}; /* the fixture's vocabulary is small */
    er_model *def = load(MODEL, false, false, ER_OK), *raw = load(MODEL, true, false, ER_OK),
             *tok = load(MODEL, false, true, ER_OK);
    ck_assert(er_model_config(def)->normalize);
    ck_assert(er_model_config(raw)->normalize); /* still says the model has Normalize */
    ck_assert_int_eq(er_model_config(tok)->head, ER_HEAD_TOKEN_EMBEDDING);
    ck_assert_str_eq(er_head_type_name(ER_HEAD_TOKEN_EMBEDDING), "token_embedding");
    ck_assert(er_head_per_token(ER_HEAD_TOKEN_EMBEDDING));
    int H = er_model_config(def)->hidden_size;
    size_t nd, nr, nt;
    float *d = run(def, ids, 4, &nd), *r = run(raw, ids, 4, &nr), *t = run(tok, ids, 4, &nt);
    ck_assert_uint_eq(nd, (size_t)H);
    ck_assert_uint_eq(nr, (size_t)H);
    ck_assert_uint_eq(nt, 4u * (size_t)H); /* one row per token */
    double norm = 0;
    for (int j = 0; j < H; j++) norm += (double)r[j] * r[j];
    norm = sqrt(norm);
    ck_assert_msg(fabs(norm - 1) > 1e-3, "the raw vector is not unit length (%g)", norm);
    for (int j = 0; j < H; j++) {
        ck_assert_msg(fabs(r[j] / norm - d[j]) < 1e-5, "[%d] raw/|raw| %g vs %g", j, r[j] / norm, d[j]);
        double mean = 0; /* mean pooling of the token rows is the raw vector */
        for (int k = 0; k < 4; k++) mean += t[k * H + j];
        ck_assert_msg(fabs(mean / 4 - r[j]) < 1e-5, "[%d] mean of rows %g vs %g", j, mean / 4, r[j]);
    }
    free(d), free(r), free(t);
    er_model_free(def), er_model_free(raw), er_model_free(tok);
    /* only an embedding model can be loaded unpooled */
    load("tests/fixtures/models/bert-seqcls", false, true, ER_ERR_INVALID_ARG);
}
END_TEST

static Suite *model_params_suite(void) {
    Suite *s = suite_create("model_params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, raw_and_token_embeddings);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(model_params_suite)
