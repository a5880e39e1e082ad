/* Loading: file / directory dispatch, legacy vocab.txt + tokenizer_config.json
 * (vocab.json + merges.txt: tokenizer_legacy_bpe.c). */
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

/* tokenizer_config.json beside a tokenizer.json (or what stands for one):
 * model_max_length and the special tokens' names; t is freed on error. */
static er_tokenizer *with_config(er_tokenizer *t, const char *cfg, size_t cfg_len, er_err *err) {
    if (!t || !cfg) return t;
    size_t ml = t->model_max_length;
    t->model_max_length = 0;
    if (load_config(t, cfg, cfg_len, false, err)) {
        er_tokenizer_free(t);
        return NULL;
    }
    if (!t->model_max_length) t->model_max_length = ml;
    return t;
}

static const char SENTENCEPIECE_ONLY[] =
    "a SentencePiece model alone is not supported: save the tokenizer as tokenizer.json "
    "(transformers: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR), which converts it)";

/* A directory without tokenizer.json, vocab.json or vocab.txt: say why. */
static void refuse_dir(const char *dir, char *p, size_t cap, er_err *err) {
    static const char *const SP[] = {"spiece.model", "sentencepiece.bpe.model", "tokenizer.model"};
    for (size_t i = 0; i < sizeof SP / sizeof *SP; i++) {
        snprintf(p, cap, "%s/%s", dir, SP[i]);
        struct stat sb;
        if (stat(p, &sb) == 0) {
            er_set(err, ER_ERR_UNSUPPORTED, "%s: %s", p, SENTENCEPIECE_ONLY);
            return;
        }
    }
    er_set(err, ER_ERR_NOT_FOUND, "%s: none of tokenizer.json, vocab.json + merges.txt, vocab.txt", dir);
}

/* vocab.txt + tokenizer_config.json: BertTokenizer's layout. */
static er_tokenizer *load_vocab_txt_dir(const char *dir, const char *buf, size_t len, const char *cfg,
                                        size_t cfg_len, er_err *err) {
    if (!cfg) {
        er_set(err, ER_ERR_NOT_FOUND, "%s: vocab.txt without tokenizer_config.json", dir);
        return NULL;
    }
    er_tokenizer *t = tk_new(err);
    if (!t) return NULL;
    er_status st = load_vocab_txt(t, buf, len, err);
    if (!st) st = load_config(t, cfg, cfg_len, true, err);
    if (!st) default_specials(t);
    return finish(t, st, err);
}

/* tokenizer.json, else vocab.json + merges.txt, else vocab.txt. */
static er_tokenizer *load_dir(const char *dir, er_err *err) {
    size_t cap = strlen(dir) + 32;
    char *p = malloc(cap), *buf = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    er_tokenizer *t = NULL;
    er_status st = ER_ERR_NOMEM;
    struct stat sb;
    if (!p) {
        er_set(err, st, "tokenizer: out of memory");
        return NULL;
    }
    snprintf(p, cap, "%s/tokenizer_config.json", dir);
    if ((st = er_read_file(p, TK_MAX_FILE, &cfg, &cfg_len, err)) && st != ER_ERR_NOT_FOUND) goto out;
    snprintf(p, cap, "%s/tokenizer.json", dir);
    if ((st = er_read_file(p, TK_MAX_FILE, &buf, &len, err)) == ER_OK) {
        t = with_config(er_tokenizer_load_json(buf, len, err), cfg, cfg_len, err);
        goto out;
    }
    if (st != ER_ERR_NOT_FOUND) goto out;
    snprintf(p, cap, "%s/vocab.json", dir);
    if (stat(p, &sb) == 0) {
        t = with_config(tk_load_legacy_bpe(dir, err), cfg, cfg_len, err);
        goto out;
    }
    snprintf(p, cap, "%s/vocab.txt", dir);
    if ((st = er_read_file(p, TK_MAX_FILE, &buf, &len, err)) == ER_OK)
        t = load_vocab_txt_dir(dir, buf, len, cfg, cfg_len, err);
    else if (st == ER_ERR_NOT_FOUND)
        refuse_dir(dir, p, cap, err);
out:
    free(p);
    free(buf);
    free(cfg);
    return t;
}

/* The parsers name the file they read by its base name ("tokenizer.json: ",
 * "vocab.txt: ", "tokenizer_config.json: ") or say "tokenizer: "; a load
 * error names the path loaded instead (DIR/NAME for a directory), so that
 * the user sees which file is at fault.  Messages that already hold the path
 * (open and read errors) are kept. */
static void name_path(er_err *err, const char *path, bool dir) {
    if (!err || err->code == ER_OK) return;
    static const char *const NAMES[] = {"tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
                                        "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer"};
    const char *rest = err->msg, *file = NULL;
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES && !file; i++) {
        size_t n = strlen(NAMES[i]);
        if (!strncmp(err->msg, NAMES[i], n) && err->msg[n] == ':' && err->msg[n + 1] == ' ') {
            file = NAMES[i];
            rest = err->msg + n + 2;
        }
    }
    if (!file && strstr(err->msg, path)) return;
    size_t pl = strlen(path);
    while (dir && pl > 1 && path[pl - 1] == '/') pl--;
    char msg[sizeof err->msg];
    if (dir && file && strcmp(file, "tokenizer") != 0)
        snprintf(msg, sizeof msg, "%.*s/%s: %s", (int)pl, path, file, rest);
    else
        snprintf(msg, sizeof msg, "%.*s: %s", (int)pl, path, rest);
    memcpy(err->msg, msg, sizeof msg);
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
    bool dir = S_ISDIR(sb.st_mode);
    size_t n = strlen(path);
    if (!dir && n >= 6 && !strcmp(path + n - 6, ".model")) {
        er_set(err, ER_ERR_UNSUPPORTED, "%s: %s", path, SENTENCEPIECE_ONLY);
        return NULL;
    }
    er_tokenizer *t = NULL;
    if (dir) {
        t = load_dir(path, err);
    } else {
        char *buf;
        size_t len;
        if (er_read_file(path, TK_MAX_FILE, &buf, &len, err) == ER_OK) {
            t = er_tokenizer_load_json(buf, len, err);
            free(buf);
        }
    }
    if (!t) name_path(err, path, dir);
    return t;
}
