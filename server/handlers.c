/* The routes that tokenize and run the engine: predict, OpenAI embeddings,
 * TEI embed/predict/rerank, cache warm; and /tokenize.  A request is parsed
 * (proto), tokenized in the HTTP thread, queued as one engine job, and its
 * reply is built by the worker that finishes it (job_done). */
#include <stdlib.h>
#include <string.h>

#include "app_internal.h"
#include "result.h"

static const er_config *task_cfg(const er_task *t) { return er_model_config(er_task_model(t)); }

/* The task a compatibility route serves: the named one, else the first with
 * the wanted head. */
static const er_task *pick_task(srv_app *a, const char *name, int head, bool *named_missing) {
    *named_missing = false;
    if (name) {
        const er_task *t = er_taskset_find(a->ts, name);
        if (!t) *named_missing = true;
        return t;
    }
    for (int i = 0; i < er_taskset_count(a->ts); i++) {
        const er_task *t = er_taskset_at(a->ts, i);
        if (head < 0 || (int)task_cfg(t)->head == head) return t;
    }
    return NULL;
}

void srv_call_release_compute(srv_call *c) {
    for (int i = 0; c->enc && i < c->req.n_inputs; i++) er_encoding_free(c->enc[i]);
    free(c->enc);
    c->enc = NULL;
    pr_req_free(&c->req);
    free(c->seq_len);
    free(c->ids);
    free(c->type_ids);
    free(c->out);
    free(c->hit);
    c->seq_len = NULL;
    c->ids = c->type_ids = NULL;
    c->out = NULL;
    c->hit = NULL;
}

/* Tokenizes (or checks) every input into the packed arrays.  Returns 0 or an
 * HTTP status with the error set. */
static int prepare(srv_call *c, int i_max_len) {
    srv_app *a = c->app;
    const er_config *mc = task_cfg(c->task);
    er_tokenizer *tok = a->tok[0];
    for (int i = 0; i < er_taskset_count(a->ts); i++)
        if (er_taskset_at(a->ts, i) == c->task) tok = a->tok[i];
    int n = c->req.n_inputs;
    size_t max_len = (size_t)i_max_len;
    c->enc = calloc((size_t)n, sizeof *c->enc);
    c->seq_len = calloc((size_t)n, sizeof *c->seq_len);
    c->hit = calloc((size_t)n, 1);
    if (!c->enc || !c->seq_len || !c->hit) return srv_error(c, 500, "out of memory"), 500;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        pr_input *in = &c->req.inputs[i];
        if (in->kind == PR_IDS) {
            if ((size_t)in->n_ids > max_len && !c->req.truncate)
                return srv_error(c, 413, "input %d has %d tokens, more than %zu (truncate is false)",
                                 i, in->n_ids, max_len), 413;
            if ((size_t)in->n_ids > max_len) in->n_ids = (int)max_len;
            for (int k = 0; k < in->n_ids; k++) {
                if (in->ids[k] >= mc->vocab_size)
                    return srv_error(c, 422, "input %d: token id %d is outside the vocabulary (%d)",
                                     i, in->ids[k], mc->vocab_size), 422;
                if (in->type_ids && in->type_ids[k] >= (mc->type_vocab_size > 0 ? mc->type_vocab_size : 1))
                    return srv_error(c, 422, "input %d: token type id %d is out of range", i,
                                     in->type_ids[k]), 422;
            }
            c->seq_len[i] = in->n_ids;
        } else {
            er_tokenize_params tp = er_tokenize_default_params();
            tp.max_length = max_len;
            tp.truncation = c->req.truncate ? ER_TRUNCATE_LONGEST_FIRST : ER_TRUNCATE_NONE;
            er_err err = {0};
            er_status st = er_tokenizer_encode(tok, in->text, in->text_len,
                                               in->kind == PR_PAIR ? in->pair : NULL,
                                               in->kind == PR_PAIR ? in->pair_len : 0, &tp,
                                               &c->enc[i], &err);
            if (st == ER_ERR_CAPACITY)
                return srv_error(c, 413, "input %d: %s (set truncate to true to cut it)", i,
                                 err.msg), 413;
            if (st != ER_OK) {
                int s = srv_status_of(st);
                return srv_error(c, s, "input %d: %s", i, err.msg), s;
            }
            if (c->enc[i]->n == 0) return srv_error(c, 422, "input %d has no tokens", i), 422;
            c->seq_len[i] = (int)c->enc[i]->n;
        }
        total += (size_t)c->seq_len[i];
    }
    c->n_tokens = (int)total;
    c->ids = malloc(total * sizeof *c->ids);
    c->type_ids = malloc(total * sizeof *c->type_ids);
    if (!c->ids || !c->type_ids) return srv_error(c, 500, "out of memory"), 500;
    int tv = mc->type_vocab_size > 0 ? mc->type_vocab_size : 1;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        pr_input *in = &c->req.inputs[i];
        for (int k = 0; k < c->seq_len[i]; k++, o++) {
            if (c->enc[i]) {
                c->ids[o] = c->enc[i]->ids[k];
                /* RoBERTa-style models have one token type: pairs use 0. */
                int32_t t = c->enc[i]->type_ids[k];
                c->type_ids[o] = t < tv ? t : 0;
            } else {
                c->ids[o] = in->ids[k];
                c->type_ids[o] = in->type_ids ? in->type_ids[k] : 0;
            }
        }
    }
    srv_metrics_tokens(a->m, total);
    return 0;
}

/* pp_token view of encoding e (or of bare ids); sequence-1 tokens are
 * marked special when only sequence 0 is wanted (token classification). */
static pp_token *token_view(srv_app *a, const er_tokenizer *tok, const er_encoding *e,
                            const pr_input *in, int n, bool only_first) {
    (void)a;
    pp_token *t = calloc((size_t)n, sizeof *t);
    if (!t) return NULL;
    int32_t unk = er_tokenizer_special_id(tok, ER_SPECIAL_UNK);
    for (int k = 0; k < n; k++) {
        int32_t id = e ? e->ids[k] : in->ids[k];
        const char *s = e ? e->tokens[k] : er_tokenizer_id_to_token(tok, id);
        t[k].token = s ? s : "";
        t[k].unk = id == unk;
        if (e) {
            t[k].cstart = e->offsets[k].start;
            t[k].cend = e->offsets[k].end;
            t[k].bstart = e->byte_offsets[k].start;
            t[k].bend = e->byte_offsets[k].end;
            t[k].special = e->special_mask[k] || (only_first && e->sequence_ids[k] != 0);
        } else {
            int32_t cls = er_tokenizer_special_id(tok, ER_SPECIAL_CLS),
                    sep = er_tokenizer_special_id(tok, ER_SPECIAL_SEP),
                    pad = er_tokenizer_special_id(tok, ER_SPECIAL_PAD);
            t[k].special = id == cls || id == sep || id == pad;
        }
    }
    return t;
}

static const er_tokenizer *task_tok(srv_app *a, const er_task *t) {
    for (int i = 0; i < er_taskset_count(a->ts); i++)
        if (er_taskset_at(a->ts, i) == t) return a->tok[i];
    return a->tok[0];
}

static json_t *offsets_json(const er_encoding *e) {
    json_t *arr = json_array();
    for (size_t k = 0; e && k < e->n; k++)
        json_array_append_new(arr, json_pack("[i,i]", (int)e->offsets[k].start, (int)e->offsets[k].end));
    return arr;
}

/* One predict result for input i (its head output at out). */
static json_t *predict_one(srv_call *c, int i, float *out) {
    const er_config *mc = task_cfg(c->task);
    const pr_input *in = &c->req.inputs[i];
    const er_encoding *e = c->enc[i];
    int n = c->seq_len[i], hit = c->hit[i];
    const char *const *labels = (const char *const *)mc->labels;
    json_t *r = NULL;
    switch (mc->head) {
    case ER_HEAD_SEQUENCE_CLASSIFICATION:
        r = pr_seqcls_result(out, mc->num_labels, labels, mc->multi_label, c->req.top_k, hit);
        break;
    case ER_HEAD_TOKEN_CLASSIFICATION: {
        pp_token *t = token_view(c->app, task_tok(c->app, c->task), e, in, n, true);
        if (!t) return NULL;
        r = pr_tokcls_result(out, n, mc->num_labels, labels, t, e != NULL, e ? in->text : "",
                             c->req.aggregation, hit);
        free(t);
        break;
    }
    case ER_HEAD_QUESTION_ANSWERING: {
        pp_token *t = token_view(c->app, task_tok(c->app, c->task), e, in, n, false);
        bool *ctx = calloc((size_t)n, sizeof *ctx);
        if (t && ctx) {
            for (int k = 0; k < n; k++) ctx[k] = e && e->sequence_ids[k] == 1;
            r = pr_qa_result(out, n, t, ctx, in->pair, c->req.max_answer_len, hit);
        }
        free(t);
        free(ctx);
        break;
    }
    case ER_HEAD_EMBEDDING: {
        if (c->req.normalize == 1) pp_l2_normalize(out, mc->hidden_size);
        r = pr_embedding_result(out, mc->hidden_size, hit);
        break;
    }
    }
    if (r && c->req.return_offsets && e) json_object_set_new(r, "offsets", offsets_json(e));
    return r;
}

static size_t out_offset(srv_call *c, int i) {
    const er_config *mc = task_cfg(c->task);
    size_t w = (size_t)er_model_head_width(er_task_model(c->task));
    bool pt = mc->head == ER_HEAD_TOKEN_CLASSIFICATION || mc->head == ER_HEAD_QUESTION_ANSWERING;
    if (!pt) return w * (size_t)i;
    size_t o = 0;
    for (int k = 0; k < i; k++) o += (size_t)c->seq_len[k];
    return o * w;
}

static json_t *build_reply(srv_call *c) {
    const er_config *mc = task_cfg(c->task);
    int n = c->req.n_inputs;
    switch (c->pr) {
    case PR_ROUTE_PREDICT: {
        json_t *res = json_array();
        for (int i = 0; i < n && res; i++) {
            json_t *r = predict_one(c, i, c->out + out_offset(c, i));
            if (!r || json_array_append_new(res, r)) {
                json_decref(res);
                return NULL;
            }
        }
        return json_pack("{s:s,s:o}", "task", er_task_name(c->task), "results", res);
    }
    case PR_ROUTE_EMBEDDINGS: {
        json_t *data = json_array();
        int dim = c->req.dimensions ? c->req.dimensions : mc->hidden_size;
        for (int i = 0; i < n && data; i++) {
            float *v = c->out + out_offset(c, i);
            if (c->req.dimensions) pp_l2_normalize(v, dim); /* shortened: renormalise (OpenAI) */
            else if (c->req.normalize == 1) pp_l2_normalize(v, dim);
            json_t *emb;
            if (c->req.base64) {
                char *b = pp_base64_f32(v, dim);
                emb = b ? json_string(b) : NULL;
                free(b);
            } else
                emb = pr_floats(v, dim);
            json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index",
                                                  i, "embedding", emb));
        }
        return json_pack("{s:s,s:o,s:s,s:{s:i,s:i}}", "object", "list", "data", data, "model",
                         c->req.model ? c->req.model : er_task_name(c->task), "usage",
                         "prompt_tokens", c->n_tokens, "total_tokens", c->n_tokens);
    }
    case PR_ROUTE_TEI_EMBED: {
        json_t *arr = json_array();
        for (int i = 0; i < n && arr; i++) {
            float *v = c->out + out_offset(c, i);
            if (c->req.normalize == 1) pp_l2_normalize(v, mc->hidden_size);
            json_array_append_new(arr, pr_floats(v, mc->hidden_size));
        }
        return arr;
    }
    case PR_ROUTE_TEI_PREDICT: {
        const char *const *labels = (const char *const *)mc->labels;
        if (!c->req.batched)
            return pr_tei_scores(c->out, mc->num_labels, labels, mc->multi_label, c->req.raw_scores);
        json_t *arr = json_array();
        for (int i = 0; i < n && arr; i++)
            json_array_append_new(arr, pr_tei_scores(c->out + out_offset(c, i), mc->num_labels,
                                                     labels, mc->multi_label, c->req.raw_scores));
        return arr;
    }
    case PR_ROUTE_TEI_RERANK: {
        float *score = malloc((size_t)n * sizeof *score);
        int *idx = malloc((size_t)n * sizeof *idx);
        json_t *arr = json_array();
        for (int i = 0; score && idx && i < n; i++) {
            const float *l = c->out + out_offset(c, i);
            int L = mc->num_labels;
            float p[2];
            if (c->req.raw_scores) score[i] = l[L - 1];
            else if (L == 1) pp_sigmoid(l, 1, &score[i]);
            else if (L == 2) {
                pp_softmax(l, 2, p);
                score[i] = p[1];
            } else {
                float *q = malloc((size_t)L * sizeof *q);
                if (q) pp_softmax(l, L, q);
                score[i] = q ? q[L - 1] : 0;
                free(q);
            }
        }
        int k = score && idx ? pp_top_k(score, n, n, idx) : 0;
        for (int r = 0; arr && r < k; r++) {
            json_t *o = json_pack("{s:i,s:f}", "index", idx[r], "score", (double)score[idx[r]]);
            if (o && c->req.return_text)
                json_object_set_new(o, "text", json_stringn(c->req.inputs[idx[r]].pair,
                                                            c->req.inputs[idx[r]].pair_len));
            json_array_append_new(arr, o);
        }
        free(score);
        free(idx);
        return arr;
    }
    case PR_ROUTE_WARM: {
        int hits = 0;
        for (int i = 0; i < n; i++) hits += c->hit[i] ? 1 : 0;
        return json_pack("{s:s,s:i,s:i,s:i,s:i}", "task", er_task_name(c->task), "inputs", n,
                         "tokens", c->n_tokens, "already_cached", hits, "computed", n - hits);
    }
    case PR_ROUTE_TOKENIZE: break;
    }
    return NULL;
}

static void job_done(eng_job *j, void *user) {
    srv_call *c = user;
    c->resp.queue_ms = (double)j->queue_ns * 1e-6;
    c->resp.compute_ms = (double)j->compute_ns * 1e-6;
    switch (j->outcome) {
    case ENG_FULL: srv_error(c, 429, "the queue is full; retry later"); break;
    case ENG_STOPPING: srv_error(c, 503, "the server is shutting down"); break;
    case ENG_DEADLINE:
        srv_metrics_dropped(c->app->m, false);
        srv_error(c, 503, "waited %.0f ms in the queue, past the %d ms deadline",
                  c->resp.queue_ms, c->app->cfg.deadline_ms);
        break;
    case ENG_GONE:
        srv_metrics_dropped(c->app->m, true);
        srv_error(c, 503, "client disconnected before compute");
        break;
    case ENG_OK:
        if (j->err.code != ER_OK) srv_error(c, 500, "engine: %s", j->err.msg);
        else srv_reply_json(c, 200, build_reply(c));
        break;
    }
    srv_call_release_compute(c);
    srv_call_finished(c);
    if (c->resume) c->resume(c->user);
}

bool srv_compute_route(srv_call *c, pr_route r, const char *task_name, const srv_request *rq) {
    srv_app *a = c->app;
    pr_err pe;
    c->pr = r;
    if (pr_parse(r, rq->body ? rq->body : "", rq->body_len, &a->lim, &c->req, &pe)) {
        srv_error(c, pe.status, "%s", pe.msg);
        return true;
    }
    bool missing = false;
    int want = -1;
    const char *name = task_name;
    if (r == PR_ROUTE_EMBEDDINGS || r == PR_ROUTE_TEI_EMBED) want = ER_HEAD_EMBEDDING;
    if (r == PR_ROUTE_TEI_PREDICT || r == PR_ROUTE_TEI_RERANK) want = ER_HEAD_SEQUENCE_CLASSIFICATION;
    if (r == PR_ROUTE_EMBEDDINGS || r == PR_ROUTE_WARM) name = c->req.model;
    c->task = pick_task(a, name, want, &missing);
    if (!c->task) {
        if (missing) srv_error(c, 404, "no task named `%s` (see GET /v1/tasks)", name);
        else srv_error(c, 404, "no task with a %s head is served",
                       er_head_type_name((er_head_type)want));
        return true;
    }
    const er_config *mc = task_cfg(c->task);
    if (want >= 0 && (int)mc->head != want) {
        srv_error(c, 422, "task `%s` has a %s head; this route needs %s", er_task_name(c->task),
                  er_head_type_name(mc->head), er_head_type_name((er_head_type)want));
        return true;
    }
    if (r == PR_ROUTE_EMBEDDINGS && c->req.dimensions > mc->hidden_size) {
        srv_error(c, 422, "`dimensions` %d exceeds the model's %d", c->req.dimensions,
                  mc->hidden_size);
        return true;
    }
    if (r == PR_ROUTE_PREDICT && mc->head == ER_HEAD_QUESTION_ANSWERING)
        for (int i = 0; i < c->req.n_inputs; i++)
            if (c->req.inputs[i].kind != PR_PAIR) {
                srv_error(c, 422, "input %d: question answering needs {\"question\", \"context\"}", i);
                return true;
            }
    uint64_t t0 = eng_now_ns();
    if (prepare(c, a->max_seq_len)) return true;
    uint64_t tk = eng_now_ns() - t0;
    c->resp.tokenize_ms = (double)tk * 1e-6;
    srv_metrics_stage(a->m, M_STAGE_TOKENIZE, tk);
    c->out = malloc((eng_out_floats(c->task, c->req.n_inputs, c->n_tokens) + 1) * sizeof(float));
    if (!c->out) {
        srv_error(c, 500, "out of memory");
        return true;
    }
    eng_job *j = &c->job;
    memset(j, 0, sizeof *j);
    j->task = c->task;
    j->warm = r == PR_ROUTE_WARM;
    j->n_seqs = c->req.n_inputs;
    j->seq_len = c->seq_len;
    j->ids = c->ids;
    j->type_ids = c->type_ids;
    /* Truncation settings change what ids mean for the cache key. */
    j->salt = (uint64_t)a->max_seq_len << 1 | (c->req.truncate ? 1u : 0u);
    j->out = c->out;
    j->hit = c->hit;
    j->deadline_ns = c->t0 + (uint64_t)a->cfg.deadline_ms * 1000000ull;
    j->alive = c->alive;
    j->alive_user = c->user;
    j->done = job_done;
    j->user = c;
    if (atomic_load(&a->draining)) {
        srv_error(c, 503, "the server is shutting down");
        return true;
    }
    eng_submit(a->eng, j); /* job_done answers, now (refused) or from a worker */
    return false;
}

bool srv_tokenize_route(srv_call *c, const srv_request *rq) {
    srv_app *a = c->app;
    pr_err pe;
    pr_req req;
    if (pr_parse(PR_ROUTE_TOKENIZE, rq->body ? rq->body : "", rq->body_len, &a->lim, &req, &pe)) {
        srv_error(c, pe.status, "%s", pe.msg);
        return true;
    }
    const er_tokenizer *tok = a->tok[0];
    if (req.model) {
        const er_task *t = er_taskset_find(a->ts, req.model);
        if (!t) {
            srv_error(c, 404, "no task named `%s`", req.model);
            pr_req_free(&req);
            return true;
        }
        tok = task_tok(a, t);
    }
    json_t *all = json_array();
    for (int i = 0; i < req.n_inputs && all; i++) {
        er_tokenize_params tp = er_tokenize_default_params();
        tp.add_special_tokens = req.add_special_tokens;
        er_encoding *e = NULL;
        er_err err = {0};
        er_status st = er_tokenizer_encode(tok, req.inputs[i].text, req.inputs[i].text_len, NULL, 0,
                                           &tp, &e, &err);
        if (st != ER_OK) {
            json_decref(all);
            srv_error(c, srv_status_of(st), "input %d: %s", i, err.msg);
            pr_req_free(&req);
            return true;
        }
        json_t *toks = json_array();
        for (size_t k = 0; k < e->n && toks; k++)
            json_array_append_new(
                toks, json_pack("{s:i,s:s,s:b,s:i,s:i}", "id", e->ids[k], "text", e->tokens[k],
                                "special", e->special_mask[k], "start", (int)e->byte_offsets[k].start,
                                "stop", (int)e->byte_offsets[k].end));
        json_array_append_new(all, toks);
        er_encoding_free(e);
    }
    srv_reply_json(c, 200, all);
    pr_req_free(&req);
    return true;
}
