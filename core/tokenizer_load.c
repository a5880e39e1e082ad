/* Loading: file / directory dispatch, legacy vocab.txt + tokenizer_config.json. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "er_io.h"
#include "tokenizer_internal.h"

#define TK_MAX_FILE ((size_t)512 << 20) /* largest tokenizer file read */

static const char *special_name(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static const char *const SPECIAL_KEYS[5] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
static const char *const SPECIAL_DEFAULTS[5] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};

/* The special tokens' names (tokenizer_config.json's, or the defaults) and,
 * for those in the vocabulary, their ids. */
static void read_specials(er_tokenizer *t, json_t *root, const char *names[5]) {
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(root, SPECIAL_KEYS[i]);
        names[i] = v ? special_name(v) : SPECIAL_DEFAULTS[i];
        if (names[i]) {
            int32_t id = er_tokenizer_token_to_id(t, names[i], strlen(names[i]));
            if (id >= 0) t->special_ids[i] = id;
        }
    }
}

/* BertTokenizer's special tokens, as added tokens matched before normalization. */
static er_status add_legacy_specials(er_tokenizer *t, const char *names[5], er_err *err) {
    t->added = calloc(5, sizeof *t->added);
    if (!t->added) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < 5; i++) {
        if (t->special_ids[i] < 0 || !names[i][0] || tk_added_find(t, names[i], strlen(names[i])) >= 0)
            continue;
        tk_added *a = &t->added[t->n_added];
        er_status st = tk_arena_add(t, names[i], strlen(names[i]), &a->off, err);
        if (st) return st;
        a->len = (uint32_t)strlen(names[i]);
        a->id = t->special_ids[i];
        a->special = true;
        t->n_added++;
    }
    return ER_OK;
}

/* The pipeline BertTokenizer builds from tokenizer_config.json: the same
 * components a tokenizer.json names. */
static er_status build_legacy_pipeline(er_tokenizer *t, json_t *root, const char *names[5], er_err *err) {
    json_t *lc = json_object_get(root, "do_lower_case"), *sa = json_object_get(root, "strip_accents"),
           *cc = json_object_get(root, "tokenize_chinese_chars");
    bool lower = lc ? json_is_true(lc) : true;
    bool chinese = cc ? json_is_true(cc) : true;
    bool strip = (sa && !json_is_null(sa)) ? json_is_true(sa) : lower;
    er_status st;
    if ((st = tk_bert_normalizer_new(true, chinese, strip, lower, &t->normalizer, err)) ||
        (st = tk_bert_pre_tokenizer_new(&t->pre_tokenizer, err)) ||
        (st = tk_wordpiece_decoder_new("##", true, &t->decoder, err)))
        return st;
    int32_t unk = t->special_ids[ER_SPECIAL_UNK];
    if (unk < 0) return er_set(err, ER_ERR_FORMAT, "vocab.txt: unk_token is not in the vocabulary");
    if ((st = tk_wordpiece_new(t, unk, "##", 100, &t->model, err)) || (st = add_legacy_specials(t, names, err)))
        return st;
    int32_t cls = t->special_ids[ER_SPECIAL_CLS], sep = t->special_ids[ER_SPECIAL_SEP];
    if (cls >= 0 && sep >= 0)
        return tk_bert_processing_new(t, names[ER_SPECIAL_CLS], cls, names[ER_SPECIAL_SEP], sep,
                                      &t->post_processor, err);
    return ER_OK;
}

/* tokenizer_config.json: model_max_length and the special tokens.  legacy
 * (vocab.txt beside it): it also defines the pipeline (BertTokenizer). */
static er_status load_config(er_tokenizer *t, const char *buf, size_t len, bool legacy, er_err *err) {
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return er_set(err, ER_ERR_FORMAT, "tokenizer_config.json: line %d: %s", je.line, je.text);
    er_status st = ER_OK;
    if (!json_is_object(root)) {
        st = er_set(err, ER_ERR_FORMAT, "tokenizer_config.json: top level must be an object");
    } else {
        json_t *ml = json_object_get(root, "model_max_length");
        if (json_is_integer(ml) && json_integer_value(ml) > 0 && json_integer_value(ml) < (1LL << 31))
            t->model_max_length = (size_t)json_integer_value(ml);
        const char *names[5];
        read_specials(t, root, names);
        if (legacy) st = build_legacy_pipeline(t, root, names, err);
    }
    json_decref(root);
    return st;
}

/* One token per line; the line number is the id.  "\n" or "\r\n" endings. */
static er_status load_vocab_txt(er_tokenizer *t, const char *buf, size_t len, er_err *err) {
    size_t i = 0;
    int32_t id = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - i;
        if (n && buf[i + n - 1] == '\r') n--;
        size_t bad, ncp;
        if (!tk_utf8_valid((const uint8_t *)buf + i, n, &bad, &ncp))
            return er_set(err, ER_ERR_FORMAT, "vocab.txt: invalid UTF-8 at byte offset %zu", i + bad);
        if (memchr(buf + i, '\0', n))
            return er_set(err, ER_ERR_FORMAT, "vocab.txt: NUL byte on line %ld", (long)id + 1);
        if (n) {
            er_status st = tk_vocab_add(t, buf + i, n, id, err);
            if (st) return st;
        }
        id++;
        i = end + 1;
    }
    return ER_OK;
}

static er_tokenizer *finish(er_tokenizer *t, er_status st, er_err *err) {
    if (!st) st = tk_finish(t, err);
    if (st) {
        er_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* Special ids by their usual names, where no config named them. */
static void default_specials(er_tokenizer *t) {
    for (int i = 0; i < 5; i++)
        if (t->special_ids[i] < 0)
            t->special_ids[i] = er_tokenizer_token_to_id(t, SPECIAL_DEFAULTS[i], strlen(SPECIAL_DEFAULTS[i]));
}

er_tokenizer *er_tokenizer_load_json(const char *json, size_t len, er_err *err) {
    if (!json) {
        er_set(err, ER_ERR_INVALID_ARG, "tokenizer: NULL json");
        return NULL;
    }
    er_tokenizer *t = tk_new(err);
    if (!t) return NULL;
    er_status st = tk_parse_tokenizer_json(t, json, len, err);
    if (!st) {
        default_specials(t);
        t->model_max_length = t->file_trunc_len;
    }
    return finish(t, st, err);
}

static er_tokenizer *load_dir(const char *dir, er_err *err) {
    size_t dl = strlen(dir);
    char *p = malloc(dl + 32);
    if (!p) {
        er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    char *buf = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    er_tokenizer *t = NULL;
    snprintf(p, dl + 32, "%s/tokenizer_config.json", dir);
    er_status cst = er_read_file(p, TK_MAX_FILE, &cfg, &cfg_len, err);
    if (cst && cst != ER_ERR_NOT_FOUND) goto out;
    snprintf(p, dl + 32, "%s/tokenizer.json", dir);
    er_status st = er_read_file(p, TK_MAX_FILE, &buf, &len, err);
    if (st == ER_OK) {
        t = er_tokenizer_load_json(buf, len, err);
        if (t && cfg) {
            size_t ml = t->model_max_length;
            t->model_max_length = 0;
            if (load_config(t, cfg, cfg_len, false, err)) {
                er_tokenizer_free(t);
                t = NULL;
            } else if (!t->model_max_length) {
                t->model_max_length = ml;
            }
        }
        goto out;
    }
    if (st != ER_ERR_NOT_FOUND) goto out;
    snprintf(p, dl + 32, "%s/vocab.txt", dir);
    st = er_read_file(p, TK_MAX_FILE, &buf, &len, err);
    if (st) {
        if (st == ER_ERR_NOT_FOUND)
            er_set(err, ER_ERR_NOT_FOUND, "%s: neither tokenizer.json nor vocab.txt", dir);
        goto out;
    }
    if (!cfg) {
        er_set(err, ER_ERR_NOT_FOUND, "%s: vocab.txt without tokenizer_config.json", dir);
        goto out;
    }
    if (!(t = tk_new(err))) goto out;
    st = load_vocab_txt(t, buf, len, err);
    if (!st) st = load_config(t, cfg, cfg_len, true, err);
    if (!st) default_specials(t);
    t = finish(t, st, err);
out:
    free(p);
    free(buf);
    free(cfg);
    return t;
}

er_tokenizer *er_tokenizer_load(const char *path, er_err *err) {
    if (!path) {
        er_set(err, ER_ERR_INVALID_ARG, "tokenizer: NULL path");
        return NULL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        er_set(err, errno == ENOENT ? ER_ERR_NOT_FOUND : ER_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) return load_dir(path, err);
    char *buf;
    size_t len;
    if (er_read_file(path, TK_MAX_FILE, &buf, &len, err)) return NULL;
    er_tokenizer *t = er_tokenizer_load_json(buf, len, err);
    free(buf);
    return t;
}
