/* DeBERTa's disentangled self-attention (DisentangledSelfAttention in
 * modeling_deberta_v2.py) on er_attention's tiles, and the ConvLayer.
 *
 * For query i and key j of one sequence and one head, with r = the bucket
 * of i - j (er_deberta_bucket) and s = sqrt(head_dim * scale_factor):
 *
 *   score(i, j) = q_i.k_j / s + q_i.pos_key[r] / s  (c2p)
 *                             + k_j.pos_query[r] / s (p2c)
 *
 * (p2c gathers at clamp(-bucket(j - i) + span) = clamp(bucket(i - j) + span)
 * since the buckets are odd in the distance.)  pos_key / pos_query
 * [2 * span, H] are computed once at load.  Per forward, the dot products
 * q_i.pos_key[r] and k_j.pos_query[r] are precomputed for every token, head
 * and every bucket r the sequence can reach, [n, R] per sequence and head
 * (R <= 2 * n - 1, <= 2 * span), one GEMM each, into the ctx's rel scratch;
 * er_attention's bias callback then gathers them by bucket for each tile.
 * No [n, n] matrix is stored.  Sequences are taken in groups whose tables
 * fit the scratch (one full-length sequence always does). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "deberta_internal.h"
#include "kernels.h"

/* make_log_bucket_position for one distance (in double: for every real
 * config this matches torch's float32 computation exactly; the reference
 * tests/fixtures/ref_deberta.py checks it over +-20000). */
static int log_bucket(int rel, int bucket_size, int max_position) {
    const int mid = bucket_size / 2, a = rel < 0 ? -rel : rel;
    if (a <= mid) return rel; /* also |rel| < mid, whose abs_pos is mid - 1 */
    double lp = ceil(log((double)a / mid) / log((double)(max_position - 1) / mid) * (mid - 1)) + mid;
    return rel < 0 ? -(int)lp : (int)lp;
}

int er_deberta_bucket(const er_config *c, int delta) {
    const int span = c->deberta.att_span, b = c->deberta.position_buckets;
    int r = b > 0 ? log_bucket(delta, b, c->deberta.max_relative_positions) : delta;
    r += span; /* c2p_pos = clamp(relative_pos + att_span, 0, 2 * att_span - 1) */
    return r < 0 ? 0 : r >= 2 * span ? 2 * span - 1 : r;
}

static bool has_rel_terms(const er_config *c) {
    return c->arch == ER_ARCH_DEBERTA && c->deberta.relative_attention &&
           (c->deberta.c2p || c->deberta.p2c);
}

/* The buckets a sequence of n tokens reaches: [lo, lo + R). */
static void bucket_range(const er_config *c, int n, int *lo, int *R) {
    *lo = er_deberta_bucket(c, -(n - 1));
    *R = er_deberta_bucket(c, n - 1) - *lo + 1;
}

size_t er_deberta_rel_floats(const er_config *c, int max_seq_len) {
    if (!has_rel_terms(c)) return 0;
    int n = max_seq_len < c->max_positions ? max_seq_len : c->max_positions, lo, R;
    bucket_range(c, n, &lo, &R);
    return 2 * (size_t)c->num_heads * (size_t)n * (size_t)R; /* c2p and p2c tables */
}

bool er_deberta_needs_conv_in(const er_config *c) {
    return c->arch == ER_ARCH_DEBERTA && c->deberta.conv_kernel_size > 0;
}

/* What the precompute items and the bias callback share for one group. */
typedef struct {
    const er_model *m;
    er_ctx *x;
    const er_batch *g;     /* the group as a batch of its own */
    const float *q, *k;    /* [group tokens, H] */
    const er_deberta_layer *L;
    const int32_t *bucket; /* centred: bucket[i - j] */
    float inv_s;
} rel_job;

/* Item (sequence, head): c2p[n, R] = q_h . pos_key_h[lo..]^T / s and
 * p2c[n, R] = k_h . pos_query_h[lo..]^T / s, one GEMM each. */
static void rel_item(void *arg, int item, int thread) {
    (void)thread;
    const rel_job *j = arg;
    const er_config *c = &j->m->cfg;
    const int nh = c->num_heads, H = c->hidden_size, d = H / nh;
    const int s = item / nh, h = item % nh;
    const int *meta = j->x->rel_meta + 4 * s; /* offset in rel, first token, lo, R */
    const int n = j->g->seq_len[s], lo = meta[2], R = meta[3];
    float *c2p = j->x->rel + meta[0] + (size_t)h * n * R;  // [n, R]
    float *p2c = c2p + (size_t)nh * n * R;                 // [n, R]
    const size_t first = (size_t)meta[1];
    if (j->L->pk)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, R, d, j->inv_s,
                    j->q + first * H + (size_t)h * d, H, j->L->pk + (size_t)lo * H + (size_t)h * d,
                    H, 0.0f, c2p, R);
    if (j->L->pq)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, R, d, j->inv_s,
                    j->k + first * H + (size_t)h * d, H, j->L->pq + (size_t)lo * H + (size_t)h * d,
                    H, 0.0f, p2c, R);
}

/* er_att_bias.add: the c2p and p2c terms of tile rows [i0, i1), keys [j0, j1). */
static void rel_add(const er_att_bias *self, int seq, int head, int i0, int i1, int j0, int j1,
                    float *tile, int ld) {
    const rel_job *j = self->arg;
    const int nh = j->m->cfg.num_heads;
    const int *meta = j->x->rel_meta + 4 * seq;
    const int n = j->g->seq_len[seq], lo = meta[2], R = meta[3];
    const float *c2p = j->x->rel + meta[0] + (size_t)head * n * R - lo; // [n, R] by bucket
    const float *p2c = c2p + (size_t)nh * n * R;                       // [n, R] by bucket
    const bool has_c = j->L->pk != NULL, has_p = j->L->pq != NULL;
    for (int i = i0; i < i1; i++) {
        const int32_t *bk = j->bucket + i;           /* bk[-jj] = bucket of i - jj */
        const float *crow = c2p + (size_t)i * R;     // [R] by bucket
        float *t = tile + (size_t)(i - i0) * ld - j0; // [j0, j1)
        if (has_c && has_p)
            for (int jj = j0; jj < j1; jj++) {
                const int r = bk[-jj];
                t[jj] += crow[r] + p2c[(size_t)jj * R + r];
            }
        else if (has_c)
            for (int jj = j0; jj < j1; jj++) t[jj] += crow[bk[-jj]];
        else
            for (int jj = j0; jj < j1; jj++) t[jj] += p2c[(size_t)jj * R + bk[-jj]];
    }
}

/* Sequences [s0, s1) of b whose tables fit x->rel, their rel_meta filled
 * (offset in rel, first token in the group, lowest bucket, bucket count);
 * returns s1 (> s0). */
static int take_group(const er_config *c, er_ctx *x, const er_batch *b, int s0) {
    size_t used = 0;
    int s = s0, tok = 0;
    for (; s < b->n_seqs; s++) {
        const int n = b->seq_len[s];
        int lo, R;
        bucket_range(c, n, &lo, &R);
        const size_t need = 2 * (size_t)c->num_heads * (size_t)n * (size_t)R;
        if (s > s0 && used + need > x->rel_cap) break;
        int *meta = x->rel_meta + 4 * (s - s0);
        meta[0] = (int)used;
        meta[1] = tok;
        meta[2] = lo;
        meta[3] = R;
        used += need;
        tok += n;
    }
    return s;
}

/* Relative attention for sequences [s0, s1) of b (first token `first`). */
static void group_attention(const er_model *m, er_ctx *x, const er_batch *b, int layer, int s0,
                            int s1, int first, float inv_s) {
    const er_config *c = &m->cfg;
    const struct er_deberta_w *w = m->deberta;
    const int H = c->hidden_size, nh = c->num_heads;
    const er_batch g = {.n_seqs = s1 - s0, .seq_len = b->seq_len + s0, .ids = NULL,
                        .type_ids = NULL};
    const size_t off = (size_t)first * H;
    rel_job j = {.m = m, .x = x, .g = &g, .q = x->q + off, .k = x->k + off,
                 .L = &w->layers[layer], .bucket = w->bucket + w->max_len - 1, .inv_s = inv_s};
    int blas_threads = 1;
    if (x->p.n_threads > 1) { /* as er_attention: whole small GEMMs per team thread */
        blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    er_par_run(x->par, rel_item, &j, g.n_seqs * nh);
    if (x->p.n_threads > 1) openblas_set_num_threads(blas_threads);
    er_att_bias bias = {.add = rel_add, .arg = &j, .window = 0};
    er_att_args a = {.q = x->q + off, .k = x->k + off, .v = x->v + off, .ld = H,
                     .out = x->att + off, .n_heads = nh, .head_dim = H / nh, .scale = inv_s,
                     .bias = &bias};
    er_attention(x, &g, &a);
}

void er_deberta_attention(const er_model *m, er_ctx *x, const er_batch *b, int layer) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, nh = c->num_heads, d = H / nh;
    /* scale = torch.sqrt(torch.tensor(head_dim, dtype=torch.float) * scale_factor) */
    const float inv_s = 1.0f / sqrtf((float)d * (float)c->deberta.scale_factor);
    if (!has_rel_terms(c)) {
        er_att_args a = {.q = x->q, .k = x->k, .v = x->v, .ld = H, .out = x->att, .n_heads = nh,
                         .head_dim = d, .scale = inv_s, .bias = NULL};
        er_attention(x, b, &a);
        return;
    }
    int first = 0;
    for (int s0 = 0; s0 < b->n_seqs;) {
        const int s1 = take_group(c, x, b, s0);
        group_attention(m, x, b, layer, s0, s1, first, inv_s);
        for (int s = s0; s < s1; s++) first += b->seq_len[s];
        s0 = s1;
    }
}

static void conv_act(float *v, int n, int act) {
    if (act == -1) er_tanh(v, n);
    else if (act == ER_ACT_GELU) er_gelu_erf(v, n);
    else if (act == ER_ACT_GELU_TANH) er_gelu_tanh(v, n);
    else if (act == ER_ACT_RELU) er_relu(v, n);
    /* -2: linear */
}

/* out[n, H] = bias + Conv1d(in[n, H]) of one sequence, padding (K - 1) / 2:
 * tap k adds in[t + k - pad] . W_k^T for the rows t whose source is inside
 * the sequence (Conv1d's zero padding), one GEMM per tap and group. */
static void conv_sequence(const er_config *c, const struct er_deberta_w *w, const float *in, int n,
                          float *out) {
    const int H = c->hidden_size, K = c->deberta.conv_kernel_size, G = c->deberta.conv_groups;
    const int Cg = H / G, pad = (K - 1) / 2;
    for (int t = 0; t < n; t++) memcpy(out + (size_t)t * H, w->conv_b, (size_t)H * sizeof *out);
    for (int k = 0; k < K; k++) {
        const int t0 = pad - k > 0 ? pad - k : 0, t1 = n + pad - k < n ? n + pad - k : n;
        if (t1 <= t0) continue;
        const float *src = in + (size_t)(t0 + k - pad) * H; // [t1 - t0, H]
        const float *wk = w->conv_w + (size_t)k * H * Cg;   // [H, Cg]
        for (int g = 0; g < G; g++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t1 - t0, Cg, Cg, 1.0f,
                        src + (size_t)g * Cg, H, wk + (size_t)g * Cg * Cg, Cg, 1.0f,
                        out + (size_t)t0 * H + (size_t)g * Cg, H);
    }
}

void er_deberta_conv(const er_model *m, er_ctx *x, const er_batch *b, float *hidden) {
    const er_config *c = &m->cfg;
    const struct er_deberta_w *w = m->deberta;
    const int H = c->hidden_size, T = er_batch_tokens(b);
    for (int s = 0, t = 0; s < b->n_seqs; t += b->seq_len[s++])
        conv_sequence(c, w, x->conv_in + (size_t)t * H, b->seq_len[s], x->tmp + (size_t)t * H);
    conv_act(x->tmp, T * H, c->deberta.conv_act); // tmp [T, H]
    /* LayerNorm(residual_states + out): the residual is layer 0's output */
    er_par_add_layernorm(x, x->tmp, hidden, NULL, &w->conv_ln, c->layer_norm_eps, T, H);
}
