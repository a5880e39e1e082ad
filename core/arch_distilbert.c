/* DistilBERT: BERT's embeddings (no token types) and layer, under its own
 * config keys and layer tensor names. */
#include "arch.h"
#include "encoder_internal.h"
#include "heads.h"
#include "model_internal.h"

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("pad_token_id", 0, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("dim", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("n_layers", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("n_heads", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("hidden_dim", -1, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
#undef INT_FIELD
    c->type_vocab_size = 0;
    c->layer_norm_eps = 1e-12f; /* fixed in modeling_distilbert.py */
    c->embedding_size = c->hidden_size;
    /* sinusoidal_pos_embds needs nothing: the table is in the checkpoint either way */
    return er_config_act(root, "activation", &c->act, err);
}

static const er_layer_names LAYER_NAMES = {
    .layers = "transformer.layer",
    .q = "attention.q_lin",
    .k = "attention.k_lin",
    .v = "attention.v_lin",
    .o = "attention.out_lin",
    .attn_ln = "sa_layer_norm",
    .ffn_in = "ffn.lin1",
    .ffn_out = "ffn.lin2",
    .out_ln = "output_layer_norm",
};

static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    return er_load_post_ln_layer(m, pre, i, &LAYER_NAMES, err);
}

/* pre_classifier + ReLU on [CLS], then classifier. */
static er_status load_seqcls_head(er_model *m, const char *pre, er_err *err) {
    (void)pre; /* the head sits outside the base model */
    return er_load_dense_head(m, "pre_classifier", ER_HEAD_ACT_RELU, "classifier", err);
}

static const er_arch_class CLASSES[] = {
    {"DistilBertModel", ER_HEAD_EMBEDDING, NULL, false},
    {"DistilBertForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_seqcls_head,
     false},
    {"DistilBertForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"DistilBertForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {"DistilBertForMaskedLM", ER_HEAD_SPARSE_EMBEDDING, er_load_mlm_head_distilbert, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"distilbert", "DistilBertModel"}, {NULL, NULL}};

const er_arch_desc er_arch_distilbert = {
    .name = "distilbert",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "distilbert.",
    .parse_config = parse_config,
    .load_embeddings = er_bert_load_embeddings,
    .load_layer = load_layer,
    .embed = er_bert_embed,
    .layer = er_layer_post_ln,
    .layer_names = &LAYER_NAMES,
    .max_seq_len = er_bert_max_seq_len,
    .narrow_layers = true,
};
