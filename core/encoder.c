#include "encoder.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "model_internal.h"
#include "pool.h"

struct er_ctx {
    er_ctx_params p;
    int hidden, inter, width; /* capacities: hidden, intermediate, max(hidden, embedding) */
    float *q, *k, *v;  /* [max_tokens, hidden] projections */
    float *att;        /* [max_tokens, hidden] attention context */
    float *tmp;        /* [max_tokens, width] projection outputs, pre-projection embeddings */
    float *ffn;        /* [max_tokens, intermediate] */
    float *scores;     /* [n_threads, max_seq_len, max_seq_len] one head's attention
                          weights per thread */
    float *rows;       /* [max_seqs, hidden] gathered CLS rows */
    float *rows2;      /* [max_seqs, hidden] head dense output */
    int *offsets;      /* [max_seqs + 1] first token of each sequence */
    er_pool *pool;     /* n_threads - 1 helper threads */
};

er_ctx_params er_ctx_default_params(void) {
    er_ctx_params p = {.max_tokens = 4096, .max_seqs = 64, .max_seq_len = 512, .n_threads = 1};
    return p;
}

int er_batch_tokens(const er_batch *b) {
    int n = 0;
    for (int s = 0; s < b->n_seqs; s++) n += b->seq_len[s];
    return n;
}

void er_ctx_free(er_ctx *c) {
    if (!c) return;
    free(c->q); free(c->k); free(c->v); free(c->att); free(c->tmp); free(c->ffn);
    free(c->scores); free(c->rows); free(c->rows2); free(c->offsets);
    er_pool_free(c->pool);
    free(c);
}

static float *alloc_floats(size_t a, size_t b) { return malloc(a * b * sizeof(float) + 64); }

er_status er_ctx_init(const er_model *m, const er_ctx_params *params, er_ctx **out, er_err *err) {
    *out = NULL;
    er_ctx_params p = params ? *params : er_ctx_default_params();
    if (p.n_threads == 0) p.n_threads = 1; /* params written before the field existed */
    if (p.max_tokens < 1 || p.max_seqs < 1 || p.max_seq_len < 1 || p.n_threads < 1)
        return er_set(err, ER_ERR_INVALID_ARG, "ctx params must be positive (tokens %d, seqs %d, "
                      "seq len %d, threads %d)", p.max_tokens, p.max_seqs, p.max_seq_len,
                      p.n_threads);
    const er_config *c = &m->cfg;
    if (p.max_seq_len > c->max_positions) p.max_seq_len = c->max_positions;
    if (p.max_seq_len > p.max_tokens) p.max_seq_len = p.max_tokens;
    er_ctx *x = calloc(1, sizeof *x);
    if (!x) return er_set(err, ER_ERR_NOMEM, "out of memory");
    x->p = p;
    x->hidden = c->hidden_size;
    x->inter = c->intermediate_size;
    x->width = c->embedding_size > c->hidden_size ? c->embedding_size : c->hidden_size;
    size_t T = (size_t)p.max_tokens, H = (size_t)x->hidden;
    x->q = alloc_floats(T, H);
    x->k = alloc_floats(T, H);
    x->v = alloc_floats(T, H);
    x->att = alloc_floats(T, H);
    x->tmp = alloc_floats(T, (size_t)x->width);
    x->ffn = alloc_floats(T, (size_t)x->inter);
    x->scores = alloc_floats((size_t)p.n_threads * (size_t)p.max_seq_len, (size_t)p.max_seq_len);
    x->rows = alloc_floats((size_t)p.max_seqs, H);
    x->rows2 = alloc_floats((size_t)p.max_seqs, H);
    x->offsets = malloc(((size_t)p.max_seqs + 1) * sizeof *x->offsets);
    if (!x->q || !x->k || !x->v || !x->att || !x->tmp || !x->ffn || !x->scores || !x->rows ||
        !x->rows2 || !x->offsets) {
        er_ctx_free(x);
        return er_set(err, ER_ERR_NOMEM, "out of memory for worker scratch (%d tokens)",
                      p.max_tokens);
    }
    er_status st = er_pool_init(p.n_threads, &x->pool, err);
    if (st != ER_OK) {
        er_ctx_free(x);
        return st;
    }
    *out = x;
    return ER_OK;
}

bool er_ctx_fits(const er_ctx *x, const er_model *m) {
    const er_config *c = &m->cfg;
    return c->hidden_size <= x->hidden && c->intermediate_size <= x->inter &&
           c->embedding_size <= x->width;
}

/* Longest sequence the model's position table allows. */
static int model_max_len(const er_config *c) {
    if (c->arch == ER_ARCH_ROBERTA) return c->max_positions - c->pad_token_id - 1;
    return c->max_positions;
}

er_status er_batch_check(const er_model *m, const er_ctx *x, const er_batch *b, er_err *err) {
    const er_config *c = &m->cfg;
    if (!er_ctx_fits(x, m))
        return er_set(err, ER_ERR_INVALID_ARG, "worker scratch was sized for a smaller model");
    if (b->n_seqs < 1 || b->n_seqs > x->p.max_seqs)
        return er_set(err, ER_ERR_CAPACITY, "batch of %d sequences; this worker takes 1 to %d",
                      b->n_seqs, x->p.max_seqs);
    int max_len = model_max_len(c) < x->p.max_seq_len ? model_max_len(c) : x->p.max_seq_len;
    long total = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        int n = b->seq_len[s];
        if (n < 1 || n > max_len)
            return er_set(err, ER_ERR_CAPACITY, "sequence %d has %d tokens; the limit is 1 to %d",
                          s, n, max_len);
        total += n;
    }
    if (total > x->p.max_tokens)
        return er_set(err, ER_ERR_CAPACITY, "batch of %ld tokens exceeds this worker's %d", total,
                      x->p.max_tokens);
    for (long t = 0; t < total; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= c->vocab_size)
            return er_set(err, ER_ERR_INVALID_ARG, "token %ld: id %d is outside the vocabulary "
                          "[0, %d)", t, b->ids[t], c->vocab_size);
        int ty = b->type_ids ? b->type_ids[t] : 0;
        int n_types = c->type_vocab_size > 0 ? c->type_vocab_size : 1;
        if (ty < 0 || ty >= n_types)
            return er_set(err, ER_ERR_INVALID_ARG, "token %ld: token type %d is outside [0, %d)",
                          t, ty, n_types);
    }
    return ER_OK;
}

er_status er_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out, er_err *err) {
    const er_config *c = &m->cfg;
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    if (m->skip_below > 0)
        return er_set(err, ER_ERR_INVALID_ARG, "this model was loaded without its embeddings");
    const int E = c->embedding_size, T = er_batch_tokens(b);
    const bool project = m->emb_project.w != NULL;
    float *e = project ? x->tmp : out; // [T, E]
    int t = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        int non_pad = 0;
        for (int i = 0; i < b->seq_len[s]; i++, t++) {
            int id = b->ids[t];
            int pos = i;
            if (c->arch == ER_ARCH_ROBERTA) {
                /* create_position_ids_from_input_ids: padding_idx + running count of
                 * non-pad tokens; a pad id itself sits at padding_idx. */
                pos = c->pad_token_id;
                if (id != c->pad_token_id) pos += ++non_pad;
            }
            const float *w = m->word_emb + (size_t)id * E;
            const float *p = m->pos_emb + (size_t)pos * E;
            float *row = e + (size_t)t * E;
            if (m->type_emb) {
                const float *ty = m->type_emb + (size_t)(b->type_ids ? b->type_ids[t] : 0) * E;
                for (int j = 0; j < E; j++) row[j] = w[j] + ty[j] + p[j];
            } else {
                for (int j = 0; j < E; j++) row[j] = w[j] + p[j];
            }
        }
    }
    er_add_layernorm(e, NULL, NULL, m->emb_ln.gamma, m->emb_ln.beta, c->layer_norm_eps, T, E, e);
    if (project)
        er_linear(e, T, E, m->emb_project.w, m->emb_project.b, c->hidden_size, out);
    return ER_OK;
}

/* Multi-head self-attention of each sequence over its own tokens, one
 * (sequence, head) pair per pool item.
 * q, k, v, att: [T, H]; head h of token t is at row t, columns [h*d, (h+1)*d). */
typedef struct {
    er_ctx *x;
    const er_batch *b;
    int H, n_heads, d;
    float scale;
} attention_job;

static void attention_item(void *arg, int item, int thread) {
    const attention_job *j = arg;
    er_ctx *x = j->x;
    const int s = item / j->n_heads, h = item % j->n_heads, H = j->H, d = j->d;
    const int n = j->b->seq_len[s];
    const size_t at = (size_t)x->offsets[s] * H + (size_t)h * d;
    const size_t N = (size_t)x->p.max_seq_len;
    float *S = x->scores + (size_t)thread * N * N; // [n, n]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, j->scale, x->q + at, H,
                x->k + at, H, 0.0f, S, n);
    er_softmax_rows(S, n, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0f, S, n, x->v + at, H,
                0.0f, x->att + at, H);
}

static void attention(er_ctx *x, const er_config *c, const er_batch *b) {
    attention_job j = {.x = x, .b = b, .H = c->hidden_size, .n_heads = c->num_heads,
                       .d = c->hidden_size / c->num_heads};
    j.scale = 1.0f / sqrtf((float)j.d);
    int off = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        x->offsets[s] = off;
        off += b->seq_len[s];
    }
    /* Each pool thread runs whole small GEMMs; OpenBLAS threading inside them
     * would only contend (see er_ctx_params.n_threads). */
    int blas_threads = 1;
    if (x->p.n_threads > 1) {
        blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    er_pool_run(x->pool, attention_item, &j, b->n_seqs * j.n_heads);
    if (x->p.n_threads > 1) openblas_set_num_threads(blas_threads);
}

/* Row passes split into one contiguous chunk per pool thread. */
typedef struct {
    float *x;                  /* bias_act: rows changed in place */
    const float *in;           /* add_layernorm: the sublayer output */
    const float *gamma, *beta, *bias;
    float eps;
    int n, d, chunks;
    er_act act;
} rows_job;

static void rows_range(const rows_job *j, int item, int *r0, int *r1) {
    *r0 = (int)((long)j->n * item / j->chunks);
    *r1 = (int)((long)j->n * (item + 1) / j->chunks);
}

static void bias_act_item(void *arg, int item, int thread) {
    (void)thread;
    const rows_job *j = arg;
    int r0, r1;
    rows_range(j, item, &r0, &r1);
    er_bias_act(j->x + (size_t)r0 * j->d, r1 - r0, j->d, j->bias, j->act);
}

static void add_layernorm_item(void *arg, int item, int thread) {
    (void)thread;
    const rows_job *j = arg; /* x = LayerNorm(in + x + bias): x is the residual stream */
    int r0, r1;
    rows_range(j, item, &r0, &r1);
    size_t o = (size_t)r0 * j->d;
    er_add_layernorm(j->in + o, j->x + o, j->bias, j->gamma, j->beta, j->eps, r1 - r0, j->d,
                     j->x + o);
}

static void par_bias_act(er_ctx *x, float *v, int n, int d, const float *b, er_act act) {
    rows_job j = {.x = v, .bias = b, .n = n, .d = d, .act = act,
                  .chunks = er_pool_threads(x->pool)};
    er_pool_run(x->pool, bias_act_item, &j, j.chunks);
}

/* hidden = LayerNorm(v + hidden + bias) */
static void par_add_layernorm(er_ctx *x, const float *v, float *hidden, const float *bias,
                              const er_ln *ln, float eps, int n, int d) {
    rows_job j = {.in = v, .x = hidden, .bias = bias, .gamma = ln->gamma,
                  .beta = ln->beta, .eps = eps, .n = n, .d = d, .chunks = er_pool_threads(x->pool)};
    er_pool_run(x->pool, add_layernorm_item, &j, j.chunks);
}

er_status er_layers(const er_model *m, er_ctx *x, const er_batch *b, int from, int to,
                    float *hidden, er_err *err) {
    const er_config *c = &m->cfg;
    if (from < m->skip_below || from > to || to > c->num_layers)
        return er_set(err, ER_ERR_INVALID_ARG, "layer range [%d, %d) is outside [%d, %d]", from,
                      to, m->skip_below, c->num_layers);
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    const int T = er_batch_tokens(b), H = c->hidden_size, F = c->intermediate_size;
    const float eps = c->layer_norm_eps;
    for (int l = from; l < to; l++) {
        const er_layer_w *L = &m->layers[l];
        er_linear(hidden, T, H, L->q.w, L->q.b, H, x->q); // [T, H]
        er_linear(hidden, T, H, L->k.w, L->k.b, H, x->k); // [T, H]
        er_linear(hidden, T, H, L->v.w, L->v.b, H, x->v); // [T, H]
        attention(x, c, b);                              // att [T, H]
        er_linear(x->att, T, H, L->o.w, NULL, H, x->tmp); // [T, H]
        par_add_layernorm(x, x->tmp, hidden, L->o.b, &L->attn_ln, eps, T, H);
        er_linear(hidden, T, H, L->ffn_in.w, NULL, F, x->ffn); // [T, F]
        par_bias_act(x, x->ffn, T, F, L->ffn_in.b, c->act);
        er_linear(x->ffn, T, F, L->ffn_out.w, NULL, H, x->tmp); // [T, H]
        par_add_layernorm(x, x->tmp, hidden, L->ffn_out.b, &L->out_ln, eps, T, H);
    }
    return ER_OK;
}

size_t er_head_out_size(const er_model *m, const er_batch *b) {
    const er_config *c = &m->cfg;
    size_t w = (size_t)er_model_head_width(m);
    bool per_token = c->head == ER_HEAD_TOKEN_CLASSIFICATION || c->head == ER_HEAD_QUESTION_ANSWERING;
    return w * (per_token ? (size_t)er_batch_tokens(b) : (size_t)b->n_seqs);
}

static void head_activation(er_head_act act, er_act hidden_act, float *v, int n) {
    switch (act) {
    case ER_HEAD_ACT_NONE: break;
    case ER_HEAD_ACT_TANH: er_tanh(v, n); break;
    case ER_HEAD_ACT_RELU: er_relu(v, n); break;
    case ER_HEAD_ACT_GELU: er_gelu_erf(v, n); break;
    case ER_HEAD_ACT_HIDDEN:
        if (hidden_act == ER_ACT_GELU) er_gelu_erf(v, n);
        else if (hidden_act == ER_ACT_GELU_TANH) er_gelu_tanh(v, n);
        else er_relu(v, n);
        break;
    }
}

/* Sentence-transformers pooling over each sequence's tokens, into out[S, H]. */
static void pool(const er_config *c, const er_batch *b, const float *h, float *out) {
    const int H = c->hidden_size;
    int off = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        const int n = b->seq_len[s];
        const float *first = h + (size_t)off * H;
        float *o = out + (size_t)s * H;
        memcpy(o, first, (size_t)H * sizeof *o);
        if (c->pooling == ER_POOL_MEAN) {
            for (int i = 1; i < n; i++)
                for (int j = 0; j < H; j++) o[j] += first[(size_t)i * H + j];
            for (int j = 0; j < H; j++) o[j] /= (float)n;
        } else if (c->pooling == ER_POOL_MAX) {
            for (int i = 1; i < n; i++)
                for (int j = 0; j < H; j++) {
                    float v = first[(size_t)i * H + j];
                    o[j] = v > o[j] ? v : o[j];
                }
        }
        if (c->normalize) er_l2_normalize(o, H);
        off += n;
    }
}

er_status er_head(const er_model *m, er_ctx *x, const er_batch *b, const float *h, float *out,
                  er_err *err) {
    const er_config *c = &m->cfg;
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    const int T = er_batch_tokens(b), H = c->hidden_size, S = b->n_seqs;
    switch (c->head) {
    case ER_HEAD_EMBEDDING:
        pool(c, b, h, out);
        return ER_OK;
    case ER_HEAD_QUESTION_ANSWERING:
        er_linear(h, T, H, m->head_out.w, m->head_out.b, 2, out); // [T, 2]
        return ER_OK;
    case ER_HEAD_TOKEN_CLASSIFICATION:
        if (m->head_dense.w) { /* ELECTRA discriminator: dense + act on every token */
            er_linear(h, T, H, m->head_dense.w, m->head_dense.b, H, x->tmp); // [T, H]
            head_activation(m->head_act, c->act, x->tmp, T * H);
            h = x->tmp;
        }
        er_linear(h, T, H, m->head_out.w, m->head_out.b, m->head_out.out, out); // [T, labels]
        return ER_OK;
    case ER_HEAD_SEQUENCE_CLASSIFICATION: {
        int off = 0;
        for (int s = 0; s < S; s++) { // rows [S, H]: each sequence's first (CLS / <s>) token
            memcpy(x->rows + (size_t)s * H, h + (size_t)off * H, (size_t)H * sizeof(float));
            off += b->seq_len[s];
        }
        er_linear(x->rows, S, H, m->head_dense.w, m->head_dense.b, H, x->rows2); // [S, H]
        head_activation(m->head_act, c->act, x->rows2, S * H);
        er_linear(x->rows2, S, H, m->head_out.w, m->head_out.b, m->head_out.out, out); // [S, labels]
        return ER_OK;
    }
    }
    return er_set(err, ER_ERR_INTERNAL, "unknown head type %d", (int)c->head);
}

er_status er_forward(const er_model *m, er_ctx *x, const er_batch *b, float *hidden, float *out,
                     er_err *err) {
    er_status st = er_embed(m, x, b, hidden, err);
    if (st == ER_OK) st = er_layers(m, x, b, 0, m->cfg.num_layers, hidden, err);
    if (st == ER_OK) st = er_head(m, x, b, hidden, out, err);
    return st;
}
