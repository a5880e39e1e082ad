/* DeBERTa-v2 and v3 (model_type "deberta-v2"), following transformers'
 * modeling_deberta_v2.py: embeddings without (v3) or with absolute
 * positions, an optional embed_proj before the LayerNorm, BERT's post-LN
 * layer around disentangled attention (deberta_attention.c), the ConvLayer
 * of the v2 xlarge configs after layer 0, and ContextPooler for sequence
 * classification. */
#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "deberta_internal.h"
#include "kernels.h"

/* Model-owned zeroed bytes (freed with the model). */
static er_status owned(er_model *m, size_t bytes, void **out, er_err *err) {
    float *f = NULL;
    er_status st = er_model_alloc_floats(m, (bytes + sizeof *f - 1) / sizeof *f, &f, err);
    *out = f;
    return st;
}

/* m->deberta with its layer array and bucket table, made on first use (by
 * the embeddings, or the first layer when they are skipped). */
static er_status deberta_w(er_model *m, struct er_deberta_w **out, er_err *err) {
    const er_config *c = &m->cfg;
    if (!m->deberta) {
        struct er_deberta_w *w;
        const int M = c->max_positions;
        er_status st = owned(m, sizeof *w, (void **)&w, err);
        if (st == ER_OK)
            st = owned(m, (size_t)c->num_layers * sizeof *w->layers, (void **)&w->layers, err);
        if (st == ER_OK)
            st = owned(m, (size_t)(2 * M - 1) * sizeof *w->bucket, (void **)&w->bucket, err);
        if (st != ER_OK) return st;
        w->max_len = M;
        /* only relative attention uses (and deberta_config.c validates) the buckets */
        for (int d = -(M - 1); d < M && c->deberta.relative_attention; d++)
            w->bucket[d + M - 1] = er_deberta_bucket(c, d);
        m->deberta = w;
    }
    *out = m->deberta;
    return ER_OK;
}

/* DebertaV2Embeddings: word (+ position when position_biased_input) (+ token
 * type when type_vocab_size > 0), embed_proj when embedding_size differs,
 * then the LayerNorm over hidden. */
static er_status load_embeddings(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    const int e = c->embedding_size, h = c->hidden_size;
    struct er_deberta_w *w;
    char p[256];
    snprintf(p, sizeof p, "%sembeddings.", pre);
    er_status st = deberta_w(m, &w, err);
    /* F16/BF16 stays narrow (V x E: 375 MiB as fp32 at deberta-v3-base's
     * 128100 x 768); embed widens the rows it reads */
    if (st == ER_OK)
        st = er_load_table(m, p, "word_embeddings.weight", c->vocab_size, e, &m->word_emb,
                           &m->word_emb_narrow, err);
    if (st == ER_OK && c->deberta.position_biased_input)
        st = er_load_tensor(m, p, "position_embeddings.weight", c->max_positions, e, &m->pos_emb,
                            err);
    if (st == ER_OK && c->type_vocab_size > 0)
        st = er_load_tensor(m, p, "token_type_embeddings.weight", c->type_vocab_size, e,
                            &m->type_emb, err);
    if (st == ER_OK && e != h) st = er_load_lin(m, p, "embed_proj", h, e, false, &m->emb_project, err);
    if (st == ER_OK) st = er_load_ln(m, p, "LayerNorm", h, &w->emb_ln, err);
    return st;
}

/* encoder.rel_embeddings and get_rel_embedding()'s LayerNorm, applied once. */
static er_status load_rel(er_model *m, struct er_deberta_w *w, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    const int n = 2 * c->deberta.att_span, h = c->hidden_size;
    char p[256];
    snprintf(p, sizeof p, "%sencoder.", pre);
    er_status st = er_load_tensor(m, p, "rel_embeddings.weight", n, h, &w->rel_emb, err);
    if (st == ER_OK && c->deberta.norm_rel_ln) st = er_load_ln(m, p, "LayerNorm", h, &w->rel_ln, err);
    if (st == ER_OK) st = er_model_alloc_floats(m, (size_t)n * h, &w->rel_normed, err);
    if (st != ER_OK) return st;
    if (w->rel_ln.gamma)
        er_add_layernorm(w->rel_emb, NULL, NULL, w->rel_ln.gamma, w->rel_ln.beta,
                         c->layer_norm_eps, n, h, w->rel_normed); // [2 span, H]
    else
        memcpy(w->rel_normed, w->rel_emb, (size_t)n * h * sizeof *w->rel_normed);
    return ER_OK;
}

/* ConvLayer: conv.weight [H, H / groups, K] stored tap-first as conv_w. */
static er_status load_conv(er_model *m, struct er_deberta_w *w, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, K = c->deberta.conv_kernel_size, Cg = H / c->deberta.conv_groups;
    char p[256];
    snprintf(p, sizeof p, "%sencoder.conv.", pre);
    const int64_t shape[3] = {H, Cg, K};
    const float *raw;
    er_status st = er_load_tensor_shape(m, p, "conv.weight", shape, 3, &raw, err);
    if (st == ER_OK) st = er_load_tensor(m, p, "conv.bias", H, 0, &w->conv_b, err);
    if (st == ER_OK) st = er_load_ln(m, p, "LayerNorm", H, &w->conv_ln, err);
    if (st == ER_OK) st = er_model_alloc_floats(m, (size_t)K * H * Cg, &w->conv_w, err);
    if (st != ER_OK) return st;
    for (int o = 0; o < H; o++) // conv_w [K, H, Cg]
        for (int i = 0; i < Cg; i++)
            for (int k = 0; k < K; k++)
                w->conv_w[((size_t)k * H + o) * Cg + i] = raw[((size_t)o * Cg + i) * K + k];
    return ER_OK;
}

static const er_layer_names LAYER_NAMES = {
    .layers = "encoder.layer",
    .q = "attention.self.query_proj",
    .k = "attention.self.key_proj",
    .v = "attention.self.value_proj",
    .o = "attention.output.dense",
    .attn_ln = "attention.output.LayerNorm",
    .ffn_in = "intermediate.dense",
    .ffn_out = "output.dense",
    .out_ln = "output.LayerNorm",
};

static er_status rel_tables(er_model *m, int i, er_err *err);
static er_status project_rel(const er_lin *l, const float *rel, int n, float *out, er_err *err);

/* The layer's relative tables: pos_key / pos_query [2 span, H] through
 * key_proj / query_proj (share_att_key) or pos_key_proj / pos_query_proj. */
static er_status load_rel_layer(er_model *m, struct er_deberta_w *w, const char *pre, int i,
                                er_err *err) {
    const er_config *c = &m->cfg;
    const int h = c->hidden_size, n = 2 * c->deberta.att_span;
    const bool share = c->deberta.share_att_key;
    er_deberta_layer *D = &w->layers[i];
    char p[256];
    snprintf(p, sizeof p, "%sencoder.layer.%d.attention.self.", pre, i);
    er_status st = ER_OK;
    /* read only here, through rel_tables: F16/BF16 stays narrow on any backend */
    if (c->deberta.c2p && !share)
        st = er_load_lin_narrow(m, p, "pos_key_proj", h, h, true, true, &D->pos_k, err);
    if (st == ER_OK && c->deberta.p2c && !share)
        st = er_load_lin_narrow(m, p, "pos_query_proj", h, h, true, true, &D->pos_q, err);
    if (st == ER_OK && c->deberta.c2p) st = er_model_alloc_floats(m, (size_t)n * h, &D->pk, err);
    if (st == ER_OK && c->deberta.p2c) st = er_model_alloc_floats(m, (size_t)n * h, &D->pq, err);
    if (st != ER_OK) return st;
    return rel_tables(m, i, err);
}

/* out[n, H] = rel[n, H] through l at load: er_lin_apply (with any LoRA term)
 * on a float weight; a narrow one (w NULL), or one with a merged LoRA pair,
 * is widened (and merged) into a transient buffer first and computes the
 * same floats as its F32 widening's merged copy would. */
static er_status project_rel(const er_lin *l, const float *rel, int n, float *out, er_err *err) {
    if (er_lin_is_float(l)) {
        er_lin_apply(l, rel, n, out);
        return ER_OK;
    }
    const size_t sz = (size_t)l->out * l->in;
    float *w = er_transient_alloc(sz); // [out, in]
    if (!w) return er_set(err, ER_ERR_NOMEM, "out of memory widening a %dx%d projection",
                          l->out, l->in);
    er_status st = er_lin_widen(l, w, err);
    er_lin wide = *l;
    wide.w = w;
    wide.narrow = NULL;
    wide.merge_a = wide.merge_b = NULL; /* in w now */
    wide.packed = NULL; /* never packed at load; the float weight is the reference */
    if (st == ER_OK) er_lin_apply(&wide, rel, n, out);
    er_transient_free(w, sz);
    return st;
}

/* Layer i's pos_key / pos_query [2 span, H] from the normed relative
 * embeddings, through key_proj / query_proj (share_att_key: with any LoRA
 * term on them, as peft's wrapped module computes it) or the pos_* ones. */
static er_status rel_tables(er_model *m, int i, er_err *err) {
    struct er_deberta_w *w = m->deberta;
    const bool share = m->cfg.deberta.share_att_key;
    const int n = 2 * m->cfg.deberta.att_span;
    er_deberta_layer *D = &w->layers[i];
    const er_layer_w *L = &m->layers[i];
    er_status st = ER_OK;
    if (D->pk) // [2 span, H]
        st = project_rel(share ? &L->k : &D->pos_k, w->rel_normed, n, D->pk, err);
    if (D->pq && st == ER_OK) // [2 span, H]
        st = project_rel(share ? &L->q : &D->pos_q, w->rel_normed, n, D->pq, err);
    return st;
}

/* After a LoRA adapter changed query_proj / key_proj: the tables again. */
static er_status adapted(er_model *m, er_err *err) {
    if (!m->cfg.deberta.relative_attention || !m->cfg.deberta.share_att_key) return ER_OK;
    er_status st = ER_OK;
    for (int i = m->skip_below; i < m->cfg.num_layers && st == ER_OK; i++)
        st = rel_tables(m, i, err);
    return st;
}

static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    const er_config *c = &m->cfg;
    struct er_deberta_w *w;
    er_status st = er_load_post_ln_layer(m, pre, i, &LAYER_NAMES, err);
    if (st == ER_OK) st = deberta_w(m, &w, err);
    if (st != ER_OK) return st;
    if (c->deberta.relative_attention) {
        if (!w->rel_emb && (st = load_rel(m, w, pre, err)) != ER_OK) return st;
        if ((st = load_rel_layer(m, w, pre, i, err)) != ER_OK) return st;
    }
    if (i == 0 && c->deberta.conv_kernel_size > 0) st = load_conv(m, w, pre, err);
    return st;
}

/* Positions 0, 1, ... per sequence; no padding, so the mask multiply of
 * DebertaV2Embeddings is the identity. */
static void embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    const er_config *c = &m->cfg;
    const int E = c->embedding_size, H = c->hidden_size, T = er_batch_tokens(b);
    float *e = m->emb_project.w ? x->tmp : out; // [T, E]
    for (int s = 0, t = 0; s < b->n_seqs; s++)
        for (int i = 0; i < b->seq_len[s]; i++, t++) {
            float *row = e + (size_t)t * E; // [E]
            if (m->word_emb) /* else a narrow table: the row widened in place */
                memcpy(row, m->word_emb + (size_t)b->ids[t] * E, (size_t)E * sizeof *row);
            else
                er_st_range_to_f32(m->word_emb_narrow, (int64_t)b->ids[t] * E, E, row);
            if (m->pos_emb) {
                const float *p = m->pos_emb + (size_t)i * E; // [E]
                for (int j = 0; j < E; j++) row[j] += p[j];
            }
            if (m->type_emb) {
                const float *ty = m->type_emb + (size_t)(b->type_ids ? b->type_ids[t] : 0) * E;
                for (int j = 0; j < E; j++) row[j] += ty[j];
            }
        }
    if (m->emb_project.w) er_lin_apply(&m->emb_project, e, T, out); // [T, H]
    er_add_layernorm(out, NULL, NULL, m->deberta->emb_ln.gamma, m->deberta->emb_ln.beta,
                     c->layer_norm_eps, T, H, out);
}

/* DebertaV2Layer: disentangled attention, then BERT's output projection,
 * residual LayerNorms and FFN; the ConvLayer follows layer 0. */
static void layer(const er_model *m, er_ctx *x, const er_batch *b, int l, float *hidden) {
    const er_config *c = &m->cfg;
    const er_layer_w *L = &m->layers[l];
    const int T = er_batch_tokens(b), H = c->hidden_size;
    const float eps = c->layer_norm_eps;
    const bool conv = l == 0 && m->deberta->conv_w;
    if (conv) memcpy(x->conv_in, hidden, (size_t)T * H * sizeof *hidden); // [T, H] encoder input
    er_qkv_apply(x, L, hidden, T);    // q, k, v [T, H]
    er_deberta_attention(m, x, b, l); // att [T, H]
    er_lin_apply_nobias(&L->o, x->att, T, x->tmp); // [T, H] (packed, + LoRA)
    er_par_add_layernorm(x, x->tmp, hidden, L->o.b, &L->attn_ln, eps, T, H); // hidden [T, H]
    er_ffn(x, L, c->act, hidden, T); // tmp [T, H]
    er_par_add_layernorm(x, x->tmp, hidden, L->ffn_out.b, &L->out_ln, eps, T, H); // hidden [T, H]
    if (conv) er_deberta_conv(m, x, b, hidden); // hidden [T, H]
}

/* ContextPooler: dense + pooler_hidden_act on the first token, then classifier. */
static er_status load_pooler_head(er_model *m, const char *pre, er_err *err) {
    (void)pre; /* pooler and classifier sit outside the base model */
    const er_config *c = &m->cfg;
    const int a = c->deberta.pooler_act; /* a tanh-form GELU equals hidden_act (deberta_config.c) */
    const er_head_act act = a == -1 ? ER_HEAD_ACT_TANH : a == -2 ? ER_HEAD_ACT_NONE
                            : a == ER_ACT_GELU ? ER_HEAD_ACT_GELU : a == ER_ACT_RELU ? ER_HEAD_ACT_RELU
                            : ER_HEAD_ACT_HIDDEN;
    return er_load_dense_head(m, "pooler.dense", act, "classifier", err);
}

static int max_seq_len(const er_config *c) { return c->max_positions; }

static void lower_config(const er_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, " deberta rel=%d pbi=%d share=%d c2p=%d p2c=%d relln=%d buckets=%d "
             "maxrel=%d span=%d scale=%d conv=%d/%d/%d",
             c->deberta.relative_attention, c->deberta.position_biased_input,
             c->deberta.share_att_key, c->deberta.c2p, c->deberta.p2c, c->deberta.norm_rel_ln,
             c->deberta.position_buckets, c->deberta.max_relative_positions, c->deberta.att_span,
             c->deberta.scale_factor, c->deberta.conv_kernel_size, c->deberta.conv_groups,
             c->deberta.conv_act);
}

static int visit_ln(er_tensor_visit_fn fn, void *user, const char *name, const er_ln *ln, int d) {
    char key[96];
    snprintf(key, sizeof key, "%s.gamma", name);
    int r = ln->gamma ? fn(user, key, ln->gamma, (size_t)d) : 0;
    snprintf(key, sizeof key, "%s.beta", name);
    return r || !ln->beta ? r : fn(user, key, ln->beta, (size_t)d);
}

static int visit_lin(er_tensor_visit_fn fn, void *user, const char *name, const er_lin *l) {
    char key[96];
    snprintf(key, sizeof key, "%s.weight", name);
    int r = er_visit_lin_weight(fn, user, key, l); /* narrow: widened, as its F32 widening */
    snprintf(key, sizeof key, "%s.bias", name);
    return r || !l->b ? r : fn(user, key, l->b, (size_t)l->out);
}

/* The embedding LayerNorm, and for layers [0, cut) the relative embeddings
 * and their LayerNorm, the position projections and the ConvLayer. */
static int visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user) {
    const er_config *c = &m->cfg;
    const struct er_deberta_w *w = m->deberta;
    const int H = c->hidden_size;
    int r = visit_ln(fn, user, "deberta.emb_ln", &w->emb_ln, H);
    if (cut == 0 || r) return r;
    if (w->rel_emb) r = fn(user, "deberta.rel_embeddings", w->rel_emb, 2 * (size_t)c->deberta.att_span * H);
    if (!r) r = visit_ln(fn, user, "deberta.rel_ln", &w->rel_ln, H);
    if (!r && w->conv_w) {
        r = fn(user, "deberta.conv.weight", w->conv_w,
               (size_t)c->deberta.conv_kernel_size * H * (H / c->deberta.conv_groups));
        if (!r) r = fn(user, "deberta.conv.bias", w->conv_b, (size_t)H);
        if (!r) r = visit_ln(fn, user, "deberta.conv.ln", &w->conv_ln, H);
    }
    for (int i = 0; i < cut && !r; i++) {
        char p[64];
        snprintf(p, sizeof p, "deberta.layer.%d.pos_k", i);
        r = visit_lin(fn, user, p, &w->layers[i].pos_k);
        snprintf(p, sizeof p, "deberta.layer.%d.pos_q", i);
        if (!r) r = visit_lin(fn, user, p, &w->layers[i].pos_q);
    }
    return r;
}

static const er_arch_class CLASSES[] = {
    {"DebertaV2Model", ER_HEAD_EMBEDDING, NULL, false},
    {"DebertaV2ForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_pooler_head,
     false},
    {"DebertaV2ForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"DebertaV2ForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"deberta-v2", "DebertaV2Model"}, {NULL, NULL}};

const er_arch_desc er_arch_deberta = {
    .name = "deberta-v2",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "deberta.",
    .parse_config = er_deberta_parse_config,
    .load_embeddings = load_embeddings,
    .load_layer = load_layer,
    .embed = embed,
    .layer = layer,
    .max_seq_len = max_seq_len,
    .lower_config = lower_config,
    .visit_lower = visit_lower,
    .layer_names = &LAYER_NAMES,
    .adapted = adapted,
    /* q/k/v (er_qkv_apply), o and the FFN reach their weights only through
     * er_lin_apply(_nobias); the relative tables through key_proj /
     * query_proj are computed at load from a widened transient copy */
    .narrow_layers = true,
};
