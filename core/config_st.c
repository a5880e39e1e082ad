/* sentence-transformers modules of an embedding model directory
 * (config.h): modules.json, the Pooling config, Dense modules, Normalize,
 * as sentence_transformers/models/Pooling.py and Dense.py read them. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "er_io.h"

/* sentence-transformers' pooling mode keys, in Pooling.py's order. */
static const struct {
    const char *key, *name; /* config.json key, pooling_mode string */
    er_pooling mode;
} POOL_MODES[] = {
    {"pooling_mode_cls_token", "cls", ER_POOLING_CLS},
    {"pooling_mode_max_tokens", "max", ER_POOLING_MAX},
    {"pooling_mode_mean_tokens", "mean", ER_POOLING_MEAN},
    {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens", ER_POOLING_MEAN_SQRT_LEN},
    {"pooling_mode_weightedmean_tokens", "weightedmean", ER_POOLING_WEIGHTED_MEAN},
    {"pooling_mode_lasttoken", "lasttoken", ER_POOLING_LAST_TOKEN},
};
#define N_POOL_MODES ((int)(sizeof POOL_MODES / sizeof POOL_MODES[0]))

/* The one mode a pooling config enables: the pooling_mode_* booleans, or the
 * "pooling_mode" string newer sentence-transformers versions write.  Several
 * modes (concatenated) are refused. */
static er_status pick_pooling(const json_t *root, er_pooling *out, er_err *err) {
    const json_t *pm = json_object_get(root, "pooling_mode");
    if (json_is_array(pm) && json_array_size(pm) == 1) pm = json_array_get(pm, 0); /* ["mean"] */
    const char *by_name = json_string_value(pm);
    int chosen = -1, count = 0;
    char on_keys[256] = "";
    for (int i = 0; i < N_POOL_MODES; i++) {
        bool on = by_name ? strcmp(by_name, POOL_MODES[i].name) == 0
                          : json_is_true(json_object_get(root, POOL_MODES[i].key));
        if (!on) continue;
        chosen = i;
        count++;
        size_t at = strlen(on_keys);
        snprintf(on_keys + at, sizeof on_keys - at, "%s%s", at ? ", " : "", POOL_MODES[i].key);
    }
    if (by_name && count == 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "pooling config: pooling_mode '%.40s' is not "
                      "supported (cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken "
                      "are)", by_name);
    if (pm && !by_name)
        return er_set(err, ER_ERR_UNSUPPORTED, "pooling config: 'pooling_mode' must be one mode "
                      "name (concatenated modes are not supported)");
    if (count != 1)
        return er_set(err, ER_ERR_UNSUPPORTED, "pooling config: exactly one pooling_mode_* must "
                      "be true (%d are%s%s; concatenated modes are not supported)", count,
                      count ? ": " : "", on_keys);
    *out = POOL_MODES[chosen].mode;
    return ER_OK;
}

er_status er_config_parse_pooling(const char *json, size_t len, er_config *cfg, er_err *err) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "pooling config: invalid JSON: %s (line %d)", jerr.text,
                      jerr.line);
    er_status st = ER_OK;
    if (!json_is_object(root)) st = er_set(err, ER_ERR_FORMAT, "pooling config: not a JSON object");
    /* include_prompt false pools without the prompt's tokens (Pooling.py
     * masks the first prompt_length); erserve pools every token. */
    else if (json_is_false(json_object_get(root, "include_prompt")))
        st = er_set(err, ER_ERR_UNSUPPORTED, "pooling config: include_prompt false is not "
                    "supported (erserve pools over every token, the prompt's included)");
    else st = pick_pooling(root, &cfg->pooling, err);
    json_decref(root);
    return st;
}

/* activation_function as Dense.py saves it (the class's full name). */
static er_status dense_act(const json_t *root, er_dense_act *out, er_err *err) {
    static const struct { const char *name; er_dense_act act; } ACTS[] = {
        {"torch.nn.modules.linear.Identity", ER_DENSE_IDENTITY},
        {"torch.nn.modules.activation.Tanh", ER_DENSE_TANH},
        {"torch.nn.modules.activation.ReLU", ER_DENSE_RELU},
        {"torch.nn.modules.activation.GELU", ER_DENSE_GELU},
        {"torch.nn.modules.activation.Sigmoid", ER_DENSE_SIGMOID},
    };
    const json_t *v = json_object_get(root, "activation_function");
    if (!v) {
        *out = ER_DENSE_TANH; /* Dense's default, nn.Tanh() */
        return ER_OK;
    }
    const char *s = json_string_value(v);
    if (!s) return er_set(err, ER_ERR_FORMAT, "Dense config: 'activation_function' must be a string");
    for (size_t i = 0; i < sizeof ACTS / sizeof ACTS[0]; i++)
        if (strcmp(s, ACTS[i].name) == 0) {
            *out = ACTS[i].act;
            return ER_OK;
        }
    return er_set(err, ER_ERR_UNSUPPORTED, "Dense config: activation_function '%.80s' is not "
                  "supported (Identity, Tanh, ReLU, GELU, Sigmoid from torch.nn are)", s);
}

/* The fields of one Dense config; `width` is what the module before it gives. */
static er_status dense_fields(const json_t *root, int width, er_st_dense *d, er_err *err) {
    const char *in_name = json_string_value(json_object_get(root, "module_input_name"));
    if (in_name && strcmp(in_name, "sentence_embedding") != 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "Dense config: module_input_name '%.40s' is not "
                      "supported (only sentence_embedding)", in_name);
    er_status st = er_config_int(root, "in_features", -1, 1, ER_MAX_DENSE_FEATURES,
                                 &d->in_features, err);
    if (st == ER_OK)
        st = er_config_int(root, "out_features", -1, 1, ER_MAX_DENSE_FEATURES, &d->out_features,
                           err);
    if (st != ER_OK) return st;
    if (d->in_features != width)
        return er_set(err, ER_ERR_FORMAT, "Dense config: in_features %d but the module before "
                      "it gives %d", d->in_features, width);
    const json_t *bias = json_object_get(root, "bias");
    if (bias && !json_is_boolean(bias))
        return er_set(err, ER_ERR_FORMAT, "Dense config: 'bias' must be true or false");
    d->bias = !bias || json_is_true(bias);
    return dense_act(root, &d->act, err);
}

er_status er_config_parse_dense(const char *json, size_t len, const char *path, er_config *cfg,
                                er_err *err) {
    if (cfg->st.n_dense == ER_MAX_DENSE)
        return er_set(err, ER_ERR_CAPACITY, "more than %d Dense modules", ER_MAX_DENSE);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "Dense config: invalid JSON: %s (line %d)", jerr.text,
                      jerr.line);
    int n = cfg->st.n_dense;
    int width = n ? cfg->st.dense[n - 1].out_features : cfg->hidden_size;
    er_st_dense *d = &cfg->st.dense[n];
    memset(d, 0, sizeof *d);
    er_status st = json_is_object(root) ? dense_fields(root, width, d, err)
                                        : er_set(err, ER_ERR_FORMAT, "Dense config: not an object");
    json_decref(root);
    if (st != ER_OK) return st;
    if (strlen(path) >= sizeof d->path)
        return er_set(err, ER_ERR_FORMAT, "Dense module path '%.64s...' is too long", path);
    snprintf(d->path, sizeof d->path, "%s", path);
    cfg->st.n_dense++;
    return ER_OK;
}

/* Reads `dir`/`sub`/config.json into fn; ER_ERR_NOT_FOUND passes through. */
static er_status module_config(const char *dir, const char *sub, er_config *cfg,
                               er_status (*fn)(const char *, size_t, const char *, er_config *,
                                               er_err *),
                               er_err *err) {
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s/config.json", dir, sub);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    st = fn(text, len, sub, cfg, err);
    free(text);
    if (st != ER_OK && err) {
        char inner[ER_ERR_MSG_MAX];
        memcpy(inner, err->msg, sizeof inner);
        er_set(err, st, "%s: %s", path, inner);
    }
    return st;
}

static er_status pooling_fn(const char *json, size_t len, const char *sub, er_config *cfg,
                            er_err *err) {
    (void)sub;
    return er_config_parse_pooling(json, len, cfg, err);
}

/* One modules.json entry after the Transformer: Pooling, then Dense
 * modules, then Normalize; anything else, or another order, is refused:
 * serving the embedding without it would silently be wrong. */
static er_status apply_module(const char *dir, const char *cls, const char *type,
                              const char *path, int *stage, er_config *cfg, er_err *err) {
    er_status st = ER_OK;
    if (strcmp(cls, "Pooling") == 0 && *stage == 0) {
        st = module_config(dir, path, cfg, pooling_fn, err);
        if (st == ER_ERR_NOT_FOUND) st = ER_OK; /* no config: mean, the default */
        *stage = 1;
    } else if (strcmp(cls, "Dense") == 0 && *stage == 1) {
        st = module_config(dir, path, cfg, er_config_parse_dense, err);
    } else if (strcmp(cls, "Normalize") == 0 && *stage >= 1 && !cfg->normalize) {
        cfg->normalize = true;
        *stage = 2;
    } else {
        st = er_set(err, ER_ERR_UNSUPPORTED, "%s/modules.json: sentence-transformers module "
                    "'%.64s' is not supported here (Transformer, Pooling, Dense, Normalize are, "
                    "in that order)", dir, type);
    }
    return st;
}

/* Reads sentence-transformers' modules.json and applies each module. */
static er_status parse_modules(const char *dir, const char *json, size_t len, er_config *cfg,
                               er_err *err) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "%s/modules.json: invalid JSON: %s", dir, jerr.text);
    er_status st = ER_OK;
    if (!json_is_array(root)) {
        st = er_set(err, ER_ERR_FORMAT, "%s/modules.json: not an array", dir);
        goto done;
    }
    size_t i;
    json_t *m;
    int stage = 0; /* 0: before Pooling, 1: after it, 2: after Normalize */
    json_array_foreach(root, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *path = json_string_value(json_object_get(m, "path"));
        if (!type || !path) {
            st = er_set(err, ER_ERR_FORMAT, "%s/modules.json: entry %zu needs string 'type' and "
                        "'path'", dir, i);
            goto done;
        }
        if (strstr(path, "..") || path[0] == '/') {
            st = er_set(err, ER_ERR_FORMAT, "%s/modules.json: path '%.64s' leaves the model "
                        "directory", dir, path);
            goto done;
        }
        const char *cls = strrchr(type, '.');
        cls = cls ? cls + 1 : type;
        if (strcmp(cls, "Transformer") == 0 && stage == 0) continue;
        if ((st = apply_module(dir, cls, type, path, &stage, cfg, err)) != ER_OK) goto done;
    }
done:
    json_decref(root);
    return st;
}

er_status er_config_load_st(const char *dir, er_config *cfg, er_err *err) {
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/modules.json", dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st == ER_OK) {
        st = parse_modules(dir, text, len, cfg, err);
        free(text);
    } else if (st == ER_ERR_NOT_FOUND) { /* a bare pooling folder still counts */
        st = module_config(dir, "1_Pooling", cfg, pooling_fn, err);
        if (st == ER_ERR_NOT_FOUND) st = ER_OK; /* mean, the sentence-transformers default */
    }
    return st;
}
