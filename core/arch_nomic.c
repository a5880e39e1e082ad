/* NomicBERT (model_type "nomic_bert": nomic-embed-text-v1 / v1.5), following
 * the modeling code its model repositories ship (nomic-ai/nomic-bert-2048,
 * modeling_hf_nomic_bert.py): GPT-2-style config keys, rotary q/k (the
 * non-interleaved "rotate half" form), a fused bias-free Wqkv, SwiGLU
 * (fc11 * silu(fc12), then fc2), post-norm blocks (prenorm false), an
 * embedding LayerNorm "emb_ln" outside the embeddings.  The layer itself is
 * shared with GTE (nomic_glu.c).
 *
 * Refused by name: the interleaved rotary form, xPos (rotary_emb_scale_base),
 * pre-norm / parallel blocks, RMSNorm, causal attention, the non-gated MLP.
 * rotary_scaling_factor (dynamic NTK: its table depends on the padded batch
 * length, which a per-sequence server cannot reproduce) is served only up to
 * max_trained_positions, where it computes plain rotary positions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "nomic_glu.h"

static er_status refuse_if_true(const json_t *root, const char *key, const char *why,
                                er_err *err) {
    bool v;
    er_status st = er_rg_bool(root, key, false, &v, err);
    if (st == ER_OK && v)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: %s true is not supported (%s)", key,
                      why);
    return st;
}

/* The GPT-2-named sizes; the gated MLP rounds n_inner up to a multiple of
 * 256 (NomciBertGatedMLP's multiple_of), 8/3 hidden when absent. */
static er_status parse_dims(const json_t *root, er_config *c, er_err *err) {
    er_status st;
    int pos_def = json_object_get(root, "max_position_embeddings") ? c->max_positions : 1024;
    int mult = 1, inner = 0;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("n_embd", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("n_layer", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("n_head", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("n_inner", 8 * c->hidden_size / 3, 1, ER_MAX_INTERMEDIATE, &inner);
    INT_FIELD("n_positions", pos_def, 1, ER_MAX_POSITIONS, &c->max_positions);
    INT_FIELD("type_vocab_size", 2, 0, ER_MAX_TYPE_VOCAB, &c->type_vocab_size);
    INT_FIELD("pad_token_id", 0, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("pad_vocab_size_multiple", 1, 1, 1 << 20, &mult);
#undef INT_FIELD
    c->intermediate_size = (inner + 255) / 256 * 256;
    if (c->vocab_size % mult) c->vocab_size += mult - c->vocab_size % mult; /* NomicBertModel */
    if (c->vocab_size > ER_MAX_VOCAB || c->intermediate_size > ER_MAX_INTERMEDIATE)
        return er_set(err, ER_ERR_FORMAT, "config.json: vocab_size or n_inner too large");
    c->embedding_size = c->hidden_size;
    double eps;
    if ((st = er_rg_number(root, "layer_norm_epsilon", 1e-5, 1e-30, 1.0, &eps, err)) != ER_OK)
        return st;
    c->layer_norm_eps = (float)eps;
    return ER_OK;
}

static er_status parse_mlp(const json_t *root, er_config *c, er_err *err) {
    const char *act = json_string_value(json_object_get(root, "activation_function"));
    if (!act) act = "gelu_new"; /* GPT2Config's default */
    if (strcmp(act, "swiglu") == 0) c->rope_glu.gate_act = ER_GLU_SILU;
    else if (strcmp(act, "geglu") == 0) c->rope_glu.gate_act = ER_GLU_GELU;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: activation_function '%.40s' is not "
                      "supported (the gated MLPs swiglu and geglu are)", act);
    er_status st = refuse_if_true(root, "norm_mlp", "a LayerNorm inside the MLP", err);
    if (st == ER_OK) st = er_rg_bool(root, "mlp_fc1_bias", true, &c->rope_glu.up_bias, err);
    if (st == ER_OK) st = er_rg_bool(root, "mlp_fc2_bias", true, &c->rope_glu.down_bias, err);
    if (st == ER_OK) st = er_rg_bool(root, "qkv_proj_bias", true, &c->rope_glu.qkv_bias, err);
    c->rope_glu.out_bias = c->rope_glu.qkv_bias; /* out_proj uses qkv_proj_bias too */
    return st;
}

/* Rotary positions: a fraction of each head, rotate-half, rotary_emb_base. */
static er_status parse_rotary(const json_t *root, er_config *c, er_err *err) {
    double frac, base, trained;
    er_status st = er_rg_number(root, "rotary_emb_fraction", 0.0, 0.0, 1.0, &frac, err);
    if (st == ER_OK) st = er_rg_number(root, "rotary_emb_base", 1000, 1.0, 1e30, &base, err);
    if (st != ER_OK) return st;
    const int d = c->hidden_size / c->num_heads;
    double dim = d * frac;
    if (!(frac > 0.0))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rotary_emb_fraction 0 (learned "
                      "position embeddings) is not supported");
    if (dim != floor(dim) || (int)dim % 2 != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: rotary_emb_fraction %g of head size %d "
                      "is not an even number of dimensions", frac, d);
    if ((st = refuse_if_true(root, "rotary_emb_interleaved", "only the rotate-half form is "
                             "implemented", err)) != ER_OK)
        return st;
    const json_t *xpos = json_object_get(root, "rotary_emb_scale_base");
    if (xpos && !json_is_null(xpos))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rotary_emb_scale_base (xPos) is not "
                      "supported");
    c->rope_glu.rope_theta = base;
    c->rope_glu.rope_freq_scale = 1.0;
    c->rope_glu.rope_dim = (int)dim;
    c->rope_glu.max_len = c->max_positions;
    /* NomicBertConfig defaults rotary_scaling_factor to 1.0; null turns it off */
    const json_t *sf = json_object_get(root, "rotary_scaling_factor");
    bool dynamic = !sf || (json_is_number(sf) && json_number_value(sf) != 0.0) || json_is_true(sf);
    if ((st = er_rg_number(root, "max_trained_positions", 2048, 1, ER_MAX_POSITIONS, &trained,
                           err)) != ER_OK)
        return st;
    if (dynamic && trained < c->rope_glu.max_len) c->rope_glu.max_len = (int)trained;
    return ER_OK;
}

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = parse_dims(root, c, err);
    if (st == ER_OK) st = parse_mlp(root, c, err);
    if (st != ER_OK) return st;
    if (c->hidden_size % c->num_heads != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: n_embd %d is not a multiple of n_head %d",
                      c->hidden_size, c->num_heads);
    if ((st = parse_rotary(root, c, err)) != ER_OK) return st;
    if ((st = refuse_if_true(root, "prenorm", "pre-norm blocks", err)) != ER_OK) return st;
    if ((st = refuse_if_true(root, "parallel_block", "parallel blocks", err)) != ER_OK) return st;
    if ((st = refuse_if_true(root, "use_rms_norm", "RMSNorm", err)) != ER_OK) return st;
    if ((st = refuse_if_true(root, "causal", "causal attention", err)) != ER_OK) return st;
    int kv = c->num_heads;
    if ((st = er_config_int(root, "num_heads_kv", c->num_heads, 1, ER_MAX_HEADS, &kv, err)) != ER_OK)
        return st;
    if (kv != c->num_heads)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: num_heads_kv %d (grouped-query "
                      "attention) is not supported", kv);
    return ER_OK;
}

/* Word and token-type embeddings (NomicBertEmbeddings), then emb_ln. */
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
    if (st == ER_OK) st = er_load_ln(m, pre, "emb_ln", c->hidden_size, &m->emb_ln, err);
    return st;
}

static const er_rg_names LAYER_NAMES = {
    .layers = "encoder.layers",
    .qkv = "attn.Wqkv",
    .o = "attn.out_proj",
    .attn_ln = "norm1",
    .up = "mlp.fc11",
    .gate = "mlp.fc12",
    .down = "mlp.fc2",
    .out_ln = "norm2",
};

/* The same modules as PEFT LoRA names them (lora.c): Wqkv is one Linear
 * whose rows are q, k, v. */
static const er_layer_names LORA_NAMES = {
    .layers = "encoder.layers",
    .qkv = "attn.Wqkv",
    .o = "attn.out_proj",
    .ffn_in = "mlp.fc11",
    .gate = "mlp.fc12",
    .ffn_out = "mlp.fc2",
};

static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    return er_rg_load_layer(m, pre, i, &LAYER_NAMES, err);
}

static const er_arch_class CLASSES[] = {
    {"NomicBertModel", ER_HEAD_EMBEDDING, NULL, false},
    /* NomicBertPooler (dense + tanh on the first token), then classifier: BERT's */
    {"NomicBertForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION,
     er_bert_load_pooler_head,
     false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"nomic_bert", "NomicBertModel"}, {NULL, NULL}};

const er_arch_desc er_arch_nomic_bert = {
    .name = "nomic_bert",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "bert.",
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
