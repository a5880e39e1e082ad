/* Forward building blocks shared by the architectures (encoder_internal.h):
 * absolute-position embeddings and the BERT post-LN layer, with attention
 * and the row passes split across the ctx's parallel-for team. */
#include "encoder_internal.h"

#include <cblas.h>
#include <math.h>

#include "gemm.h"
#include "kernels.h"

void er_embed_absolute(const er_model *m, er_ctx *x, const er_batch *b, const int32_t *positions,
                       float *out) {
    const er_config *c = &m->cfg;
    const int E = c->embedding_size, T = er_batch_tokens(b);
    const bool project = m->emb_project.w != NULL;
    float *e = project ? x->tmp : out; // [T, E]
    for (int t = 0; t < T; t++) {
        float *row = e + (size_t)t * E; // [E]
        const float *w = row; // [E]
        if (m->word_emb) w = m->word_emb + (size_t)b->ids[t] * E;
        else /* a narrow table: the row widened in place, then summed there */
            er_st_range_to_f32(m->word_emb_narrow, (int64_t)b->ids[t] * E, E, row);
        const float *p = m->pos_emb + (size_t)positions[t] * E; // [E]
        if (m->type_emb) {
            const float *ty = m->type_emb + (size_t)(b->type_ids ? b->type_ids[t] : 0) * E; // [E]
            for (int j = 0; j < E; j++) row[j] = w[j] + ty[j] + p[j];
        } else {
            for (int j = 0; j < E; j++) row[j] = w[j] + p[j];
        }
    }
    er_add_layernorm(e, NULL, NULL, m->emb_ln.gamma, m->emb_ln.beta, c->layer_norm_eps, T, E, e);
    if (project)
        er_lin_apply(&m->emb_project, e, T, out); // [T, H]
}

/* Whether l's packed weight is its own: a copy of an er_lin that changed w
 * or out (a slice of a fused weight) runs on the stored weight instead. */
static bool packed_ok(const er_lin *l) {
    return l->packed && l->w == l->packed_w && l->out == l->packed_out;
}

/* y[n, out] += s * (x[n, in] A^T) B^T in row blocks whose [rows, r]
 * intermediate fits a stack buffer: no allocation, any rank up to its size. */
static void lora_add(const er_lin *l, const float *x, int n, float *y) {
    float t[4096]; // [rows, r]
    const int r = l->lora_r, rows = (int)(sizeof t / sizeof *t) / r;
    for (int i = 0; i < n; i += rows) {
        int m = n - i < rows ? n - i : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r, l->in, 1.0f,
                    x + (size_t)i * l->in, l->in, l->lora_a, l->in, 0.0f, t, r); // [m, r]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, l->out, r, l->lora_scale, t, r,
                    l->lora_b, r, 1.0f, y + (size_t)i * l->out, l->out); // [m, out]
    }
}

void er_lin_apply(const er_lin *l, const float *x, int n, float *y) {
    if (packed_ok(l)) {
        er_gemm_out o = {.dst = {y}, .seg = l->out};
        er_gemm_packed(er_gemm_bound(), x, n, l->in, l->kind, l->packed, l->out, l->b,
                       ER_EPI_NONE, &o);
    } else {
        er_linear(x, n, l->in, l->w, l->b, l->out, y);
    }
    if (l->lora_a) lora_add(l, x, n, y);
}

/* y[n, l->out] = x . W^T (+ an unmerged LoRA adapter's term; no bias: the
 * caller adds it in a later pass), on the team c->par when c is not NULL. */
static void lin_nobias(er_ctx *c, const er_lin *l, const float *x, int n, float *y) {
    if (packed_ok(l)) {
        er_gemm_out o = {.dst = {y}, .seg = l->out};
        er_gemm_packed(c ? c->par : er_gemm_bound(), x, n, l->in, l->kind, l->packed, l->out,
                       NULL, ER_EPI_NONE, &o);
    } else {
        er_linear(x, n, l->in, l->w, NULL, l->out, y);
    }
    if (l->lora_a) lora_add(l, x, n, y);
}

void er_lin_apply_nobias(const er_lin *l, const float *x, int n, float *y) {
    lin_nobias(NULL, l, x, n, y);
}

static er_epi epi_of(er_act act) {
    return act == ER_ACT_GELU ? ER_EPI_GELU : act == ER_ACT_GELU_TANH ? ER_EPI_GELU_TANH
                                                                      : ER_EPI_RELU;
}

/* One GEMM when the layer's q/k/v are packed together, then any unmerged
 * LoRA terms on top. */
void er_qkv_apply(er_ctx *x, const er_layer_w *L, const float *hidden, int T) {
    if (L->qkv.packed) {
        er_gemm_out o = {.dst = {x->q, x->k, x->v}, .seg = L->q.out};
        er_gemm_packed(x->par, hidden, T, L->qkv.in, L->qkv.kind, L->qkv.packed, L->qkv.out,
                       L->qkv.b, ER_EPI_NONE, &o);
        if (L->q.lora_a) lora_add(&L->q, hidden, T, x->q);
        if (L->k.lora_a) lora_add(&L->k, hidden, T, x->k);
        if (L->v.lora_a) lora_add(&L->v, hidden, T, x->v);
        return;
    }
    er_par *prev = er_gemm_bind(x->par);
    er_lin_apply(&L->q, hidden, T, x->q); // [T, H]
    er_lin_apply(&L->k, hidden, T, x->k); // [T, H]
    er_lin_apply(&L->v, hidden, T, x->v); // [T, H]
    er_gemm_bind(prev);
}

/* x->att [T, H] from x->q, x->k, x->v [T, H]: BERT's attention, plus the
 * family's additive score term when bias is not NULL. */
static void attention(er_ctx *x, const er_config *c, const er_batch *b, const er_att_bias *bias) {
    const int d = c->hidden_size / c->num_heads;
    er_att_args a = {.q = x->q, .k = x->k, .v = x->v, .ld = c->hidden_size, .out = x->att,
                     .n_heads = c->num_heads, .head_dim = d, .scale = 1.0f / sqrtf((float)d),
                     .bias = bias};
    er_attention(x, b, &a);
}

/* Row passes split into one contiguous chunk per team thread. */
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

/* v[n, d] = act(v + b) */
void er_par_bias_act(er_ctx *x, float *v, int n, int d, const float *b, er_act act) {
    rows_job j = {.x = v, .bias = b, .n = n, .d = d, .act = act,
                  .chunks = er_par_threads(x->par)};
    er_par_run(x->par, bias_act_item, &j, j.chunks);
}

/* hidden[n, d] = LayerNorm(v + hidden + bias) */
void er_par_add_layernorm(er_ctx *x, const float *v, float *hidden, const float *bias,
                          const er_ln *ln, float eps, int n, int d) {
    rows_job j = {.in = v, .x = hidden, .bias = bias, .gamma = ln->gamma,
                  .beta = ln->beta, .eps = eps, .n = n, .d = d, .chunks = er_par_threads(x->par)};
    er_par_run(x->par, add_layernorm_item, &j, j.chunks);
}

/* Whether the layer's FFN can keep its intermediate in the second GEMM's x
 * layout of `kind`: both projections packed as kind, no LoRA (its unmerged
 * terms read the fp32 rows), the layout supported, and T rows of it fitting
 * in the ctx's ffn scratch. */
static bool ffn_fused(const er_ctx *x, const er_layer_w *L, int T, er_gemm_kind kind) {
    if (!packed_ok(&L->ffn_in) || !packed_ok(&L->ffn_out) || L->ffn_in.lora_a ||
        L->ffn_out.lora_a || L->ffn_in.kind != kind || L->ffn_out.kind != kind)
        return false;
    const int H = L->ffn_in.in, F = L->ffn_in.out;
    if (kind == ER_GEMM_BF16)
        return er_gemm_xbf16_supported(H) &&
               er_gemm_xbf16_bytes(T, F) <= x->ffn_cap * sizeof(float);
    return kind == ER_GEMM_F32 && er_gemm_xf32_supported(H) && er_gemm_xf32_supported(F) &&
           er_gemm_xf32_floats(T, F) <= x->ffn_cap;
}

/* x->tmp [T, H] = ffn_out(act(ffn_in(hidden))) without its bias: the
 * intermediate goes from the first GEMM's epilogue (after bias and
 * activation) straight into x->ffn in the second GEMM's x layout (bf16: so
 * it is neither written nor read back as fp32 nor rounded again; fp32: so
 * the second GEMM skips its copy of x into 12-row groups), the same bits
 * as the plain path (test_gemm). */
static void ffn_through_x(er_ctx *x, const er_layer_w *L, er_epi act, const float *hidden, int T,
                          er_gemm_kind kind) {
    const int H = L->ffn_in.in, F = L->ffn_in.out;
    const bool bf16 = kind == ER_GEMM_BF16;
    er_gemm_out mid = {.dst = {NULL}, .seg = F, .xbf16 = bf16 ? (void *)x->ffn : NULL,
                       .xf32 = bf16 ? NULL : x->ffn}; // [T, F] in 12-row groups
    er_gemm_packed(x->par, hidden, T, H, kind, L->ffn_in.packed, F, L->ffn_in.b, act, &mid);
    er_gemm_out o = {.dst = {x->tmp}, .seg = L->ffn_out.out};
    if (bf16)
        er_gemm_packed_xbf16(x->par, x->ffn, T, F, L->ffn_out.packed, L->ffn_out.out, NULL,
                             ER_EPI_NONE, &o); // [T, H]
    else
        er_gemm_packed_xf32(x->par, x->ffn, T, F, L->ffn_out.packed, L->ffn_out.out, NULL,
                            ER_EPI_NONE, &o); // [T, H]
}

void er_ffn(er_ctx *x, const er_layer_w *L, er_act act, const float *hidden, int T) {
    const int H = L->ffn_in.in, F = L->ffn_in.out;
    if (ffn_fused(x, L, T, ER_GEMM_BF16)) {
        ffn_through_x(x, L, epi_of(act), hidden, T, ER_GEMM_BF16); // tmp [T, H]
        return;
    }
    if (ffn_fused(x, L, T, ER_GEMM_F32)) {
        ffn_through_x(x, L, epi_of(act), hidden, T, ER_GEMM_F32); // tmp [T, H]
        return;
    }
    if (packed_ok(&L->ffn_in) && !L->ffn_in.lora_a) { /* bias and activation in the epilogue */
        er_gemm_out o = {.dst = {x->ffn}, .seg = F};
        er_gemm_packed(x->par, hidden, T, H, L->ffn_in.kind, L->ffn_in.packed, F, L->ffn_in.b,
                       epi_of(act), &o); // [T, F]
    } else {
        lin_nobias(x, &L->ffn_in, hidden, T, x->ffn);     // [T, F]
        er_par_bias_act(x, x->ffn, T, F, L->ffn_in.b, act); // [T, F]
    }
    lin_nobias(x, &L->ffn_out, x->ffn, T, x->tmp); // [T, H]
}

void er_layer_post_ln(const er_model *m, er_ctx *x, const er_batch *b, int layer, float *hidden) {
    er_layer_post_ln_bias(m, x, b, layer, hidden, NULL);
}

void er_layer_post_ln_bias(const er_model *m, er_ctx *x, const er_batch *b, int layer,
                           float *hidden, const er_att_bias *bias) {
    const er_config *c = &m->cfg;
    const er_layer_w *L = &m->layers[layer];
    const int T = er_batch_tokens(b), H = c->hidden_size;
    const float eps = c->layer_norm_eps;
    er_qkv_apply(x, L, hidden, T);                    // q, k, v [T, H]
    attention(x, c, b, bias);                         // att [T, H]
    lin_nobias(x, &L->o, x->att, T, x->tmp);          // [T, H]
    if (L->bn_att) er_bn_sublayer(x, L->bn_att, x->tmp, L->o.b, hidden, &L->attn_ln, eps, T, H);
    else er_par_add_layernorm(x, x->tmp, hidden, L->o.b, &L->attn_ln, eps, T, H); // hidden [T, H]
    er_ffn(x, L, c->act, hidden, T); // tmp [T, H]
    if (L->bn_out) er_bn_sublayer(x, L->bn_out, x->tmp, L->ffn_out.b, hidden, &L->out_ln, eps, T, H);
    else er_par_add_layernorm(x, x->tmp, hidden, L->ffn_out.b, &L->out_ln, eps, T, H); // [T, H]
}
