#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arch.h"
#include "er_io.h"

const char *er_head_type_name(er_head_type h) {
    switch (h) {
    case ER_HEAD_EMBEDDING: return "embedding";
    case ER_HEAD_SEQUENCE_CLASSIFICATION: return "sequence_classification";
    case ER_HEAD_TOKEN_CLASSIFICATION: return "token_classification";
    case ER_HEAD_QUESTION_ANSWERING: return "question_answering";
    case ER_HEAD_TOKEN_EMBEDDING: return "token_embedding";
    }
    return "unknown";
}

bool er_head_per_token(er_head_type h) {
    return h == ER_HEAD_TOKEN_CLASSIFICATION || h == ER_HEAD_QUESTION_ANSWERING ||
           h == ER_HEAD_TOKEN_EMBEDDING;
}

void er_config_free(er_config *cfg) {
    if (!cfg) return;
    if (cfg->labels)
        for (int i = 0; i < cfg->num_labels; i++) free(cfg->labels[i]);
    free(cfg->labels);
    cfg->labels = NULL;
    cfg->num_labels = 0;
}

er_status er_config_int(const json_t *root, const char *key, long long def, long long lo,
                        long long hi, int *out, er_err *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < lo) return er_set(err, ER_ERR_FORMAT, "config.json: missing field '%s'", key);
        *out = (int)def;
        return ER_OK;
    }
    if (!json_is_integer(v))
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return er_set(err, ER_ERR_FORMAT, "config.json: '%s' = %lld is outside [%lld, %lld]", key,
                      (long long)x, lo, hi);
    *out = (int)x;
    return ER_OK;
}

er_status er_config_act(const json_t *root, const char *key, er_act *out, er_err *err) {
    const json_t *v = json_object_get(root, key);
    if (!v) {
        *out = ER_ACT_GELU;
        return ER_OK;
    }
    const char *s = json_string_value(v);
    if (!s) return er_set(err, ER_ERR_FORMAT, "config.json: '%s' must be a string", key);
    if (strcmp(s, "gelu") == 0) *out = ER_ACT_GELU;
    else if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0 ||
             strcmp(s, "gelu_fast") == 0)
        *out = ER_ACT_GELU_TANH;
    else if (strcmp(s, "relu") == 0) *out = ER_ACT_RELU;
    else
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: %s '%.40s' is not supported (gelu, "
                      "gelu_new, gelu_pytorch_tanh, gelu_fast, relu are)", key, s);
    return ER_OK;
}

static er_status parse_labels(const json_t *root, er_config *cfg, er_err *err) {
    const json_t *id2label = json_object_get(root, "id2label");
    int n = 0;
    if (cfg->head == ER_HEAD_QUESTION_ANSWERING) n = 2;
    else if (cfg->is_electra_discriminator) n = 1;
    else if (id2label) {
        if (!json_is_object(id2label))
            return er_set(err, ER_ERR_FORMAT, "config.json: 'id2label' must be an object");
        n = (int)json_object_size(id2label);
    } else {
        er_status st = er_config_int(root, "num_labels", 2, 1, ER_MAX_LABELS, &n, err);
        if (st != ER_OK) return st;
    }
    if (n < 1 || n > ER_MAX_LABELS)
        return er_set(err, ER_ERR_FORMAT, "config.json: %d labels is outside [1, %d]", n,
                      ER_MAX_LABELS);
    cfg->labels = calloc((size_t)n, sizeof *cfg->labels);
    if (!cfg->labels) return er_set(err, ER_ERR_NOMEM, "config: out of memory for labels");
    cfg->num_labels = n;
    for (int i = 0; i < n; i++) {
        char key[24], fallback[32];
        snprintf(key, sizeof key, "%d", i);
        const json_t *v = id2label ? json_object_get(id2label, key) : NULL;
        const char *name = NULL;
        if (cfg->head == ER_HEAD_QUESTION_ANSWERING) {
            name = i == 0 ? "start" : "end";
        } else if (cfg->is_electra_discriminator) {
            name = (v && json_object_size(id2label) == 1) ? json_string_value(v) : "replaced";
        } else if (id2label) {
            name = json_string_value(v);
            if (!name)
                return er_set(err, ER_ERR_FORMAT, "config.json: id2label needs string entries "
                              "for every id 0..%d (\"%s\" is missing or not a string)", n - 1, key);
        } else {
            snprintf(fallback, sizeof fallback, "LABEL_%d", i);
            name = fallback;
        }
        if (!name || strlen(name) > ER_MAX_LABEL_LEN)
            return er_set(err, ER_ERR_FORMAT, "config.json: label %d is not a string of at most "
                          "%d bytes", i, ER_MAX_LABEL_LEN);
        cfg->labels[i] = strdup(name);
        if (!cfg->labels[i]) return er_set(err, ER_ERR_NOMEM, "config: out of memory for labels");
    }
    return ER_OK;
}

/* The class named by architectures[0], or the base class of model_type. */
static er_status pick_arch(const json_t *root, er_config *cfg, er_err *err) {
    const json_t *archs = json_object_get(root, "architectures");
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    const char *name = NULL;
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) < 1 ||
            !json_is_string(json_array_get(archs, 0)))
            return er_set(err, ER_ERR_FORMAT, "config.json: 'architectures' must be a non-empty "
                          "array of strings");
        name = json_string_value(json_array_get(archs, 0));
    } else if (mt) {
        name = er_arch_base_class(mt);
    } else {
        return er_set(err, ER_ERR_FORMAT, "config.json: needs 'architectures' or 'model_type'");
    }
    char known[256];
    er_arch_list_model_types(known, sizeof known);
    if (!name)
        return er_set(err, ER_ERR_UNSUPPORTED, "config.json: model_type '%.40s' is not "
                      "supported (%s are)", mt, known);
    const er_arch_class *cls = er_arch_find_class(name, &cfg->arch);
    if (!cls)
        return er_set(err, ER_ERR_UNSUPPORTED, "architecture '%.64s' is not supported; erserve "
                      "serves the model types %s as *Model, *ForSequenceClassification, "
                      "*ForTokenClassification and *ForQuestionAnswering classes", name, known);
    cfg->head = cls->head;
    cfg->is_electra_discriminator = cls->electra_discriminator;
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s", name);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mt ? mt : er_arch_name(cfg->arch));
    return ER_OK;
}

/* The sizes: the fields every family names alike here, the rest by the
 * family's own parser. */
static er_status parse_dims(const json_t *root, er_config *cfg, er_err *err) {
    er_status st = er_config_int(root, "vocab_size", -1, 1, ER_MAX_VOCAB, &cfg->vocab_size, err);
    if (st == ER_OK)
        st = er_config_int(root, "max_position_embeddings", 512, 1, ER_MAX_POSITIONS,
                           &cfg->max_positions, err);
    if (st == ER_OK) st = er_arch_get(cfg->arch)->parse_config(root, cfg, err);
    if (st != ER_OK) return st;
    if (cfg->hidden_size % cfg->num_heads != 0)
        return er_set(err, ER_ERR_FORMAT, "config.json: hidden size %d is not a multiple of the "
                      "%d attention heads", cfg->hidden_size, cfg->num_heads);
    return ER_OK;
}

er_status er_config_parse(const char *json, size_t len, er_config *cfg, er_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (len > ER_MAX_CONFIG_BYTES)
        return er_set(err, ER_ERR_CAPACITY, "config.json: %zu bytes exceed the %u-byte bound", len,
                      ER_MAX_CONFIG_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "config.json: invalid JSON: %s (line %d)", jerr.text,
                      jerr.line);
    er_status st = ER_OK;
    if (!json_is_object(root)) {
        st = er_set(err, ER_ERR_FORMAT, "config.json: not a JSON object");
        goto done;
    }
    if ((st = pick_arch(root, cfg, err)) != ER_OK) goto done;
    if ((st = parse_dims(root, cfg, err)) != ER_OK) goto done;
    if (cfg->head != ER_HEAD_EMBEDDING && (st = parse_labels(root, cfg, err)) != ER_OK) goto done;
    const char *pt = json_string_value(json_object_get(root, "problem_type"));
    cfg->multi_label = pt && strcmp(pt, "multi_label_classification") == 0;
    cfg->pooling = ER_POOLING_MEAN;
    cfg->normalize = false;
done:
    json_decref(root);
    if (st != ER_OK) er_config_free(cfg);
    return st;
}

er_status er_config_parse_pooling(const char *json, size_t len, er_config *cfg, er_err *err) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "pooling config: invalid JSON: %s (line %d)", jerr.text,
                      jerr.line);
    static const char *const modes[] = {"pooling_mode_cls_token", "pooling_mode_mean_tokens",
                                        "pooling_mode_max_tokens"};
    static const char *const refused[] = {"pooling_mode_mean_sqrt_len_tokens",
                                          "pooling_mode_weightedmean_tokens",
                                          "pooling_mode_lasttoken"};
    er_status st = ER_OK;
    int chosen = -1, count = 0;
    if (!json_is_object(root)) {
        st = er_set(err, ER_ERR_FORMAT, "pooling config: not a JSON object");
        goto done;
    }
    for (int i = 0; i < 3; i++)
        if (json_is_true(json_object_get(root, modes[i]))) { chosen = i; count++; }
    for (int i = 0; i < 3; i++)
        if (json_is_true(json_object_get(root, refused[i]))) {
            st = er_set(err, ER_ERR_UNSUPPORTED, "pooling config: %s is not supported", refused[i]);
            goto done;
        }
    if (count != 1) {
        st = er_set(err, ER_ERR_UNSUPPORTED, "pooling config: exactly one of cls, mean, max "
                    "pooling must be enabled (%d are)", count);
        goto done;
    }
    cfg->pooling = chosen == 0 ? ER_POOLING_CLS : chosen == 1 ? ER_POOLING_MEAN : ER_POOLING_MAX;
done:
    json_decref(root);
    return st;
}

/* Reads sentence-transformers' modules.json: the Pooling module's folder and
 * whether a Normalize module follows.  Dense and other modules are refused:
 * serving the embedding without them would silently be wrong. */
static er_status parse_modules(const char *dir, const char *json, size_t len, er_config *cfg,
                               char *pool_dir, size_t pool_dir_len, er_err *err) {
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
        if (strcmp(cls, "Transformer") == 0) continue;
        if (strcmp(cls, "Pooling") == 0) snprintf(pool_dir, pool_dir_len, "%s", path);
        else if (strcmp(cls, "Normalize") == 0) cfg->normalize = true;
        else {
            st = er_set(err, ER_ERR_UNSUPPORTED, "%s/modules.json: sentence-transformers module "
                        "'%.64s' is not supported (Transformer, Pooling, Normalize are)", dir, type);
            goto done;
        }
    }
done:
    json_decref(root);
    return st;
}

er_status er_config_load_dir(const char *dir, er_config *cfg, er_err *err) {
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    st = er_config_parse(text, len, cfg, err);
    free(text);
    if (st != ER_OK || cfg->head != ER_HEAD_EMBEDDING) return st;

    char pool_dir[256] = "";
    snprintf(path, sizeof path, "%s/modules.json", dir);
    st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st == ER_OK) {
        st = parse_modules(dir, text, len, cfg, pool_dir, sizeof pool_dir, err);
        free(text);
    } else if (st == ER_ERR_NOT_FOUND) {
        snprintf(pool_dir, sizeof pool_dir, "1_Pooling"); /* a bare pooling folder still counts */
        st = ER_OK;
    }
    if (st != ER_OK) goto fail;
    if (pool_dir[0]) {
        snprintf(path, sizeof path, "%s/%s/config.json", dir, pool_dir);
        st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
        if (st == ER_OK) {
            st = er_config_parse_pooling(text, len, cfg, err);
            free(text);
        } else if (st == ER_ERR_NOT_FOUND) {
            st = ER_OK; /* no pooling config: mean pooling, the sentence-transformers default */
        }
        if (st != ER_OK) goto fail;
    }
    return ER_OK;
fail:
    er_config_free(cfg);
    return st;
}
