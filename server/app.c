/* Application lifecycle, the router and the routes that need no compute. */
#include <cblas.h>
#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app_internal.h"

/* ---- lifecycle ---- */

static er_tokenizer *load_tok(srv_app *a, const char *path, er_err *err) {
    er_tokenizer *t = er_tokenizer_load(path, err);
    if (!t) return NULL;
    er_tokenizer **o = realloc(a->owned, (size_t)(a->n_owned + 1) * sizeof *o);
    if (!o) {
        er_tokenizer_free(t);
        er_set(err, ER_ERR_NOMEM, "tokenizer");
        return NULL;
    }
    a->owned = o;
    a->owned[a->n_owned++] = t;
    return t;
}

static bool has_tokenizer(const char *dir) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (stat(p, &st) == 0) return true;
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    return stat(p, &st) == 0;
}

er_status srv_app_new(const srv_config *cfg, srv_app **out, er_err *err) {
    *out = NULL;
    srv_app *a = calloc(1, sizeof *a);
    if (!a) return er_set(err, ER_ERR_NOMEM, "app");
    a->cfg = *cfg;
    openblas_set_num_threads(cfg->blas_threads);
    er_task_spec specs[SRV_MAX_TASKS];
    for (int i = 0; i < cfg->n_tasks; i++)
        specs[i] = (er_task_spec){cfg->tasks[i].name, cfg->tasks[i].dir, cfg->tasks[i].cut};
    er_taskset_params tp = er_taskset_default_params();
    tp.cut = cfg->cut;
    tp.store_path = cfg->store_path;
    tp.store.budget_bytes = cfg->store_budget;
    int dt = er_store_dtype_parse(cfg->store_dtype ? cfg->store_dtype : "fp16");
    if (dt < 0) {
        free(a);
        return er_set(err, ER_ERR_INVALID_ARG, "--store-dtype must be fp32, fp16 or int8");
    }
    tp.store.dtype = (er_store_dtype)dt;
    er_status st = er_taskset_load(specs, cfg->n_tasks, &tp, &a->ts, err);
    if (st != ER_OK) goto fail;
    a->tok = calloc((size_t)cfg->n_tasks, sizeof *a->tok);
    if (!a->tok) {
        st = er_set(err, ER_ERR_NOMEM, "app");
        goto fail;
    }
    er_tokenizer *fallback = NULL;
    int max_pos = 1 << 30;
    for (int i = 0; i < cfg->n_tasks; i++) {
        const er_task *t = er_taskset_at(a->ts, i);
        const er_config *mc = er_model_config(er_task_model(t));
        if (mc->max_positions < max_pos) max_pos = mc->max_positions;
        const char *dir = cfg->tasks[i].dir;
        if (has_tokenizer(dir)) {
            a->tok[i] = load_tok(a, dir, err);
        } else if (cfg->tokenizer) {
            if (!fallback) fallback = load_tok(a, cfg->tokenizer, err);
            a->tok[i] = fallback;
        } else {
            st = er_set(err, ER_ERR_NOT_FOUND,
                        "task %s: no tokenizer.json or vocab.txt in %s, and no --tokenizer",
                        cfg->tasks[i].name, dir);
            goto fail;
        }
        if (!a->tok[i]) {
            st = err ? err->code : ER_ERR_IO;
            goto fail;
        }
    }
    a->max_seq_len = cfg->max_tokens;
    if (a->max_seq_len > max_pos) a->max_seq_len = max_pos;
    if (a->max_seq_len > cfg->batch_tokens) a->max_seq_len = cfg->batch_tokens;
    a->lim = pr_default_limits();
    a->lim.max_inputs = cfg->max_inputs;
    /* ids past max_seq_len are truncated (or 413 with truncate false) by the
     * handler; the parser only bounds the array. */
    a->lim.max_ids = 8 * a->max_seq_len;
    a->lim.max_text = cfg->max_body;
    a->m = srv_metrics_new();
    eng_params ep = {.workers = cfg->workers, .queue_max = cfg->queue_max,
                     .batch_tokens = cfg->batch_tokens, .batch_seqs = cfg->batch_seqs,
                     .max_seq_len = a->max_seq_len, .metrics = a->m};
    if (!a->m) {
        st = er_set(err, ER_ERR_NOMEM, "metrics");
        goto fail;
    }
    st = eng_init(a->ts, &ep, &a->eng, err);
    if (st != ER_OK) goto fail;
    *out = a;
    return ER_OK;
fail:
    srv_app_free(a);
    return st;
}

void srv_app_drain(srv_app *a) {
    if (!a) return;
    atomic_store(&a->draining, true);
    eng_drain(a->eng);
    er_store *s = a->ts ? er_taskset_store(a->ts) : NULL;
    if (s) er_store_flush(s);
}

void srv_app_free(srv_app *a) {
    if (!a) return;
    srv_app_drain(a);
    eng_free(a->eng);
    for (int i = 0; i < a->n_owned; i++) er_tokenizer_free(a->owned[i]);
    free(a->owned);
    free(a->tok);
    er_taskset_free(a->ts);
    srv_metrics_free(a->m);
    free(a);
}

int srv_app_in_flight(const srv_app *a) { return atomic_load(&a->in_flight); }

void srv_app_flush(srv_app *a) {
    er_store *s = er_taskset_store(a->ts);
    if (s) er_store_flush(s);
}

void srv_app_describe(const srv_app *a, char *buf, size_t n) {
    size_t len = (size_t)snprintf(
        buf, n,
        "erserve %s (libmicrohttpd %s, jansson %s, %s); OpenBLAS %s, %d BLAS thread(s) x %d "
        "worker(s); cut %d; tasks:",
        ERSERVE_VERSION, MHD_get_version(), JANSSON_VERSION, mdb_version(NULL, NULL, NULL),
        openblas_get_config(), openblas_get_num_threads(), a->cfg.workers, er_taskset_cut(a->ts));
    for (int i = 0; i < er_taskset_count(a->ts) && len < n; i++) {
        const er_task *t = er_taskset_at(a->ts, i);
        len += (size_t)snprintf(buf + len, n - len, " %s=%s(cut %d, stack %d)", er_task_name(t),
                                er_head_type_name(er_model_config(er_task_model(t))->head),
                                er_task_cut(t), er_task_lower_stack(t));
    }
    if (len < n)
        len += (size_t)snprintf(buf + len, n - len, "; %d shared lower stack(s); store %s",
                                er_taskset_lower_stacks(a->ts),
                                a->cfg.store_path ? a->cfg.store_path : "off");
    if (len < n && a->cfg.store_path)
        snprintf(buf + len, n - len, " (%s, budget %llu bytes)", a->cfg.store_dtype,
                 (unsigned long long)a->cfg.store_budget);
}

/* ---- replies ---- */

void srv_error(srv_call *c, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(c->resp.body);
    c->resp.status = status;
    c->resp.content_type = "application/json";
    c->resp.body = pr_error_body(status, msg, &c->resp.body_len);
    if (status == 429 || status == 503) c->resp.retry_after = status == 429 ? 1 : 5;
    if (!c->resp.body) c->resp.body_len = 0;
}

void srv_reply_json(srv_call *c, int status, json_t *j) {
    if (!j) {
        srv_error(c, 500, "out of memory building the reply");
        return;
    }
    free(c->resp.body);
    c->resp.body = pr_dump(j, &c->resp.body_len);
    if (!c->resp.body) {
        srv_error(c, 500, "out of memory building the reply");
        return;
    }
    c->resp.status = status;
    c->resp.content_type = "application/json";
}

int srv_status_of(er_status st) {
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

/* ---- simple routes ---- */

static json_t *task_json(const srv_app *a, const er_task *t) {
    const er_config *mc = er_model_config(er_task_model(t));
    json_t *labels = json_array();
    for (int i = 0; i < mc->num_labels; i++) json_array_append_new(labels, json_string(mc->labels[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:b,s:i,s:i,s:i,s:i,s:i}", "name", er_task_name(t),
                     "head", er_head_type_name(mc->head), "architecture", mc->architecture,
                     "model_type", mc->model_type, "labels", labels, "multi_label", mc->multi_label,
                     "hidden_size", mc->hidden_size, "num_layers", mc->num_layers, "cut",
                     er_task_cut(t), "lower_stack", er_task_lower_stack(t), "max_input_tokens",
                     a->max_seq_len);
}

static json_t *tasks_json(const srv_app *a) {
    json_t *arr = json_array();
    for (int i = 0; i < er_taskset_count(a->ts); i++)
        json_array_append_new(arr, task_json(a, er_taskset_at(a->ts, i)));
    return arr;
}

static json_t *cache_json(const srv_app *a) {
    er_store *s = er_taskset_store(a->ts);
    if (!s) return json_pack("{s:b}", "enabled", 0);
    er_store_counters c;
    er_store_stats(s, &c);
    return json_pack("{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "path",
                     a->cfg.store_path, "dtype", a->cfg.store_dtype, "entries", (json_int_t)c.entries,
                     "bytes", (json_int_t)c.bytes, "budget_bytes", (json_int_t)c.budget_bytes, "hits",
                     (json_int_t)c.hits, "misses", (json_int_t)c.misses, "inserts",
                     (json_int_t)c.inserts, "evictions", (json_int_t)c.evictions, "corrupt",
                     (json_int_t)c.corrupt, "dropped", (json_int_t)c.dropped, "write_errors",
                     (json_int_t)c.write_errors);
}

static json_t *info_json(const srv_app *a) {
    const srv_config *c = &a->cfg;
    return json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s},s:i,s:i,s:o,s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i},"
        "s:o}",
        "version", ERSERVE_VERSION, "versions", "libmicrohttpd", MHD_get_version(), "jansson",
        JANSSON_VERSION, "lmdb", mdb_version(NULL, NULL, NULL), "openblas", openblas_get_config(),
        "cut", er_taskset_cut(a->ts), "lower_stacks", er_taskset_lower_stacks(a->ts), "tasks",
        tasks_json(a), "limits", "max_inputs", c->max_inputs, "max_input_tokens", a->max_seq_len,
        "max_body_bytes", (json_int_t)c->max_body, "queue", c->queue_max, "batch_tokens",
        c->batch_tokens, "batch_sequences", c->batch_seqs, "deadline_ms", c->deadline_ms,
        "connection_timeout_s", c->conn_timeout_s, "compute", "workers", c->workers,
        "blas_threads", openblas_get_num_threads(), "cache", cache_json(a));
}

/* ---- router ---- */

typedef enum { AUTH_NONE, AUTH_API, AUTH_ADMIN } auth_kind;

static bool bearer_ok(const char *hdr, const char *key) {
    if (!key) return true;
    if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0) return false;
    const char *k = hdr + 7;
    size_t n = strlen(key);
    if (strlen(k) != n) return false;
    unsigned char d = 0; /* constant time in the key length */
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(k[i] ^ key[i]);
    return d == 0;
}

static bool is_json(const char *ct) {
    if (!ct) return false;
    while (*ct == ' ') ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void sanitize_id(const char *in, char *out, size_t n) {
    static _Atomic unsigned long long counter;
    size_t k = 0;
    for (; in && in[k] && k + 1 < n && k < 64; k++) {
        unsigned char ch = (unsigned char)in[k];
        if (ch < 0x21 || ch > 0x7e) break;
        out[k] = (char)ch;
    }
    if (in && in[k] == '\0' && k > 0) {
        out[k] = '\0';
        return;
    }
    snprintf(out, n, "%08x%08llx", (unsigned)(eng_now_ns() & 0xffffffffu),
             (unsigned long long)atomic_fetch_add(&counter, 1));
}

srv_call *srv_call_new(srv_app *app, const srv_request *req, bool (*alive)(void *user),
                       void (*resume)(void *user), void *user) {
    srv_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->app = app;
    c->alive = alive;
    c->resume = resume;
    c->user = user;
    c->t0 = eng_now_ns();
    c->route = M_ROUTE_OTHER;
    c->rq = req;
    sanitize_id(req->request_id, c->resp.request_id, sizeof c->resp.request_id);
    atomic_fetch_add(&app->in_flight, 1);
    return c;
}

srv_response *srv_call_response(srv_call *c) {
    c->resp.total_ms = (double)(eng_now_ns() - c->t0) * 1e-6;
    return &c->resp;
}

void srv_call_free(srv_call *c) {
    if (!c) return;
    srv_call_release_compute(c);
    free(c->resp.body);
    atomic_fetch_sub(&c->app->in_flight, 1);
    free(c);
}

/* Route table: exact paths; /v1/tasks/{task}/predict is matched by hand. */
typedef struct {
    const char *path, *allow;
    m_route route;
} route_def;

static const route_def ROUTES[] = {
    {"/health", "GET, HEAD", M_ROUTE_HEALTH},     {"/ready", "GET, HEAD", M_ROUTE_READY},
    {"/info", "GET", M_ROUTE_INFO},               {"/v1/tasks", "GET", M_ROUTE_TASKS},
    {"/metrics", "GET", M_ROUTE_METRICS},         {"/v1/cache", "GET, DELETE", M_ROUTE_CACHE},
    {"/v1/cache/warm", "POST", M_ROUTE_CACHE_WARM}, {"/v1/embeddings", "POST", M_ROUTE_EMBEDDINGS},
    {"/embed", "POST", M_ROUTE_EMBED},            {"/predict", "POST", M_ROUTE_TEI_PREDICT},
    {"/rerank", "POST", M_ROUTE_RERANK},          {"/tokenize", "POST", M_ROUTE_TOKENIZE},
};

static bool method_allowed(const char *allow, const char *m) {
    size_t n = strlen(m);
    for (const char *p = allow; (p = strstr(p, m)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',')) return true;
    return false;
}

void srv_call_finished(srv_call *c) {
    srv_app *a = c->app;
    uint64_t total = eng_now_ns() - c->t0;
    srv_metrics_request(a->m, c->route, c->resp.status);
    srv_metrics_stage(a->m, M_STAGE_TOTAL, total);
    if (!a->cfg.quiet)
        fprintf(stderr, "erserve: %s %s %d %.2fms id=%s\n", srv_route_name(c->route),
                c->method, c->resp.status, (double)total * 1e-6, c->resp.request_id);
}

static bool answer(srv_call *c) {
    srv_call_finished(c);
    return true;
}

bool srv_call_run(srv_call *c) {
    srv_app *a = c->app;
    const srv_request *rq = c->rq;
    const char *path = rq->path ? rq->path : "", *m = rq->method ? rq->method : "";
    snprintf(c->method, sizeof c->method, "%s", m);
    const route_def *rd = NULL;
    char task[72] = "";
    static const route_def predict = {"/v1/tasks/{task}/predict", "POST", M_ROUTE_PREDICT};
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
        if (!strcmp(path, ROUTES[i].path)) rd = &ROUTES[i];
    if (!rd && !strncmp(path, "/v1/tasks/", 10)) {
        const char *name = path + 10, *slash = strchr(name, '/');
        if (slash && !strcmp(slash, "/predict") && slash > name && (size_t)(slash - name) < sizeof task) {
            memcpy(task, name, (size_t)(slash - name));
            task[slash - name] = '\0';
            rd = &predict;
        }
    }
    if (!rd) {
        srv_error(c, 404, "no route %s", path);
        return answer(c);
    }
    c->route = rd->route;
    if (!method_allowed(rd->allow, m)) {
        c->resp.allow = rd->allow;
        srv_error(c, 405, "%s does not allow %s (allowed: %s)", path, m, rd->allow);
        return answer(c);
    }
    auth_kind ak = AUTH_NONE;
    if (rd->route == M_ROUTE_CACHE || rd->route == M_ROUTE_CACHE_WARM) ak = AUTH_ADMIN;
    else if (!strcmp(rd->allow, "POST") || rd->route == M_ROUTE_TASKS || rd->route == M_ROUTE_INFO)
        ak = AUTH_API;
    if ((ak == AUTH_API && !bearer_ok(rq->authorization, a->cfg.api_key)) ||
        (ak == AUTH_ADMIN && !bearer_ok(rq->authorization, a->cfg.admin_key))) {
        srv_error(c, 401, "missing or wrong %s key (Authorization: Bearer KEY)",
                  ak == AUTH_ADMIN ? "admin" : "API");
        return answer(c);
    }
    if (!strcmp(m, "POST")) {
        if (rq->body_too_large) {
            srv_error(c, 413, "request body larger than %zu bytes", a->cfg.max_body);
            return answer(c);
        }
        if (!is_json(rq->content_type)) {
            srv_error(c, 415, "Content-Type must be application/json");
            return answer(c);
        }
    }
    switch (rd->route) {
    case M_ROUTE_HEALTH:
        srv_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case M_ROUTE_READY:
        if (atomic_load(&a->draining)) srv_error(c, 503, "draining for shutdown");
        else srv_reply_json(c, 200, json_pack("{s:s,s:i}", "status", "ready", "tasks",
                                             er_taskset_count(a->ts)));
        break;
    case M_ROUTE_INFO: srv_reply_json(c, 200, info_json(a)); break;
    case M_ROUTE_TASKS: srv_reply_json(c, 200, json_pack("{s:o}", "tasks", tasks_json(a))); break;
    case M_ROUTE_METRICS: {
        size_t n = 0;
        char *s = srv_metrics_render(a->m, er_taskset_store(a->ts), eng_queue_depth(a->eng),
                                     atomic_load(&a->in_flight), &n);
        if (!s) {
            srv_error(c, 500, "out of memory");
            break;
        }
        c->resp.status = 200;
        c->resp.body = s;
        c->resp.body_len = n;
        c->resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
        break;
    }
    case M_ROUTE_CACHE:
        if (!strcmp(m, "DELETE")) {
            er_store *s = er_taskset_store(a->ts);
            er_err err = {0};
            if (!s) srv_error(c, 404, "no store configured (--store)");
            else if (er_store_purge(s, &err) != ER_OK) srv_error(c, 500, "purge: %s", err.msg);
            else srv_reply_json(c, 200, json_pack("{s:b,s:o}", "purged", 1, "cache", cache_json(a)));
        } else
            srv_reply_json(c, 200, cache_json(a));
        break;
    case M_ROUTE_TOKENIZE: srv_tokenize_route(c, rq); break;
    case M_ROUTE_PREDICT:
        return srv_compute_route(c, PR_ROUTE_PREDICT, task, rq) ? answer(c) : false;
    case M_ROUTE_EMBEDDINGS:
        return srv_compute_route(c, PR_ROUTE_EMBEDDINGS, NULL, rq) ? answer(c) : false;
    case M_ROUTE_EMBED:
        return srv_compute_route(c, PR_ROUTE_TEI_EMBED, NULL, rq) ? answer(c) : false;
    case M_ROUTE_TEI_PREDICT:
        return srv_compute_route(c, PR_ROUTE_TEI_PREDICT, NULL, rq) ? answer(c) : false;
    case M_ROUTE_RERANK:
        return srv_compute_route(c, PR_ROUTE_TEI_RERANK, NULL, rq) ? answer(c) : false;
    case M_ROUTE_CACHE_WARM:
        return srv_compute_route(c, PR_ROUTE_WARM, NULL, rq) ? answer(c) : false;
    default: srv_error(c, 404, "no route %s", path); break;
    }
    return answer(c);
}

/* ---- synchronous driver (tests) ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} waiter;

static void wake(void *u) {
    waiter *w = u;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void srv_app_handle_sync(srv_app *app, const srv_request *req, srv_response *out) {
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    memset(out, 0, sizeof *out);
    srv_call *c = srv_call_new(app, req, NULL, wake, &w);
    if (!c) {
        out->status = 500;
        return;
    }
    c->rq = req;
    if (!srv_call_run(c)) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    *out = *srv_call_response(c);
    c->resp.body = NULL;
    srv_call_free(c);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}
