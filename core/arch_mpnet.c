/* MPNet (all-mpnet-base-v2 and its fine-tuned children), as transformers'
 * modeling_mpnet.py computes it: RoBERTa-style embeddings without token
 * types (positions after padding_idx 1), BERT's post-LN layer under MPNet's
 * tensor names, and a T5-style relative position bias added to every
 * layer's attention scores.
 *
 * The bias: MPNetEncoder.compute_position_bias buckets j - i (query i, key
 * j) with relative_position_bucket (num_buckets 32 and max_distance 128,
 * both fixed in that code whatever the config says) and looks each bucket up
 * in encoder.relative_attention_bias [buckets, heads].  It depends on j - i
 * only, so it is computed once, at load, for every distance a sequence can
 * have, [heads, 2 * max_len - 1]; attention adds it tile by tile through
 * er_att_bias, never as an S x S matrix. */
#include "arch.h"
#include "encoder_internal.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>

#define MPNET_PADDING_IDX 1 /* MPNetEmbeddings.padding_idx: fixed, not pad_token_id */
#define MPNET_BUCKETS 32    /* compute_position_bias(num_buckets=32) */
#define MPNET_MAX_DISTANCE 128

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("pad_token_id", 1, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("hidden_size", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("num_hidden_layers", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("num_attention_heads", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("intermediate_size", -1, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
    INT_FIELD("relative_attention_num_buckets", MPNET_BUCKETS, 1, 1 << 16,
              &c->mpnet.relative_buckets);
#undef INT_FIELD
    if (c->mpnet.relative_buckets < MPNET_BUCKETS)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: relative_attention_num_buckets %d is "
                      "not supported: MPNet's encoder buckets relative positions into %d, so the "
                      "table needs at least %d rows", c->mpnet.relative_buckets, MPNET_BUCKETS,
                      MPNET_BUCKETS);
    if (c->max_positions <= MPNET_PADDING_IDX + 1)
        return er_set(err, ER_ERR_FORMAT, "config.json: max_position_embeddings %d leaves no "
                      "positions after padding_idx %d", c->max_positions, MPNET_PADDING_IDX);
    c->type_vocab_size = 0; /* MPNet has no token types */
    c->embedding_size = c->hidden_size;
    const json_t *eps = json_object_get(root, "layer_norm_eps");
    c->layer_norm_eps = 1e-12f;
    if (eps) {
        if (!json_is_number(eps) || !(json_number_value(eps) > 0) || json_number_value(eps) > 1.0)
            return er_set(err, ER_ERR_FORMAT, "config.json: 'layer_norm_eps' must be a number in "
                          "(0, 1]");
        c->layer_norm_eps = (float)json_number_value(eps);
    }
    return er_config_act(root, "hidden_act", &c->act, err);
}

/* MPNetEncoder.relative_position_bucket for relative_position = j - i, in
 * float32 as torch computes it (n.float(), torch.log, the truncating
 * .to(torch.long)): bidirectional, half the buckets per direction, exact
 * below max_exact, logarithmic up to max_distance. */
int er_mpnet_bucket(int relative_position) {
    const int half = MPNET_BUCKETS / 2, max_exact = half / 2;
    int n = -relative_position;
    int ret = n < 0 ? half : 0;
    n = n < 0 ? -n : n;
    if (n < max_exact) return ret + n;
    float v = logf((float)n / (float)max_exact) / (float)log((double)MPNET_MAX_DISTANCE / max_exact) *
              (float)(half - max_exact);
    int large = max_exact + (int)v;
    return ret + (large < half - 1 ? large : half - 1);
}

static int max_len(const er_config *c) { return c->max_positions - MPNET_PADDING_IDX - 1; }

/* encoder.relative_attention_bias and the per-distance table built from it. */
static er_status load_relative_bias(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    const int nh = c->num_heads, L = max_len(c), span = 2 * L - 1;
    char p[256];
    snprintf(p, sizeof p, "%sencoder.", pre);
    er_status st = er_load_tensor(m, p, "relative_attention_bias.weight",
                                  c->mpnet.relative_buckets, nh, &m->mpnet.rel_bias, err);
    if (st == ER_OK) st = er_model_alloc_floats(m, (size_t)nh * span, &m->mpnet.by_distance, err);
    if (st != ER_OK) return st;
    m->mpnet.max_len = L;
    for (int d = -(L - 1); d <= L - 1; d++) {
        const float *row = m->mpnet.rel_bias + (size_t)er_mpnet_bucket(d) * nh; // [heads]
        for (int h = 0; h < nh; h++) m->mpnet.by_distance[(size_t)h * span + d + L - 1] = row[h];
    }
    return ER_OK;
}

static const er_layer_names LAYER_NAMES = {
    .layers = "encoder.layer",
    .q = "attention.attn.q",
    .k = "attention.attn.k",
    .v = "attention.attn.v",
    .o = "attention.attn.o",
    .attn_ln = "attention.LayerNorm",
    .ffn_in = "intermediate.dense",
    .ffn_out = "output.dense",
    .out_ln = "output.LayerNorm",
};

/* Every layer needs the bias table: the first layer loaded builds it (the
 * embeddings may be skipped when the lower stack is recycled). */
static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    if (!m->mpnet.by_distance) {
        er_status st = load_relative_bias(m, pre, err);
        if (st != ER_OK) return st;
    }
    return er_load_post_ln_layer(m, pre, i, &LAYER_NAMES, err);
}

/* create_position_ids_from_input_ids with padding_idx 1. */
static void embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    int32_t *pos = x->positions; // [n_tokens]
    for (int s = 0, t = 0; s < b->n_seqs; s++) {
        int non_pad = 0;
        for (int i = 0; i < b->seq_len[s]; i++, t++)
            pos[t] = b->ids[t] == MPNET_PADDING_IDX ? MPNET_PADDING_IDX
                                                    : MPNET_PADDING_IDX + ++non_pad;
    }
    er_embed_absolute(m, x, b, pos, out);
}

/* tile[i - i0][j - j0] += bias of head h at distance j - i. */
static void add_relative_bias(const er_att_bias *self, int seq, int head, int i0, int i1, int j0,
                              int j1, float *tile, int ld) {
    (void)seq; /* the same for every sequence: it depends on j - i only */
    const er_model *m = self->arg;
    const int L = m->mpnet.max_len;
    const float *by_d = m->mpnet.by_distance + (size_t)head * (2 * L - 1) + (L - 1); // [-(L-1), L-1]
    for (int i = i0; i < i1; i++) {
        float *row = tile + (size_t)(i - i0) * ld; // [j1 - j0]
        for (int j = j0; j < j1; j++) row[j - j0] += by_d[j - i];
    }
}

static void layer(const er_model *m, er_ctx *x, const er_batch *b, int l, float *hidden) {
    const er_att_bias bias = {.add = add_relative_bias, .arg = m, .window = 0};
    er_layer_post_ln_bias(m, x, b, l, hidden, &bias);
}

static void lower_config(const er_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, " mpnet_buckets=%d/%d max_distance=%d padding_idx=%d",
             c->mpnet.relative_buckets, MPNET_BUCKETS, MPNET_MAX_DISTANCE, MPNET_PADDING_IDX);
}

/* The bias table changes every layer: part of any cut > 0. */
static int visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user) {
    if (cut == 0) return 0;
    return fn(user, "encoder.relative_attention_bias", m->mpnet.rel_bias,
              (size_t)m->cfg.mpnet.relative_buckets * (size_t)m->cfg.num_heads);
}

/* MPNetClassificationHead: dense + tanh on <s>, then out_proj. */
static er_status load_classification_head(er_model *m, const char *pre, er_err *err) {
    (void)pre; /* the head sits outside the base model */
    return er_load_dense_head(m, "classifier.dense", ER_HEAD_ACT_TANH, "classifier.out_proj", err);
}

static const er_arch_class CLASSES[] = {
    {"MPNetModel", ER_HEAD_EMBEDDING, NULL, false},
    {"MPNetForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_classification_head,
     false},
    {"MPNetForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"MPNetForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"mpnet", "MPNetModel"}, {NULL, NULL}};

const er_arch_desc er_arch_mpnet = {
    .name = "mpnet",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "mpnet.",
    .parse_config = parse_config,
    .load_embeddings = er_bert_load_embeddings,
    .load_layer = load_layer,
    .embed = embed,
    .layer = layer,
    .max_seq_len = max_len,
    .lower_config = lower_config,
    .visit_lower = visit_lower,
    .layer_names = &LAYER_NAMES,
    .narrow_layers = true,
};
