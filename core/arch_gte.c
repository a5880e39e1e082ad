/* GTE v1.5 "NewModel" (model_type "new": gte-base-en-v1.5, gte-large-en-v1.5,
 * gte-multilingual-*), following the modeling code its model repositories
 * point to (Alibaba-NLP/new-impl, modeling.py): rotary q/k with rope_theta
 * and the fixed NTK rope_scaling, a fused qkv_proj with bias, a gated MLP
 * (up_gate_proj without bias: up rows then gate rows, down_proj with bias,
 * up * hidden_act(gate)), post-norm (attn_ln, mlp_ln).  The layer is shared
 * with NomicBERT (nomic_glu.c).  unpad_inputs and
 * use_memory_efficient_attention only choose kernels: erserve never pads.
 *
 * Refused by name: absolute position embeddings, separate q/k/v projections
 * (pack_qkv false), RMSNorm, logn_attention_scale, other rope_scaling types
 * and NTK's mixed_b. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "nomic_glu.h"

static er_status parse_dims(const json_t *root, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("pad_token_id", 0, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("hidden_size", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("num_hidden_layers", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("num_attention_heads", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("intermediate_size", -1, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
    INT_FIELD("type_vocab_size", 0, 0, ER_MAX_TYPE_VOCAB, &c->type_vocab_size);
#undef INT_FIELD
    c->embedding_size = c->hidden_size;
    double eps;
    if ((st = er_rg_number(root, "layer_norm_eps", 1e-12, 1e-30, 1.0, &eps, err)) != ER_OK)
        return st;
    c->layer_norm_eps = (float)eps;
    if (c->hidden_size % c->num_heads != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: hidden size %d is not a multiple of the "
                      "%d attention heads", c->hidden_size, c->num_heads);
    return ER_OK;
}

/* ACT2FN[hidden_act], applied to the gate half. */
static er_status parse_act(const json_t *root, er_config *c, er_err *err) {
    const char *a = json_string_value(json_object_get(root, "hidden_act"));
    if (!a) a = "gelu";
    if (strcmp(a, "gelu") == 0) c->rope_glu.gate_act = ER_GLU_GELU;
    else if (strcmp(a, "gelu_new") == 0 || strcmp(a, "gelu_pytorch_tanh") == 0 ||
             strcmp(a, "gelu_fast") == 0)
        c->rope_glu.gate_act = ER_GLU_GELU_TANH;
    else if (strcmp(a, "relu") == 0) c->rope_glu.gate_act = ER_GLU_RELU;
    else if (strcmp(a, "silu") == 0 || strcmp(a, "swish") == 0) c->rope_glu.gate_act = ER_GLU_SILU;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: hidden_act '%.40s' is not supported "
                      "(gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu are)", a);
    return ER_OK;
}

/* A string field that must be `want` when present. */
static er_status require_str(const json_t *root, const char *key, const char *want, er_err *err) {
    const json_t *v = json_object_get(root, key);
    const char *s = json_string_value(v);
    if (!v || json_is_null(v) || (s && strcmp(s, want) == 0)) return ER_OK;
    return er_set(err, ER_ERR_UNSUPPORTED, "config.json: %s '%.40s' is not supported (only "
                  "'%s')", key, s ? s : "(not a string)", want);
}

/* NTKScalingRotaryEmbedding: at load it rebuilds the table for
 * max_position_embeddings * factor > max_position_embeddings with base
 * theta * factor and every frequency divided by factor^(2 / dim). */
static er_status parse_rope_scaling(const json_t *root, er_config *c, er_err *err) {
    const json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_glu.rope_freq_scale = 1.0;
    if (!rs || json_is_null(rs)) return ER_OK;
    const char *type = json_string_value(json_object_get(rs, "type"));
    if (!json_is_object(rs) || !type)
        return er_set(err, ER_ERR_FORMAT, "config.json: rope_scaling must be an object with a "
                      "'type'");
    if (strcmp(type, "ntk") != 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rope_scaling type '%.40s' is not "
                      "supported (only 'ntk')", type);
    const json_t *mb = json_object_get(rs, "mixed_b");
    if (mb && !json_is_null(mb))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rope_scaling mixed_b is not "
                      "supported");
    double f;
    er_status st = er_rg_number(rs, "factor", -1, 1e-6, 1e6, &f, err);
    if (st != ER_OK) return st;
    if (f < 0) return er_set(err, ER_ERR_FORMAT, "config.json: rope_scaling needs a 'factor'");
    if (f * c->max_positions > c->max_positions) { /* else the plain table stays */
        const int d = c->hidden_size / c->num_heads;
        c->rope_glu.rope_theta *= f;
        c->rope_glu.rope_freq_scale = pow(f, -2.0 / d);
    }
    return ER_OK;
}

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = parse_dims(root, c, err);
    if (st == ER_OK) st = parse_act(root, c, err);
    if (st == ER_OK) st = require_str(root, "position_embedding_type", "rope", err);
    if (st == ER_OK) st = require_str(root, "layer_norm_type", "layer_norm", err);
    bool pack = true, logn = false;
    if (st == ER_OK) st = er_rg_bool(root, "pack_qkv", true, &pack, err);
    if (st == ER_OK) st = er_rg_bool(root, "logn_attention_scale", false, &logn, err);
    if (st != ER_OK) return st;
    if (!pack)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: pack_qkv false (separate q/k/v "
                      "projections) is not supported");
    if (logn)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: logn_attention_scale true is not "
                      "supported");
    if ((st = er_rg_number(root, "rope_theta", 10000, 1.0, 1e30, &c->rope_glu.rope_theta, err)) !=
        ER_OK)
        return st;
    c->rope_glu.rope_dim = c->hidden_size / c->num_heads;
    c->rope_glu.qkv_bias = c->rope_glu.out_bias = c->rope_glu.down_bias = true;
    c->rope_glu.up_bias = false;
    c->rope_glu.max_len = c->max_positions;
    return parse_rope_scaling(root, c, err);
}

/* NewEmbeddings with rope: word (+ token type), LayerNorm; no position table. */
static er_status load_embeddings(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    char p[256];
    snprintf(p, sizeof p, "%sembeddings.", pre);
    /* F16/BF16 stays narrow (V x H); er_rg_embed widens the rows it reads */
    er_status st = er_load_table(m, p, "word_embeddings.weight", c->vocab_size, c->hidden_size,
                                 &m->word_emb, &m->word_emb_narrow, err);
    if (st == ER_OK && c->type_vocab_size > 0)
        st = er_load_tensor(m, p, "token_type_embeddings.weight", c->type_vocab_size,
                            c->hidden_size, &m->type_emb, err);
    if (st == ER_OK) st = er_load_ln(m, p, "LayerNorm", c->hidden_size, &m->emb_ln, err);
    return st;
}

static const er_rg_names LAYER_NAMES = {
    .layers = "encoder.layer",
    .qkv = "attention.qkv_proj",
    .o = "attention.o_proj",
    .attn_ln = "attn_ln",
    .up = "mlp.up_gate_proj",
    .gate = NULL, /* fused into up_gate_proj */
    .down = "mlp.down_proj",
    .out_ln = "mlp_ln",
};

/* The same modules as PEFT LoRA names them (lora.c): qkv_proj is one
 * Linear whose rows are q, k, v; up_gate_proj one whose rows are up, gate. */
static const er_layer_names LORA_NAMES = {
    .layers = "encoder.layer",
    .qkv = "attention.qkv_proj",
    .o = "attention.o_proj",
    .ffn_in_gate = "mlp.up_gate_proj",
    .ffn_out = "mlp.down_proj",
};

static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    return er_rg_load_layer(m, pre, i, &LAYER_NAMES, err);
}

static const er_arch_class CLASSES[] = {
    {"NewModel", ER_HEAD_EMBEDDING, NULL, false},
    /* NewPooler (dense + tanh on the first token), then classifier: BERT's */
    {"NewForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, er_bert_load_pooler_head,
     false},
    {"NewForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, er_load_token_head, false},
    {"NewForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, er_load_qa_head, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"new", "NewModel"}, {NULL, NULL}};

const er_arch_desc er_arch_gte = {
    .name = "gte",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "new.",
    .parse_config = parse_config,
    .load_embeddings = load_embeddings,
    .load_layer = load_layer,
    .embed = er_rg_embed,
    .layer = er_rg_layer,
    .max_seq_len = er_rg_max_seq_len,
    .lower_config = er_rg_lower_config,
    .visit_lower = er_rg_visit_lower,
    .layer_names = &LORA_NAMES,
    .narrow_layers = true, /* the fused rows as views (er_lin_rows, nomic_glu.c) */
};
