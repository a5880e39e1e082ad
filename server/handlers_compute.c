/* The routes that tokenize and run the engine: predict, OpenAI embeddings,
 * TEI embed/embed_sparse/similarity/predict/rerank (and /invocations), cache
 * warm.  A request is parsed (proto), tokenized in the HTTP thread, queued as
 * one engine job, and its reply is built (proto) by the worker that
 * finishes it (job_done). */
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "er_util.h"
#include "handlers.h"
#include "reply.h"
#include "result.h"

/* A compute call's state, the call's `state` while it lives. */
typedef struct {
    pr_route kind;
    pr_req req;
    const er_task *task;
    const er_config *mc;
    const char *model_name; /* OpenAI's reply `model` */
    const char *prompt;     /* prepended to every text, or NULL */
    char **prompted;        /* [n_inputs]: prompt + text, when there is a prompt */
    er_encoding **enc; /* [n_inputs], NULL entries for ids inputs */
    int *seq_len;      /* [n_inputs] */
    int32_t *ids, *type_ids; /* packed [n_tokens] */
    float *out;        /* eng_out_floats(task, n_inputs, n_tokens) (+1) */
    uint8_t *hit;      /* [n_inputs] */
    int n_tokens;
    eng_job job;
} compute;

static void release_compute(srv_call *c) {
    compute *k = c->state;
    for (int i = 0; k->enc && i < k->req.n_inputs; i++) er_encoding_free(k->enc[i]);
    for (int i = 0; k->prompted && i < k->req.n_inputs; i++) free(k->prompted[i]);
    free(k->prompted);
    free(k->enc);
    pr_req_free(&k->req);
    free(k->seq_len);
    free(k->ids);
    free(k->type_ids);
    free(k->out);
    free(k->hit);
    free(k);
}

/* ---- tokenizing ---- */

/* Checks an input given as ids against the model; truncates it when
 * allowed.  Returns false with the error set. */
static bool check_ids(srv_call *c, compute *k, int i, int max_len) {
    pr_input *in = &k->req.inputs[i];
    const er_config *mc = k->mc;
    if (in->n_ids > max_len && !k->req.truncate) {
        srv_error_f(c, 413, PR_FAULT_TOO_LONG, "input", "input %d has %d tokens, more than %d (truncate is false)", i,
                    in->n_ids, max_len);
        return false;
    }
    if (in->n_ids > max_len && k->req.truncate_left) { /* keep the last max_len */
        memmove(in->ids, in->ids + (in->n_ids - max_len), (size_t)max_len * sizeof *in->ids);
        if (in->type_ids)
            memmove(in->type_ids, in->type_ids + (in->n_ids - max_len), (size_t)max_len * sizeof *in->type_ids);
    }
    if (in->n_ids > max_len) in->n_ids = max_len;
    int tv = mc->type_vocab_size > 0 ? mc->type_vocab_size : 1;
    for (int t = 0; t < in->n_ids; t++) {
        if (in->ids[t] >= mc->vocab_size) {
            srv_error_f(c, 422, PR_FAULT_RANGE, "input", "input %d: token id %d is outside the vocabulary (%d)", i,
                        in->ids[t], mc->vocab_size);
            return false;
        }
        if (in->type_ids && in->type_ids[t] >= tv) {
            srv_error_f(c, 422, PR_FAULT_RANGE, "input", "input %d: token type id %d is out of range", i, in->type_ids[t]);
            return false;
        }
    }
    k->seq_len[i] = in->n_ids;
    return true;
}

/* text with the prompt in front (sentence-transformers' encode(prompt=)),
 * kept in k->prompted[i]; text itself when there is no prompt.  NULL when
 * out of memory. */
static const char *with_prompt(compute *k, int i, const char *text, size_t *len) {
    if (!k->prompt) return text;
    size_t pn = strlen(k->prompt);
    char *s = malloc(pn + *len + 1);
    if (!s) return NULL;
    memcpy(s, k->prompt, pn);
    memcpy(s + pn, text, *len);
    s[pn + *len] = '\0';
    *len += pn;
    return k->prompted[i] = s;
}

static bool encode_text(srv_call *c, compute *k, int i, int max_len) {
    const pr_input *in = &k->req.inputs[i];
    er_tokenize_params tp = er_tokenize_default_params();
    tp.max_length = (size_t)max_len;
    tp.truncation = k->req.truncate ? ER_TRUNCATE_LONGEST_FIRST : ER_TRUNCATE_NONE;
    tp.direction = k->req.truncate_left ? ER_TRUNCATE_LEFT : ER_TRUNCATE_RIGHT;
    bool pair = in->kind == PR_PAIR;
    size_t len = in->text_len;
    const char *text = pair ? in->text : with_prompt(k, i, in->text, &len);
    if (!text) return srv_error(c, 500, "out of memory"), false;
    er_err err = {0};
    er_status st = er_tokenizer_encode(er_task_tokenizer(k->task), text, len,
                                       pair ? in->pair : NULL, pair ? in->pair_len : 0, &tp,
                                       &k->enc[i], &err);
    if (st == ER_ERR_CAPACITY) {
        srv_error_f(c, 413, PR_FAULT_TOO_LONG, "input", "input %d: %s (set truncate to true to cut it)", i, err.msg);
        return false;
    }
    if (st != ER_OK) {
        srv_error_f(c, pr_status_of(st), PR_FAULT_TOKENIZER, "input", "input %d: %s", i, err.msg);
        return false;
    }
    if (k->enc[i]->n == 0) {
        srv_error(c, 422, "input %d has no tokens", i);
        return false;
    }
    k->seq_len[i] = (int)k->enc[i]->n;
    return true;
}

/* Copies every input's ids into the packed arrays. */
static void pack(compute *k) {
    int tv = k->mc->type_vocab_size > 0 ? k->mc->type_vocab_size : 1;
    size_t o = 0;
    for (int i = 0; i < k->req.n_inputs; i++) {
        const pr_input *in = &k->req.inputs[i];
        const er_encoding *e = k->enc[i];
        for (int t = 0; t < k->seq_len[i]; t++, o++) {
            if (e) {
                k->ids[o] = e->ids[t];
                /* RoBERTa-style models have one token type: pairs use 0. */
                k->type_ids[o] = e->type_ids[t] < tv ? e->type_ids[t] : 0;
            } else {
                k->ids[o] = in->ids[t];
                k->type_ids[o] = in->type_ids ? in->type_ids[t] : 0;
            }
        }
    }
}

/* Tokenizes (or checks) every input into the packed arrays.  Returns false
 * with the error set. */
static bool prepare(srv_call *c, compute *k) {
    int n = k->req.n_inputs, max_len = srv_app_max_input_tokens(c->app, k->task);
    k->enc = calloc((size_t)n, sizeof *k->enc);
    k->prompted = calloc((size_t)n, sizeof *k->prompted);
    k->seq_len = calloc((size_t)n, sizeof *k->seq_len);
    k->hit = calloc((size_t)n, 1);
    if (!k->enc || !k->prompted || !k->seq_len || !k->hit) return srv_error(c, 500, "out of memory"), false;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        bool ok = k->req.inputs[i].kind == PR_IDS ? check_ids(c, k, i, max_len)
                                                  : encode_text(c, k, i, max_len);
        if (!ok) return false;
        total += (size_t)k->seq_len[i];
    }
    k->n_tokens = (int)total;
    k->ids = malloc(total * sizeof *k->ids);
    k->type_ids = malloc(total * sizeof *k->type_ids);
    if (!k->ids || !k->type_ids) return srv_error(c, 500, "out of memory"), false;
    pack(k);
    srv_metrics_tokens(srv_app_metrics(c->app), total);
    return true;
}

/* ---- predict results ---- */

/* pp_token view of encoding e (or of bare ids); sequence-1 tokens are
 * marked special when only sequence 0 is wanted (token classification). */
static pp_token *token_view(const er_tokenizer *tok, const er_encoding *e, const pr_input *in,
                            int n, bool only_first) {
    pp_token *t = calloc((size_t)n, sizeof *t);
    if (!t) return NULL;
    int32_t unk = er_tokenizer_special_id(tok, ER_SPECIAL_UNK),
            cls = er_tokenizer_special_id(tok, ER_SPECIAL_CLS),
            sep = er_tokenizer_special_id(tok, ER_SPECIAL_SEP),
            pad = er_tokenizer_special_id(tok, ER_SPECIAL_PAD);
    for (int k = 0; k < n; k++) {
        int32_t id = e ? e->ids[k] : in->ids[k];
        const char *s = e ? e->tokens[k] : er_tokenizer_id_to_token(tok, id);
        t[k].token = s ? s : "";
        t[k].unk = id == unk;
        if (!e) {
            t[k].special = id == cls || id == sep || id == pad;
            continue;
        }
        t[k].cstart = e->offsets[k].start;
        t[k].cend = e->offsets[k].end;
        t[k].bstart = e->byte_offsets[k].start;
        t[k].bend = e->byte_offsets[k].end;
        t[k].special = e->special_mask[k] || (only_first && e->sequence_ids[k] != 0);
    }
    return t;
}

static json_t *offsets_json(const er_encoding *e) {
    json_t *arr = json_array();
    for (size_t k = 0; e && k < e->n; k++)
        json_array_append_new(arr, json_pack("[i,i]", (int)e->offsets[k].start, (int)e->offsets[k].end));
    return arr;
}

static json_t *tokcls_one(const compute *k, int i, const float *out) {
    const pr_input *in = &k->req.inputs[i];
    const er_encoding *e = k->enc[i];
    int n = k->seq_len[i];
    pp_token *t = token_view(er_task_tokenizer(k->task), e, in, n, true);
    if (!t) return NULL;
    json_t *r = pr_tokcls_result(out, n, k->mc->num_labels, (const char *const *)k->mc->labels, t,
                                 e != NULL, e ? in->text : "", k->req.aggregation, k->hit[i]);
    free(t);
    return r;
}

static json_t *qa_one(const compute *k, int i, const float *out) {
    const er_encoding *e = k->enc[i];
    int n = k->seq_len[i];
    pp_token *t = token_view(er_task_tokenizer(k->task), e, &k->req.inputs[i], n, false);
    bool *ctx = calloc((size_t)n, sizeof *ctx);
    json_t *r = NULL;
    if (t && ctx) {
        for (int s = 0; s < n; s++) ctx[s] = e && e->sequence_ids[s] == 1;
        r = pr_qa_result(out, n, t, ctx, k->req.inputs[i].pair, k->req.max_answer_len, k->hit[i]);
    }
    free(t);
    free(ctx);
    return r;
}

/* One predict result for input i (its head output at out). */
static json_t *predict_one(const compute *k, int i, float *out) {
    const er_config *mc = k->mc;
    json_t *r = NULL;
    switch (mc->head) {
    case ER_HEAD_SEQUENCE_CLASSIFICATION:
        r = pr_seqcls_result(out, mc->num_labels, (const char *const *)mc->labels, mc->multi_label,
                             k->req.top_k, k->hit[i]);
        break;
    case ER_HEAD_TOKEN_CLASSIFICATION: r = tokcls_one(k, i, out); break;
    case ER_HEAD_QUESTION_ANSWERING: r = qa_one(k, i, out); break;
    case ER_HEAD_EMBEDDING: {
        int dim = er_model_head_width(er_task_model(k->task)); /* hidden or the last Dense's */
        pr_embedding_normalize(&k->req, out, dim, mc->normalize);
        r = pr_embedding_result(out, dim, k->hit[i]);
        break;
    }
    case ER_HEAD_SPARSE_EMBEDDING:
        r = pr_sparse_result(out, mc->vocab_size, k->hit[i]);
        break;
    default: /* heads this server has no predict shape for (yet): the raw row */
        r = pr_embedding_result(out, er_model_head_width(er_task_model(k->task)), k->hit[i]);
        break;
    }
    if (r && k->req.return_offsets && k->enc[i]) json_object_set_new(r, "offsets", offsets_json(k->enc[i]));
    return r;
}

static json_t *predict_reply(const compute *k) {
    size_t w = (size_t)er_model_head_width(er_task_model(k->task)), o = 0;
    bool per_token = er_head_per_token(k->mc->head);
    json_t *res = json_array();
    for (int i = 0; i < k->req.n_inputs && res; i++) {
        json_t *r = predict_one(k, i, k->out + o * w);
        if (!r || json_array_append_new(res, r)) {
            json_decref(res);
            return NULL;
        }
        o += per_token ? (size_t)k->seq_len[i] : 1;
    }
    return pr_predict_reply(er_task_name(k->task), res);
}

/* The Hugging Face Inference API's pipeline shapes (what @huggingface/
 * inference parses): text-classification [[{label, score}]] per input,
 * token-classification [{entity_group, score, word, start, end}], question
 * answering {answer, score, start, end}, feature extraction [floats],
 * sentence similarity [floats].  One input gives its value (text
 * classification: wrapped in a list, as the API), a list a list of them. */
static json_t *hf_one(const compute *k, int i, float *out) {
    const er_config *mc = k->mc;
    switch (mc->head) {
    case ER_HEAD_SEQUENCE_CLASSIFICATION:
        return pr_tei_scores(out, mc->num_labels, (const char *const *)mc->labels, mc->multi_label, false);
    case ER_HEAD_TOKEN_CLASSIFICATION: return pr_hf_entities(tokcls_one(k, i, out), k->req.aggregation != PP_AGG_NONE);
    case ER_HEAD_QUESTION_ANSWERING: return pr_without_cache(qa_one(k, i, out));
    case ER_HEAD_EMBEDDING:
    { /* hidden, or the last Dense module's width */
        int dim = er_model_head_width(er_task_model(k->task));
        pr_embedding_normalize(&k->req, out, dim, mc->normalize);
        return pr_floats(out, dim);
    }
    default: /* no pipeline shape: the head's row (per sequence) */
        return pr_floats(out, er_model_head_width(er_task_model(k->task)));
    }
}

static json_t *hf_reply(const compute *k) {
    size_t w = (size_t)er_model_head_width(er_task_model(k->task)), o = 0;
    if (k->req.similarity) return pr_similarity(k->out, w, (int)w, k->req.n_inputs);
    bool per_token = er_head_per_token(k->mc->head);
    json_t *all = json_array();
    for (int i = 0; i < k->req.n_inputs && all; i++) {
        json_t *r = hf_one(k, i, k->out + o * w);
        if (!r || json_array_append_new(all, r)) {
            json_decref(all);
            return NULL;
        }
        o += per_token ? (size_t)k->seq_len[i] : 1;
    }
    if (k->req.batched || k->mc->head == ER_HEAD_SEQUENCE_CLASSIFICATION) return all;
    json_t *one = json_incref(json_array_get(all, 0));
    json_decref(all);
    return one;
}

static json_t *build_reply(const compute *k) {
    const er_config *mc = k->mc;
    size_t w = (size_t)er_model_head_width(er_task_model(k->task));
    const char *const *labels = (const char *const *)mc->labels;
    switch (k->kind) {
    case PR_ROUTE_PREDICT: return predict_reply(k);
    case PR_ROUTE_EMBEDDINGS:
        return pr_openai_embeddings(&k->req, k->out, w, (int)w, k->model_name, k->n_tokens);
    case PR_ROUTE_TEI_EMBED: return pr_tei_embed(&k->req, k->out, w, (int)w, mc->normalize);
    case PR_ROUTE_TEI_SIMILARITY: return pr_similarity(k->out, w, (int)w, k->req.n_inputs);
    case PR_ROUTE_TEI_EMBED_SPARSE: return pr_tei_embed_sparse(&k->req, k->out, w, (int)w);
    case PR_ROUTE_TEI_EMBED_ALL: return pr_tei_embed_all(k->out, k->seq_len, k->req.n_inputs, mc->hidden_size);
    case PR_ROUTE_HF: return hf_reply(k);
    case PR_ROUTE_TEI_PREDICT:
        return pr_tei_predict(&k->req, k->out, w, mc->num_labels, labels, mc->multi_label);
    case PR_ROUTE_TEI_RERANK: return pr_rerank(&k->req, k->out, w, mc->num_labels);
    case PR_ROUTE_WARM:
        return pr_warm_reply(er_task_name(k->task), k->req.n_inputs, k->n_tokens, k->hit);
    case PR_ROUTE_TOKENIZE:
    case PR_ROUTE_DECODE: break; /* answered by their own handlers */
    }
    return NULL;
}

/* ---- the job ---- */

static void job_done(eng_job *j, void *user) {
    srv_call *c = user;
    const compute *k = c->state;
    srv_metrics *m = srv_app_metrics(c->app);
    c->resp.queue_ms = (double)j->queue_ns * 1e-6;
    c->resp.compute_ms = (double)j->compute_ns * 1e-6;
    switch (j->outcome) {
    case ENG_FULL: srv_error(c, 429, "the queue is full; retry later"); break;
    case ENG_STOPPING: srv_error(c, 503, "the server is shutting down"); break;
    case ENG_DEADLINE:
        srv_metrics_dropped(m, false);
        srv_error(c, 503, "waited %.0f ms in the queue, past the %d ms deadline",
                  c->resp.queue_ms, srv_app_config(c->app)->deadline_ms);
        break;
    case ENG_GONE:
        srv_metrics_dropped(m, true);
        srv_error(c, SRV_CLIENT_CLOSED, "client disconnected before compute");
        break;
    case ENG_OK:
        if (j->err.code != ER_OK) srv_error(c, 500, "engine: %s", j->err.msg);
        else srv_reply_json(c, 200, build_reply(k));
        break;
    }
    srv_call_release(c);
    srv_call_finished(c);
    if (c->resume) c->resume(c->user);
}

static void submit(srv_call *c, compute *k) {
    const srv_app_view *a = c->app;
    eng_job *j = &k->job;
    memset(j, 0, sizeof *j);
    j->task = k->task;
    j->warm = k->kind == PR_ROUTE_WARM;
    j->n_seqs = k->req.n_inputs;
    j->seq_len = k->seq_len;
    j->ids = k->ids;
    j->type_ids = k->type_ids;
    j->salt = er_key_salt(srv_app_max_input_tokens(a, k->task), k->req.truncate);
    j->out = k->out;
    j->hit = k->hit;
    j->deadline_ns = c->t0 + (uint64_t)srv_app_config(a)->deadline_ms * 1000000ull;
    j->alive = c->alive;
    j->alive_user = c->user;
    j->done = job_done;
    j->user = c;
    eng_submit(srv_app_engine(a), j); /* job_done answers, now (refused) or from a worker */
}

/* ---- the route ---- */

/* The head a compatibility route needs, by er_head_type_name (NULL: any).
 * By name so that heads core adds later (sparse_embedding) need no enum
 * value here. */
static const char *wanted_head(pr_route r) {
    switch (r) {
    case PR_ROUTE_EMBEDDINGS:
    case PR_ROUTE_TEI_EMBED:
    case PR_ROUTE_TEI_EMBED_ALL:
    case PR_ROUTE_TEI_SIMILARITY: return "embedding";
    case PR_ROUTE_TEI_EMBED_SPARSE: return "sparse_embedding";
    case PR_ROUTE_TEI_PREDICT:
    case PR_ROUTE_TEI_RERANK: return "sequence_classification";
    default: return NULL;
    }
}

static bool has_head(const er_task *t, const char *head) {
    return !head || !strcmp(er_head_type_name(er_model_config(er_task_model(t))->head), head);
}

/* The only task with head, or NULL (none, or several). */
static const er_task *sole_with(const er_taskset *ts, const char *head) {
    const er_task *found = NULL;
    for (int i = 0; i < er_taskset_count(ts); i++) {
        if (!has_head(er_taskset_at(ts, i), head)) continue;
        if (found) return NULL;
        found = er_taskset_at(ts, i);
    }
    return found;
}

/* OpenAI's `model`: a task or an alias; absent, the first embedding task;
 * unknown, the only embedding task with a warning (TEI serves its one model
 * whatever the name), else 404. */
static bool pick_openai(srv_call *c, compute *k) {
    const srv_compat *cx = srv_app_compat(c->app);
    const char *name = k->req.model;
    k->task = name ? srv_compat_find(cx, name) : NULL;
    if (!k->task && name && (k->task = sole_with(srv_app_tasks(c->app), "embedding")))
        er_log(ER_LOG_WARN, "model `%.128s` is not served: answering with the only embedding task, "
                            "%s (as TEI; use its name or a --served-model-name)", name, er_task_name(k->task));
    else if (k->task && name) k->model_name = name;
    if (!k->task && name) {
        srv_error_f(c, 404, PR_FAULT_MODEL, "model", "The model `%s` does not exist: no task or "
                    "--served-model-name has that name (see GET /v1/models)", name);
        return false;
    }
    return true;
}

/* The task the call serves: the named one (path, `model`, warm's `task`),
 * else the first with the wanted head.  TEI routes take `model` when it
 * names a task and ignore it otherwise, as TEI ignores unknown fields.
 * Returns false with the error set. */
static bool pick_task(srv_call *c, compute *k) {
    const er_taskset *ts = srv_app_tasks(c->app);
    const srv_compat *cx = srv_app_compat(c->app);
    const char *want = wanted_head(k->kind), *name = NULL;
    if (k->kind == PR_ROUTE_PREDICT || k->kind == PR_ROUTE_HF) name = c->path_task;
    if (k->kind == PR_ROUTE_WARM) name = k->req.model;
    if (name) k->task = srv_compat_find(cx, name);
    if (k->kind == PR_ROUTE_EMBEDDINGS && !pick_openai(c, k)) return false;
    if (pr_route_api(k->kind) == PR_API_TEI && !name && k->req.model) k->task = srv_compat_find(cx, k->req.model);
    for (int i = 0; !name && !k->task && i < er_taskset_count(ts); i++)
        if (has_head(er_taskset_at(ts, i), want)) k->task = er_taskset_at(ts, i);
    if (!k->task) {
        if (name) srv_error_f(c, 404, PR_FAULT_MODEL, "model", "no task named `%s` (see GET /v1/tasks)", name);
        else srv_error_f(c, 404, PR_FAULT_HEAD, "model", "no task with a %s head is served", want);
        return false;
    }
    k->mc = er_model_config(er_task_model(k->task));
    if (!k->model_name) k->model_name = srv_compat_served_name(cx, k->task);
    if (!has_head(k->task, want)) {
        srv_error_f(c, 422, PR_FAULT_HEAD, "model", "task `%s` has a %s head; this route needs %s",
                    er_task_name(k->task), er_head_type_name(k->mc->head), want);
        return false;
    }
    return true;
}

/* The prompt the request's texts get: `prompt_name`'s, else the task's
 * default; embedding tasks only (sentence-transformers' encode).  False
 * with the error set. */
static bool pick_prompt(srv_call *c, compute *k) {
    char msg[512];
    if (!has_head(k->task, "embedding") && !has_head(k->task, "sparse_embedding")) {
        if (!k->req.prompt_name) return true;
        srv_error_f(c, 422, PR_FAULT_RANGE, "prompt_name", "`prompt_name`: task `%s` is not an embedding "
                    "task", er_task_name(k->task));
        return false;
    }
    if (!srv_compat_prompt(srv_app_compat(c->app), k->task, k->req.prompt_name, &k->prompt, msg, sizeof msg)) {
        srv_error_f(c, 422, PR_FAULT_RANGE, "prompt_name", "%s", msg);
        return false;
    }
    for (int i = 0; k->req.prompt_name && i < k->req.n_inputs; i++)
        if (k->req.inputs[i].kind != PR_TEXT) {
            srv_error_f(c, 422, PR_FAULT_RANGE, "prompt_name", "`prompt_name` cannot be set with text "
                        "pairs or token ids (input %d)", i);
            return false;
        }
    return true;
}

/* What the request asks that the task cannot give.  False with the error set. */
static bool check_request(srv_call *c, const compute *k) {
    bool dims = k->kind == PR_ROUTE_EMBEDDINGS || k->kind == PR_ROUTE_TEI_EMBED;
    const int width = er_model_head_width(er_task_model(k->task)); /* hidden or the last Dense's */
    if (dims && k->req.dimensions > width) {
        srv_error_f(c, 422, PR_FAULT_RANGE, "dimensions", "`dimensions` %d exceeds the model's %d",
                    k->req.dimensions, width);
        return false;
    }
    if (k->req.similarity && k->mc->head != ER_HEAD_EMBEDDING) {
        srv_error_f(c, 422, PR_FAULT_HEAD, "inputs", "sentence similarity needs an embedding task; `%s` "
                    "has a %s head", er_task_name(k->task), er_head_type_name(k->mc->head));
        return false;
    }
    bool qa = k->kind == PR_ROUTE_PREDICT || k->kind == PR_ROUTE_HF;
    if (!qa || k->mc->head != ER_HEAD_QUESTION_ANSWERING) return true;
    for (int i = 0; i < k->req.n_inputs; i++)
        if (k->req.inputs[i].kind != PR_PAIR) {
            srv_error(c, 422, "input %d: question answering needs {\"question\", \"context\"}", i);
            return false;
        }
    return true;
}

static bool parse_body(srv_call *c, pr_route kind, pr_req *req) {
    const srv_request *rq = c->rq;
    er_err err = {0};
    er_status st = pr_parse(kind, rq->body ? rq->body : "", rq->body_len, srv_app_limits(c->app),
                            req, &err);
    if (st != ER_OK) srv_error_f(c, pr_status_of(st), req->fault, NULL, "%s", err.msg);
    return st == ER_OK;
}

/* /embed_all runs the embedding task's unpooled twin (--embed-all), which
 * shares its lower stack and store namespace.  False with the error set. */
static bool to_token_twin(srv_call *c, compute *k) {
    char name[ER_TASK_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s" SRV_TOKENS_SUFFIX, er_task_name(k->task));
    const er_task *twin = er_taskset_find(srv_app_tasks(c->app), name);
    if (!twin) {
        srv_error_f(c, 424, PR_FAULT_HEAD, NULL, "/embed_all needs task %s, the unpooled twin of %s "
                    "(the server runs with --embed-all=false)", name, er_task_name(k->task));
        return false;
    }
    k->task = twin;
    k->mc = er_model_config(er_task_model(twin));
    return true;
}

/* Parses, picks the task, tokenizes and queues a call of kind. */
static bool compute_start(srv_call *c, pr_route kind) {
    compute *k = calloc(1, sizeof *k);
    if (!k) return srv_error(c, 500, "out of memory"), true;
    k->kind = kind;
    c->state = k;
    c->release = release_compute;
    if (!parse_body(c, k->kind, &k->req) || !pick_task(c, k) || !check_request(c, k) ||
        !pick_prompt(c, k) || (kind == PR_ROUTE_TEI_EMBED_ALL && !to_token_twin(c, k)))
        return true;
    uint64_t t0 = er_now_ns();
    if (!prepare(c, k)) return true;
    uint64_t tk = er_now_ns() - t0;
    c->resp.tokenize_ms = (double)tk * 1e-6;
    srv_metrics_stage(srv_app_metrics(c->app), M_STAGE_TOKENIZE, tk);
    k->out = malloc((eng_out_floats(k->task, k->req.n_inputs, k->n_tokens) + 1) * sizeof(float));
    if (!k->out) return srv_error(c, 500, "out of memory"), true;
    if (srv_app_draining(c->app)) return srv_error(c, 503, "the server is shutting down"), true;
    submit(c, k);
    return false;
}

bool srv_handle_compute(srv_call *c) { return compute_start(c, (pr_route)c->route->kind); }

bool srv_handle_invocations(srv_call *c) {
    const er_config *mc = er_model_config(er_task_model(er_taskset_at(srv_app_tasks(c->app), 0)));
    const char *head = er_head_type_name(mc->head);
    pr_route kind = !strcmp(head, "embedding")          ? PR_ROUTE_TEI_EMBED
                    : !strcmp(head, "sparse_embedding") ? PR_ROUTE_TEI_EMBED_SPARSE
                                                        : PR_ROUTE_TEI_PREDICT;
    return compute_start(c, kind);
}
