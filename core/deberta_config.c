/* DeBERTa-v2/v3 config.json: DebertaV2Config's fields with its defaults and
 * the getattr defaults of modeling_deberta_v2.py (share_att_key false,
 * position_buckets -1, norm_rel_ebd "none", conv_kernel_size 0, ...). */
#include <stdio.h>
#include <string.h>

#include "arch.h"
#include "deberta_internal.h"

static er_status get_bool(const json_t *root, const char *key, bool def, bool *out, er_err *err) {
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

/* One entry of pos_att_type: DebertaV2Config lower-cases and strips them. */
static er_status pos_att_entry(const char *s, size_t n, er_config *c, er_err *err) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    char e[16] = "";
    if (n < sizeof e) {
        for (size_t i = 0; i < n; i++) e[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        e[n] = 0;
    }
    if (strcmp(e, "c2p") == 0) c->deberta.c2p = true;
    else if (strcmp(e, "p2c") == 0) c->deberta.p2c = true;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: pos_att_type '%.*s' is not "
                      "supported (c2p and p2c are)", (int)(n > 40 ? 40 : n), s);
    return ER_OK;
}

/* pos_att_type: absent/null, a "p2c|c2p" string or a list of strings. */
static er_status parse_pos_att(const json_t *root, er_config *c, er_err *err) {
    const json_t *v = json_object_get(root, "pos_att_type");
    if (!v || json_is_null(v)) return ER_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *bar; s; s = bar ? bar + 1 : NULL) {
            bar = strchr(s, '|');
            size_t n = bar ? (size_t)(bar - s) : strlen(s);
            er_status st = pos_att_entry(s, n, c, err);
            if (st != ER_OK) return st;
        }
        return ER_OK;
    }
    if (!json_is_array(v))
        return er_set(err, ER_ERR_FORMAT, "config.json: 'pos_att_type' must be a string or a list");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return er_set(err, ER_ERR_FORMAT, "config.json: pos_att_type entries must be strings");
        er_status st = pos_att_entry(json_string_value(e), strlen(json_string_value(e)), c, err);
        if (st != ER_OK) return st;
    }
    return ER_OK;
}

/* norm_rel_ebd: "none" or "layer_norm", "|"-separated. */
static er_status parse_norm_rel(const json_t *root, er_config *c, er_err *err) {
    const json_t *v = json_object_get(root, "norm_rel_ebd");
    if (!v || json_is_null(v)) return ER_OK;
    const char *s = json_string_value(v);
    if (!s) return er_set(err, ER_ERR_FORMAT, "config.json: 'norm_rel_ebd' must be a string");
    for (const char *bar; s; s = bar ? bar + 1 : NULL) {
        bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        while (n && *s == ' ') s++, n--;
        while (n && s[n - 1] == ' ') n--;
        if (n == 10 && strncmp(s, "layer_norm", 10) == 0) c->deberta.norm_rel_ln = true;
        else if (!(n == 4 && strncmp(s, "none", 4) == 0))
            return er_set(err, ER_ERR_UNSUPPORTED, "config.json: norm_rel_ebd '%.*s' is not "
                          "supported (layer_norm and none are)", (int)(n > 40 ? 40 : n), s);
    }
    return ER_OK;
}

/* An ACT2FN name for a head or the ConvLayer: -1 for tanh, -2 for linear,
 * else an er_act. */
static er_status small_act(const json_t *root, const char *key, const char *def, int *out,
                           er_err *err) {
    const json_t *v = json_object_get(root, key);
    const char *s = v ? json_string_value(v) : def;
    if (!s) return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be a string", key);
    if (strcmp(s, "tanh") == 0) *out = -1;
    else if (strcmp(s, "linear") == 0) *out = -2;
    else {
        json_t *one = json_pack("{ss}", key, s);
        er_act a;
        er_status st = one ? er_config_act(one, key, &a, err) : er_set(err, ER_ERR_NOMEM, "oom");
        json_decref(one);
        if (st != ER_OK) return st;
        *out = (int)a;
    }
    return ER_OK;
}

static er_status parse_sizes(const json_t *root, er_config *c, er_err *err) {
    er_status st;
#define INT_FIELD(key, def, lo, hi, dst) \
    if ((st = er_config_int(root, key, def, lo, hi, dst, err)) != ER_OK) return st
    INT_FIELD("pad_token_id", 0, 0, ER_MAX_VOCAB, &c->pad_token_id);
    INT_FIELD("hidden_size", -1, 1, ER_MAX_HIDDEN, &c->hidden_size);
    INT_FIELD("num_hidden_layers", -1, 1, ER_MAX_LAYERS, &c->num_layers);
    INT_FIELD("num_attention_heads", -1, 1, ER_MAX_HEADS, &c->num_heads);
    INT_FIELD("intermediate_size", -1, 1, ER_MAX_INTERMEDIATE, &c->intermediate_size);
    INT_FIELD("type_vocab_size", 0, 0, ER_MAX_TYPE_VOCAB, &c->type_vocab_size);
    INT_FIELD("embedding_size", c->hidden_size, 1, ER_MAX_HIDDEN, &c->embedding_size);
    INT_FIELD("position_buckets", -1, -1, ER_MAX_POSITIONS, &c->deberta.position_buckets);
    INT_FIELD("max_relative_positions", -1, -1, ER_MAX_POSITIONS,
              &c->deberta.max_relative_positions);
    INT_FIELD("conv_kernel_size", 0, 0, 64, &c->deberta.conv_kernel_size);
    INT_FIELD("conv_groups", 1, 1, ER_MAX_HIDDEN, &c->deberta.conv_groups);
    int head_size = 0, pooler_size = 0;
    INT_FIELD("attention_head_size", c->hidden_size / c->num_heads, 1, ER_MAX_HIDDEN, &head_size);
    INT_FIELD("pooler_hidden_size", c->hidden_size, 1, ER_MAX_HIDDEN, &pooler_size);
#undef INT_FIELD
    /* DebertaV2SelfOutput's dense is [hidden, hidden]: heads x head size must be hidden. */
    if (head_size * c->num_heads != c->hidden_size)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: attention_head_size %d x %d heads "
                      "is not hidden_size %d", head_size, c->num_heads, c->hidden_size);
    if (pooler_size != c->hidden_size)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: pooler_hidden_size %d differs from "
                      "hidden_size %d", pooler_size, c->hidden_size);
    return ER_OK;
}

static er_status parse_eps(const json_t *root, er_config *c, er_err *err) {
    const json_t *eps = json_object_get(root, "layer_norm_eps");
    c->layer_norm_eps = 1e-7f; /* DebertaV2Config's default */
    if (!eps) return ER_OK;
    if (!json_is_number(eps) || !(json_number_value(eps) > 0) || json_number_value(eps) > 1.0)
        return er_set(err, ER_ERR_FORMAT, "config.json: 'layer_norm_eps' must be a number in (0, 1]");
    c->layer_norm_eps = (float)json_number_value(eps);
    return ER_OK;
}

/* The relative-position geometry the encoder derives from the fields. */
static er_status derive(er_config *c, er_err *err) {
    if (c->deberta.max_relative_positions < 1) c->deberta.max_relative_positions = c->max_positions;
    const int buckets = c->deberta.position_buckets, maxrel = c->deberta.max_relative_positions;
    c->deberta.att_span = buckets > 0 ? buckets : maxrel;
    c->deberta.scale_factor = 1 + c->deberta.c2p + c->deberta.p2c;
    /* make_log_bucket_position divides by log((max_relative_positions - 1) / mid). */
    if (c->deberta.relative_attention && buckets > 0 && (buckets < 2 || maxrel - 1 <= buckets / 2))
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: position_buckets %d needs "
                      "max_relative_positions (%d) above %d", buckets, maxrel, buckets / 2 + 1);
    /* ContextPooler's act goes through the head's activations, which have
     * the tanh-form GELU only as "the hidden act". */
    if (c->head == ER_HEAD_SEQUENCE_CLASSIFICATION && c->deberta.pooler_act == ER_ACT_GELU_TANH &&
        c->act != ER_ACT_GELU_TANH)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: pooler_hidden_act (a tanh-form GELU) "
                      "is supported only when hidden_act is one too");
    const int k = c->deberta.conv_kernel_size;
    if (k > 0 && k % 2 == 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: conv_kernel_size %d is not "
                      "supported (odd sizes keep the sequence length)", k);
    if (k > 0 && c->hidden_size % c->deberta.conv_groups != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: conv_groups %d does not divide "
                      "hidden_size %d", c->deberta.conv_groups, c->hidden_size);
    return ER_OK;
}

er_status er_deberta_parse_config(const json_t *root, er_config *c, er_err *err) {
    er_status st = parse_sizes(root, c, err);
    if (st == ER_OK) st = er_config_act(root, "hidden_act", &c->act, err);
    if (st == ER_OK) st = parse_eps(root, c, err);
    if (st == ER_OK)
        st = get_bool(root, "relative_attention", false, &c->deberta.relative_attention, err);
    if (st == ER_OK)
        st = get_bool(root, "position_biased_input", true, &c->deberta.position_biased_input, err);
    if (st == ER_OK) st = get_bool(root, "share_att_key", false, &c->deberta.share_att_key, err);
    if (st == ER_OK) st = parse_pos_att(root, c, err);
    if (st == ER_OK) st = parse_norm_rel(root, c, err);
    if (st == ER_OK) st = small_act(root, "pooler_hidden_act", "gelu", &c->deberta.pooler_act, err);
    if (st == ER_OK) st = small_act(root, "conv_act", "tanh", &c->deberta.conv_act, err);
    if (st == ER_OK) st = derive(c, err);
    return st;
}
