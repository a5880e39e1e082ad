/* ModernBERT's forward (modernbert.h), on the ctx's scratch: no allocation.
 * The fused Wqkv runs as three GEMMs on its row blocks (views made at load)
 * straight into the ctx's q, k, v (one, er_qkv_apply, when attention_bias
 * lets er_model_pack fuse them); Wi likewise as its input and gate halves
 * into ffn and glu (the gated families' [T, F] buffer).  Row passes (norms, residual adds,
 * GeGLU, rotary) are split over the ctx's parallel-for team. */
#include "modernbert.h"

#include <math.h>
#include <string.h>

#include "kernels.h"

static void activate(er_act act, float *v, int n) {
    switch (act) {
    case ER_ACT_GELU: er_gelu_erf(v, n); break;
    case ER_ACT_GELU_TANH: er_gelu_tanh(v, n); break;
    case ER_ACT_RELU: er_relu(v, n); break;
    }
}

/* Rows [r0, r1) of item `item` when n rows are split into `chunks`. */
static void chunk_rows(int n, int chunks, int item, int *r0, int *r1) {
    *r0 = (int)((long)n * item / chunks);
    *r1 = (int)((long)n * (item + 1) / chunks);
}

typedef struct {
    float *x;          /* [n, d] the residual stream */
    const float *add;  /* [n, d] or NULL */
    const er_ln *ln;   /* NULL (or no gamma): no norm */
    float *out;        /* [n, d] the norm's output; may be x */
    float eps;
    int n, d, chunks;
} add_norm_job;

static void add_norm_item(void *arg, int item, int thread) {
    (void)thread;
    const add_norm_job *j = arg;
    int r0, r1;
    chunk_rows(j->n, j->chunks, item, &r0, &r1);
    const size_t o = (size_t)r0 * j->d, len = (size_t)(r1 - r0) * j->d;
    if (j->add)
        for (size_t i = 0; i < len; i++) j->x[o + i] += j->add[o + i];
    if (j->ln && j->ln->gamma)
        er_add_layernorm(j->x + o, NULL, NULL, j->ln->gamma, j->ln->beta, j->eps, r1 - r0, j->d,
                         j->out + o);
}

/* x[n, d] += add (when not NULL), then out[n, d] = LayerNorm(x) (when ln
 * has a weight; its beta may be NULL). */
static void add_norm(er_ctx *c, float *x, const float *add, const er_ln *ln, float eps, int n,
                     int d, float *out) {
    add_norm_job j = {.x = x, .add = add, .ln = ln, .out = out, .eps = eps, .n = n, .d = d,
                      .chunks = er_par_threads(c->par)};
    er_par_run(c->par, add_norm_item, &j, j.chunks);
}

typedef struct {
    float *in;         /* [n, ld] GeGLU input; columns [c0, c0 + cols) updated */
    const float *gate; /* [n, cols] */
    int ld, c0, cols, n, chunks;
    er_act act;
} glu_job;

static void glu_item(void *arg, int item, int thread) {
    (void)thread;
    const glu_job *j = arg;
    int r0, r1;
    chunk_rows(j->n, j->chunks, item, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        float *v = j->in + (size_t)r * j->ld + j->c0; // [cols]
        const float *g = j->gate + (size_t)r * j->cols; // [cols]
        activate(j->act, v, j->cols);
        for (int i = 0; i < j->cols; i++) v[i] *= g[i];
    }
}

typedef struct {
    const er_rope_table *t;
    float *q, *k;      /* [n, ld] */
    const int32_t *pos; /* [n] */
    int ld, n, n_heads, head_dim, chunks;
} rope_job;

static void rope_item(void *arg, int item, int thread) {
    (void)thread;
    const rope_job *j = arg;
    int r0, r1;
    chunk_rows(j->n, j->chunks, item, &r0, &r1);
    const size_t o = (size_t)r0 * j->ld;
    er_rope_apply(j->t, j->q + o, j->ld, r1 - r0, j->n_heads, j->head_dim, j->pos + r0);
    er_rope_apply(j->t, j->k + o, j->ld, r1 - r0, j->n_heads, j->head_dim, j->pos + r0);
}

void er_modernbert_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, T = er_batch_tokens(b);
    for (int t = 0; t < T; t++) { // out [T, H] = tok_embeddings[ids]
        float *row = out + (size_t)t * H; // [H]
        if (m->word_emb) memcpy(row, m->word_emb + (size_t)b->ids[t] * H, (size_t)H * sizeof *row);
        else er_st_range_to_f32(m->word_emb_narrow, (int64_t)b->ids[t] * H, H, row); /* narrow */
    }
    add_norm(x, out, NULL, &m->emb_ln, c->layer_norm_eps, T, H, out); // [T, H]
}

/* x->att [T, H]: attention of x->q, x->k, x->v [T, H] with rotary
 * positions 0, 1, ... per sequence; local layers see |i - j| <= window. */
static void attention(const er_model *m, er_ctx *x, const er_batch *b, bool global) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, T = er_batch_tokens(b), nh = c->num_heads, d = H / nh;
    for (int s = 0, t = 0; s < b->n_seqs; s++)
        for (int i = 0; i < b->seq_len[s]; i++) x->positions[t++] = i;
    rope_job r = {.t = global ? &m->modernbert->rope_global : &m->modernbert->rope_local,
                  .q = x->q, .k = x->k, .pos = x->positions, .ld = H, .n = T, .n_heads = nh,
                  .head_dim = d, .chunks = er_par_threads(x->par)};
    er_par_run(x->par, rope_item, &r, r.chunks);
    er_att_bias window = {.add = NULL, .arg = NULL, .window = c->modernbert.local_attention / 2};
    er_att_args a = {.q = x->q, .k = x->k, .v = x->v, .ld = H, .out = x->att, .n_heads = nh,
                     .head_dim = d, .scale = 1.0f / sqrtf((float)d),
                     .bias = global ? NULL : &window};
    er_attention(x, b, &a);
}

/* out[T, H] = Wo(act(input) * gate) with [input | gate] = Wi(in), in[T, H]:
 * the two row halves of Wi are er_lins of their own (packed apart at load). */
static void geglu_mlp(const er_model *m, er_ctx *x, const er_layer_w *L, int T, const float *in,
                      float *out) {
    const int F = m->cfg.intermediate_size;
    er_lin_apply(&L->ffn_in, in, T, x->ffn); // [T, F] GeGLU input
    er_lin_apply(&L->gate, in, T, x->glu);   // [T, F] gate
    glu_job j = {.in = x->ffn, .gate = x->glu, .ld = F, .c0 = 0, .cols = F, .n = T,
                 .chunks = er_par_threads(x->par), .act = m->cfg.act};
    er_par_run(x->par, glu_item, &j, j.chunks); // ffn = act(input) * gate
    er_lin_apply(&L->ffn_out, x->ffn, T, out);  // [T, H]
}

void er_modernbert_layer(const er_model *m, er_ctx *x, const er_batch *b, int layer,
                         float *hidden) {
    const er_config *c = &m->cfg;
    const er_layer_w *L = &m->layers[layer];
    const int T = er_batch_tokens(b), H = c->hidden_size;
    const float eps = c->layer_norm_eps;
    const float *in = hidden; // [T, H] attention input: attn_norm(hidden), Identity in layer 0
    if (L->attn_ln.gamma) {
        add_norm(x, hidden, NULL, &L->attn_ln, eps, T, H, x->tmp);
        in = x->tmp;
    }
    er_qkv_apply(x, L, in, T); // q, k, v [T, H]
    attention(m, x, b, layer % c->modernbert.global_every == 0); // att [T, H]
    er_lin_apply(&L->o, x->att, T, x->tmp);                      // [T, H]
    add_norm(x, hidden, x->tmp, &L->out_ln, eps, T, H, x->att);  // hidden += attn; att = mlp_norm
    geglu_mlp(m, x, L, T, x->att, x->tmp);                       // tmp [T, H]
    const er_ln *last = layer == c->num_layers - 1 ? &m->modernbert->final_norm : NULL;
    add_norm(x, hidden, x->tmp, last, eps, T, H, hidden);        // hidden += mlp (final_norm)
}

/* v[n, H] = norm(act(v)): ModernBertPredictionHead after its dense. */
static void predict(const er_model *m, float *v, int n) {
    const er_config *c = &m->cfg;
    activate(c->modernbert.classifier_act, v, n * c->hidden_size);
    er_add_layernorm(v, NULL, NULL, m->modernbert->head_norm.gamma, m->modernbert->head_norm.beta,
                     c->layer_norm_eps, n, c->hidden_size, v);
}

/* rows[S, H]: each sequence's first token (cls) or the mean of its tokens. */
static void pool(const er_config *c, const er_batch *b, const float *h, float *rows) {
    const int H = c->hidden_size;
    for (int s = 0, off = 0; s < b->n_seqs; off += b->seq_len[s++]) {
        const float *first = h + (size_t)off * H; // [n, H] the sequence's tokens
        float *o = rows + (size_t)s * H;          // [H]
        memcpy(o, first, (size_t)H * sizeof *o);
        if (!c->modernbert.mean_pooling) continue;
        for (int i = 1; i < b->seq_len[s]; i++)
            for (int j = 0; j < H; j++) o[j] += first[(size_t)i * H + j];
        for (int j = 0; j < H; j++) o[j] /= (float)b->seq_len[s];
    }
}

void er_modernbert_head(const er_model *m, er_ctx *x, const er_batch *b, const float *h,
                        float *out) {
    const er_config *c = &m->cfg;
    if (er_head_per_token(c->head)) { /* token classification, QA: every token */
        const int T = er_batch_tokens(b);
        er_lin_apply(&m->head_dense, h, T, x->tmp); // [T, H]
        predict(m, x->tmp, T);
        er_lin_apply(&m->head_out, x->tmp, T, out); // [T, labels]
        return;
    }
    const int S = b->n_seqs;
    pool(c, b, h, x->rows);                           // [S, H]
    er_lin_apply(&m->head_dense, x->rows, S, x->rows2); // [S, H]
    predict(m, x->rows2, S);
    er_lin_apply(&m->head_out, x->rows2, S, out);     // [S, labels]
}
