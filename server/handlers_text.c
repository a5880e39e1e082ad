/* /tokenize and /decode: the tokenizer of a task, no engine.  Shapes are
 * TEI's (reply.h): /tokenize gives slices of the input and null offsets for
 * special tokens, /decode a list of texts. */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "reply.h"

static bool parse_body(srv_call *c, pr_route kind, pr_req *req) {
    const srv_request *rq = c->rq;
    er_err err = {0};
    er_status st = pr_parse(kind, rq->body ? rq->body : "", rq->body_len, srv_app_limits(c->app),
                            req, &err);
    if (st != ER_OK) srv_error_f(c, pr_status_of(st), req->fault, NULL, "%s", err.msg);
    return st == ER_OK;
}

/* ---- /tokenize ---- */

/* The task whose tokenizer /tokenize and /decode use: `model`, else the
 * first.  NULL (answered 404, req freed) when there is no such task. */
static const er_task *tokenizer_task(srv_call *c, pr_req *req) {
    const er_taskset *ts = srv_app_tasks(c->app);
    const er_task *t = req->model ? srv_compat_find(srv_app_compat(c->app), req->model) : er_taskset_at(ts, 0);
    if (!t) {
        srv_error_f(c, 404, PR_FAULT_MODEL, "model", "no task named `%s`", req->model);
        pr_req_free(req);
    }
    return t;
}

/* One input's tokens, the prompt (TEI: prompt_name's, else the default) in
 * front of its text; NULL with the error answered. */
static json_t *tokenize_one(srv_call *c, const er_task *t, const pr_req *req, const char *prompt, int i) {
    er_tokenize_params tp = er_tokenize_default_params();
    tp.add_special_tokens = req->add_special_tokens;
    const pr_input *in = &req->inputs[i];
    size_t pn = prompt ? strlen(prompt) : 0, len = pn + in->text_len;
    char *text = malloc(len + 1);
    if (!text) return srv_error(c, 500, "out of memory"), NULL;
    memcpy(text, prompt ? prompt : "", pn);
    memcpy(text + pn, in->text, in->text_len);
    text[len] = '\0';
    er_encoding *e = NULL;
    er_err err = {0};
    er_status st = er_tokenizer_encode(er_task_tokenizer(t), text, len, NULL, 0, &tp, &e, &err);
    json_t *toks = st == ER_OK ? pr_tokens(e, text, len) : NULL;
    if (st != ER_OK) srv_error_f(c, pr_status_of(st), PR_FAULT_TOKENIZER, "inputs", "input %d: %s", i, err.msg);
    else if (!toks) srv_error(c, 500, "out of memory");
    er_encoding_free(e);
    free(text);
    return toks;
}

bool srv_handle_tokenize(srv_call *c) {
    pr_req req;
    if (!parse_body(c, PR_ROUTE_TOKENIZE, &req)) return true;
    const er_task *t = tokenizer_task(c, &req);
    if (!t) return true;
    const char *prompt = NULL;
    char msg[512];
    bool embedding = er_model_config(er_task_model(t))->head == ER_HEAD_EMBEDDING;
    if ((embedding || req.prompt_name) &&
        !srv_compat_prompt(srv_app_compat(c->app), t, req.prompt_name, &prompt, msg, sizeof msg)) {
        srv_error_f(c, 422, PR_FAULT_RANGE, "prompt_name", "%s", msg);
        pr_req_free(&req);
        return true;
    }
    json_t *all = json_array();
    for (int i = 0; i < req.n_inputs && all; i++) {
        json_t *one = tokenize_one(c, t, &req, prompt, i);
        if (!one || json_array_append_new(all, one)) {
            json_decref(all);
            all = NULL;
        }
    }
    if (all) srv_reply_json(c, 200, all);
    pr_req_free(&req);
    return true;
}

/* ---- /decode ---- */

/* Every input's ids decoded with the task's tokenizer into texts[i] (the
 * caller frees them); false with the error answered. */
static bool decode_inputs(srv_call *c, const er_tokenizer *tok, const pr_req *req, char **texts, size_t *lens) {
    for (int i = 0; i < req->n_inputs; i++) {
        er_err err = {0};
        const pr_input *in = &req->inputs[i];
        er_status st = er_tokenizer_decode(tok, in->ids, (size_t)in->n_ids, req->skip_special_tokens, &texts[i],
                                           &lens[i], &err);
        if (st != ER_OK) {
            srv_error_f(c, pr_status_of(st), PR_FAULT_TOKENIZER, "ids", "input %d: %s", i, err.msg);
            return false;
        }
    }
    return true;
}

bool srv_handle_decode(srv_call *c) {
    pr_req req;
    if (!parse_body(c, PR_ROUTE_DECODE, &req)) return true;
    const er_task *t = tokenizer_task(c, &req);
    if (!t) return true;
    char **texts = calloc((size_t)req.n_inputs, sizeof *texts);
    size_t *lens = calloc((size_t)req.n_inputs, sizeof *lens);
    if (!texts || !lens) {
        srv_error(c, 500, "out of memory");
    } else if (decode_inputs(c, er_task_tokenizer(t), &req, texts, lens)) {
        json_t *body = pr_decode_reply((const char *const *)texts, lens, req.n_inputs);
        if (body) srv_reply_json(c, 200, body);
        else srv_error(c, 500, "the decoded text is not UTF-8 or out of memory");
    }
    for (int i = 0; texts && i < req.n_inputs; i++) free(texts[i]);
    free(texts);
    free(lens);
    pr_req_free(&req);
    return true;
}
