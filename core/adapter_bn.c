/* Bottleneck adapters in the AdapterHub `adapters` library's saved format
 * (adapter_internal.h): Pfeiffer (SeqBnConfig: after the FFN, the original
 * LayerNorm before and after the adapter) and Houlsby (DoubleSeqBnConfig:
 * after attention and after the FFN, the original LayerNorm after it), and
 * any sequential BnConfig between them, applied to a base checkpoint
 * without copying it.
 *
 * Followed: adapters 1.x, src/adapters/methods/modeling.py (Adapter:
 * pre_forward, forward, post_forward), methods/bottleneck.py (BottleneckLayer:
 * down_sample = int(hidden_size // reduction_factor), at least 1),
 * configuration/adapter_config.py (BnConfig and its fields' defaults),
 * loading.py (adapter_config.json = {"config": {...}, "model_name", "name",
 * "hidden_size", "model_type", "version", ...}; adapter.safetensors or the
 * pickle pytorch_adapter.bin; head_config.json + model_head.safetensors),
 * heads/base.py (PredictionHead.build: [Dropout, Linear, act] per layer).
 * Saved names: "[<base prefix>]<layers>.<i>.<place>.adapters.<name>.
 * adapter_down.0.{weight,bias}" [m, H], [m] and "...adapter_up.{weight,bias}"
 * [H, m], [H], place "attention.output" / "output" (BERT, RoBERTa, ELECTRA)
 * or "attention_adapters" / "output_adapters" (DistilBERT).
 *
 * The adapters' own GEMMs run through er_lin_apply on er_lin structs this
 * file owns, never packed: always fp32 (cblas), whatever the base's compute
 * mode; they are a few percent of a layer's work. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "adapter_internal.h"
#include "arch.h"
#include "encoder_internal.h"
#include "er_io.h"
#include "er_log.h"
#include "kernels.h"

#define BN_WEIGHTS "adapter.safetensors"
#define BN_PICKLE "pytorch_adapter.bin"
#define HEAD_CONFIG "head_config.json"
#define HEAD_WEIGHTS "model_head.safetensors"
#define HEAD_PICKLE "pytorch_model_head.bin"
#define MAX_NAME 200

/* HEAD_STATIC: a transformers *For* class's own head (adapters.init on it),
 * saved under the class's tensor names; the class's loader reads it. */
typedef enum { HEAD_NONE, HEAD_CLASSIFICATION, HEAD_TAGGING, HEAD_STATIC } head_kind;

struct er_bn_adapter {
    er_st_file *file;             /* adapter.safetensors */
    er_st_file *head_file;        /* model_head.safetensors, or NULL */
    char name[MAX_NAME + 1];      /* the adapter's name inside its tensor names */
    char model_type[32];          /* the base's, as the adapter was trained on it ("": unsaid) */
    bool mh, out;                 /* mh_adapter, output_adapter */
    bool ln_after;                /* each block has adapter_norm_after */
    double rf_default;            /* reduction_factor (or its mapping's "default"; 0: none) */
    double rf_layer[ER_MAX_LAYERS]; /* a mapping's per-layer value; 0: the default */
    bool left_out[ER_MAX_LAYERS]; /* leave_out */
    er_bn proto;                  /* act, residual, scaling, LayerNorm placement */
    er_bn *blocks;                /* [num_layers, 2]: after attention, after the FFN */
    struct {
        head_kind kind;
        char name[MAX_NAME + 1];
        char cls[96];     /* HEAD_STATIC: model_class */
        int layers, labels;
        er_head_act act;
        bool bias;
    } head;
};

bool er_bn_config_is_adapterhub(const json_t *c) {
    return json_is_object(json_object_get(c, "config")) && !json_object_get(c, "peft_type");
}

void er_bn_adapter_free(er_bn_adapter *b) {
    if (!b) return;
    er_st_free(b->file);
    er_st_free(b->head_file);
    free(b->blocks);
    free(b);
}

/* ---- adapter_config.json ---- */

static bool file_exists(const char *dir, const char *name) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* `name`'s boolean in config object c (def when absent or null). */
static er_status flag(const json_t *c, const char *name, bool def, bool *out, er_err *err) {
    const json_t *v = json_object_get(c, name);
    if (!v || json_is_null(v)) {
        *out = def;
        return ER_OK;
    }
    if (!json_is_boolean(v))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.%s must be true or false",
                      name);
    *out = json_is_true(v);
    return ER_OK;
}

/* A number in (0, 65536]: the hidden size over it is the bottleneck. */
static er_status reduction(const json_t *v, const char *what, double *out, er_err *err) {
    double f = json_is_number(v) ? json_number_value(v) : -1;
    if (!(f > 0 && f <= 65536))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.reduction_factor%s must be "
                      "a number in (0, 65536]", what);
    *out = f;
    return ER_OK;
}

/* reduction_factor: a number, or a mapping of layer indices ("3") and
 * "default" to numbers (BottleneckLayer.add_adapter). */
static er_status read_reduction(const json_t *c, er_bn_adapter *b, er_err *err) {
    json_t *rf = json_object_get(c, "reduction_factor");
    if (!json_is_object(rf)) return reduction(rf, "", &b->rf_default, err);
    const char *key;
    json_t *v;
    json_object_foreach(rf, key, v) {
        char what[96], *end;
        snprintf(what, sizeof what, "[\"%.60s\"]", key);
        double *dst = &b->rf_default;
        if (strcmp(key, "default")) {
            errno = 0;
            long i = strtol(key, &end, 10);
            if (!*key || *end || errno || i < 0 || i >= ER_MAX_LAYERS)
                return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.reduction_factor "
                              "key '%.60s' is neither a layer index nor \"default\"", key);
            dst = &b->rf_layer[i];
        }
        er_status st = reduction(v, what, dst, err);
        if (st != ER_OK) return st;
    }
    return ER_OK;
}

/* non_linearity as transformers' get_activation(name.lower()) (and
 * Activation_Function_Class's own "leakyrelu"); old configs without a
 * "version" name gelu_new "gelu" (loading.py's ACTIVATION_RENAME). */
static er_status read_act(const json_t *c, bool versioned, er_bn_act *out, er_err *err) {
    static const struct { const char *name; er_bn_act act; } ACTS[] = {
        {"relu", ER_BN_RELU}, {"gelu", ER_BN_GELU}, {"gelu_new", ER_BN_GELU_TANH},
        {"gelu_pytorch_tanh", ER_BN_GELU_TANH}, {"swish", ER_BN_SILU}, {"silu", ER_BN_SILU},
        {"tanh", ER_BN_TANH}, {"sigmoid", ER_BN_SIGMOID}, {"leakyrelu", ER_BN_LEAKY_RELU},
        {"leaky_relu", ER_BN_LEAKY_RELU}, {"linear", ER_BN_LINEAR}};
    const char *s = json_string_value(json_object_get(c, "non_linearity"));
    char low[64];
    size_t n = s ? strlen(s) : 0;
    if (!s || n >= sizeof low)
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.non_linearity must be an "
                      "activation's name");
    for (size_t i = 0; i <= n; i++) low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    if (!versioned && !strcmp(low, "gelu")) snprintf(low, sizeof low, "gelu_new");
    else if (!versioned && !strcmp(low, "gelu_orig")) snprintf(low, sizeof low, "gelu");
    for (size_t i = 0; i < sizeof ACTS / sizeof *ACTS; i++)
        if (!strcmp(low, ACTS[i].name)) {
            *out = ACTS[i].act;
            return ER_OK;
        }
    return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.non_linearity '%.40s' is "
                  "not supported (relu, gelu, gelu_new, swish/silu, tanh, sigmoid, leakyrelu, "
                  "linear are)", s);
}

/* Settings that change the math and are not implemented: refused by name
 * when set to anything but their default. */
static er_status refuse_unimplemented(const json_t *c, er_err *err) {
    static const char *const OFF[] = {"is_parallel", "use_gating", "phm_layer", "ln_before"};
    for (size_t i = 0; i < sizeof OFF / sizeof *OFF; i++) {
        const json_t *v = json_object_get(c, OFF[i]);
        if (v && !json_is_null(v) && !json_is_false(v))
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.%s is not "
                          "supported (sequential bottleneck adapters without it are)", OFF[i]);
    }
    const json_t *inv = json_object_get(c, "inv_adapter");
    if (inv && !json_is_null(inv))
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.inv_adapter (an "
                      "invertible adapter on the embeddings) is not supported");
    const json_t *sc = json_object_get(c, "scaling");
    if (sc && !json_is_number(sc))
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.scaling '%.40s' is "
                      "not supported (a constant number is)",
                      json_is_string(sc) ? json_string_value(sc) : "(not a number)");
    return ER_OK;
}

/* Every key of a BnConfig as AdapterConfig.to_dict writes it; any other key
 * could change the math in a way this file does not know. */
static er_status refuse_unknown(json_t *c, er_err *err) {
    static const char *const KNOWN[] = {
        "architecture", "mh_adapter", "output_adapter", "reduction_factor", "non_linearity",
        "original_ln_before", "original_ln_after", "ln_before", "ln_after", "init_weights",
        "init_weights_seed", "is_parallel", "scaling", "use_gating", "residual_before_ln",
        "adapter_residual_before_ln", "inv_adapter", "inv_adapter_reduction_factor",
        "cross_adapter", "leave_out", "dropout", "phm_layer", "phm_dim", "factorized_phm_W",
        "shared_W_phm", "shared_phm_rule", "factorized_phm_rule", "phm_c_init", "phm_init_range",
        "learn_phm", "hypercomplex_nonlinearity", "phm_rank", "phm_bias", "stochastic_depth"};
    const char *key;
    json_t *v;
    json_object_foreach(c, key, v) {
        size_t i = 0;
        while (i < sizeof KNOWN / sizeof *KNOWN && strcmp(key, KNOWN[i])) i++;
        if (i == sizeof KNOWN / sizeof *KNOWN)
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.%.60s is not a "
                          "bottleneck adapter setting erserve knows", key);
    }
    return ER_OK;
}

/* residual_before_ln: true (the sublayer's output), false (the adapter's
 * input), or "post_add" (the sum before the original LayerNorm, which only
 * exists with original_ln_before). */
static er_status read_residual(const json_t *c, er_bn *p, er_err *err) {
    const json_t *v = json_object_get(c, "residual_before_ln");
    const char *s = json_string_value(v);
    if (!v || json_is_true(v)) p->residual = ER_BN_RES_SUBLAYER;
    else if (json_is_false(v)) p->residual = ER_BN_RES_INPUT;
    else if (s && !strcmp(s, "post_add") && p->original_ln_before) p->residual = ER_BN_RES_POST_ADD;
    else
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.residual_before_ln must be "
                      "true, false or \"post_add\" (with original_ln_before)");
    return ER_OK;
}

static er_status read_leave_out(const json_t *c, er_bn_adapter *b, er_err *err) {
    const json_t *lo = json_object_get(c, "leave_out");
    if (!lo || json_is_null(lo)) return ER_OK;
    if (!json_is_array(lo))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.leave_out must be a list "
                      "of layer indices");
    for (size_t k = 0; k < json_array_size(lo); k++) {
        const json_t *e = json_array_get(lo, k);
        long long i = json_is_integer(e) ? json_integer_value(e) : -1;
        if (i < 0 || i >= ER_MAX_LAYERS)
            return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.leave_out entry %zu is "
                          "not a layer index in [0, %d)", k, ER_MAX_LAYERS);
        b->left_out[i] = true;
    }
    return ER_OK;
}

/* The "config" object of adapter_config.json into b. */
static er_status read_bn_config(json_t *c, bool versioned, er_bn_adapter *b, er_err *err) {
    const json_t *arch = json_object_get(c, "architecture"); /* null: BnConfig */
    if (arch && !json_is_null(arch))
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: config.architecture '%.40s' "
                      "is not supported (bottleneck adapters are; LoRA as peft saves it)",
                      json_is_string(arch) ? json_string_value(arch) : "(not a string)");
    er_status st = refuse_unimplemented(c, err);
    if (st == ER_OK) st = refuse_unknown(c, err);
    if (st == ER_OK && (!json_is_boolean(json_object_get(c, "mh_adapter")) ||
                        !json_is_boolean(json_object_get(c, "output_adapter"))))
        st = er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.mh_adapter and "
                    "config.output_adapter must be true or false");
    if (st != ER_OK) return st;
    b->mh = json_is_true(json_object_get(c, "mh_adapter"));
    b->out = json_is_true(json_object_get(c, "output_adapter"));
    er_bn *p = &b->proto;
    const json_t *sc = json_object_get(c, "scaling");
    p->scaling = sc ? (float)json_number_value(sc) : 1.0f;
    if (!(fabs(json_number_value(sc)) <= 1e4))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.scaling must be a number "
                      "in [-1e4, 1e4]");
    if ((st = flag(c, "original_ln_before", false, &p->original_ln_before, err)) != ER_OK ||
        (st = flag(c, "original_ln_after", true, &p->original_ln_after, err)) != ER_OK ||
        (st = flag(c, "ln_after", false, &b->ln_after, err)) != ER_OK ||
        (st = flag(c, "adapter_residual_before_ln", false, &p->adapter_residual_before_ln,
                   err)) != ER_OK ||
        (st = read_residual(c, p, err)) != ER_OK ||
        (st = read_act(c, versioned, &p->act, err)) != ER_OK ||
        (st = read_reduction(c, b, err)) != ER_OK || (st = read_leave_out(c, b, err)) != ER_OK)
        return st;
    return ER_OK;
}

/* ---- head_config.json ---- */

static er_status read_head_act(const json_t *h, er_head_act *out, er_err *err) {
    const json_t *v = json_object_get(h, "activation_function");
    const char *s = json_string_value(v);
    if (!v || json_is_null(v)) *out = ER_HEAD_ACT_NONE;
    else if (s && !strcasecmp(s, "tanh")) *out = ER_HEAD_ACT_TANH;
    else if (s && !strcasecmp(s, "relu")) *out = ER_HEAD_ACT_RELU;
    else if (s && !strcasecmp(s, "gelu")) *out = ER_HEAD_ACT_GELU;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "head_config.json: config.activation_function "
                      "'%.40s' is not supported (tanh, relu, gelu or null are)",
                      s ? s : "(not a string)");
    return ER_OK;
}

/* label2id {name: id} as id2label {"id": name} over exactly [0, labels). */
static er_status read_labels(const json_t *h, int labels, json_t **id2label, er_err *err) {
    json_t *l2i = json_object_get(h, "label2id");
    *id2label = NULL;
    if (!l2i || json_is_null(l2i)) return ER_OK;
    if (!json_is_object(l2i) || (int)json_object_size(l2i) != labels)
        return er_set(err, ER_ERR_FORMAT, "head_config.json: config.label2id must map %d labels "
                      "to their ids", labels);
    json_t *out = json_object();
    const char *name;
    json_t *v;
    json_object_foreach(l2i, name, v) {
        long long id = json_is_integer(v) ? json_integer_value(v) : -1;
        char key[24];
        snprintf(key, sizeof key, "%lld", id);
        if (id < 0 || id >= labels || json_object_get(out, key)) {
            json_decref(out);
            return er_set(err, ER_ERR_FORMAT, "head_config.json: config.label2id['%.60s'] is not "
                          "a distinct id in [0, %d)", name, labels);
        }
        json_object_set_new(out, key, json_string(name));
    }
    *id2label = out;
    return ER_OK;
}

/* The head's kind and shape from head_config.json's "config" object h. */
static er_status read_head_fields(const json_t *h, er_bn_adapter *b, er_err *err) {
    const char *type = json_string_value(json_object_get(h, "head_type"));
    if (type && !strcmp(type, "classification")) b->head.kind = HEAD_CLASSIFICATION;
    else if (type && !strcmp(type, "tagging")) b->head.kind = HEAD_TAGGING;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "head_config.json: head_type '%.40s' is not "
                      "supported (classification and tagging are)", type ? type : "(none)");
    const json_t *layers = json_object_get(h, "layers"), *labels = json_object_get(h, "num_labels");
    long long nl = json_is_integer(layers) ? json_integer_value(layers) : 0;
    long long nlab = json_is_integer(labels) ? json_integer_value(labels) : 0;
    if (nl != 1 && nl != 2)
        return er_set(err, ER_ERR_UNSUPPORTED, "head_config.json: config.layers must be 1 or 2");
    if (nlab < 1 || nlab > ER_MAX_LABELS)
        return er_set(err, ER_ERR_FORMAT, "head_config.json: config.num_labels must be an integer "
                      "in [1, %d]", ER_MAX_LABELS);
    if (json_is_true(json_object_get(h, "use_pooler")))
        return er_set(err, ER_ERR_UNSUPPORTED, "head_config.json: config.use_pooler is not "
                      "supported (the first token's hidden state is)");
    const json_t *bias = json_object_get(h, "bias");
    if (bias && !json_is_null(bias) && !json_is_boolean(bias))
        return er_set(err, ER_ERR_FORMAT, "head_config.json: config.bias must be true or false");
    b->head.layers = (int)nl;
    b->head.labels = (int)nlab;
    b->head.bias = !bias || json_is_null(bias) || json_is_true(bias);
    return read_head_act(h, &b->head.act, err);
}

/* A static head's head_config.json (its "config" null): the class it
 * belongs to and its number of labels, at the top level. */
static er_status read_static_head(const json_t *root, er_bn_adapter *b, er_err *err) {
    const char *cls = json_string_value(json_object_get(root, "model_class"));
    const json_t *labels = json_object_get(root, "num_labels");
    long long n = json_is_integer(labels) ? json_integer_value(labels) : 0;
    if (!cls || strlen(cls) >= sizeof b->head.cls || n < 1 || n > ER_MAX_LABELS)
        return er_set(err, ER_ERR_FORMAT, "head_config.json: a static head needs 'model_class' and "
                      "'num_labels' in [1, %d]", ER_MAX_LABELS);
    snprintf(b->head.cls, sizeof b->head.cls, "%s", cls);
    b->head.kind = HEAD_STATIC;
    b->head.labels = (int)n;
    return ER_OK;
}

/* The PEFT task type whose class the head's is: the static head's class
 * suffix, or the flex head's type; NULL without a head. */
static const char *head_task(const er_bn_adapter *b, er_err *err, er_status *st) {
    static const char *const SUFFIX[][2] = {{"ForSequenceClassification", "SEQ_CLS"},
                                            {"ForTokenClassification", "TOKEN_CLS"},
                                            {"ForQuestionAnswering", "QUESTION_ANS"}};
    *st = ER_OK;
    if (b->head.kind == HEAD_CLASSIFICATION) return "SEQ_CLS";
    if (b->head.kind == HEAD_TAGGING) return "TOKEN_CLS";
    if (b->head.kind == HEAD_NONE) return NULL;
    size_t n = strlen(b->head.cls);
    for (size_t i = 0; i < sizeof SUFFIX / sizeof *SUFFIX; i++) {
        size_t k = strlen(SUFFIX[i][0]);
        if (n > k && !strcmp(b->head.cls + n - k, SUFFIX[i][0])) return SUFFIX[i][1];
    }
    *st = er_set(err, ER_ERR_UNSUPPORTED, "head_config.json: model_class '%s' is not supported "
                 "(*ForSequenceClassification, *ForTokenClassification, *ForQuestionAnswering "
                 "are)", b->head.cls);
    return NULL;
}

/* head_config.json's text[len]: its fields into b->head, its label names
 * into *id2label (owned by the caller). */
static er_status parse_head(const char *text, size_t len, er_bn_adapter *b, json_t **id2label,
                            er_err *err) {
    json_t *root = json_loadb(text, len, 0, NULL);
    const json_t *h = json_object_get(root, "config");
    const char *name = json_string_value(json_object_get(root, "name"));
    er_status st;
    if (!json_is_object(root))
        st = er_set(err, ER_ERR_FORMAT, HEAD_CONFIG ": invalid JSON");
    else if (!h || json_is_null(h))
        st = read_static_head(root, b, err);
    else if (!json_is_object(h) || !name || strlen(name) > MAX_NAME)
        st = er_set(err, ER_ERR_FORMAT, HEAD_CONFIG ": not a head config as `adapters` saves it "
                    "(a \"config\" object and the head's \"name\")");
    else {
        snprintf(b->head.name, sizeof b->head.name, "%s", name);
        st = read_head_fields(h, b, err);
    }
    if (st == ER_OK)
        st = read_labels(b->head.kind == HEAD_STATIC ? root : h, b->head.labels, id2label, err);
    json_decref(root);
    return st;
}

/* head_config.json, when the directory has one: its fields into b->head,
 * its label names into *id2label (owned by the caller), its weights opened. */
static er_status read_head(const char *dir, er_bn_adapter *b, json_t **id2label, er_err *err) {
    char path[4200], *text = NULL;
    size_t len = 0;
    *id2label = NULL;
    if (!file_exists(dir, HEAD_CONFIG)) return ER_OK; /* the base's own head */
    snprintf(path, sizeof path, "%s/" HEAD_CONFIG, dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    st = parse_head(text, len, b, id2label, err);
    free(text);
    if (st == ER_OK && !file_exists(dir, HEAD_WEIGHTS) && file_exists(dir, HEAD_PICKLE))
        st = er_set(err, ER_ERR_NOT_FOUND, "%s/" HEAD_PICKLE " is a torch pickle, which erserve "
                    "never unpickles: re-save the adapter with save_adapter(..., "
                    "use_safetensors=True)", dir);
    snprintf(path, sizeof path, "%s/" HEAD_WEIGHTS, dir);
    if (st == ER_OK) st = er_st_open(path, &b->head_file, err);
    return st;
}

/* The top level of adapter_config.json: the adapter's name (in its tensor
 * names), its base, and the hidden size it was trained on. */
static er_status read_top(const json_t *c, er_bn_adapter *b, const char **model_name, int *hidden,
                          er_err *err) {
    const json_t *mt = json_object_get(c, "model_type");
    if (mt && !json_is_null(mt) &&
        (!json_is_string(mt) || strlen(json_string_value(mt)) >= sizeof b->model_type))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'model_type' must be a model "
                      "type's name");
    snprintf(b->model_type, sizeof b->model_type, "%s", mt ? json_string_value(mt) : "");
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!name || !*name || strlen(name) > MAX_NAME)
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'name' (the adapter's name, up "
                      "to %d characters) is missing", MAX_NAME);
    snprintf(b->name, sizeof b->name, "%s", name);
    *model_name = json_string_value(json_object_get(c, "model_name"));
    const json_t *h = json_object_get(c, "hidden_size");
    *hidden = json_is_integer(h) && json_integer_value(h) > 0 && json_integer_value(h) <= 65536
                  ? (int)json_integer_value(h) : 0;
    if (h && !json_is_null(h) && !*hidden)
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'hidden_size' must be an integer "
                      "in [1, 65536]");
    return ER_OK;
}

/* The base's family must run the post-LN layer the adapter hooks into, and
 * be the model type and width the adapter was trained on. */
static er_status check_family(const er_model *m, const er_bn_adapter *b, int hidden,
                              er_err *err) {
    if (b->model_type[0] && strcmp(b->model_type, m->cfg.model_type))
        return er_set(err, ER_ERR_MISMATCH, "adapter_config.json: model_type %s, but the base "
                      "model's is %s", b->model_type, m->cfg.model_type);
    if (!m->arch || m->arch->layer != er_layer_post_ln || !m->arch->layer_names)
        return er_set(err, ER_ERR_UNSUPPORTED, "bottleneck adapters are not supported for "
                      "architecture %s (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT are)",
                      m->arch ? m->arch->name : "(none)");
    if (hidden && hidden != m->cfg.hidden_size)
        return er_set(err, ER_ERR_MISMATCH, "adapter_config.json: hidden_size %d, but the base "
                      "model's is %d", hidden, m->cfg.hidden_size);
    return ER_OK;
}

er_status er_bn_open(er_model *m, er_adapter *a, const json_t *c, const char *dir,
                     const er_model_params *p, er_err *err) {
    er_bn_adapter *b = a->bn = calloc(1, sizeof *b);
    if (!b) return er_set(err, ER_ERR_NOMEM, "out of memory");
    const char *model_name = NULL;
    int hidden = 0;
    bool versioned = json_object_get(c, "version") != NULL;
    er_status st = read_top(c, b, &model_name, &hidden, err);
    if (st == ER_OK) st = read_bn_config(json_object_get(c, "config"), versioned, b, err);
    if (st == ER_OK && !file_exists(dir, BN_WEIGHTS) && file_exists(dir, BN_PICKLE))
        st = er_set(err, ER_ERR_NOT_FOUND, "%s/" BN_PICKLE " is a torch pickle, which erserve "
                    "never unpickles: re-save the adapter with save_adapter(..., "
                    "use_safetensors=True) to get " BN_WEIGHTS, dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/" BN_WEIGHTS, dir);
    if (st == ER_OK) st = er_st_open(path, &b->file, err);
    if (st == ER_OK && !model_name && !p->base_dir)
        st = er_set(err, ER_ERR_FORMAT, "adapter_config.json: no 'model_name' and no base given");
    if (st == ER_OK)
        st = er_adapter_resolve_base(model_name ? model_name : "", dir, p, a->base,
                                     sizeof a->base, err);
    json_t *id2label = NULL;
    if (st == ER_OK) st = read_head(dir, b, &id2label, err);
    const char *task = st == ER_OK ? head_task(b, err, &st) : NULL;
    if (st == ER_OK)
        st = er_adapter_task_config(m, a->base, task, b->head.labels, id2label, err);
    json_decref(id2label);
    if (st == ER_OK && b->head.kind == HEAD_STATIC && strcmp(m->cfg.architecture, b->head.cls))
        st = er_set(err, ER_ERR_MISMATCH, "head_config.json: model_class %s is not of the base "
                    "model's family (its class would be %s)", b->head.cls, m->cfg.architecture);
    if (st == ER_OK) {
        m->arch = er_arch_get(m->cfg.arch);
        st = check_family(m, b, hidden, err);
    }
    return st;
}

er_status er_bn_parse_config(const char *text, size_t len, bool head, er_err *err) {
    er_bn_adapter *b = calloc(1, sizeof *b);
    if (!b) return er_set(err, ER_ERR_NOMEM, "out of memory");
    json_t *id2label = NULL, *c = head ? NULL : json_loadb(text, len, 0, NULL);
    const char *model_name;
    int hidden;
    er_status st;
    if (head) st = parse_head(text, len, b, &id2label, err);
    else if (!er_bn_config_is_adapterhub(c))
        st = er_set(err, ER_ERR_FORMAT, "adapter_config.json: no AdapterHub \"config\" object");
    else if ((st = read_top(c, b, &model_name, &hidden, err)) == ER_OK)
        st = read_bn_config(json_object_get(c, "config"), json_object_get(c, "version") != NULL, b,
                            err);
    json_decref(id2label);
    json_decref(c);
    er_bn_adapter_free(b);
    return st;
}

/* ---- the saved tensors ---- */

/* int(hidden // rf), at least 1: Python's float floor division (CPython's
 * float_floor_div), so that a factor like 0.1 gives its bottleneck. */
static int bottleneck_of(int hidden, double rf) {
    double mod = fmod((double)hidden, rf), div = ((double)hidden - mod) / rf;
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl < 1 ? 1 : fl > 1e9 ? 1000000000 : (int)fl;
}

static int layer_bottleneck(const er_bn_adapter *b, int layer, int hidden) {
    return bottleneck_of(hidden, b->rf_layer[layer] > 0 ? b->rf_layer[layer] : b->rf_default);
}

/* The two places' names between "<layer>." and ".adapters.". */
static void places(const er_model *m, char mh[64], char out[64]) {
    if (!strcmp(m->arch->name, "distilbert")) { /* TransformerBlock's own BottleneckLayers */
        snprintf(mh, 64, "attention_adapters");
        snprintf(out, 64, "output_adapters");
        return;
    }
    const er_layer_names *n = m->arch->layer_names; /* BertSelfOutput, BertOutput */
    const char *d1 = strrchr(n->o, '.'), *d2 = strrchr(n->ffn_out, '.');
    snprintf(mh, 64, "%.*s", d1 ? (int)(d1 - n->o) : 0, n->o);
    snprintf(out, 64, "%.*s", d2 ? (int)(d2 - n->ffn_out) : 0, n->ffn_out);
}

/* Splits saved name `s` (its base prefix stripped) into layer and place
 * (0 after attention, 1 after the FFN); the parameter's name into *param.
 * false when it is not a bottleneck tensor of this adapter. */
static bool parse_name(const er_model *m, const er_bn_adapter *b, const char *s, int *layer,
                       int *place, const char **param) {
    const er_layer_names *n = m->arch->layer_names;
    size_t k = strlen(n->layers), pl = strlen(m->arch->prefix);
    if (!strncmp(s, m->arch->prefix, pl)) s += pl;
    if (strncmp(s, n->layers, k) || s[k] != '.') return false;
    char *end, tag[MAX_NAME + 16], mh[64], out[64];
    errno = 0;
    long i = strtol(s + k + 1, &end, 10);
    if (end == s + k + 1 || *end != '.' || errno || i < 0 || i >= m->cfg.num_layers) return false;
    snprintf(tag, sizeof tag, ".adapters.%s.", b->name);
    const char *at = strstr(end, tag);
    if (!at) return false;
    places(m, mh, out);
    size_t len = (size_t)(at - end - 1);
    if (len == strlen(mh) && !strncmp(end + 1, mh, len)) *place = 0;
    else if (len == strlen(out) && !strncmp(end + 1, out, len)) *place = 1;
    else return false;
    *layer = (int)i;
    *param = at + strlen(tag);
    return true;
}

/* Every saved tensor is one of this adapter's four per enabled place of a
 * layer it is not left out of; *prefixed: whether names carry the base
 * prefix ("bert."), as an *AdapterModel saves them. */
static er_status check_names(const er_model *m, const er_bn_adapter *b, bool *prefixed,
                             er_err *err) {
    static const char *const PARAMS[] = {"adapter_down.0.weight", "adapter_down.0.bias",
                                         "adapter_up.weight", "adapter_up.bias",
                                         "adapter_norm_after.weight", "adapter_norm_after.bias"};
    const size_t n_params = b->ln_after ? 6 : 4;
    *prefixed = false;
    for (size_t i = 0; i < er_st_count(b->file); i++) {
        const char *name = er_st_at(b->file, i)->name, *param = NULL;
        int layer = -1, place = -1;
        bool ok = parse_name(m, b, name, &layer, &place, &param);
        size_t j = 0;
        while (ok && j < n_params && strcmp(param, PARAMS[j])) j++;
        ok = ok && j < n_params;
        if (!ok)
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter tensor '%.200s' is not supported "
                          "(adapter_down.0, adapter_up and, with ln_after, adapter_norm_after of "
                          "bottleneck adapter '%s' on the encoder layers are)", name, b->name);
        if (b->left_out[layer] || !(place ? b->out : b->mh))
            return er_set(err, ER_ERR_FORMAT, "adapter tensor '%.200s' is for a place the "
                          "config leaves without an adapter (mh_adapter, output_adapter, "
                          "leave_out)", name);
        *prefixed = *prefixed || !strncmp(name, m->arch->prefix, strlen(m->arch->prefix));
    }
    return ER_OK;
}

/* One saved tensor as float32 of exactly [d0] (d1 0) or [d0, d1]; a shape
 * that disagrees says what reduction_factor implies. */
static er_status bn_tensor(er_model *m, const er_bn_adapter *b, const char *key, int64_t d0,
                           int64_t d1, const float **out, er_err *err) {
    const er_st_tensor *t = er_st_find(b->file, key);
    if (!t) return er_set(err, ER_ERR_NOT_FOUND, "adapter tensor '%.200s' is missing", key);
    if (t->ndim != (d1 ? 2 : 1) || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
        char want[64];
        if (d1) snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        else snprintf(want, sizeof want, "[%lld]", (long long)d0);
        return er_set(err, ER_ERR_MISMATCH, "adapter tensor '%.200s' must have shape %s (the "
                      "hidden size and config.reduction_factor imply it)", key, want);
    }
    return er_load_tensor_in(m, b->file, key, d0, d1, out, err);
}

/* Layer `layer`'s adapter at `place` into blk. */
static er_status load_block(er_model *m, er_bn_adapter *b, int layer, int place, bool prefixed,
                            er_bn *blk, er_err *err) {
    char mh[64], out[64], pre[512], key[700];
    places(m, mh, out);
    snprintf(pre, sizeof pre, "%s%s.%d.%s.adapters.%s.", prefixed ? m->arch->prefix : "",
             m->arch->layer_names->layers, layer, place ? out : mh, b->name);
    const int H = m->cfg.hidden_size, D = layer_bottleneck(b, layer, H);
    if (D > m->cfg.intermediate_size)
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter: reduction_factor gives layer %d a "
                      "bottleneck of %d, wider than the intermediate size %d", layer, D,
                      m->cfg.intermediate_size);
    *blk = b->proto;
    blk->down.out = blk->up.in = D;
    blk->down.in = blk->up.out = H;
    er_status st;
    snprintf(key, sizeof key, "%sadapter_down.0.weight", pre);
    if ((st = bn_tensor(m, b, key, D, H, &blk->down.w, err)) != ER_OK) return st; // [D, H]
    snprintf(key, sizeof key, "%sadapter_down.0.bias", pre);
    if ((st = bn_tensor(m, b, key, D, 0, &blk->down.b, err)) != ER_OK) return st; // [D]
    snprintf(key, sizeof key, "%sadapter_up.weight", pre);
    if ((st = bn_tensor(m, b, key, H, D, &blk->up.w, err)) != ER_OK) return st; // [H, D]
    snprintf(key, sizeof key, "%sadapter_up.bias", pre);
    if ((st = bn_tensor(m, b, key, H, 0, &blk->up.b, err)) != ER_OK || !b->ln_after) return st;
    snprintf(key, sizeof key, "%sadapter_norm_after.weight", pre);
    if ((st = bn_tensor(m, b, key, H, 0, &blk->ln_after.gamma, err)) != ER_OK) return st; // [H]
    snprintf(key, sizeof key, "%sadapter_norm_after.bias", pre);
    return bn_tensor(m, b, key, H, 0, &blk->ln_after.beta, err); // [H]
}

er_status er_bn_apply(er_model *m, er_adapter *a, er_err *err) {
    er_bn_adapter *b = a->bn;
    const int L = m->cfg.num_layers;
    bool prefixed;
    er_status st = check_names(m, b, &prefixed, err);
    if (st != ER_OK) return st;
    if (!b->rf_default)
        for (int i = 0; i < L && st == ER_OK; i++)
            if (!b->left_out[i] && (b->mh || b->out) && !(b->rf_layer[i] > 0))
                st = er_set(err, ER_ERR_FORMAT, "adapter_config.json: config.reduction_factor "
                            "gives layer %d no value and no \"default\"", i);
    if (st == ER_OK && !(b->blocks = calloc((size_t)L * 2, sizeof *b->blocks)))
        st = er_set(err, ER_ERR_NOMEM, "out of memory");
    for (int i = 0; i < L && st == ER_OK; i++)
        for (int place = 0; place < 2 && st == ER_OK; place++) {
            if (b->left_out[i] || !(place ? b->out : b->mh)) continue;
            if (i < a->lowest) a->lowest = i;
            a->n_adapted++;
            if (i < m->skip_below) continue; /* not loaded: runs from a shared stack below */
            er_bn *blk = &b->blocks[2 * i + place];
            st = load_block(m, b, i, place, prefixed, blk, err);
            if (st != ER_OK) break;
            if (place) m->layers[i].bn_out = blk;
            else m->layers[i].bn_att = blk;
        }
    if (st == ER_OK)
        er_log(ER_LOG_INFO, "adapter %s: bottleneck adapter '%s', %d blocks after %s, from layer "
               "%d over base %s", a->dir, b->name, a->n_adapted,
               b->mh && b->out ? "attention and the FFN" : b->mh ? "attention" : "the FFN",
               a->lowest, a->base);
    return st;
}

/* ---- the prediction head ---- */

/* heads.<name>.<index>.weight as PredictionHead.build numbers its modules:
 * per layer a Dropout, then a Linear and (but the last) its activation. */
static er_status head_lin(er_model *m, const er_bn_adapter *b, int index, int out, bool bias,
                          er_lin *l, er_err *err) {
    char key[400];
    const int H = m->cfg.hidden_size;
    snprintf(key, sizeof key, "heads.%s.%d.weight", b->head.name, index);
    er_status st = er_load_tensor_in(m, b->head_file, key, out, H, &l->w, err); // [out, H]
    l->b = NULL;
    snprintf(key, sizeof key, "heads.%s.%d.bias", b->head.name, index);
    if (st == ER_OK && bias) st = er_load_tensor_in(m, b->head_file, key, out, 0, &l->b, err);
    if (st == ER_OK && !bias && er_st_find(b->head_file, key))
        st = er_set(err, ER_ERR_FORMAT, "head tensor '%s' is saved but config.bias is false", key);
    l->out = out;
    l->in = H;
    return st;
}

const er_st_tensor *er_bn_find(const er_adapter *a, const char *name) {
    const er_bn_adapter *b = a->bn;
    return b && b->head.kind == HEAD_STATIC ? er_st_find(b->head_file, name) : NULL;
}

er_status er_bn_load_head(er_model *m, er_adapter *a, bool *own, er_err *err) {
    er_bn_adapter *b = a->bn;
    *own = b->head.kind == HEAD_CLASSIFICATION || b->head.kind == HEAD_TAGGING;
    if (!*own) return ER_OK; /* the class's loader: a static head via er_bn_find */
    const bool act = b->head.act != ER_HEAD_ACT_NONE;
    const int out_index = b->head.layers == 2 ? (act ? 4 : 3) : 1;
    memset(&m->head_dense, 0, sizeof m->head_dense);
    m->head_act = b->head.layers == 2 ? b->head.act : ER_HEAD_ACT_NONE;
    er_status st = ER_OK;
    if (b->head.layers == 2)
        st = head_lin(m, b, 1, m->cfg.hidden_size, true, &m->head_dense, err);
    if (st == ER_OK)
        st = head_lin(m, b, out_index, b->head.labels, b->head.bias, &m->head_out, err);
    char pre[300];
    snprintf(pre, sizeof pre, "heads.%s.", b->head.name);
    size_t want = (size_t)(b->head.layers == 2 ? 2 : 0) + (b->head.bias ? 2 : 1);
    if (st == ER_OK && er_st_count(b->head_file) != want)
        for (size_t i = 0; i < er_st_count(b->head_file) && st == ER_OK; i++) {
            const char *name = er_st_at(b->head_file, i)->name;
            if (strncmp(name, pre, strlen(pre)))
                st = er_set(err, ER_ERR_FORMAT, "head tensor '%.200s' is not under '%s'", name,
                            pre);
        }
    if (st == ER_OK && er_st_count(b->head_file) != want)
        st = er_set(err, ER_ERR_FORMAT, HEAD_WEIGHTS " holds %zu tensors; a %d-layer head has %zu",
                    er_st_count(b->head_file), b->head.layers, want);
    return st;
}

/* ---- forward ---- */

/* v[n] = act(v) */
static void bn_act(er_bn_act act, float *v, size_t n) {
    switch (act) {
    case ER_BN_RELU: er_relu(v, (int)n); break;
    case ER_BN_GELU: er_gelu_erf(v, (int)n); break;
    case ER_BN_GELU_TANH: er_gelu_tanh(v, (int)n); break;
    case ER_BN_TANH: er_tanh(v, (int)n); break;
    case ER_BN_SILU:
        for (size_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + expf(-v[i]));
        break;
    case ER_BN_SIGMOID:
        for (size_t i = 0; i < n; i++) v[i] = 1.0f / (1.0f + expf(-v[i]));
        break;
    case ER_BN_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) v[i] = v[i] < 0 ? 0.01f * v[i] : v[i];
        break;
    case ER_BN_LINEAR: break;
    }
}

void er_bn_sublayer(er_ctx *x, const er_bn *a, float *h, const float *b, float *hidden,
                    const er_ln *ln, float eps, int n, int d) {
    const size_t nd = (size_t)n * (size_t)d;
    for (size_t t = 0; t < (size_t)n; t++) // h [n, d]: the sublayer's output, its bias added
        for (size_t j = 0; j < (size_t)d; j++) h[t * (size_t)d + j] += b[j];
    const float *in = h, *res = h;
    if (a->original_ln_before) {
        float *normed = x->q; // [n, d] = LN(h + r)
        memcpy(normed, hidden, nd * sizeof *normed);
        if (a->residual == ER_BN_RES_POST_ADD) {
            float *sum = x->k; // [n, d] = h + r
            for (size_t i = 0; i < nd; i++) sum[i] = h[i] + hidden[i];
            res = sum;
        }
        er_par_add_layernorm(x, h, normed, NULL, ln, eps, n, d);
        in = normed;
        if (a->residual == ER_BN_RES_INPUT) res = normed;
    }
    float *down = x->ffn, *up = x->v; // [n, bottleneck], [n, d]
    er_lin_apply(&a->down, in, n, down);
    bn_act(a->act, down, (size_t)n * (size_t)a->down.out);
    er_lin_apply(&a->up, down, n, up);
    if (!a->ln_after.gamma) {
        for (size_t i = 0; i < nd; i++) up[i] = up[i] * a->scaling + res[i];
    } else { /* nn.LayerNorm's default eps, not the model's */
        const bool before = a->adapter_residual_before_ln;
        for (size_t i = 0; i < nd; i++) up[i] = up[i] * a->scaling + (before ? res[i] : 0.0f);
        er_add_layernorm(up, NULL, NULL, a->ln_after.gamma, a->ln_after.beta, 1e-5f, n, d, up);
        for (size_t i = 0; !before && i < nd; i++) up[i] += res[i];
    }
    if (a->original_ln_after) er_par_add_layernorm(x, up, hidden, NULL, ln, eps, n, d);
    else memcpy(hidden, up, nd * sizeof *hidden);
}
