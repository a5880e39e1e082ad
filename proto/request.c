/* Request parsing and validation for every POST route (see proto.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

pr_limits pr_default_limits(void) {
    return (pr_limits){.max_inputs = 64, .max_text = 1u << 20, .max_ids = 512};
}

/* Codes by the status policy in proto.h: FORMAT 400, CAPACITY 413,
 * INVALID_ARG 422, NOMEM 500 (pr_status_of). */
#define fail er_set

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
    if (*n == 0) return fail(e, ER_ERR_INVALID_ARG, "%s is empty", what);
    if (*n > lim->max_text) return fail(e, ER_ERR_CAPACITY, "%s is longer than %zu bytes", what, lim->max_text);
    return ER_OK;
}

static er_status ids_of(json_t *a, const char *what, const pr_limits *lim, int32_t **out, int *n,
                  er_err *e) {
    if (!json_is_array(a)) return fail(e, ER_ERR_FORMAT, "%s must be an array of integers", what);
    size_t len = json_array_size(a);
    if (len == 0) return fail(e, ER_ERR_INVALID_ARG, "%s is empty", what);
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
    if (n == 0) return fail(e, ER_ERR_INVALID_ARG, "no inputs: the list is empty");
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

/* OpenAI `input`: string | [string] | [int] | [[int]]. */
static er_status parse_openai_input(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `input`");
    json_t *first = json_is_array(x) ? json_array_get(x, 0) : NULL;
    if (json_is_integer(first) || json_is_array(first)) return parse_id_lists(r, x, "input", lim, e);
    return parse_texts(r, x, "input", lim, e);
}

/* TEI /predict: "a" | ["a","b"] (one pair) | [ "a" | ["a","b"], ... ]. */
static bool is_pair(json_t *x) {
    return json_is_array(x) && json_array_size(x) == 2 && json_is_string(json_array_get(x, 0)) &&
           json_is_string(json_array_get(x, 1));
}

static er_status tei_seq(json_t *x, int idx, const pr_limits *lim, pr_input *in, er_err *e) {
    char what[64];
    snprintf(what, sizeof what, idx < 0 ? "`inputs`" : "`inputs[%d]`", idx);
    if (is_pair(x)) {
        in->kind = PR_PAIR;
        if (text_of(json_array_get(x, 0), what, lim, &in->text, &in->text_len, e)) return e->code;
        return text_of(json_array_get(x, 1), what, lim, &in->pair, &in->pair_len, e);
    }
    in->kind = PR_TEXT;
    if (!json_is_string(x)) return fail(e, ER_ERR_FORMAT, "%s must be a string or a [text, pair] array", what);
    return text_of(x, what, lim, &in->text, &in->text_len, e);
}

static er_status parse_tei_predict(pr_req *r, json_t *x, const pr_limits *lim, er_err *e) {
    if (!x) return fail(e, ER_ERR_FORMAT, "missing `inputs`");
    if (json_is_string(x) || is_pair(x)) {
        if (alloc_inputs(r, 1, lim, e)) return e->code;
        return tei_seq(x, -1, lim, &r->inputs[0], e);
    }
    if (!json_is_array(x)) return fail(e, ER_ERR_FORMAT, "`inputs` must be a string or an array");
    r->batched = true;
    if (alloc_inputs(r, json_array_size(x), lim, e)) return e->code;
    for (int i = 0; i < r->n_inputs; i++)
        if (tei_seq(json_array_get(x, (size_t)i), i, lim, &r->inputs[i], e)) return e->code;
    return ER_OK;
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
        get_str(o, "encoding_format", &fmt, e) ||
        get_int(o, "dimensions", 1, 1 << 16, &r->dimensions, e))
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

er_status pr_parse(pr_route route, const char *body, size_t len, const pr_limits *lim, pr_req *r,
                   er_err *err) {
    er_err local, *e = err ? err : &local;
    memset(r, 0, sizeof *r);
    r->truncate = route != PR_ROUTE_TEI_EMBED && route != PR_ROUTE_TEI_PREDICT &&
                  route != PR_ROUTE_TEI_RERANK;
    r->max_answer_len = 15;
    r->normalize = route == PR_ROUTE_TEI_EMBED ? 1 : -1;
    r->add_special_tokens = true;
    r->skip_special_tokens = true;
    json_error_t jerr;
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r->root) {
        return fail(e, ER_ERR_FORMAT, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    }
    er_status rc = ER_ERR_FORMAT;
    if (!json_is_object(r->root)) {
        rc = fail(e, ER_ERR_FORMAT, "the body must be a JSON object");
        goto out;
    }
    if ((rc = parse_options(route, r, r->root, e))) goto out;
    json_t *in = json_object_get(r->root, "inputs");
    switch (route) {
    case PR_ROUTE_PREDICT:
    case PR_ROUTE_WARM: rc = parse_predict_inputs(r, in, lim, e); break;
    case PR_ROUTE_EMBEDDINGS:
        rc = parse_openai_input(r, json_object_get(r->root, "input"), lim, e);
        break;
    case PR_ROUTE_TEI_EMBED:
    case PR_ROUTE_TOKENIZE: rc = parse_texts(r, in, "inputs", lim, e); break;
    case PR_ROUTE_TEI_PREDICT: rc = parse_tei_predict(r, in, lim, e); break;
    case PR_ROUTE_TEI_RERANK: rc = parse_rerank(r, r->root, lim, e); break;
    case PR_ROUTE_DECODE: rc = parse_decode_ids(r, json_object_get(r->root, "ids"), lim, e); break;
    }
out:
    if (rc) pr_req_free(r);
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

int pr_status_of(er_status st) {
    switch (st) {
    case ER_OK: return 200;
    case ER_ERR_INVALID_ARG: return 422;
    case ER_ERR_FORMAT: return 400;
    case ER_ERR_CAPACITY: return 413;
    case ER_ERR_NOT_FOUND: return 404;
    case ER_ERR_UNSUPPORTED: return 422;
    default: return 500;
    }
}

const char *pr_error_type(int status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "method_not_allowed";
    case 408: return "timeout_error";
    case 413: return "request_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "validation_error";
    case 429: return "rate_limit_error";
    case 499: return "client_closed_request";
    case 503: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *pr_error_body(int status, const char *msg, size_t *len) {
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "type", pr_error_type(status), "message",
                          msg && *msg ? msg : "error");
    if (!j) { /* msg not UTF-8 (an echoed byte?): keep the reply valid JSON */
        j = json_pack("{s:{s:s,s:s}}", "error", "type", pr_error_type(status), "message",
                      "error (message not UTF-8)");
    }
    return j ? pr_dump(j, len) : NULL;
}

char *pr_dump(json_t *j, size_t *len) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_ENCODE_ANY);
    json_decref(j);
    if (s && len) *len = strlen(s);
    return s;
}
