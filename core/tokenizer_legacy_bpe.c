/* A directory of the older byte-level BPE layout (GPT-2, RoBERTa before
 * tokenizer.json): vocab.json + merges.txt, with tokenizer_config.json and
 * special_tokens_map.json.  It is turned into the tokenizer.json that
 * transformers' GPT2Converter / RobertaConverter would write (BPE without
 * unk, ByteLevel pre-tokenizer with the config's add_prefix_space, ByteLevel
 * post-processor without trimming, or RobertaProcessing for a Roberta
 * class; the special tokens as added tokens) and loaded as one. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_io.h"
#include "tokenizer_internal.h"

#define LEGACY_MAX_FILE ((size_t)512 << 20)

/* merges.txt: one "a b" per line ("#version" lines and the ending newline
 * aside, the BPE loader checks the rest). */
static er_status merges_array(const char *buf, size_t len, json_t *out, er_err *err) {
    size_t i = 0, line = 1;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - i;
        if (n && buf[i + n - 1] == '\r') n--;
        json_t *s = json_stringn(buf + i, n);
        if (!s) return er_set(err, ER_ERR_FORMAT, "merges.txt: line %zu is not UTF-8", line);
        if (json_array_append_new(out, s)) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        i = end + 1;
        line++;
    }
    return ER_OK;
}

static json_t *read_json(const char *dir, const char *name, bool required, er_status *st, er_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf;
    size_t len;
    *st = er_read_file(path, LEGACY_MAX_FILE, &buf, &len, err);
    if (*st) {
        if (*st == ER_ERR_NOT_FOUND && !required) *st = ER_OK;
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!json_is_object(v)) {
        json_decref(v);
        *st = er_set(err, ER_ERR_FORMAT, "%s: line %d: %s", name, je.line, v ? "not an object" : je.text);
    }
    return v;
}

/* A special token's name: a string, or an AddedToken object's "content". */
static const char *token_name(json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_string_value(v);
}

/* added_tokens: tokenizer_config.json's added_tokens_decoder when present
 * ({"id": {"content", "lstrip", ...}}), else the special tokens the
 * config and special_tokens_map.json name that the vocabulary has. */
static json_t *added_tokens(json_t *cfg, json_t *map, json_t *vocab) {
    json_t *out = json_array(), *dec = json_object_get(cfg, "added_tokens_decoder"), *v;
    const char *key;
    if (json_is_object(dec)) {
        json_object_foreach(dec, key, v) {
            json_t *tok = json_deep_copy(v);
            json_object_set_new(tok, "id", json_integer(strtol(key, NULL, 10)));
            json_array_append_new(out, tok);
        }
        return out;
    }
    static const char *const KEYS[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        const char *name = token_name(json_object_get(map, KEYS[i]));
        if (!name) name = token_name(json_object_get(cfg, KEYS[i]));
        json_t *id = name ? json_object_get(vocab, name) : NULL;
        if (json_is_integer(id))
            json_array_append_new(out, json_pack("{s:O,s:s,s:b,s:b,s:b,s:b,s:b}", "id", id, "content", name,
                                                 "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                                 "special", 1));
    }
    return out;
}

/* RobertaProcessing for a Roberta class (as RobertaConverter writes it), else ByteLevel. */
static json_t *post_processor(json_t *cfg, json_t *map, json_t *vocab, bool prefix) {
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    if (!cls || !strstr(cls, "Roberta")) return json_pack("{s:s,s:b}", "type", "ByteLevel", "trim_offsets", 0);
    const char *bos = token_name(json_object_get(map, "cls_token")), *eos = token_name(json_object_get(map, "sep_token"));
    if (!bos) bos = token_name(json_object_get(cfg, "cls_token"));
    if (!eos) eos = token_name(json_object_get(cfg, "sep_token"));
    if (!bos) bos = "<s>";
    if (!eos) eos = "</s>";
    return json_pack("{s:s,s:[s,I],s:[s,I],s:b,s:b}", "type", "RobertaProcessing", "sep", eos,
                     (json_int_t)json_integer_value(json_object_get(vocab, eos)), "cls", bos,
                     (json_int_t)json_integer_value(json_object_get(vocab, bos)), "trim_offsets", 1,
                     "add_prefix_space", prefix);
}

/* The tokenizer.json for dir's vocab.json, merges and configs. */
static json_t *legacy_json(const char *dir, json_t *vocab, json_t *merges, er_err *err, er_status *st) {
    json_t *cfg = read_json(dir, "tokenizer_config.json", false, st, err);
    json_t *map = *st ? NULL : read_json(dir, "special_tokens_map.json", false, st, err);
    json_t *root = NULL;
    if (!*st) {
        bool prefix = json_is_true(json_object_get(cfg, "add_prefix_space"));
        root = json_pack("{s:{s:s,s:O,s:O},s:{s:s,s:b},s:o,s:o}", "model", "type", "BPE", "vocab", vocab, "merges",
                         merges, "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", prefix, "post_processor",
                         post_processor(cfg, map, vocab, prefix), "added_tokens", added_tokens(cfg, map, vocab));
        if (!root) *st = er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    }
    json_decref(cfg);
    json_decref(map);
    return root;
}

er_tokenizer *tk_load_legacy_bpe(const char *dir, er_err *err) {
    er_status st;
    json_t *vocab = read_json(dir, "vocab.json", true, &st, err), *merges = json_array(), *root = NULL;
    char path[4096], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    if (!st) st = er_read_file(path, LEGACY_MAX_FILE, &buf, &len, err);
    if (!st) st = merges_array(buf, len, merges, err);
    if (!st) root = legacy_json(dir, vocab, merges, err, &st);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    er_tokenizer *t = NULL;
    if (text) t = er_tokenizer_load_json(text, strlen(text), err);
    else if (!st) er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    free(text);
    free(buf);
    json_decref(root);
    json_decref(vocab);
    json_decref(merges);
    return t;
}
