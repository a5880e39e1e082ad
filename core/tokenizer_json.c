/* Parsing of a Hugging Face tokenizer.json (WordPiece / BERT family). */
#include <jansson.h>
#include <string.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

/* Optional boolean: absent or null gives def. */
static er_status opt_bool(json_t *o, const char *key, bool def, bool *out, er_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return ER_OK; }
    if (!json_is_boolean(v)) return FMT("\"%s\" must be a boolean", key);
    *out = json_is_true(v);
    return ER_OK;
}

static er_status get_id(json_t *v, const char *what, int32_t *out, er_err *err) {
    if (!json_is_integer(v)) return FMT("%s must be an integer", what);
    json_int_t id = json_integer_value(v);
    if (id < 0 || id >= TK_MAX_ID) return FMT("%s %lld out of range", what, (long long)id);
    *out = (int32_t)id;
    return ER_OK;
}

static er_status parse_model(er_tokenizer *t, json_t *m, er_err *err) {
    if (!json_is_object(m)) return FMT("\"model\" must be an object");
    json_t *type = json_object_get(m, "type");
    if (type && !json_is_null(type)) {
        if (!json_is_string(type)) return FMT("model.type must be a string");
        if (strcmp(json_string_value(type), "WordPiece") != 0)
            return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: model type \"%s\" is not WordPiece",
                          json_string_value(type));
    } else if (json_object_get(m, "merges")) {
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: BPE model is not WordPiece");
    }
    json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab)) return FMT("model.vocab must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        int32_t id = -1;
        er_status st = get_id(val, "vocab id", &id, err);
        if (st) return st;
        if ((st = tk_vocab_add(t, key, strlen(key), id, err))) return st;
    }
    json_t *unk = json_object_get(m, "unk_token");
    const char *unk_s = "[UNK]";
    if (unk && !json_is_null(unk)) {
        if (!json_is_string(unk)) return FMT("model.unk_token must be a string");
        unk_s = json_string_value(unk);
    }
    t->unk_id = tk_vocab_find(t, NULL, 0, (const uint8_t *)unk_s, strlen(unk_s));
    if (t->unk_id < 0) return FMT("unk_token \"%.64s\" is not in the vocabulary", unk_s);
    json_t *pre = json_object_get(m, "continuing_subword_prefix");
    const char *pre_s = "##";
    if (pre && !json_is_null(pre)) {
        if (!json_is_string(pre)) return FMT("continuing_subword_prefix must be a string");
        pre_s = json_string_value(pre);
    }
    er_status st = tk_arena_add(t, pre_s, strlen(pre_s), &t->prefix_off, err);
    if (st) return st;
    t->prefix_len = (uint32_t)strlen(pre_s);
    json_t *mx = json_object_get(m, "max_input_chars_per_word");
    if (mx && !json_is_null(mx)) {
        if (!json_is_integer(mx) || json_integer_value(mx) < 0 || json_integer_value(mx) > (1 << 30))
            return FMT("max_input_chars_per_word must be a non-negative integer");
        t->max_chars_per_word = (uint32_t)json_integer_value(mx);
    }
    return ER_OK;
}

static er_status parse_normalizer(er_tokenizer *t, json_t *n, er_err *err) {
    if (!n || json_is_null(n)) return ER_OK;
    json_t *type = json_object_get(n, "type");
    if (!json_is_object(n) || !json_is_string(type)) return FMT("normalizer must have a type");
    if (strcmp(json_string_value(type), "BertNormalizer") != 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: normalizer \"%s\" not supported",
                      json_string_value(type));
    t->has_normalizer = true;
    er_status st;
    if ((st = opt_bool(n, "clean_text", true, &t->clean_text, err))) return st;
    if ((st = opt_bool(n, "handle_chinese_chars", true, &t->handle_chinese, err))) return st;
    if ((st = opt_bool(n, "lowercase", true, &t->lowercase, err))) return st;
    /* strip_accents: null follows lowercase */
    return opt_bool(n, "strip_accents", t->lowercase, &t->strip_accents, err);
}

static er_status parse_pretokenizer(er_tokenizer *t, json_t *p, er_err *err) {
    if (!p || json_is_null(p)) return ER_OK;
    json_t *type = json_object_get(p, "type");
    if (!json_is_object(p) || !json_is_string(type)) return FMT("pre_tokenizer must have a type");
    if (strcmp(json_string_value(type), "BertPreTokenizer") != 0)
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer \"%s\" not supported",
                      json_string_value(type));
    t->has_pretokenizer = true;
    return ER_OK;
}

static er_status parse_added(er_tokenizer *t, json_t *a, er_err *err) {
    if (!a || json_is_null(a)) return ER_OK;
    if (!json_is_array(a)) return FMT("added_tokens must be an array");
    size_t n = json_array_size(a);
    if (n > TK_MAX_ID) return FMT("too many added tokens");
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(a, i);
        if (!json_is_object(o)) return FMT("added_tokens[%zu] must be an object", i);
        tk_added *at = &t->added[t->n_added];
        er_status st = get_id(json_object_get(o, "id"), "added token id", &at->id, err);
        if (st) return st;
        json_t *c = json_object_get(o, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return FMT("added_tokens[%zu].content must be a non-empty string", i);
        if ((st = tk_arena_add(t, json_string_value(c), json_string_length(c), &at->off, err)))
            return st;
        at->len = (uint32_t)json_string_length(c);
        if ((st = opt_bool(o, "special", false, &at->special, err)) ||
            (st = opt_bool(o, "lstrip", false, &at->lstrip, err)) ||
            (st = opt_bool(o, "rstrip", false, &at->rstrip, err)) ||
            (st = opt_bool(o, "single_word", false, &at->single_word, err)) ||
            (st = opt_bool(o, "normalized", !at->special, &at->normalized, err)))
            return st;
        t->n_added++;
    }
    return ER_OK;
}

static er_status add_item(tk_item *items, size_t *n, tk_item it, er_err *err) {
    if (*n >= TK_MAX_TEMPLATE) return FMT("post_processor template too long");
    items[(*n)++] = it;
    return ER_OK;
}

static er_status parse_template(er_tokenizer *t, json_t *list, json_t *specials, tk_item *items,
                                size_t *n, er_err *err) {
    if (!json_is_array(list)) return FMT("TemplateProcessing single/pair must be arrays");
    size_t i;
    json_t *el;
    json_array_foreach(list, i, el) {
        json_t *sp = json_object_get(el, "SpecialToken"), *seq = json_object_get(el, "Sequence");
        json_t *obj = sp ? sp : seq;
        if (!json_is_object(obj)) return FMT("template item must be SpecialToken or Sequence");
        json_t *ty = json_object_get(obj, "type_id"), *id = json_object_get(obj, "id");
        if (!json_is_integer(ty) || json_integer_value(ty) < 0 || json_integer_value(ty) > 255)
            return FMT("template type_id must be a small integer");
        if (!json_is_string(id)) return FMT("template id must be a string");
        tk_item it = {TK_ITEM_A, (uint32_t)json_integer_value(ty), -1, TK_NONE};
        er_status st;
        if (seq) {
            const char *s = json_string_value(id);
            if (!strcmp(s, "A")) it.kind = TK_ITEM_A;
            else if (!strcmp(s, "B")) it.kind = TK_ITEM_B;
            else return FMT("template Sequence id must be A or B");
            if ((st = add_item(items, n, it, err))) return st;
            continue;
        }
        json_t *def = json_object_get(specials, json_string_value(id));
        json_t *ids = json_object_get(def, "ids"), *toks = json_object_get(def, "tokens");
        if (!json_is_array(ids) || !json_is_array(toks) || json_array_size(ids) != json_array_size(toks))
            return FMT("special token \"%.64s\" is not defined", json_string_value(id));
        for (size_t k = 0; k < json_array_size(ids); k++) {
            json_t *ts = json_array_get(toks, k);
            if ((st = get_id(json_array_get(ids, k), "special token id", &it.id, err))) return st;
            if (!json_is_string(ts)) return FMT("special token strings must be strings");
            if ((st = tk_arena_add(t, json_string_value(ts), json_string_length(ts), &it.tok_off, err)))
                return st;
            it.kind = TK_ITEM_SPECIAL;
            if ((st = add_item(items, n, it, err))) return st;
        }
    }
    return ER_OK;
}

/* BertProcessing {"sep": ["[SEP]", 102], "cls": ["[CLS]", 101]} as a template. */
er_status tk_bert_template(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                           int32_t sep_id, er_err *err) {
    uint32_t co, so;
    er_status st;
    if ((st = tk_arena_add(t, cls, strlen(cls), &co, err))) return st;
    if ((st = tk_arena_add(t, sep, strlen(sep), &so, err))) return st;
    tk_item C = {TK_ITEM_SPECIAL, 0, cls_id, co}, S0 = {TK_ITEM_SPECIAL, 0, sep_id, so},
            S1 = {TK_ITEM_SPECIAL, 1, sep_id, so}, A = {TK_ITEM_A, 0, -1, TK_NONE},
            B = {TK_ITEM_B, 1, -1, TK_NONE};
    tk_item single[] = {C, A, S0}, pair[] = {C, A, S0, B, S1};
    memcpy(t->single, single, sizeof single);
    memcpy(t->pair, pair, sizeof pair);
    t->n_single = 3;
    t->n_pair = 5;
    return ER_OK;
}

static er_status bert_pair(json_t *v, const char **s, int32_t *id, er_err *err) {
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(json_array_get(v, 0)))
        return FMT("BertProcessing cls/sep must be [string, id]");
    *s = json_string_value(json_array_get(v, 0));
    return get_id(json_array_get(v, 1), "BertProcessing id", id, err);
}

static er_status parse_post(er_tokenizer *t, json_t *p, er_err *err) {
    if (!p || json_is_null(p)) return ER_OK;
    json_t *type = json_object_get(p, "type");
    if (!json_is_object(p) || !json_is_string(type)) return FMT("post_processor must have a type");
    const char *ty = json_string_value(type);
    er_status st;
    if (!strcmp(ty, "TemplateProcessing")) {
        json_t *sp = json_object_get(p, "special_tokens");
        if ((st = parse_template(t, json_object_get(p, "single"), sp, t->single, &t->n_single, err)))
            return st;
        return parse_template(t, json_object_get(p, "pair"), sp, t->pair, &t->n_pair, err);
    }
    if (!strcmp(ty, "BertProcessing")) {
        const char *cls, *sep;
        int32_t ci, si;
        if ((st = bert_pair(json_object_get(p, "cls"), &cls, &ci, err))) return st;
        if ((st = bert_pair(json_object_get(p, "sep"), &sep, &si, err))) return st;
        return tk_bert_template(t, cls, ci, sep, si, err);
    }
    return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: post_processor \"%s\" not supported", ty);
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
    if (!st) st = parse_model(t, json_object_get(root, "model"), err);
    if (!st) st = parse_normalizer(t, json_object_get(root, "normalizer"), err);
    if (!st) st = parse_pretokenizer(t, json_object_get(root, "pre_tokenizer"), err);
    if (!st) st = parse_added(t, json_object_get(root, "added_tokens"), err);
    if (!st) st = parse_post(t, json_object_get(root, "post_processor"), err);
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
