/* A Hugging Face tokenizer.json: the top level, the added tokens, the
 * truncation and padding sections, and the JSON helpers of the loaders.
 * Each component (model, normalizer, pre_tokenizer, post_processor) is
 * built by tk_<kind>_load (tokenizer_components.c) from its type. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

er_status tk_json_bool(json_t *o, const char *key, bool def, bool *out, er_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return ER_OK; }
    if (!json_is_boolean(v)) return FMT("\"%s\" must be a boolean", key);
    *out = json_is_true(v);
    return ER_OK;
}

er_status tk_json_string(json_t *o, const char *key, const char *def, const char *what, const char **out,
                         er_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return ER_OK; }
    if (!json_is_string(v)) return FMT("%s must be a string", what);
    *out = json_string_value(v);
    return ER_OK;
}

er_status tk_json_vocab(er_tokenizer *t, json_t *vocab, er_err *err) {
    if (!json_is_object(vocab)) return FMT("model.vocab must be an object");
    const char *key;
    json_t *val;
    er_status st;
    json_object_foreach(vocab, key, val) {
        int32_t id = -1;
        if ((st = tk_json_id(val, "vocab id", &id, err))) return st;
        if ((st = tk_vocab_add(t, key, strlen(key), id, err))) return st;
    }
    return ER_OK;
}

er_status tk_json_id(json_t *v, const char *what, int32_t *out, er_err *err) {
    if (!json_is_integer(v)) return FMT("%s must be an integer", what);
    json_int_t id = json_integer_value(v);
    if (id < 0 || id >= TK_MAX_ID) return FMT("%s %lld out of range", what, (long long)id);
    *out = (int32_t)id;
    return ER_OK;
}

/* [{"id": 0, "content": "[PAD]", "special": true, "lstrip": false, ...}, ...] */
static er_status parse_added_token(er_tokenizer *t, json_t *o, size_t i, tk_added *at, er_err *err) {
    if (!json_is_object(o)) return FMT("added_tokens[%zu] must be an object", i);
    er_status st = tk_json_id(json_object_get(o, "id"), "added token id", &at->id, err);
    if (st) return st;
    json_t *c = json_object_get(o, "content");
    if (!json_is_string(c) || json_string_length(c) == 0)
        return FMT("added_tokens[%zu].content must be a non-empty string", i);
    if ((st = tk_arena_add(t, json_string_value(c), json_string_length(c), &at->off, err))) return st;
    at->len = (uint32_t)json_string_length(c);
    if ((st = tk_json_bool(o, "special", false, &at->special, err)) ||
        (st = tk_json_bool(o, "lstrip", false, &at->lstrip, err)) ||
        (st = tk_json_bool(o, "rstrip", false, &at->rstrip, err)) ||
        (st = tk_json_bool(o, "single_word", false, &at->single_word, err)) ||
        (st = tk_json_bool(o, "normalized", !at->special, &at->normalized, err)))
        return st;
    return ER_OK;
}

static er_status parse_added_tokens(er_tokenizer *t, json_t *a, er_err *err) {
    if (!a || json_is_null(a)) return ER_OK;
    if (!json_is_array(a)) return FMT("added_tokens must be an array");
    size_t n = json_array_size(a);
    if (n > TK_MAX_ID) return FMT("too many added tokens");
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) {
        er_status st = parse_added_token(t, json_array_get(a, i), i, &t->added[t->n_added], err);
        if (st) return st;
        t->n_added++;
    }
    return ER_OK;
}

static er_status parse_truncation(er_tokenizer *t, json_t *tr, er_err *err) {
    if (!tr || json_is_null(tr)) return ER_OK;
    json_t *ml = json_object_get(tr, "max_length"), *s = json_object_get(tr, "strategy");
    if (!json_is_integer(ml) || json_integer_value(ml) < 0)
        return FMT("truncation.max_length must be a non-negative integer");
    int strat = json_is_string(s) ? er_truncation_parse(json_string_value(s)) : ER_TRUNCATE_LONGEST_FIRST;
    if (strat < 0) return FMT("unknown truncation strategy");
    t->file_trunc_len = (size_t)json_integer_value(ml);
    t->file_trunc = (er_truncation)strat;
    return ER_OK;
}

er_status tk_parse_tokenizer_json(er_tokenizer *t, const char *buf, size_t len, er_err *err) {
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return FMT("line %d column %d: %s", je.line, je.column, je.text);
    er_status st = ER_OK;
    if (!json_is_object(root)) st = FMT("top level must be an object");
    if (!st) st = tk_model_load(t, json_object_get(root, "model"), &t->model, err);
    if (!st) st = tk_normalizer_load(t, json_object_get(root, "normalizer"), &t->normalizer, err);
    if (!st) st = tk_pre_tokenizer_load(t, json_object_get(root, "pre_tokenizer"), &t->pre_tokenizer, err);
    if (!st) st = parse_added_tokens(t, json_object_get(root, "added_tokens"), err);
    if (!st) st = tk_post_processor_load(t, json_object_get(root, "post_processor"), &t->post_processor, err);
    if (!st) st = tk_decoder_load(t, json_object_get(root, "decoder"), &t->decoder, err);
    if (!st) st = parse_truncation(t, json_object_get(root, "truncation"), err);
    if (!st) {
        json_t *pad = json_object_get(root, "padding");
        json_t *pid = json_object_get(pad, "pad_id");
        if (json_is_integer(pid) && json_integer_value(pid) >= 0 && json_integer_value(pid) < TK_MAX_ID)
            t->special_ids[ER_SPECIAL_PAD] = (int32_t)json_integer_value(pid);
    }
    json_decref(root);
    return st;
}
