/* Request parsing and validation for every POST route (see proto.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

pr_limits pr_default_limits(void) {
    return (pr_limits){.max_inputs = 64, .max_text = 1u << 20, .max_ids = 512, .auto_truncate = true};
}

/* Codes by the status policy in proto.h: FORMAT 400, CAPACITY 413,
 * INVALID_ARG 422, NOMEM 500 (pr_status_of). */
#define fail er_set

/* Every "empty" refusal ends with this, so that pr_parse can tell them
 * (PR_FAULT_EMPTY: TEI answers 400) from values out of range (422). */
#define EMPTY_SUFFIX " is empty"
#define fail_empty(e, what) fail(e, ER_ERR_INVALID_ARG, "%s" EMPTY_SUFFIX, what)

static er_status get_bool(json_t *o, const char *k, bool *v, er_err *e) {
    json_t *j = json_object_get(o, k);
    if (!j || json_is_null(j)) return ER_OK;
    if (!json_is_boolean(j)) return fail(e, ER_ERR_FORMAT, "`%s` must be a boolean", k);
    *v = json_is_true(j);
    return ER_OK;
}

static er_status get_int(json_t *o, const char *k, int lo, int hi, int *v, er_err *e) {
    json_t *j = json_object_get(o, k);
    if (!j || json_is_null(j)) return ER_OK;
    if (!json_is_integer(j)) return fail(e, ER_ERR_FORMAT, "`%s` must be an integer", k);
    json_int_t x = json_integer_value(j);
    if (x < lo || x > hi) return fail(e, ER_ERR_INVALID_ARG, "`%s` must be in [%d, %d]", k, lo, hi);
    *v = (int)x;
    return ER_OK;
}

static er_status get_str(json_t *o, const char *k, const char **v, er_err *e) {
    json_t *j = json_object_get(o, k);
    if (!j || json_is_null(j)) return ER_OK;
    if (!json_is_string(j)) return fail(e, ER_ERR_FORMAT, "`%s` must be a string", k);
    *v = json_string_value(j);
    return ER_OK;
}

static er_status text_of(json_t *j, const char *what, const pr_limits *lim, const char **s, size_t *n,
                   er_err *e) {
    if (!json_is_string(j)) return fail(e, ER_ERR_FORMAT, "%s must be a string", what);
    *s = json_string_value(j);
    *n = json_string_length(j);
    if (*n == 0) return fail_empty(e, what);
    if (*n > lim->max_text) return fail(e, ER_ERR_CAPACITY, "%s is longer than %zu bytes", what, lim->max_text);
    return ER_OK;
}

static er_status ids_of(json_t *a, const char *what, const pr_limits *lim, int32_t **out, int *n,
                  er_err *e) {
    if (!json_is_array(a)) return fail(e, ER_ERR_FORMAT, "%s must be an array of integers", what);
    size_t len = json_array_size(a);
    if (len == 0) return fail_empty(e, what);
    if (len > (size_t)lim->max_ids)
        return fail(e, ER_ERR_CAPACITY, "%s holds %zu ids, more than the limit %d", what, len, lim->max_ids);
    int32_t *ids = malloc(len * sizeof *ids);
    if (!ids) return fail(e, ER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v)) {
            free(ids);
            return fail(e, ER_ERR_FORMAT, "%s[%zu] must be an integer", what, i);
        }
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > INT32_MAX) {
            free(ids);
            return fail(e, ER_ERR_INVALID_ARG, "%s[%zu] is out of range", what, i);
        }
        ids[i] = (int32_t)x;
    }
    *out = ids;
    *n = (int)len;
    return ER_OK;
}

/* One predict-style input: a string or an object (text/pair, QA, ids). */
static er_status input_of(json_t *j, int idx, const pr_limits *lim, pr_input *in, er_err *e) {
    char what[64];
    snprintf(what, sizeof what, idx < 0 ? "`inputs`" : "`inputs[%d]`", idx);
    if (json_is_string(j)) {
        in->kind = PR_TEXT;
        return text_of(j, what, lim, &in->text, &in->text_len, e);
    }
    if (!json_is_object(j))
        return fail(e, ER_ERR_FORMAT, "%s must be a string or an object", what);
    json_t *t, *ids;
    char w2[96];
    if ((ids = json_object_get(j, "input_ids"))) {
        in->kind = PR_IDS;
        snprintf(w2, sizeof w2, "%s.input_ids", what);
        if (ids_of(ids, w2, lim, &in->ids, &in->n_ids, e)) return e->code;
        json_t *tt = json_object_get(j, "token_type_ids");
        if (tt && !json_is_null(tt)) {
            int n2;
            snprintf(w2, sizeof w2, "%s.token_type_ids", what);
            if (ids_of(tt, w2, lim, &in->type_ids, &n2, e)) return e->code;
            if (n2 != in->n_ids)
                return fail(e, ER_ERR_INVALID_ARG, "%s.token_type_ids length differs from input_ids", what);
        }
        return ER_OK;
    }
    if ((t = json_object_get(j, "question"))) {
        in->kind = PR_PAIR;
        snprintf(w2, sizeof w2, "%s.question", what);
        if (text_of(t, w2, lim, &in->text, &in->text_len, e)) return e->code;
        snprintf(w2, sizeof w2, "%s.context", what);
        json_t *c = json_object_get(j, "context");
        if (!c) return fail(e, ER_ERR_FORMAT, "%s needs `context` with `question`", what);
        return text_of(c, w2, lim, &in->pair, &in->pair_len, e);
    }
    if ((t = json_object_get(j, "text"))) {
        in->kind = PR_TEXT;
        snprintf(w2, sizeof w2, "%s.text", what);
        if (text_of(t, w2, lim, &in->text, &in->text_len, e)) return e->code;
        json_t *p = json_object_get(j, "text_pair");
        if (!p || json_is_null(p)) return ER_OK;
        in->kind = PR_PAIR;
        snprintf(w2, sizeof w2, "%s.text_pair", what);
        return text_of(p, w2, lim, &in->pair, &in->pair_len, e);
    }
    return fail(e, ER_ERR_FORMAT, "%s needs `text`, `question`+`context` or `input_ids`", what);
}

static er_status alloc_inputs(pr_req *r, size_t n, const pr_limits *lim, er_err *e) {
    if (n == 0) return fail_empty(e, "the list of inputs");
    if (n > (size_t)lim->max_inputs)
        return fail(e, ER_ERR_CAPACITY, "%zu inputs, more than the limit %d", n, lim->max_inputs);
    r->inputs = calloc(n, sizeof *r->inputs);
    if (!r->inputs) return fail(e, ER_ERR_NOMEM, "out of memory");
    r->n_inputs = (int)n;
    return ER_OK;
}

static er_status parse_predict_inputs(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `inputs`");
    if (json_is_array(x)) {
        r->batched = true;
        if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
        for (int i = 0; i < r->n_inputs; i++)
            if (input_of(json_array_get(x, (size_t)i), i, lim, &r->inputs[i], e)) return e->code;
        return ER_OK;
    }
    if (alloc_inputs(r, 1, lim, e)) return e->code;
    return input_of(x, -1, lim, &r->inputs[0], e);
}

/* `inputs`: a string or an array of strings (TEI /embed, /tokenize). */
static er_status parse_texts(pr_req *r, json_t *x, const char *key, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `%s`", key);
    if (json_is_string(x)) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        return text_of(x, key, lim, &r->inputs[0].text, &r->inputs[0].text_len, e);
    }
    if (!json_is_array(x)) return fail(e, ER_ERR_FORMAT, "`%s` must be a string or an array of strings", key);
    r->batched = true;
    if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "`%s[%d]`", key, i);
        if (text_of(json_array_get(x, (size_t)i), what, lim, &r->inputs[i].text,
                    &r->inputs[i].text_len, e))
            return e->code;
    }
    return ER_OK;
}

/* key's value x, an array: ids [int], or (batched) [[int], ...]; each list
 * one PR_IDS input. */
static er_status parse_id_lists(pr_req *r, json_t *x, const char *key, const pr_limits *lim, er_err *e) {
    char what[64];
    if (!json_is_array(json_array_get(x, 0))) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        r->inputs[0].kind = PR_IDS;
        snprintf(what, sizeof what, "`%s`", key);
        return ids_of(x, what, lim, &r->inputs[0].ids, &r->inputs[0].n_ids, e);
    }
    r->batched = true;
    if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++) {
        snprintf(what, sizeof what, "`%s[%d]`", key, i);
        r->inputs[i].kind = PR_IDS;
        if (ids_of(json_array_get(x, (size_t)i), what, lim, &r->inputs[i].ids, &r->inputs[i].n_ids, e))
            return e->code;
    }
    return ER_OK;
}

/* /decode `ids`: [int] or [[int], ...]. */
static er_status parse_decode_ids(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `ids`");
    return parse_id_lists(r, x, "ids", lim, e);
}

/* One element of a TEI / OpenAI input batch: a text or a list of ids. */
static er_status text_or_ids(json_t *x, const char *what, const pr_limits *lim, pr_input *in, er_err *e) {
    if (json_is_array(x)) {
        in->kind = PR_IDS;
        return ids_of(x, what, lim, &in->ids, &in->n_ids, e);
    }
    in->kind = PR_TEXT;
    if (!json_is_string(x)) return fail(e, ER_ERR_FORMAT, "%s must be a string or an array of token ids", what);
    return text_of(x, what, lim, &in->text, &in->text_len, e);
}

/* TEI's Input and OpenAI's `input` (the same grammar): a string, a list of
 * ids [int], or a batch of strings and id lists [string | [int], ...]. */
static er_status parse_embed_input(pr_req *r, json_t *x, const char *key, const pr_limits *lim, er_err *e) {
    char what[64];
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `%s`", key);
    snprintf(what, sizeof what, "`%s`", key);
    if (json_is_string(x) || json_is_integer(json_array_get(x, 0))) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        return text_or_ids(x, what, lim, &r->inputs[0], e);
    }
    if (!json_is_array(x))
        return fail(e, ER_ERR_FORMAT, "%s must be a string, an array of token ids or an array of those", what);
    r->batched = true;
    if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++) {
        snprintf(what, sizeof what, "`%s[%d]`", key, i);
        if (text_or_ids(json_array_get(x, (size_t)i), what, lim, &r->inputs[i], e)) return e->code;
    }
    return ER_OK;
}

/* TEI /predict's sequence: [text] or [text, pair] (and, leniently, a bare
 * text inside a batch). */
static er_status tei_seq(json_t *x, const char *what, const pr_limits *lim, pr_input *in, er_err *e) {
    in->kind = PR_TEXT;
    if (json_is_string(x)) return text_of(x, what, lim, &in->text, &in->text_len, e);
    size_t n = json_array_size(x);
    if (!json_is_array(x) || n < 1 || n > 2 || !json_is_string(json_array_get(x, 0)) ||
        !json_is_string(json_array_get(x, n - 1)))
        return fail(e, ER_ERR_FORMAT, "%s must be a string, [text] or [text, text_pair]", what);
    if (text_of(json_array_get(x, 0), what, lim, &in->text, &in->text_len, e)) return e->code;
    if (n == 1) return ER_OK;
    in->kind = PR_PAIR;
    return text_of(json_array_get(x, 1), what, lim, &in->pair, &in->pair_len, e);
}

/* TEI /predict: "a" | ["a"] | ["a", "b"] (one input; more strings is an
 * error, as TEI) | [["a"], ["b", "c"], ...] (a batch). */
static er_status parse_tei_predict(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `inputs`");
    if (json_is_string(x) || json_is_string(json_array_get(x, 0))) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        return tei_seq(x, "`inputs`", lim, &r->inputs[0], e);
    }
    if (!json_is_array(x)) return fail(e, ER_ERR_FORMAT, "`inputs` must be a string or an array");
    r->batched = true;
    if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "`inputs[%d]`", i);
        if (tei_seq(json_array_get(x, (size_t)i), what, lim, &r->inputs[i], e)) return e->code;
    }
    return ER_OK;
}

/* TEI /similarity: {"source_sentence", "sentences": [...]}; the source
 * becomes inputs[0]. */
static er_status parse_similarity(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    r->similarity = true;
    if (!json_is_object(x)) return fail(e, ER_ERR_FORMAT, "`inputs` must be {\"source_sentence\", \"sentences\"}");
    json_t *src = json_object_get(x, "source_sentence"), *t = json_object_get(x, "sentences");
    if (!src) return fail(e, ER_ERR_FORMAT, "missing `inputs.source_sentence`");
    if (!json_is_array(t)) return fail(e, ER_ERR_FORMAT, "`inputs.sentences` must be an array of strings");
    if (json_array_size(t) == 0) return fail_empty(e, "`inputs.sentences`");
    r->batched = true;
    if (alloc_inputs(r, json_array_size(t) + 1, lim, e)) return e->code;
    if (text_of(src, "`inputs.source_sentence`", lim, &r->inputs[0].text, &r->inputs[0].text_len, e))
        return e->code;
    for (int i = 1; i < r->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "`inputs.sentences[%d]`", i - 1);
        if (text_of(json_array_get(t, (size_t)i - 1), what, lim, &r->inputs[i].text, &r->inputs[i].text_len, e))
            return e->code;
    }
    return ER_OK;
}

/* The HF Inference API's `inputs`: a text or a list of texts, {"question",
 * "context"}, {"text", "text_pair"}, or {"source_sentence", "sentences"}
 * (sentence similarity). */
static er_status parse_hf(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (json_is_object(x) && json_object_get(x, "source_sentence")) return parse_similarity(r, x, lim, e);
    if (json_is_object(x)) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        return input_of(x, -1, lim, &r->inputs[0], e);
    }
    return parse_texts(r, x, "inputs", lim, e);
}

static er_status parse_rerank(pr_req *r, json_t *root, const pr_limits *lim, er_err *e) {
    json_t *q = json_object_get(root, "query"), *t = json_object_get(root, "texts");
    if (!q) return fail(e, ER_ERR_FORMAT, "missing `query`");
    if (!t) return fail(e, ER_ERR_FORMAT, "missing `texts`");
    const char *qs = NULL;
    size_t qn = 0;
    if (text_of(q, "`query`", lim, &qs, &qn, e)) return e->code;
    if (!json_is_array(t)) return fail(e, ER_ERR_FORMAT, "`texts` must be an array of strings");
    r->batched = true;
    if (alloc_inputs(r, json_array_size(t), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "`texts[%d]`", i);
        pr_input *in = &r->inputs[i];
        in->kind = PR_PAIR;
        in->text = qs;
        in->text_len = qn;
        if (text_of(json_array_get(t, (size_t)i), what, lim, &in->pair, &in->pair_len, e))
            return e->code;
    }
    return ER_OK;
}

static er_status parse_direction(json_t *o, pr_req *r, er_err *e) {
    const char *dir = NULL;
    if (get_str(o, "truncation_direction", &dir, e)) return e->code;
    if (!dir) return ER_OK;
    /* TEI's serde accepts both spellings */
    if (!strcmp(dir, "left") || !strcmp(dir, "Left")) r->truncate_left = true;
    else if (!strcmp(dir, "right") || !strcmp(dir, "Right")) r->truncate_left = false;
    else return fail(e, ER_ERR_FORMAT, "`truncation_direction` must be \"left\" or \"right\"");
    return ER_OK;
}

static er_status parse_options(pr_route route, pr_req *r, json_t *o, er_err *e) {
    const char *agg = NULL, *fmt = NULL;
    bool norm = false;
    json_t *nj = json_object_get(o, "normalize");
    if (get_bool(o, "truncate", &r->truncate, e) || get_int(o, "top_k", 0, 1 << 20, &r->top_k, e) ||
        get_bool(o, "return_offsets", &r->return_offsets, e) ||
        get_str(o, "aggregation_strategy", &agg, e) ||
        get_int(o, "max_answer_len", 1, 1 << 16, &r->max_answer_len, e) ||
        get_bool(o, "normalize", &norm, e) || get_bool(o, "raw_scores", &r->raw_scores, e) ||
        get_bool(o, "return_text", &r->return_text, e) ||
        get_bool(o, "add_special_tokens", &r->add_special_tokens, e) ||
        get_bool(o, "skip_special_tokens", &r->skip_special_tokens, e) ||
        get_str(o, route == PR_ROUTE_WARM ? "task" : "model", &r->model, e) ||
        get_str(o, "encoding_format", &fmt, e) || get_str(o, "prompt_name", &r->prompt_name, e) ||
        get_int(o, "dimensions", 1, 1 << 16, &r->dimensions, e) || parse_direction(o, r, e))
        return e->code;
    if (nj && !json_is_null(nj)) r->normalize = norm;
    if (agg) {
        int a = pp_agg_parse(agg);
        if (a < 0)
            return fail(e, ER_ERR_FORMAT, "`aggregation_strategy` must be none, simple, first, average or max");
        r->aggregation = (pp_agg)a;
    }
    if (fmt) {
        if (strcmp(fmt, "base64") == 0) r->base64 = true;
        else if (strcmp(fmt, "float") != 0)
            return fail(e, ER_ERR_FORMAT, "`encoding_format` must be \"float\" or \"base64\"");
    }
    return ER_OK;
}

pr_api pr_route_api(pr_route r) {
    switch (r) {
    case PR_ROUTE_PREDICT:
    case PR_ROUTE_WARM: return PR_API_ERSERVE;
    case PR_ROUTE_EMBEDDINGS: return PR_API_OPENAI;
    case PR_ROUTE_HF: return PR_API_TEI; /* {"error": "..."} as the Inference API, plus error_type */
    default: return PR_API_TEI;
    }
}

/* Defaults that differ by route: TEI truncates as --auto-truncate says,
 * OpenAI only when asked (OpenAI answers an over-long input with 400),
 * erserve's own routes always; /embed normalises unless told not to, as TEI. */
static void set_defaults(pr_route route, const pr_limits *lim, pr_req *r) {
    pr_api api = pr_route_api(route);
    r->truncate = api == PR_API_TEI ? lim->auto_truncate : api == PR_API_ERSERVE;
    r->max_answer_len = 15;
    r->normalize = route == PR_ROUTE_TEI_EMBED ? 1 : -1;
    if (route == PR_ROUTE_HF) r->aggregation = PP_AGG_SIMPLE; /* the Inference API's default */
    r->add_special_tokens = true;
    r->skip_special_tokens = true;
}

static er_status parse_body(pr_route route, pr_req *r, const pr_limits *lim, er_err *e) {
    json_t *in = json_object_get(r->root, "inputs"), *params = json_object_get(r->root, "parameters");
    er_status rc = parse_options(route, r, r->root, e);
    /* /similarity and /models take their options in `parameters`, as the HF Inference API */
    if (!rc && (route == PR_ROUTE_TEI_SIMILARITY || route == PR_ROUTE_HF) && params && !json_is_null(params))
        rc = json_is_object(params) ? parse_options(route, r, params, e)
                                    : fail(e, ER_ERR_FORMAT, "`parameters` must be an object");
    if (rc) return rc;
    switch (route) {
    case PR_ROUTE_PREDICT:
    case PR_ROUTE_WARM: return parse_predict_inputs(r, in, lim, e);
    case PR_ROUTE_EMBEDDINGS: return parse_embed_input(r, json_object_get(r->root, "input"), "input", lim, e);
    case PR_ROUTE_TEI_EMBED:
    case PR_ROUTE_TEI_EMBED_ALL:
    case PR_ROUTE_TEI_EMBED_SPARSE: return parse_embed_input(r, in, "inputs", lim, e);
    case PR_ROUTE_TOKENIZE: return parse_texts(r, in, "inputs", lim, e);
    case PR_ROUTE_TEI_PREDICT: return parse_tei_predict(r, in, lim, e);
    case PR_ROUTE_TEI_RERANK: return parse_rerank(r, r->root, lim, e);
    case PR_ROUTE_TEI_SIMILARITY:
        if (!in) return fail(e, ER_ERR_FORMAT, "missing `inputs`");
        return parse_similarity(r, in, lim, e);
    case PR_ROUTE_DECODE: return parse_decode_ids(r, json_object_get(r->root, "ids"), lim, e);
    case PR_ROUTE_HF: return parse_hf(r, in, lim, e);
    }
    return fail(e, ER_ERR_INTERNAL, "unknown route kind %d", (int)route);
}

/* What kind of mistake a parse error was (see pr_fault). */
static pr_fault fault_of(const pr_req *r, const er_err *e) {
    if (!r->root || !json_is_object(r->root)) return PR_FAULT_SYNTAX;
    size_t n = strlen(e->msg), k = strlen(EMPTY_SUFFIX);
    switch (e->code) {
    case ER_ERR_FORMAT: return PR_FAULT_TYPE;
    case ER_ERR_CAPACITY: return PR_FAULT_LIMIT;
    case ER_ERR_INVALID_ARG:
        return n >= k && !strcmp(e->msg + n - k, EMPTY_SUFFIX) ? PR_FAULT_EMPTY : PR_FAULT_RANGE;
    default: return PR_FAULT_NONE;
    }
}

er_status pr_parse(pr_route route, const char *body, size_t len, const pr_limits *lim, pr_req *r,
                   er_err *err) {
    er_err local, *e = err ? err : &local;
    memset(r, 0, sizeof *r);
    set_defaults(route, lim, r);
    json_error_t jerr;
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    er_status rc;
    if (!r->root)
        rc = fail(e, ER_ERR_FORMAT, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    else if (!json_is_object(r->root)) rc = fail(e, ER_ERR_FORMAT, "the body must be a JSON object");
    else rc = parse_body(route, r, lim, e);
    if (rc) {
        pr_fault f = fault_of(r, e);
        pr_req_free(r);
        r->fault = f;
    }
    return rc;
}

void pr_req_free(pr_req *r) {
    if (!r) return;
    for (int i = 0; r->inputs && i < r->n_inputs; i++) {
        free(r->inputs[i].ids);
        free(r->inputs[i].type_ids);
    }
    free(r->inputs);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

char *pr_dump(json_t *j, size_t *len) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_ENCODE_ANY);
    json_decref(j);
    if (s && len) *len = strlen(s);
    return s;
}
