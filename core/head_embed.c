/* The sentence-embedding head as sentence-transformers computes it:
 * Pooling (models/Pooling.py), then the Dense modules (models/Dense.py),
 * then Normalize.  Batches are packed, so there is no padding to mask. */
#include "heads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels.h"

/* One sequence's token rows first[n, H] pooled into o[H]. */
static void pool_one(er_pooling mode, const float *first, int n, int H, float *o) {
    const float *last = first + (size_t)(n - 1) * H;
    switch (mode) {
    case ER_POOLING_CLS: memcpy(o, first, (size_t)H * sizeof *o); return;
    case ER_POOLING_LAST_TOKEN: memcpy(o, last, (size_t)H * sizeof *o); return;
    case ER_POOLING_MAX:
        memcpy(o, first, (size_t)H * sizeof *o);
        for (int i = 1; i < n; i++)
            for (int j = 0; j < H; j++) {
                float v = first[(size_t)i * H + j];
                o[j] = v > o[j] ? v : o[j];
            }
        return;
    case ER_POOLING_MEAN:
    case ER_POOLING_MEAN_SQRT_LEN: {
        memcpy(o, first, (size_t)H * sizeof *o);
        for (int i = 1; i < n; i++)
            for (int j = 0; j < H; j++) o[j] += first[(size_t)i * H + j];
        float d = mode == ER_POOLING_MEAN ? (float)n : sqrtf((float)n);
        for (int j = 0; j < H; j++) o[j] /= d;
        return;
    }
    case ER_POOLING_WEIGHTED_MEAN: { /* token i weighs i + 1 (positions from 1) */
        memset(o, 0, (size_t)H * sizeof *o);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < H; j++) o[j] += (float)(i + 1) * first[(size_t)i * H + j];
        float d = (float)((double)n * (n + 1) / 2);
        for (int j = 0; j < H; j++) o[j] /= d;
        return;
    }
    }
}

static void dense_activation(er_dense_act act, float *v, int n) {
    switch (act) {
    case ER_DENSE_IDENTITY: break;
    case ER_DENSE_TANH: er_tanh(v, n); break;
    case ER_DENSE_RELU: er_relu(v, n); break;
    case ER_DENSE_GELU: er_gelu_erf(v, n); break;
    case ER_DENSE_SIGMOID:
        for (int i = 0; i < n; i++) v[i] = 1.0f / (1.0f + expf(-v[i]));
        break;
    }
}

int er_head_embedding_max_width(const er_config *c) {
    int w = c->hidden_size;
    for (int i = 0; i < c->st.n_dense; i++)
        if (c->st.dense[i].out_features > w) w = c->st.dense[i].out_features;
    return w;
}

/* n pooled sentence rows [n, H] through the Dense modules, from one half of
 * ctx->dense_buf into the other, the last module into out [n, W]. */
static void dense_chunk(const er_model *m, er_ctx *x, const float *pooled, int n, float *out) {
    const er_config *c = &m->cfg;
    const int nd = c->st.n_dense;
    float *bufs[2] = {x->dense_buf, x->dense_buf + (size_t)ER_DENSE_ROWS * x->dense_width};
    const float *src = pooled;
    for (int d = 0; d < nd; d++) {
        const er_lin *l = &m->heads.dense[d];
        float *y = d == nd - 1 ? out : bufs[(d + 1) % 2]; // [n, out_features]
        er_lin_apply(l, src, n, y);
        dense_activation(c->st.dense[d].act, y, n * l->out);
        src = y;
    }
}

void er_head_embedding(const er_model *m, er_ctx *x, const er_batch *b, const float *h,
                       float *out) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, W = er_model_head_width(m), S = b->n_seqs;
    const int chunk = c->st.n_dense ? ER_DENSE_ROWS : S;
    int off = 0;
    for (int s0 = 0; s0 < S; s0 += chunk) {
        const int n = chunk < S - s0 ? chunk : S - s0;
        float *pooled = c->st.n_dense ? x->dense_buf : out + (size_t)s0 * W; // [n, H]
        for (int i = 0; i < n; i++) {
            const int len = b->seq_len[s0 + i];
            pool_one(c->pooling, h + (size_t)off * H, len, H, pooled + (size_t)i * H);
            off += len;
        }
        if (c->st.n_dense) dense_chunk(m, x, pooled, n, out + (size_t)s0 * W); // [n, W]
        if (c->normalize && !m->raw_embeddings) /* else the caller normalises */
            for (int i = 0; i < n; i++) er_l2_normalize(out + (size_t)(s0 + i) * W, W);
    }
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Dense module i: its file, then linear.weight [out, in] and linear.bias. */
static er_status load_dense(er_model *m, const char *dir, int i, er_err *err) {
    const er_st_dense *d = &m->cfg.st.dense[i];
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/%s", dir, d->path);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    if (!is_file(path)) {
        snprintf(path, sizeof path, "%s/pytorch_model.bin", sub);
        if (is_file(path)) return er_refuse_pickle(sub, err);
        return er_set(err, ER_ERR_NOT_FOUND, "Dense module %s: no model.safetensors", sub);
    }
    er_status st = er_st_open(path, &m->heads.files[i], err);
    er_lin *l = &m->heads.dense[i];
    if (st == ER_OK)
        st = er_load_tensor_in(m, m->heads.files[i], "linear.weight", d->out_features,
                               d->in_features, &l->w, err);
    if (st == ER_OK && d->bias)
        st = er_load_tensor_in(m, m->heads.files[i], "linear.bias", d->out_features, 0, &l->b, err);
    l->out = d->out_features;
    l->in = d->in_features;
    if (st != ER_OK && err && strstr(err->msg, d->path) == NULL) {
        char inner[ER_ERR_MSG_MAX];
        memcpy(inner, err->msg, sizeof inner);
        er_set(err, st, "Dense module %s: %s", d->path, inner);
    }
    return st;
}

er_status er_load_st_dense(er_model *m, const char *dir, er_err *err) {
    if (m->cfg.head != ER_HEAD_EMBEDDING) return ER_OK;
    for (int i = 0; i < m->cfg.st.n_dense; i++) {
        er_status st = load_dense(m, dir, i, err);
        if (st != ER_OK) return st;
    }
    return ER_OK;
}
