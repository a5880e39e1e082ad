/* ELECTRA: BERT's layout with an embedding size of its own (projected to the
 * hidden size when they differ), a GELU classifier head and the
 * discriminator's per-token head. */
#include "arch.h"
#include "encoder_internal.h"
#include "model_internal.h"

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = er_bert_parse_config(root, c, err);
    if (st != ER_OK) return st;
    return er_config_int(root, "embedding_size", c->hidden_size, 1, ER_MAX_HIDDEN,
                         &c->embedding_size, err);
}

/* BERT's embeddings, then embeddings_project [hidden, embedding_size]. */
static er_status load_embeddings(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    er_status st = er_bert_load_embeddings(m, pre, err);
    if (st != ER_OK || c->embedding_size == c->hidden_size) return st;
    return er_load_lin(m, pre, "embeddings_project", c->hidden_size, c->embedding_size, true,
                       &m->emb_project, err);
}

/* ElectraClassificationHead: dense + GELU on [CLS], then out_proj. */
static er_status load_seqcls_head(er_model *m, const char *pre, er_err *err) {
    (void)pre; /* the head sits outside the base model */
    return er_load_dense_head(m, "classifier.dense", ER_HEAD_ACT_GELU, "classifier.out_proj", err);
}

/* ElectraDiscriminatorPredictions: dense + hidden_act on every token, then
 * one logit per token. */
static er_status load_discriminator_head(er_model *m, const char *pre, er_err *err) {
    (void)pre;
    return er_load_dense_head(m, "discriminator_predictions.dense", ER_HEAD_ACT_HIDDEN,
                              "discriminator_predictions.dense_prediction", err);
}

static const er_arch_class CLASSES[] = {
    {"ElectraModel", ER_HEAD_EMBEDDING, NULL, false},
    {"ElectraForPreTraining", ER_HEAD_TOKEN_CLASSIFICATION, load_discriminator_head, true},
    {"ElectraForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_seqcls_head, false},
    {"ElectraForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"ElectraForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"electra", "ElectraModel"}, {NULL, NULL}};

const er_arch_desc er_arch_electra = {
    .name = "electra",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "electra.",
    .parse_config = parse_config,
    .load_embeddings = load_embeddings,
    .load_layer = er_bert_load_layer,
    .embed = er_bert_embed,
    .layer = er_layer_post_ln,
    .max_seq_len = er_bert_max_seq_len,
    .layer_names = &er_bert_layer_names,
    .narrow_layers = true,
};
