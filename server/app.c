/* Application lifecycle and dispatch: configuration, tasks, engine and
 * metrics, and the path from a request to its route's handler through the
 * route table (routes.h).  No sockets and no reply shapes here. */
#include <cblas.h>
#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "handlers.h"
#include "er_log.h"
#include "er_util.h"
#include "gemm.h"

struct srv_app {
    srv_config cfg; /* a shallow copy: the caller's config must outlive the app */
    er_taskset *ts;
    er_tier *tier; /* the second tier, or NULL; outlives ts */
    eng *eng;
    srv_metrics *m;
    pr_limits lim;
    srv_compat *compat;
    int longest; /* tokens of the longest input any task accepts */
    atomic_int in_flight;
    atomic_bool draining;
    srv_app_view view; /* what calls and handlers read of it (call.h) */
    srv_config *reloaded; /* the last configuration SIGHUP read (owned); NULL before */
};

/* ---- lifecycle ---- */

/* With --embed-all every embedding task NAME gets a twin, NAME.tokens,
 * loaded unpooled (ER_HEAD_TOKEN_EMBEDDING: every token's last hidden
 * state) for TEI's /embed_all.  It shares the task's lower stack and store
 * namespace; its upper layers are loaded once more.  Appends the twins'
 * specs to specs (names in names) and returns the new count. */
static int add_token_twins(const srv_config *cfg, er_task_spec *specs, bool *tok,
                           char (*names)[ER_TASK_NAME_MAX + 1]) {
    int n = cfg->n_tasks;
    for (int i = 0; i < cfg->n_tasks && cfg->embed_all; i++) {
        er_config mc;
        er_err e = {0};
        if (er_config_load_dir(cfg->tasks[i].dir, &mc, &e) != ER_OK) continue; /* the load says why */
        bool emb = mc.head == ER_HEAD_EMBEDDING;
        er_config_free(&mc);
        if (!emb || strlen(cfg->tasks[i].name) + strlen(SRV_TOKENS_SUFFIX) > ER_TASK_NAME_MAX) continue;
        snprintf(names[n], sizeof names[n], "%s" SRV_TOKENS_SUFFIX, cfg->tasks[i].name);
        specs[n] = cfg->tasks[i];
        specs[n].name = names[n];
        tok[n++] = true;
    }
    return n;
}

/* --memcached: the pool every replica shares, in the store's dtype. */
static er_status open_tier(srv_app *a, er_dtype dtype, er_err *err) {
    const srv_config *cfg = &a->cfg;
    if (!cfg->memcached || !*cfg->memcached) return ER_OK; /* "" = none (compose's default) */
    if (!cfg->store_path) return er_set(err, ER_ERR_INVALID_ARG, "--memcached needs --store");
    er_tier_params p = er_tier_default_params();
    p.servers = cfg->memcached;
    p.timeout_ms = cfg->memcached_timeout_ms;
    p.failures = cfg->memcached_failures;
    p.cooldown_ms = cfg->memcached_cooldown_ms;
    p.dtype = dtype;
    return er_tier_new(&p, &a->tier, err);
}

static er_status load_tasks(srv_app *a, er_err *err) {
    const srv_config *cfg = &a->cfg;
    er_task_spec specs[2 * SRV_MAX_TASKS];
    bool tok[2 * SRV_MAX_TASKS] = {false};
    char names[SRV_MAX_TASKS * 2][ER_TASK_NAME_MAX + 1];
    memcpy(specs, cfg->tasks, (size_t)cfg->n_tasks * sizeof *specs);
    int n = add_token_twins(cfg, specs, tok, names);
    er_taskset_params tp = er_taskset_default_params();
    tp.token_embeddings = tok;
    tp.cut = cfg->cut;
    tp.store_path = cfg->store_path;
    tp.store.budget_bytes = cfg->store_budget;
    tp.tokenizer = cfg->tokenizer;
    tp.model_root = cfg->model_root;
    tp.lora_merge = cfg->lora_merge;
    tp.raw_embeddings = true; /* proto normalises, so `normalize: false` can be raw */
    int dt = er_store_dtype_parse(cfg->store_dtype ? cfg->store_dtype : "fp16");
    if (dt < 0) return er_set(err, ER_ERR_INVALID_ARG, "--store-dtype must be fp32, fp16 or int8");
    tp.store.dtype = (er_dtype)dt;
    /* the backend before any model loads: packing depends on it */
    er_err gerr = {0};
    if (er_gemm_select(cfg->gemm ? cfg->gemm : "auto", &gerr) != ER_OK)
        return er_set(err, gerr.code, "--gemm: %.400s", gerr.msg);
    er_status st = open_tier(a, tp.store.dtype, err);
    if (st != ER_OK) return st;
    tp.tier = a->tier;
    st = er_taskset_load(specs, n, &tp, &a->ts, err);
    if (st != ER_OK) return st;
    for (int i = 0; i < cfg->n_tasks; i++)
        if (!er_task_tokenizer(er_taskset_at(a->ts, i)))
            return er_set(err, ER_ERR_NOT_FOUND,
                          "task %s: no tokenizer.json or vocab.txt in %s, and no --tokenizer",
                          cfg->tasks[i].name, cfg->tasks[i].dir);
    return ER_OK;
}

er_status srv_app_new(const srv_config *cfg, srv_app **out, er_err *err) {
    *out = NULL;
    srv_app *a = calloc(1, sizeof *a);
    if (!a) return er_set(err, ER_ERR_NOMEM, "app");
    a->cfg = *cfg;
    openblas_set_num_threads(cfg->blas_threads);
    er_status st = load_tasks(a, err);
    if (st != ER_OK) goto fail;
    if ((st = srv_compat_new(cfg, a->ts, &a->compat, err)) != ER_OK) goto fail;
    a->longest = er_taskset_longest_input(a->ts, cfg->max_tokens);
    a->lim = pr_default_limits();
    a->lim.max_inputs = cfg->max_inputs;
    a->lim.auto_truncate = cfg->auto_truncate;
    /* ids past a task's limit are truncated (or 413 with truncate false) by
     * the handler; the parser only bounds the array. */
    a->lim.max_ids = 8 * a->longest;
    a->lim.max_text = cfg->max_body;
    const char **labels = malloc((size_t)srv_route_count() * sizeof *labels);
    for (int i = 0; labels && i < srv_route_count(); i++) labels[i] = srv_route_at(i)->label;
    a->m = labels ? srv_metrics_new(labels, srv_route_count()) : NULL;
    free(labels);
    if (!a->m) {
        st = er_set(err, ER_ERR_NOMEM, "metrics");
        goto fail;
    }
    eng_params ep = {.workers = cfg->workers, .queue_max = cfg->queue_max,
                     .batch_tokens = cfg->batch_tokens, .batch_seqs = cfg->batch_seqs,
                     .max_seq_len = a->longest, .metrics = a->m};
    st = eng_init(a->ts, &ep, &a->eng, err);
    if (st != ER_OK) goto fail;
    a->view = (srv_app_view){.cfg = &a->cfg, .ts = a->ts, .metrics = a->m, .engine = a->eng,
                             .limits = &a->lim, .compat = a->compat,
                             .draining = &a->draining, .in_flight = &a->in_flight,
                             .tasks_admin = a->ts};
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
    srv_compat_free(a->compat);
    er_taskset_free(a->ts);
    er_tier_free(a->tier);
    srv_metrics_free(a->m);
    srv_config_free(a->reloaded);
    free(a->reloaded);
    free(a);
}

int srv_app_in_flight(const srv_app *a) { return atomic_load(&a->in_flight); }

srv_call *srv_call_new(srv_app *app, const srv_request *req, bool (*alive)(void *user),
                       void (*resume)(void *user), void *user) {
    return srv_call_create(&app->view, req, alive, resume, user);
}

void srv_app_flush(srv_app *a) {
    er_store *s = er_taskset_store(a->ts);
    if (s) er_store_flush(s);
}


int srv_app_reload(srv_app *a, int argc, char **argv, er_err *err) {
    srv_config *now = malloc(sizeof *now);
    if (!now) return er_set(err, ER_ERR_NOMEM, "out of memory"), -1;
    srv_config_defaults(now);
    bool printed = false;
    if (srv_config_load(now, argc, argv, stderr, &printed, err) != ER_OK) {
        srv_config_free(now);
        free(now);
        return -1;
    }
    int changed = srv_tasks_reload(&a->view, a->reloaded ? a->reloaded : &a->cfg, now);
    srv_config_free(a->reloaded);
    free(a->reloaded);
    a->reloaded = now;
    return changed;
}

void srv_app_describe(const srv_app *a, char *buf, size_t n) {
    size_t len = (size_t)snprintf(
        buf, n,
        "erserve %s (libmicrohttpd %s, jansson %s, %s); OpenBLAS %s, %d BLAS thread(s) x %d "
        "worker(s); %s; cut %d; tasks:",
        ER_VERSION, MHD_get_version(), JANSSON_VERSION, mdb_version(NULL, NULL, NULL),
        openblas_get_config(), openblas_get_num_threads(), a->cfg.workers, er_gemm_describe(),
        er_taskset_cut(a->ts));
    for (int i = 0; i < er_taskset_count(a->ts) && len < n; i++) {
        const er_task *t = er_taskset_at(a->ts, i);
        if (!er_task_live(t)) continue;
        len += (size_t)snprintf(buf + len, n - len, " %s=%s(cut %d, stack %d, %s)",
                                er_task_name(t),
                                er_head_type_name(er_model_config(er_task_model(t))->head),
                                er_task_cut(t), er_task_lower_stack(t),
                                er_compute_name(er_model_compute(er_task_model(t))));
    }
    if (len < n)
        len += (size_t)snprintf(buf + len, n - len, "; %d shared lower stack(s); store %s",
                                er_taskset_lower_stacks(a->ts),
                                a->cfg.store_path ? a->cfg.store_path : "off");
    if (len < n && a->cfg.store_path)
        len += (size_t)snprintf(buf + len, n - len, " (%s, budget %llu bytes)", a->cfg.store_dtype,
                                (unsigned long long)a->cfg.store_budget);
    if (len < n && a->cfg.memcached)
        len += (size_t)snprintf(buf + len, n - len, "; second tier memcached %s (timeout %d ms, "
                                "breaker after %d failures, cool-down %d ms)", a->cfg.memcached,
                                a->cfg.memcached_timeout_ms, a->cfg.memcached_failures,
                                a->cfg.memcached_cooldown_ms);
    if (len < n)
        snprintf(buf + len, n - len, "; admin routes: %s",
                 a->cfg.admin_key ? "key required" : "loopback only (no --admin-key)");
}

/* ---- dispatch ---- */

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

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104; NULL (unknown) is not. */
static bool is_loopback(const struct sockaddr *sa) {
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* The route's auth level against the request's key; false with a 401, or a
 * 403 for an admin route reached from off the machine without --admin-key. */
static bool authorized(srv_call *c) {
    const srv_config *cfg = c->app->cfg;
    srv_auth level = c->route->auth;
    if (level == SRV_AUTH_ADMIN && !cfg->admin_key && !is_loopback(c->rq->client_addr)) {
        srv_error(c, 403, "admin routes answer loopback clients only when no admin key is "
                          "configured; set --admin-key (ERSERVE_ADMIN_KEY) to use them remotely");
        return false;
    }
    const char *key = level == SRV_AUTH_ADMIN ? cfg->admin_key
                      : level == SRV_AUTH_API ? cfg->api_key
                                              : NULL;
    if (bearer_ok(c->rq->authorization, key)) return true;
    srv_error(c, 401, "missing or wrong %s key (Authorization: Bearer KEY)",
              level == SRV_AUTH_ADMIN ? "admin" : "API");
    return false;
}

/* CORS: an allowed Origin gets Access-Control-Allow-Origin on every reply;
 * a preflight (OPTIONS with Access-Control-Request-Method, before any auth:
 * browsers send it without credentials) is answered 204 here.  With CORS
 * off, OPTIONS is a method like any other (405). */
static bool preflight(srv_call *c) {
    const srv_compat *cx = c->app->compat;
    const char *allow = srv_compat_cors_on(cx) ? srv_compat_cors_origin(cx, c->rq->origin) : NULL;
    if (allow && c->rq->origin) snprintf(c->resp.cors_origin, sizeof c->resp.cors_origin, "%s", allow);
    if (!srv_compat_cors_on(cx) || strcmp(c->method, "OPTIONS") != 0 || !c->rq->cors_method) return false;
    c->resp.status = 204;
    c->resp.content_type = "text/plain";
    if (c->resp.cors_origin[0]) c->resp.cors_methods = c->route->allow;
    return true;
}

/* Routes the call and checks it against its table entry: 404, a CORS
 * preflight (204), 405 + Allow, 401 / 403, then the body (413, 415).  False
 * with the reply set. */
static bool admit(srv_call *c) {
    const srv_request *rq = c->rq;
    const char *path = rq->path ? rq->path : "";
    c->route = srv_route_find(path, c->path_task, sizeof c->path_task);
    if (!c->route) return srv_error(c, 404, "no route %s", path), false;
    c->route = srv_route_for_method(c->route, c->method);
    c->route_index = srv_route_index(c->route);
    if (preflight(c)) return false;
    if (!srv_route_allows(c->route, c->method)) {
        c->resp.allow = srv_route_allow_all(c->route);
        srv_error(c, 405, "%s does not allow %s (allowed: %s)", path, c->method, c->resp.allow);
        return false;
    }
    if (!authorized(c)) return false;
    if (rq->body_too_large) /* any method: such a body is never read */
        return srv_error(c, 413, "request body larger than %zu bytes", c->app->cfg->max_body), false;
    if (strcmp(c->method, "POST") != 0) return true;
    if (!is_json(rq->content_type))
        return srv_error(c, 415, "Content-Type must be application/json"), false;
    return true;
}

bool srv_call_run(srv_call *c) {
    snprintf(c->method, sizeof c->method, "%s", c->rq->method ? c->rq->method : "");
    if (admit(c) && !c->route->handler(c)) return false; /* a worker answers */
    srv_call_finished(c);
    return true;
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
