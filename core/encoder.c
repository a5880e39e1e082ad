/* The encoder's entry points (encoder.h): scratch, batch checks, dispatch
 * to the architecture's embeddings and layers (arch.h), and the heads. */
#include "encoder_internal.h"

#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gemm.h"
#include "heads.h"
#include "kernels.h"

er_ctx_params er_ctx_default_params(void) {
    er_ctx_params p = {.max_tokens = 4096, .max_seqs = 64, .max_seq_len = 4096, .n_threads = 1};
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
    free(c->att_scratch); free(c->rows); free(c->rows2); free(c->offsets); free(c->positions);
    free(c->glu); free(c->rel); free(c->rel_meta); free(c->conv_in);
    free(c->mlm_tile); free(c->dense_buf);
    er_par_free(c->par);
    free(c);
}

static float *alloc_floats(size_t a, size_t b) { return malloc(a * b * sizeof(float) + 64); }

/* Whether the family's MLP is gated: its gate projection writes the glu
 * buffer [T, F] beside ffn. */
static bool gated_mlp(const er_config *c) {
    return c->rope_glu.gate_act != ER_GLU_NONE || c->arch == ER_ARCH_MODERNBERT;
}

/* The capacities a ctx needs to run every one of models[0..n). */
typedef struct {
    int hidden, inter, width, max_positions;
    size_t rel;    /* er_deberta_rel_floats */
    bool conv_in;  /* er_deberta_needs_conv_in */
    bool gated;    /* a gated MLP (ModernBERT, NomicBERT, GTE): the glu buffer */
    int dense_width; /* the widest sentence-transformers Dense output (heads.h) */
} ctx_sizes;

static ctx_sizes sizes_of(const er_model *const *ms, int n, er_ctx_params *p) {
    ctx_sizes z = {0};
    for (int i = 0; i < n; i++) {
        const er_config *c = &ms[i]->cfg;
        int w = c->embedding_size > c->hidden_size ? c->embedding_size : c->hidden_size;
        if (c->hidden_size > z.hidden) z.hidden = c->hidden_size;
        if (c->intermediate_size > z.inter) z.inter = c->intermediate_size;
        if (w > z.width) z.width = w;
        if (c->max_positions > z.max_positions) z.max_positions = c->max_positions;
        z.conv_in = z.conv_in || er_deberta_needs_conv_in(c);
        z.gated = z.gated || gated_mlp(c);
        if (er_head_embedding_max_width(c) > z.dense_width)
            z.dense_width = er_head_embedding_max_width(c);
    }
    if (p->max_seq_len > z.max_positions) p->max_seq_len = z.max_positions;
    if (p->max_seq_len > p->max_tokens) p->max_seq_len = p->max_tokens;
    for (int i = 0; i < n; i++) {
        size_t r = er_deberta_rel_floats(&ms[i]->cfg, p->max_seq_len);
        if (r > z.rel) z.rel = r;
    }
    return z;
}

/* alloc_floats, counted in x->bytes (er_ctx_bytes): allocate scratch with it. */
static float *ctx_floats(er_ctx *x, size_t a, size_t b) {
    x->bytes += a * b * sizeof(float) + 64;
    return alloc_floats(a, b);
}

static void *ctx_alloc(er_ctx *x, size_t n) {
    x->bytes += n;
    return malloc(n);
}

size_t er_ctx_bytes(const er_ctx *x) { return x->bytes; }

er_status er_ctx_init(const er_model *m, const er_ctx_params *params, er_ctx **out, er_err *err) {
    return er_ctx_init_models(&m, 1, params, out, err);
}

er_status er_ctx_init_models(const er_model *const *models, int n_models,
                             const er_ctx_params *params, er_ctx **out, er_err *err) {
    *out = NULL;
    er_ctx_params p = params ? *params : er_ctx_default_params();
    if (p.n_threads == 0) p.n_threads = 1; /* params written before the field existed */
    if (p.max_tokens < 1 || p.max_seqs < 1 || p.max_seq_len < 1 || p.n_threads < 1 || n_models < 1)
        return er_set(err, ER_ERR_INVALID_ARG, "ctx params must be positive (tokens %d, seqs %d, "
                      "seq len %d, threads %d, models %d)", p.max_tokens, p.max_seqs,
                      p.max_seq_len, p.n_threads, n_models);
    const ctx_sizes z = sizes_of(models, n_models, &p);
    er_ctx *x = calloc(1, sizeof *x);
    if (!x) return er_set(err, ER_ERR_NOMEM, "out of memory");
    x->p = p;
    x->hidden = z.hidden;
    x->inter = z.inter;
    x->width = z.width;
    const size_t T = (size_t)p.max_tokens, H = (size_t)x->hidden, S = (size_t)p.max_seqs;
    x->q = ctx_floats(x, T, H);                         // [T, H]
    x->k = ctx_floats(x, T, H);                         // [T, H]
    x->v = ctx_floats(x, T, H);                         // [T, H]
    x->att = ctx_floats(x, T, H);                       // [T, H]
    x->tmp = ctx_floats(x, T, (size_t)x->width);        // [T, max(H, E)]
    /* [T, F], with room for the fp32 x layout's padded last 12-row group */
    x->ffn_cap = er_gemm_xf32_floats(p.max_tokens, x->inter);
    x->ffn = ctx_floats(x, x->ffn_cap, 1);              // [T, F]
    x->att_scratch = ctx_floats(x, (size_t)p.n_threads, er_attention_scratch_floats(x->hidden));
    x->rows = ctx_floats(x, S, H);                      // [S, H]
    x->rows2 = ctx_floats(x, S, H);                     // [S, H]
    x->offsets = ctx_alloc(x, (S + 1) * sizeof *x->offsets);   // [S + 1]
    x->positions = ctx_alloc(x, T * sizeof *x->positions);   // [T]
    x->rel_cap = z.rel;
    if (x->rel_cap) {
        x->rel = ctx_floats(x, x->rel_cap, 1);                // [rel_cap]
        x->rel_meta = ctx_alloc(x, 4 * S * sizeof *x->rel_meta);  // [S, 4]
    }
    if (z.conv_in) x->conv_in = ctx_floats(x, T, H); // [T, H]
    if (z.gated) x->glu = ctx_floats(x, T, (size_t)x->inter); // [T, F]
    x->mlm_tile = ctx_floats(x, ER_MLM_ROWS, ER_MLM_COLS); // [ER_MLM_ROWS, ER_MLM_COLS]
    x->dense_width = z.dense_width;
    if (x->dense_width < x->hidden) x->dense_width = x->hidden;
    if (x->dense_width < ER_DENSE_MIN_WIDTH) x->dense_width = ER_DENSE_MIN_WIDTH;
    x->dense_buf = ctx_floats(x, 2 * ER_DENSE_ROWS, (size_t)x->dense_width); // [2, rows, width]
    if (!x->q || !x->k || !x->v || !x->att || !x->tmp || !x->ffn || !x->att_scratch || !x->rows ||
        !x->rows2 || !x->offsets || !x->positions || (x->rel_cap && (!x->rel || !x->rel_meta)) ||
        (z.conv_in && !x->conv_in) || (z.gated && !x->glu) || !x->mlm_tile || !x->dense_buf) {
        er_ctx_free(x);
        return er_set(err, ER_ERR_NOMEM, "out of memory for worker scratch (%d tokens)",
                      p.max_tokens);
    }
    er_status st = er_par_init(p.n_threads, &x->par, err);
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
           c->embedding_size <= x->width &&
           er_deberta_rel_floats(c, x->p.max_seq_len) <= x->rel_cap &&
           (!er_deberta_needs_conv_in(c) || x->conv_in) &&
           (!gated_mlp(c) || x->glu) &&
           er_head_embedding_max_width(c) <= x->dense_width;
}

er_status er_batch_check(const er_model *m, const er_ctx *x, const er_batch *b, er_err *err) {
    const er_config *c = &m->cfg;
    if (!er_ctx_fits(x, m))
        return er_set(err, ER_ERR_INVALID_ARG, "worker scratch was sized for a smaller model");
    if (b->n_seqs < 1 || b->n_seqs > x->p.max_seqs)
        return er_set(err, ER_ERR_CAPACITY, "batch of %d sequences; this worker takes 1 to %d",
                      b->n_seqs, x->p.max_seqs);
    const int model_max = m->arch->max_seq_len(c); /* what the position table allows */
    int max_len = model_max < x->p.max_seq_len ? model_max : x->p.max_seq_len;
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
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    if (m->skip_below > 0)
        return er_set(err, ER_ERR_INVALID_ARG, "this model was loaded without its embeddings");
    er_par *prev = er_gemm_bind(x->par); /* er_lin_apply's GEMMs use the ctx's team */
    m->arch->embed(m, x, b, out); // [T, H]
    er_gemm_bind(prev);
    return ER_OK;
}

er_status er_layers(const er_model *m, er_ctx *x, const er_batch *b, int from, int to,
                    float *hidden, er_err *err) {
    const er_config *c = &m->cfg;
    if (from < m->skip_below || from > to || to > c->num_layers)
        return er_set(err, ER_ERR_INVALID_ARG, "layer range [%d, %d) is outside [%d, %d]", from,
                      to, m->skip_below, c->num_layers);
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    er_par *prev = er_gemm_bind(x->par);
    for (int l = from; l < to; l++) m->arch->layer(m, x, b, l, hidden); // [T, H]
    er_gemm_bind(prev);
    return ER_OK;
}

size_t er_head_out_size(const er_model *m, const er_batch *b) {
    const er_config *c = &m->cfg;
    size_t w = (size_t)er_model_head_width(m);
    return w * (er_head_per_token(c->head) ? (size_t)er_batch_tokens(b) : (size_t)b->n_seqs);
}

void er_head_activation(er_head_act act, er_act hidden_act, float *v, int n) {
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

/* er_head after its checks. */
static er_status head_run(const er_model *m, er_ctx *x, const er_batch *b, const float *h,
                          float *out, er_err *err) {
    const er_config *c = &m->cfg;
    const int T = er_batch_tokens(b), H = c->hidden_size, S = b->n_seqs;
    if (c->head != ER_HEAD_EMBEDDING && m->arch->head) { /* the family's own head */
        m->arch->head(m, x, b, h, out);
        return ER_OK;
    }
    switch (c->head) {
    case ER_HEAD_EMBEDDING:
        er_head_embedding(m, x, b, h, out); // [S, er_model_head_width]
        return ER_OK;
    case ER_HEAD_SPARSE_EMBEDDING:
        er_head_sparse(m, x, b, h, out); // [S, vocab]
        return ER_OK;
    case ER_HEAD_TOKEN_EMBEDDING:
        memcpy(out, h, (size_t)T * (size_t)H * sizeof *out); // [T, H]
        return ER_OK;
    case ER_HEAD_QUESTION_ANSWERING:
        er_lin_apply(&m->head_out, h, T, out); // [T, 2]
        return ER_OK;
    case ER_HEAD_TOKEN_CLASSIFICATION:
        if (m->head_dense.w || m->head_dense.narrow) { /* ELECTRA discriminator: dense + act */
            er_lin_apply(&m->head_dense, h, T, x->tmp); // [T, H]
            er_head_activation(m->head_act, c->act, x->tmp, T * H);
            h = x->tmp;
        }
        er_lin_apply(&m->head_out, h, T, out); // [T, labels]
        return ER_OK;
    case ER_HEAD_SEQUENCE_CLASSIFICATION: {
        int off = 0;
        for (int s = 0; s < S; s++) { // rows [S, H]: each sequence's first (CLS / <s>) token
            memcpy(x->rows + (size_t)s * H, h + (size_t)off * H, (size_t)H * sizeof(float));
            off += b->seq_len[s];
        }
        const float *pooled = x->rows; // [S, H]
        if (m->head_dense.w || m->head_dense.narrow) { /* an adapter's one-layer head has none */
            er_lin_apply(&m->head_dense, x->rows, S, x->rows2); // [S, H]
            er_head_activation(m->head_act, c->act, x->rows2, S * H);
            pooled = x->rows2;
        }
        er_lin_apply(&m->head_out, pooled, S, out); // [S, labels]
        return ER_OK;
    }
    }
    return er_set(err, ER_ERR_INTERNAL, "unknown head type %d", (int)c->head);
}

er_status er_head(const er_model *m, er_ctx *x, const er_batch *b, const float *h, float *out,
                  er_err *err) {
    er_status st = er_batch_check(m, x, b, err);
    if (st != ER_OK) return st;
    er_par *prev = er_gemm_bind(x->par); /* er_lin_apply's GEMMs use the ctx's team */
    st = head_run(m, x, b, h, out, err);
    er_gemm_bind(prev);
    return st;
}

er_status er_forward(const er_model *m, er_ctx *x, const er_batch *b, float *hidden, float *out,
                     er_err *err) {
    er_status st = er_embed(m, x, b, hidden, err);
    if (st == ER_OK) st = er_layers(m, x, b, 0, m->cfg.num_layers, hidden, err);
    if (st == ER_OK) st = er_head(m, x, b, hidden, out, err);
    return st;
}
