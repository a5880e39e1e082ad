/* BERT and RoBERTa / XLM-RoBERTa: one tensor layout and one layer; RoBERTa
 * differs in its position ids, its padding id and its classifier head.  The
 * BERT pieces are shared with DistilBERT and ELECTRA (arch.h). */
#include "arch.h"
#include "encoder_internal.h"
#include "heads.h"
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

/* The sizes under BERT's key names; pad_token_id defaults to `pad`. */
static er_status parse_dims(const json_t *root, int pad, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("pad_token_id", pad, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("hidden_size", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("num_hidden_layers", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("num_attention_heads", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("intermediate_size", -1, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
    INT_FIELD("type_vocab_size", 2, 0, ER_MAX_TYPE_VOCAB, &c->type_vocab_size);
#undef INT_FIELD
    c->embedding_size = c->hidden_size;
    if ((st = er_config_act(root, "hidden_act", &c->act, err)) != ER_OK) return st;
    const json_t *eps = json_object_get(root, "layer_norm_eps");
    c->layer_norm_eps = 1e-12f;
    if (eps) {
        if (!json_is_number(eps) || !(json_number_value(eps) > 0) || json_number_value(eps) > 1.0)
            return er_set(err, ER_ERR_FORMAT, "config.json: 'layer_norm_eps' must be a number in "
                          "(0, 1]");
        c->layer_norm_eps = (float)json_number_value(eps);
    }
    const char *pet = json_string_value(json_object_get(root, "position_embedding_type"));
    if (pet && strcmp(pet, "absolute") != 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: position_embedding_type '%.40s' is "
                      "not supported (only 'absolute')", pet);
    return ER_OK;
}

er_status er_bert_parse_config(const json_t *root, er_config *c, er_err *err) {
    return parse_dims(root, 0, c, err);
}

/* RoBERTa's positions start after padding_idx (pad_token_id, 1 by default). */
static er_status roberta_parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = parse_dims(root, 1, c, err);
    if (st == ER_OK && c->max_positions <= c->pad_token_id + 1)
        return er_set(err, ER_ERR_FORMAT, "config.json: max_position_embeddings %d leaves no "
                      "positions after padding_idx %d", c->max_positions, c->pad_token_id);
    return st;
}

/* Word, position and (when the config has token types) type embeddings and
 * their LayerNorm; DistilBERT and ELECTRA name theirs alike. */
er_status er_bert_load_embeddings(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    const int e = c->embedding_size;
    char p[256];
    snprintf(p, sizeof p, "%sembeddings.", pre);
    /* F16/BF16 stays narrow: er_embed_absolute widens the rows it reads */
    er_status st = er_load_table(m, p, "word_embeddings.weight", c->vocab_size, e, &m->word_emb,
                                 &m->word_emb_narrow, err);
    if (st == ER_OK)
        st = er_load_tensor(m, p, "position_embeddings.weight", c->max_positions, e, &m->pos_emb,
                            err);
    if (st == ER_OK && c->type_vocab_size > 0)
        st = er_load_tensor(m, p, "token_type_embeddings.weight", c->type_vocab_size, e,
                            &m->type_emb, err);
    if (st == ER_OK) st = er_load_ln(m, p, "LayerNorm", e, &m->emb_ln, err);
    return st;
}

const er_layer_names er_bert_layer_names = {
    .layers = "encoder.layer",
    .q = "attention.self.query",
    .k = "attention.self.key",
    .v = "attention.self.value",
    .o = "attention.output.dense",
    .attn_ln = "attention.output.LayerNorm",
    .ffn_in = "intermediate.dense",
    .ffn_out = "output.dense",
    .out_ln = "output.LayerNorm",
};

er_status er_bert_load_layer(er_model *m, const char *pre, int i, er_err *err) {
    return er_load_post_ln_layer(m, pre, i, &er_bert_layer_names, err);
}

er_status er_bert_load_pooler_head(er_model *m, const char *pre, er_err *err) {
    char dense[256];
    snprintf(dense, sizeof dense, "%spooler.dense", pre);
    return er_load_dense_head(m, dense, ER_HEAD_ACT_TANH, "classifier", err);
}

/* RobertaClassificationHead: dense + tanh on <s>, then out_proj. */
static er_status load_roberta_head(er_model *m, const char *pre, er_err *err) {
    (void)pre; /* the head sits outside the base model */
    return er_load_dense_head(m, "classifier.dense", ER_HEAD_ACT_TANH, "classifier.out_proj", err);
}

/* Positions 0, 1, ... in every sequence. */
void er_bert_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    int32_t *pos = x->positions; // [n_tokens]
    for (int s = 0, t = 0; s < b->n_seqs; s++)
        for (int i = 0; i < b->seq_len[s]; i++) pos[t++] = i;
    er_embed_absolute(m, x, b, pos, out);
}

/* create_position_ids_from_input_ids: padding_idx + running count of non-pad
 * tokens; a pad id itself sits at padding_idx. */
static void roberta_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out) {
    const int pad = m->cfg.pad_token_id;
    int32_t *pos = x->positions; // [n_tokens]
    for (int s = 0, t = 0; s < b->n_seqs; s++) {
        int non_pad = 0;
        for (int i = 0; i < b->seq_len[s]; i++, t++)
            pos[t] = b->ids[t] == pad ? pad : pad + ++non_pad;
    }
    er_embed_absolute(m, x, b, pos, out);
}

int er_bert_max_seq_len(const er_config *c) { return c->max_positions; }

static int roberta_max_seq_len(const er_config *c) {
    return c->max_positions - c->pad_token_id - 1;
}

static const er_arch_class BERT_CLASSES[] = {
    {"BertModel", ER_HEAD_EMBEDDING, NULL, false},
    {"BertForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, er_bert_load_pooler_head, false},
    {"BertForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"BertForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {"BertForMaskedLM", ER_HEAD_SPARSE_EMBEDDING, er_load_mlm_head_bert, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type BERT_TYPES[] = {{"bert", "BertModel"}, {NULL, NULL}};

const er_arch_desc er_arch_bert = {
    .name = "bert",
    .model_types = BERT_TYPES,
    .classes = BERT_CLASSES,
    .prefix = "bert.",
    .parse_config = er_bert_parse_config,
    .load_embeddings = er_bert_load_embeddings,
    .load_layer = er_bert_load_layer,
    .embed = er_bert_embed,
    .layer = er_layer_post_ln,
    .max_seq_len = er_bert_max_seq_len,
    .layer_names = &er_bert_layer_names,
    .narrow_layers = true,
};

/* XLM-RoBERTa is RoBERTa with another vocabulary: same classes, same "roberta." prefix. */
static const er_arch_class ROBERTA_CLASSES[] = {
    {"RobertaModel", ER_HEAD_EMBEDDING, NULL, false},
    {"RobertaForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_roberta_head, false},
    {"RobertaForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"RobertaForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {"XLMRobertaModel", ER_HEAD_EMBEDDING, NULL, false},
    {"XLMRobertaForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_roberta_head,
     false},
    {"XLMRobertaForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"XLMRobertaForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {"RobertaForMaskedLM", ER_HEAD_SPARSE_EMBEDDING, er_load_mlm_head_roberta, false},
    {"XLMRobertaForMaskedLM", ER_HEAD_SPARSE_EMBEDDING, er_load_mlm_head_roberta, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type ROBERTA_TYPES[] = {
    {"roberta", "RobertaModel"}, {"xlm-roberta", "XLMRobertaModel"}, {NULL, NULL}};

const er_arch_desc er_arch_roberta = {
    .name = "roberta",
    .model_types = ROBERTA_TYPES,
    .classes = ROBERTA_CLASSES,
    .prefix = "roberta.",
    .parse_config = roberta_parse_config,
    .load_embeddings = er_bert_load_embeddings,
    .load_layer = er_bert_load_layer,
    .embed = roberta_embed,
    .layer = er_layer_post_ln,
    .max_seq_len = roberta_max_seq_len,
    .layer_names = &er_bert_layer_names,
    .narrow_layers = true,
};
