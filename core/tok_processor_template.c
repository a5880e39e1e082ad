/* TemplateProcessing, and the fixed templates built in code (BertProcessing
 * here, RobertaProcessing's in tok_processor_roberta.c): the encoding is the
 * template's items in order, special tokens and the sequences A and B, each
 * with its type id. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define TK_MAX_TEMPLATE 32 /* items of one template */

typedef enum { ITEM_SPECIAL, ITEM_A, ITEM_B } item_kind;

typedef struct {
    item_kind kind;
    uint32_t type_id;
    int32_t id;       /* ITEM_SPECIAL only */
    uint32_t tok_off; /* ITEM_SPECIAL only: the token string in the arena */
} template_item;

typedef struct {
    tk_post_processor base;
    template_item single[TK_MAX_TEMPLATE], pair[TK_MAX_TEMPLATE];
    size_t n_single, n_pair; /* 0: the plain template below */
} template_processor;

static const template_item PLAIN_SINGLE[] = {{ITEM_A, 0, -1, TK_NONE}};
static const template_item PLAIN_PAIR[] = {{ITEM_A, 0, -1, TK_NONE}, {ITEM_B, 1, -1, TK_NONE}};

static const template_item *template_items(const template_processor *p, bool pair, size_t *n) {
    *n = pair ? p->n_pair : p->n_single;
    if (*n) return pair ? p->pair : p->single;
    *n = pair ? 2 : 1;
    return pair ? PLAIN_PAIR : PLAIN_SINGLE;
}

static size_t template_added_tokens(const tk_post_processor *self, bool pair) {
    size_t n, k = 0;
    const template_item *it = template_items((const template_processor *)self, pair, &n);
    for (size_t i = 0; i < n; i++) k += it[i].kind == ITEM_SPECIAL;
    return k;
}

static void put_special(const er_tokenizer *t, const template_item *it, er_encoding *e, size_t k) {
    e->ids[k] = it->id;
    e->type_ids[k] = (int32_t)it->type_id;
    e->tokens[k] = t->arena + it->tok_off;
    e->special_mask[k] = 1;
    e->sequence_ids[k] = -1;
}

static void put_sequence(const er_tokenizer *t, const template_item *it, const tk_tokens *s, size_t m,
                         er_encoding *e, size_t k) {
    for (size_t j = 0; j < m; j++, k++) {
        const tk_token *tk = &s->v[j];
        e->ids[k] = tk->id;
        e->type_ids[k] = (int32_t)it->type_id;
        e->tokens[k] = t->arena + tk->tok;
        e->offsets[k] = (er_offset){tk->cs, tk->ce};
        e->byte_offsets[k] = (er_offset){tk->bs, tk->be};
        e->sequence_ids[k] = it->kind == ITEM_A ? 0 : 1;
    }
}

static er_status template_process(const tk_post_processor *self, const er_tokenizer *t, const tk_tokens *a,
                                  size_t na, const tk_tokens *b, size_t nb, bool add_special,
                                  er_encoding **out, er_err *err) {
    size_t n_items, n = 0;
    const template_item *items = template_items((const template_processor *)self, b != NULL, &n_items);
    for (size_t i = 0; i < n_items; i++)
        n += items[i].kind == ITEM_A ? na : items[i].kind == ITEM_B ? nb : (add_special ? 1 : 0);
    er_encoding *e = tk_encoding_new(n);
    if (!e) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_items; i++) {
        const template_item *it = &items[i];
        if (it->kind == ITEM_SPECIAL) {
            if (add_special) put_special(t, it, e, k++);
        } else {
            bool first = it->kind == ITEM_A;
            put_sequence(t, it, first ? a : b, first ? na : nb, e, k);
            k += first ? na : nb;
        }
    }
    *out = e;
    return ER_OK;
}

static void template_free(tk_post_processor *self) { free(self); }

er_status tk_token_copy_make(const tk_tokens *a, size_t na, const tk_tokens *b, size_t nb, tk_token_copy *c,
                             er_err *err) {
    size_t n = na + (b ? nb : 0);
    c->buf = malloc((n ? n : 1) * sizeof *c->buf);
    if (!c->buf) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    if (na) memcpy(c->buf, a->v, na * sizeof *c->buf);
    if (b && nb) memcpy(c->buf + na, b->v, nb * sizeof *c->buf);
    c->a = (tk_tokens){c->buf, na, na};
    c->b = (tk_tokens){b ? c->buf + na : NULL, b ? nb : 0, b ? nb : 0};
    return ER_OK;
}

static template_processor *template_new(er_err *err) {
    template_processor *p = calloc(1, sizeof *p);
    if (!p) {
        er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    /* The Rust library merges the sequences' own overflowing windows after
     * the template ran: its type ids never reach them (tk_post_processor). */
    p->base = (tk_post_processor){template_added_tokens, template_process, template_free, true};
    return p;
}

er_status tk_plain_processing_new(tk_post_processor **out, er_err *err) {
    template_processor *p = template_new(err);
    if (!p) return ER_ERR_NOMEM;
    *out = &p->base;
    return ER_OK;
}

/* The item of one letter of a spelled template: C cls, S sep, A, B. */
static template_item spelled_item(char letter, uint32_t type_id, template_item cls, template_item sep) {
    template_item it = letter == 'C' ? cls : letter == 'S' ? sep : (template_item){ITEM_A, 0, -1, TK_NONE};
    if (letter == 'B') it.kind = ITEM_B;
    it.type_id = type_id;
    return it;
}

/* "C0A0S0" into items: letter then type id digit, the caller's constants only. */
static size_t spell_template(const char *spelled, template_item cls, template_item sep, template_item *items) {
    size_t n = 0;
    for (; spelled[0] && spelled[1] && n < TK_MAX_TEMPLATE; spelled += 2)
        items[n++] = spelled_item(spelled[0], (uint32_t)(spelled[1] - '0'), cls, sep);
    return n;
}

er_status tk_spelled_template_new(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                                  int32_t sep_id, const char *single, const char *pair, tk_post_processor **out,
                                  er_err *err) {
    uint32_t co, so;
    er_status st;
    if ((st = tk_arena_add(t, cls, strlen(cls), &co, err))) return st;
    if ((st = tk_arena_add(t, sep, strlen(sep), &so, err))) return st;
    template_processor *p = template_new(err);
    if (!p) return ER_ERR_NOMEM;
    template_item C = {ITEM_SPECIAL, 0, cls_id, co}, S = {ITEM_SPECIAL, 0, sep_id, so};
    p->n_single = spell_template(single, C, S, p->single);
    p->n_pair = spell_template(pair, C, S, p->pair);
    *out = &p->base;
    return ER_OK;
}

er_status tk_bert_processing_new(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                                 int32_t sep_id, tk_post_processor **out, er_err *err) {
    return tk_spelled_template_new(t, cls, cls_id, sep, sep_id, "C0A0S0", "C0A0S0B1S1", out, err);
}

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

static er_status add_item(template_item *items, size_t *n, template_item it, er_err *err) {
    if (*n >= TK_MAX_TEMPLATE) return FMT("post_processor template too long");
    items[(*n)++] = it;
    return ER_OK;
}

/* The items of special token `name`, from special_tokens {"name": {"ids": [...], "tokens": [...]}}. */
static er_status add_special_items(er_tokenizer *t, json_t *specials, const char *name, template_item it,
                                   template_item *items, size_t *n, er_err *err) {
    json_t *def = json_object_get(specials, name);
    json_t *ids = json_object_get(def, "ids"), *toks = json_object_get(def, "tokens");
    if (!json_is_array(ids) || !json_is_array(toks) || json_array_size(ids) != json_array_size(toks))
        return FMT("special token \"%.64s\" is not defined", name);
    er_status st;
    for (size_t k = 0; k < json_array_size(ids); k++) {
        json_t *ts = json_array_get(toks, k);
        if ((st = tk_json_id(json_array_get(ids, k), "special token id", &it.id, err))) return st;
        if (!json_is_string(ts)) return FMT("special token strings must be strings");
        if ((st = tk_arena_add(t, json_string_value(ts), json_string_length(ts), &it.tok_off, err))) return st;
        it.kind = ITEM_SPECIAL;
        if ((st = add_item(items, n, it, err))) return st;
    }
    return ER_OK;
}

/* "single" or "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", ...}}] */
static er_status parse_template(er_tokenizer *t, json_t *list, json_t *specials, template_item *items,
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
        template_item it = {ITEM_A, (uint32_t)json_integer_value(ty), -1, TK_NONE};
        const char *s = json_string_value(id);
        er_status st;
        if (!seq) {
            st = add_special_items(t, specials, s, it, items, n, err);
        } else if (!strcmp(s, "A") || !strcmp(s, "B")) {
            it.kind = s[0] == 'A' ? ITEM_A : ITEM_B;
            st = add_item(items, n, it, err);
        } else {
            st = FMT("template Sequence id must be A or B");
        }
        if (st) return st;
    }
    return ER_OK;
}

er_status tk_template_processing_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    template_processor *p = template_new(err);
    if (!p) return ER_ERR_NOMEM;
    json_t *sp = json_object_get(json, "special_tokens");
    er_status st = parse_template(t, json_object_get(json, "single"), sp, p->single, &p->n_single, err);
    if (!st) st = parse_template(t, json_object_get(json, "pair"), sp, p->pair, &p->n_pair, err);
    if (st) {
        free(p);
        return st;
    }
    *out = &p->base;
    return ER_OK;
}

er_status tk_json_special_pair(json_t *v, const char *what, const char **s, int32_t *id, er_err *err) {
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(json_array_get(v, 0)))
        return FMT("%s must be [string, id]", what);
    *s = json_string_value(json_array_get(v, 0));
    return tk_json_id(json_array_get(v, 1), what, id, err);
}

er_status tk_bert_processing_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    const char *cls = NULL, *sep = NULL;
    int32_t cls_id, sep_id;
    er_status st;
    if ((st = tk_json_special_pair(json_object_get(json, "cls"), "BertProcessing cls", &cls, &cls_id, err)) ||
        (st = tk_json_special_pair(json_object_get(json, "sep"), "BertProcessing sep", &sep, &sep_id, err)))
        return st;
    return tk_bert_processing_new(t, cls, cls_id, sep, sep_id, out, err);
}
