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
    case ER_HEAD_SPARSE_EMBEDDING: return "sparse_embedding";
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

/* The class named by architectures[0], or the base class of model_type
 * (always, with base_model: a sentence-transformers Transformer module). */
static er_status pick_arch(const json_t *root, bool base_model, er_config *cfg, er_err *err) {
    const json_t *archs = json_object_get(root, "architectures");
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    const char *name = NULL;
    if (base_model && mt && er_arch_base_class(mt)) {
        name = er_arch_base_class(mt);
    } else if (archs && !json_is_null(archs)) {
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
                      "*ForTokenClassification, *ForQuestionAnswering and *ForMaskedLM (sparse "
                      "embedding) classes", name, known);
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

static er_status parse_config(const char *json, size_t len, bool base_model, er_config *cfg,
                              er_err *err) {
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
    if ((st = pick_arch(root, base_model, cfg, err)) != ER_OK) goto done;
    if ((st = parse_dims(root, cfg, err)) != ER_OK) goto done;
    if (cfg->head != ER_HEAD_EMBEDDING && (st = parse_labels(root, cfg, err)) != ER_OK) goto done;
    const char *pt = json_string_value(json_object_get(root, "problem_type"));
    cfg->multi_label = pt && strcmp(pt, "multi_label_classification") == 0;
    cfg->pooling = ER_POOLING_MEAN;
    cfg->normalize = false;
    cfg->tie_word_embeddings = !json_is_false(json_object_get(root, "tie_word_embeddings"));
done:
    json_decref(root);
    if (st != ER_OK) er_config_free(cfg);
    return st;
}

er_status er_config_parse(const char *json, size_t len, er_config *cfg, er_err *err) {
    return parse_config(json, len, false, cfg, err);
}

/* True when dir/modules.json makes the directory a SentenceTransformer: the
 * directory itself as its Transformer module, then a Pooling module.
 * sentence-transformers then builds the base model of model_type (AutoModel),
 * whatever architectures[0] says (all-mpnet-base-v2's config.json names
 * MPNetForMaskedLM).  A cross-encoder has no Pooling: its class stands. */
static bool st_transformer_here(const char *dir) {
    char path[4096], *text = NULL;
    size_t len = 0;
    er_err ignored;
    snprintf(path, sizeof path, "%s/modules.json", dir);
    if (er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, &ignored) != ER_OK) return false;
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    bool transformer = false, pooling = false;
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m) { /* not an array: none (parse_modules reports it) */
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *p = json_string_value(json_object_get(m, "path"));
        const char *cls = type ? strrchr(type, '.') : NULL;
        if (cls && strcmp(cls + 1, "Transformer") == 0 && p && p[0] == '\0') transformer = true;
        if (cls && strcmp(cls + 1, "Pooling") == 0) pooling = true;
    }
    json_decref(root);
    return transformer && pooling;
}

er_status er_config_load_dir(const char *dir, er_config *cfg, er_err *err) {
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    st = parse_config(text, len, st_transformer_here(dir), cfg, err);
    free(text);
    if (st != ER_OK || cfg->head != ER_HEAD_EMBEDDING) return st;
    if ((st = er_config_load_st(dir, cfg, err)) != ER_OK) er_config_free(cfg);
    return st;
}
