/* ModernBERT (model_type "modernbert"), as transformers'
 * modeling_modernbert.py (eager path) computes it: token embeddings and a
 * norm, pre-norm layers with a fused Wqkv, rotary positions (global_rope_theta
 * on global layers, local_rope_theta on local ones), sliding-window local
 * attention on all but every global_attn_every_n_layers-th layer, a GeGLU
 * MLP, a final norm; and ModernBertPredictionHead under the classifiers.
 * Config, tensors and the descriptor here; the forward in
 * modernbert_forward.c. */
#include "arch.h"
#include "modernbert.h"

#include <stdio.h>
#include <string.h>

static er_status bool_field(const json_t *root, const char *key, bool def, bool *out,
                            er_err *err) {
    const json_t *v = json_object_get(root, key);
    *out = def;
    if (!v || json_is_null(v)) return ER_OK;
    if (!json_is_boolean(v))
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be true or false", key);
    *out = json_is_true(v);
    return ER_OK;
}

/* A number in (lo, hi]; `def` when absent. `where` names the object. */
static er_status real_field(const json_t *obj, const char *where, const char *key, double def,
                            double lo, double hi, double *out, er_err *err) {
    const json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v)) return ER_OK;
    double x = json_number_value(v);
    if (!json_is_number(v) || !(x > lo) || !(x <= hi))
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s%s' must be a number in (%g, %g]",
                      where, key, lo, hi);
    *out = x;
    return ER_OK;
}

/* transformers >= 5 writes the thetas as rope_parameters.{full_attention,
 * sliding_attention}.rope_theta; they win over the older top-level keys. */
static er_status parse_rope_parameters(const json_t *root, er_config *c, er_err *err) {
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rope_scaling is not supported");
    json_t *rp = json_object_get(root, "rope_parameters");
    if (!rp || json_is_null(rp)) return ER_OK;
    if (!json_is_object(rp))
        return er_set(err, ER_ERR_FORMAT, "config.json: 'rope_parameters' must be an object");
    static const char *const kinds[2] = {"full_attention", "sliding_attention"};
    double *theta[2] = {&c->modernbert.global_theta, &c->modernbert.local_theta};
    const char *key;
    const json_t *val;
    json_object_foreach(rp, key, val)
        if (strcmp(key, kinds[0]) != 0 && strcmp(key, kinds[1]) != 0)
            return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rope_parameters.%.40s is not "
                          "supported (full_attention, sliding_attention are)", key);
    for (int i = 0; i < 2; i++) {
        const json_t *k = json_object_get(rp, kinds[i]);
        if (!k || json_is_null(k)) continue;
        const char *type = json_string_value(json_object_get(k, "rope_type"));
        if (type && strcmp(type, "default") != 0)
            return er_set(err, ER_ERR_UNSUPPORTED, "config.json: rope_parameters.%s.rope_type "
                          "'%.40s' is not supported (only 'default')", kinds[i], type);
        char where[64];
        snprintf(where, sizeof where, "rope_parameters.%s.", kinds[i]);
        er_status st = real_field(k, where, "rope_theta", *theta[i], 1.0, 1e12, theta[i], err);
        if (st != ER_OK) return st;
    }
    return ER_OK;
}

/* layer_types, when written, must be the pattern global_attn_every_n_layers
 * gives: the eager path picks the window by layer_id % n but the rotary by
 * layer_types, and a config where they disagree is not one we can mirror. */
static er_status check_layer_types(const json_t *root, const er_config *c, er_err *err) {
    const json_t *lt = json_object_get(root, "layer_types");
    if (!lt || json_is_null(lt)) return ER_OK;
    if (!json_is_array(lt) || (int)json_array_size(lt) != c->num_layers)
        return er_set(err, ER_ERR_FORMAT, "config.json: 'layer_types' must list the %d layers",
                      c->num_layers);
    for (int i = 0; i < c->num_layers; i++) {
        const char *t = json_string_value(json_array_get(lt, (size_t)i));
        const char *want = i % c->modernbert.global_every ? "sliding_attention" : "full_attention";
        if (!t || strcmp(t, want) != 0)
            return er_set(err, ER_ERR_UNSUPPORTED, "config.json: layer_types[%d] '%.40s' does "
                          "not follow global_attn_every_n_layers %d (expected '%s')", i,
                          t ? t : "?", c->modernbert.global_every, want);
    }
    return ER_OK;
}

static er_status parse_sizes(const json_t *root, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    /* defaults: ModernBertConfig's (ModernBERT-base) */
    INT_FIELD("max_position_embeddings", 8192, 1, ER_MAX_POSITIONS, &c->max_positions);
    INT_FIELD("pad_token_id", 50283, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("hidden_size", 768, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("num_hidden_layers", 22, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("num_attention_heads", 12, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("intermediate_size", 1152, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
    INT_FIELD("global_attn_every_n_layers", 3, 1, ER_MAX_LAYERS, &c->modernbert.global_every);
    /* local_attention / 2 >= 1: a half-window of 0 would mean "no window" to er_attention */
    INT_FIELD("local_attention", 128, 2, 2 * ER_MAX_POSITIONS, &c->modernbert.local_attention);
#undef INT_FIELD
    c->embedding_size = c->hidden_size;
    c->type_vocab_size = 0; /* no token types */
    if (c->hidden_size % c->num_heads == 0 && (c->hidden_size / c->num_heads) % 2 != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: head size %d (hidden_size / "
                      "num_attention_heads) must be even for the rotary embedding",
                      c->hidden_size / c->num_heads);
    double eps;
    if ((st = real_field(root, "", "norm_eps", 1e-5, 0.0, 1.0, &eps, err)) != ER_OK) return st;
    c->layer_norm_eps = (float)eps;
    return ER_OK;
}

static er_status parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = parse_sizes(root, c, err);
    if (st == ER_OK) st = er_config_act(root, "hidden_activation", &c->act, err);
    if (st == ER_OK)
        st = er_config_act(root, "classifier_activation", &c->modernbert.classifier_act, err);
    if (st == ER_OK) st = bool_field(root, "norm_bias", false, &c->modernbert.norm_bias, err);
    if (st == ER_OK)
        st = bool_field(root, "attention_bias", false, &c->modernbert.attention_bias, err);
    if (st == ER_OK) st = bool_field(root, "mlp_bias", false, &c->modernbert.mlp_bias, err);
    if (st == ER_OK)
        st = bool_field(root, "classifier_bias", false, &c->modernbert.classifier_bias, err);
    if (st == ER_OK)
        st = real_field(root, "", "global_rope_theta", 160000.0, 1.0, 1e12,
                        &c->modernbert.global_theta, err);
    if (st == ER_OK)
        st = real_field(root, "", "local_rope_theta", 10000.0, 1.0, 1e12,
                        &c->modernbert.local_theta, err);
    if (st == ER_OK) st = parse_rope_parameters(root, c, err);
    if (st == ER_OK) st = check_layer_types(root, c, err);
    if (st != ER_OK) return st;
    const json_t *pool = json_object_get(root, "classifier_pooling");
    const char *p = pool && !json_is_null(pool) ? json_string_value(pool) : "cls";
    if (!p || (strcmp(p, "cls") != 0 && strcmp(p, "mean") != 0))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: classifier_pooling '%.40s' is not "
                      "supported (cls, mean are)", p ? p : "(not a string)");
    c->modernbert.mean_pooling = strcmp(p, "mean") == 0;
    return ER_OK;
}

/* The family's own state, allocated by whichever loader needs it first
 * (embeddings are skipped with skip_below_layer; layers may all be). */
static er_status state(er_model *m, er_err *err) {
    if (m->modernbert) return ER_OK;
    float *mem;
    size_t n = (sizeof(struct er_modernbert_w) + sizeof(float) - 1) / sizeof(float);
    er_status st = er_model_alloc_floats(m, n, &mem, err); /* calloc'd: suitably aligned */
    if (st == ER_OK) m->modernbert = (struct er_modernbert_w *)(void *)mem;
    return st;
}

/* nn.LayerNorm(bias=norm_bias): weight, and bias only when norm_bias. */
static er_status load_norm(er_model *m, const char *pre, const char *name, er_ln *ln,
                           er_err *err) {
    const int h = m->cfg.hidden_size;
    er_lin l = {0};
    er_status st = er_load_lin(m, pre, name, h, 0, m->cfg.modernbert.norm_bias, &l, err);
    ln->gamma = l.w;
    ln->beta = l.b;
    return st;
}

static er_status load_embeddings(er_model *m, const char *pre, er_err *err) {
    const er_config *c = &m->cfg;
    char p[256];
    snprintf(p, sizeof p, "%sembeddings.", pre);
    /* F16/BF16 stays narrow (V x H: 147 MiB as fp32 at ModernBERT-base's
     * 50368 x 768); er_modernbert_embed widens the rows it reads */
    er_status st = er_load_table(m, p, "tok_embeddings.weight", c->vocab_size, c->hidden_size,
                                 &m->word_emb, &m->word_emb_narrow, err);
    if (st == ER_OK) st = load_norm(m, p, "norm", &m->emb_ln, err);
    return st;
}

/* Both rotary tables cover every position the model takes (the local
 * layers rotate by absolute position too). */
static er_status rope_tables(er_model *m, er_err *err) {
    const er_config *c = &m->cfg;
    struct er_modernbert_w *mb = m->modernbert;
    if (mb->rope_global.cos) return ER_OK;
    const int d = c->hidden_size / c->num_heads;
    er_status st = er_rope_table_init(m, c->modernbert.global_theta, d, c->max_positions,
                                      &mb->rope_global, err);
    if (st == ER_OK)
        st = er_rope_table_init(m, c->modernbert.local_theta, d, c->max_positions,
                                &mb->rope_local, err);
    return st;
}

/* ModernBERT's modules as PEFT LoRA names them (lora.c): Wqkv is one Linear
 * whose rows are q, k, v; Wi one whose rows are the GeGLU input, then the
 * gate. */
static const er_layer_names LORA_NAMES = {
    .layers = "layers",
    .qkv = "attn.Wqkv",
    .o = "attn.Wo",
    .ffn_in_gate = "mlp.Wi",
    .ffn_out = "mlp.Wo",
};

static er_status load_layer(er_model *m, const char *pre, int i, er_err *err) {
    const er_config *c = &m->cfg;
    const int h = c->hidden_size, f = c->intermediate_size;
    const bool ab = c->modernbert.attention_bias, mb = c->modernbert.mlp_bias;
    er_layer_w *L = &m->layers[i];
    char p[256];
    snprintf(p, sizeof p, "%slayers.%d.", pre, i);
    er_status st = state(m, err);
    if (st == ER_OK) st = rope_tables(m, err);
    if (st == ER_OK && i > 0) st = load_norm(m, p, "attn_norm", &L->attn_ln, err);
    /* F16/BF16 weights stay narrow where the backend packs them: the
     * forward reads them only through er_qkv_apply / er_lin_apply */
    const bool keep = er_model_keeps_narrow(m);
    er_lin qkv = {0}; // [3H, H]: q, k, v rows (views of each)
    if (st == ER_OK) st = er_load_lin_narrow(m, p, "attn.Wqkv", 3 * h, h, ab, keep, &qkv, err);
    if (st != ER_OK) return st;
    L->q = er_lin_rows(&qkv, 0, h);
    L->k = er_lin_rows(&qkv, h, h);
    L->v = er_lin_rows(&qkv, 2 * h, h);
    st = er_load_lin_narrow(m, p, "attn.Wo", h, h, ab, keep, &L->o, err);
    if (st == ER_OK) st = load_norm(m, p, "mlp_norm", &L->out_ln, err);
    er_lin wi = {0}; // [2F, H]: the GeGLU input rows, then the gate rows (views of each)
    if (st == ER_OK) st = er_load_lin_narrow(m, p, "mlp.Wi", 2 * f, h, mb, keep, &wi, err);
    if (st != ER_OK) return st;
    L->ffn_in = er_lin_rows(&wi, 0, f);
    L->gate = er_lin_rows(&wi, f, f);
    st = er_load_lin_narrow(m, p, "mlp.Wo", h, f, mb, keep, &L->ffn_out, err);
    if (st == ER_OK && i == c->num_layers - 1)
        st = load_norm(m, pre, "final_norm", &m->modernbert->final_norm, err);
    return st;
}

/* ModernBertPredictionHead (head.dense, head.norm), then classifier; the
 * head sits outside the base model ("head.", not "model.head."). */
static er_status load_head(er_model *m, const char *pre, er_err *err) {
    (void)pre;
    const er_config *c = &m->cfg;
    m->head_act = ER_HEAD_ACT_NONE; /* the act is classifier_activation, applied by the hook */
    const bool keep = er_model_keeps_narrow(m); /* read through er_lin_apply only */
    er_status st = state(m, err);
    if (st == ER_OK)
        st = er_load_lin_narrow(m, "", "head.dense", c->hidden_size, c->hidden_size,
                                c->modernbert.classifier_bias, keep, &m->head_dense, err);
    if (st == ER_OK) st = load_norm(m, "head.", "norm", &m->modernbert->head_norm, err);
    if (st == ER_OK)
        st = er_load_lin_narrow(m, "", "classifier", c->num_labels, c->hidden_size, true, keep,
                                &m->head_out, err);
    return st;
}

static void lower_config(const er_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, " rope_global=%.17g rope_local=%.17g global_every=%d local_attention=%d "
             "norm_bias=%d attention_bias=%d mlp_bias=%d", c->modernbert.global_theta,
             c->modernbert.local_theta, c->modernbert.global_every, c->modernbert.local_attention,
             (int)c->modernbert.norm_bias, (int)c->modernbert.attention_bias,
             (int)c->modernbert.mlp_bias);
}

/* The gate rows of mlp.Wi (ffn_in holds the input rows); the final norm is
 * part of layer L-1's computation. */
static int visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user) {
    const er_config *c = &m->cfg;
    for (int i = 0; i < cut; i++) {
        const er_lin *g = &m->layers[i].gate;
        char key[64];
        snprintf(key, sizeof key, "layer.%d.gate.weight", i);
        int r = er_visit_lin_weight(fn, user, key, g);
        if (!r && g->b) {
            snprintf(key, sizeof key, "layer.%d.gate.bias", i);
            r = fn(user, key, g->b, (size_t)g->out);
        }
        if (r) return r;
    }
    if (cut < c->num_layers || !m->modernbert || !m->modernbert->final_norm.gamma) return 0;
    const er_ln *ln = &m->modernbert->final_norm;
    int r = fn(user, "final_norm.gamma", ln->gamma, (size_t)c->hidden_size);
    if (!r && ln->beta) r = fn(user, "final_norm.beta", ln->beta, (size_t)c->hidden_size);
    return r;
}

static int max_seq_len(const er_config *c) { return c->max_positions; }

static const er_arch_class CLASSES[] = {
    {"ModernBertModel", ER_HEAD_EMBEDDING, NULL, false},
    {"ModernBertForSequenceClassification", ER_HEAD_SEQUENCE_CLASSIFICATION, load_head, false},
    {"ModernBertForTokenClassification", ER_HEAD_TOKEN_CLASSIFICATION, load_head, false},
    {"ModernBertForQuestionAnswering", ER_HEAD_QUESTION_ANSWERING, load_head, false},
    {NULL, ER_HEAD_EMBEDDING, NULL, false},
};

static const er_arch_model_type TYPES[] = {{"modernbert", "ModernBertModel"}, {NULL, NULL}};

const er_arch_desc er_arch_modernbert = {
    .name = "modernbert",
    .model_types = TYPES,
    .classes = CLASSES,
    .prefix = "model.",
    .parse_config = parse_config,
    .load_embeddings = load_embeddings,
    .load_layer = load_layer,
    .embed = er_modernbert_embed,
    .layer = er_modernbert_layer,
    .max_seq_len = max_seq_len,
    .lower_config = lower_config,
    .visit_lower = visit_lower,
    .head = er_modernbert_head,
    .layer_names = &LORA_NAMES,
    .narrow_layers = true, /* the Wqkv and Wi row views included (er_lin_rows) */
};
