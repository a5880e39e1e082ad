/* The rotary, fused-QKV, gated-MLP post-norm layer of NomicBERT and GTE v1.5
 * (nomic_glu.h): loading, forward, and what the fingerprint must cover. */
#include "nomic_glu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

er_status er_rg_bool(const json_t *root, const char *key, bool def, bool *out, er_err *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return ER_OK;
    }
    if (!json_is_boolean(v))
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be true or false", key);
    *out = json_is_true(v);
    return ER_OK;
}

er_status er_rg_number(const json_t *root, const char *key, double def, double lo, double hi,
                       double *out, er_err *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return ER_OK;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= lo && x <= hi))
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be a number in [%g, %g]", key,
                      lo, hi);
    *out = x;
    return ER_OK;
}

/* A fused Linear [parts * per, in] (+ bias) split into row views
 * out[0..parts), nothing copied; narrow (er_lin_rows) when `keep`. */
static er_status load_fused(er_model *m, const char *p, const char *name, int parts, int per,
                            int in, bool bias, bool keep, er_lin **out, er_err *err) {
    er_lin whole = {0};
    er_status st = er_load_lin_narrow(m, p, name, parts * per, in, bias, keep, &whole, err);
    for (int r = 0; r < parts && st == ER_OK; r++) *out[r] = er_lin_rows(&whole, r * per, per);
    return st;
}

static er_status init_rope(er_model *m, er_err *err) {
    const er_config *c = &m->cfg;
    er_rope_table t;
    er_status st = er_rope_table_init_scaled(m, c->rope_glu.rope_theta, c->rope_glu.rope_freq_scale,
                                             c->rope_glu.rope_dim, c->max_positions, &t, err);
    if (st != ER_OK) return st;
    m->rope_glu.rope_cos = t.cos;
    m->rope_glu.rope_sin = t.sin;
    m->rope_glu.rope_max_pos = t.max_pos;
    m->rope_glu.rope_half = t.half;
    return ER_OK;
}

er_status er_rg_load_layer(er_model *m, const char *pre, int i, const er_rg_names *n,
                           er_err *err) {
    const er_config *c = &m->cfg;
    const int h = c->hidden_size, f = c->intermediate_size;
    er_status st = ER_OK;
    if (!m->rope_glu.rope_cos && (st = init_rope(m, err)) != ER_OK) return st;
    er_layer_w *L = &m->layers[i];
    er_lin *gate = &L->gate;
    char p[256];
    snprintf(p, sizeof p, "%s%s.%d.", pre, n->layers, i);
    /* F16/BF16 weights stay narrow where the backend packs them: the
     * forward reads them only through er_qkv_apply / er_lin_apply */
    const bool keep = er_model_keeps_narrow(m);
    er_lin *qkv[3] = {&L->q, &L->k, &L->v};
    st = load_fused(m, p, n->qkv, 3, h, h, c->rope_glu.qkv_bias, keep, qkv, err);
    if (st == ER_OK)
        st = er_load_lin_narrow(m, p, n->o, h, h, c->rope_glu.out_bias, keep, &L->o, err);
    if (st == ER_OK) st = er_load_ln(m, p, n->attn_ln, h, &L->attn_ln, err);
    if (st == ER_OK && n->gate) {
        st = er_load_lin_narrow(m, p, n->up, f, h, c->rope_glu.up_bias, keep, &L->ffn_in, err);
        if (st == ER_OK)
            st = er_load_lin_narrow(m, p, n->gate, f, h, c->rope_glu.up_bias, keep, gate, err);
    } else if (st == ER_OK) {
        er_lin *up_gate[2] = {&L->ffn_in, gate};
        st = load_fused(m, p, n->up, 2, f, h, c->rope_glu.up_bias, keep, up_gate, err);
    }
    if (st == ER_OK)
        st = er_load_lin_narrow(m, p, n->down, h, f, c->rope_glu.down_bias, keep, &L->ffn_out,
                                err);
    if (st == ER_OK) st = er_load_ln(m, p, n->out_ln, h, &L->out_ln, err);
    return st;
}

void er_rg_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    (void)x;
    const int H = m->cfg.hidden_size, T = er_batch_tokens(b);
    for (int t = 0; t < T; t++) {
        float *row = out + (size_t)t * H; // [H]
        const float *w = row;             // [H]
        if (m->word_emb) w = m->word_emb + (size_t)b->ids[t] * H;
        else /* a narrow table: the row widened in place, then summed there */
            er_st_range_to_f32(m->word_emb_narrow, (int64_t)b->ids[t] * H, H, row);
        if (m->type_emb) {
            const float *ty = m->type_emb + (size_t)(b->type_ids ? b->type_ids[t] : 0) * H; // [H]
            for (int j = 0; j < H; j++) row[j] = w[j] + ty[j];
        } else {
            for (int j = 0; j < H; j++) row[j] = w[j];
        }
    }
    er_add_layernorm(out, NULL, NULL, m->emb_ln.gamma, m->emb_ln.beta, m->cfg.layer_norm_eps, T,
                     H, out);
}

/* ---- forward ---- */

/* Row passes split into one contiguous chunk per team thread. */
typedef struct {
    float *x;        /* gated: the up rows, times act(gate) in place; add_ln: hidden */
    float *g;        /* gated: the gate rows, act()ed in place */
    const float *in; /* add_ln: the sublayer output */
    const er_ln *ln;
    float eps;
    int n, d, chunks;
    er_glu_act act;
} rows_job;

static void rows_range(const rows_job *j, int item, int *r0, int *r1) {
    *r0 = (int)((long)j->n * item / j->chunks);
    *r1 = (int)((long)j->n * (item + 1) / j->chunks);
}

/* silu(g) = g * sigmoid(g), sigmoid from exp(-|g|) (never overflows). */
static void silu(float *g, int n) {
    for (int i = 0; i < n; i++) {
        float e = er_exp(-fabsf(g[i]));
        g[i] *= g[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
}

/* The gate rows act()ed in place (they are this item's own), then
 * multiplied into the up rows: up = up * act(gate). */
static void gated_item(void *arg, int item, int thread) {
    (void)thread;
    const rows_job *j = arg;
    int r0, r1;
    rows_range(j, item, &r0, &r1);
    const size_t o = (size_t)r0 * j->d, n = (size_t)(r1 - r0) * j->d;
    float *g = j->g + o; // [rows, F]: this item's rows of ctx->glu
    switch (j->act) {
    case ER_GLU_SILU: silu(g, (int)n); break;
    case ER_GLU_GELU: er_gelu_erf(g, (int)n); break;
    case ER_GLU_GELU_TANH: er_gelu_tanh(g, (int)n); break;
    case ER_GLU_RELU: er_relu(g, (int)n); break;
    case ER_GLU_NONE: break;
    }
    float *u = j->x + o; // [rows, F]
    for (size_t i = 0; i < n; i++) u[i] *= g[i];
}

static void add_ln_item(void *arg, int item, int thread) {
    (void)thread;
    const rows_job *j = arg; /* x = LayerNorm(in + x): x is the residual stream */
    int r0, r1;
    rows_range(j, item, &r0, &r1);
    size_t o = (size_t)r0 * j->d;
    er_add_layernorm(j->in + o, j->x + o, NULL, j->ln->gamma, j->ln->beta, j->eps, r1 - r0, j->d,
                     j->x + o);
}

static void run_rows(er_ctx *x, er_par_fn fn, rows_job *j) {
    j->chunks = er_par_threads(x->par);
    er_par_run(x->par, fn, j, j->chunks);
}

/* Position of each token within its sequence: 0, 1, ... per sequence. */
static void seq_positions(const er_batch *b, int32_t *pos) {
    for (int s = 0, t = 0; s < b->n_seqs; s++)
        for (int i = 0; i < b->seq_len[s]; i++) pos[t++] = i;
}

/* x->att [T, H] from the layer's q, k, v projections of hidden, q and k
 * rotated. */
static void attention(const er_model *m, er_ctx *x, const er_batch *b, const er_layer_w *L,
                      const float *hidden) {
    const er_config *c = &m->cfg;
    const int T = er_batch_tokens(b), H = c->hidden_size, nh = c->num_heads, d = H / nh;
    er_qkv_apply(x, L, hidden, T);        // q, k, v [T, H] (one GEMM when fused)
    seq_positions(b, x->positions);       // [T]
    const er_rope_table rope = {.cos = m->rope_glu.rope_cos, .sin = m->rope_glu.rope_sin,
                                .max_pos = m->rope_glu.rope_max_pos, .half = m->rope_glu.rope_half};
    er_rope_apply(&rope, x->q, H, T, nh, d, x->positions);
    er_rope_apply(&rope, x->k, H, T, nh, d, x->positions);
    er_att_args a = {.q = x->q, .k = x->k, .v = x->v, .ld = H, .out = x->att, .n_heads = nh,
                     .head_dim = d, .scale = 1.0f / sqrtf((float)d), .bias = NULL};
    er_attention(x, b, &a); // att [T, H]
}

void er_rg_layer(const er_model *m, er_ctx *x, const er_batch *b, int layer, float *hidden) {
    const er_config *c = &m->cfg;
    const er_layer_w *L = &m->layers[layer];
    const int T = er_batch_tokens(b), H = c->hidden_size, F = c->intermediate_size;
    const float eps = c->layer_norm_eps;
    attention(m, x, b, L, hidden);                // att [T, H]
    er_lin_apply(&L->o, x->att, T, x->tmp);       // [T, H]
    rows_job ln1 = {.x = hidden, .in = x->tmp, .ln = &L->attn_ln, .eps = eps, .n = T, .d = H};
    run_rows(x, add_ln_item, &ln1);               // hidden = LN1(hidden + tmp)
    er_lin_apply(&L->ffn_in, hidden, T, x->ffn);  // up [T, F]
    er_lin_apply(&L->gate, hidden, T, x->glu); // gate [T, F]
    rows_job glu = {.x = x->ffn, .g = x->glu, .act = c->rope_glu.gate_act, .n = T, .d = F};
    run_rows(x, gated_item, &glu);                // ffn = up * act(gate)
    er_lin_apply(&L->ffn_out, x->ffn, T, x->tmp); // [T, H]
    rows_job ln2 = {.x = hidden, .in = x->tmp, .ln = &L->out_ln, .eps = eps, .n = T, .d = H};
    run_rows(x, add_ln_item, &ln2);               // hidden = LN2(hidden + tmp)
}

/* ---- fingerprint ---- */

void er_rg_lower_config(const er_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, " rope_theta=%.17g rope_scale=%.17g rope_dim=%d gate_act=%d bias=%d%d%d%d",
             c->rope_glu.rope_theta, c->rope_glu.rope_freq_scale, c->rope_glu.rope_dim,
             (int)c->rope_glu.gate_act, c->rope_glu.qkv_bias, c->rope_glu.out_bias,
             c->rope_glu.up_bias, c->rope_glu.down_bias);
}

/* The gate projections of layers [0, cut); q/k/v/o, up and down are in the
 * shared slots er_model_visit_lower walks. */
int er_rg_visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user) {
    int r = 0;
    for (int i = 0; i < cut && !r; i++) {
        const er_lin *g = &m->layers[i].gate;
        char key[64];
        snprintf(key, sizeof key, "layer.%d.gate.weight", i);
        r = er_visit_lin_weight(fn, user, key, g);
        if (!r && g->b) {
            snprintf(key, sizeof key, "layer.%d.gate.bias", i);
            r = fn(user, key, g->b, (size_t)g->out);
        }
    }
    return r;
}

int er_rg_max_seq_len(const er_config *c) { return c->rope_glu.max_len; }
