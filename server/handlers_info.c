/* The routes that need no compute: probes, descriptions, metrics and the
 * cache admin.  Their reply shapes are proto's (reply.h). */
#include <cblas.h>
#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <string.h>

#include "er_util.h"
#include "handlers.h"
#include "reply.h"

bool srv_handle_health(srv_call *c) {
    srv_reply_json(c, 200, pr_health_reply());
    return true;
}

bool srv_handle_ready(srv_call *c) {
    if (srv_app_draining(c->app)) srv_error(c, 503, "draining for shutdown");
    else srv_reply_json(c, 200, pr_ready_reply(er_taskset_count(srv_app_tasks(c->app))));
    return true;
}

static json_t *cache_json(const srv_app_view *a) {
    const srv_config *cfg = srv_app_config(a);
    json_t *j = pr_cache_reply(er_taskset_store(srv_app_tasks(a)), cfg->store_path, cfg->store_dtype);
    if (j) json_object_set_new(j, "tier", pr_tier_reply(er_taskset_tier(srv_app_tasks(a))));
    return j;
}

bool srv_handle_info(srv_call *c) {
    const srv_config *cfg = srv_app_config(c->app);
    pr_server_info si = {
        .version = ER_VERSION, .libmicrohttpd = MHD_get_version(), .jansson = JANSSON_VERSION,
        .lmdb = mdb_version(NULL, NULL, NULL), .openblas = openblas_get_config(),
        .max_inputs = cfg->max_inputs, .token_cap = cfg->max_tokens,
        .max_body = cfg->max_body, .queue = cfg->queue_max, .batch_tokens = cfg->batch_tokens,
        .batch_seqs = cfg->batch_seqs, .deadline_ms = cfg->deadline_ms,
        .conn_timeout_s = cfg->conn_timeout_s, .workers = cfg->workers,
        .blas_threads = openblas_get_num_threads(), .auto_truncate = cfg->auto_truncate,
        .tokenization_workers = cfg->http_threads};
    /* TEI's single model: the first embedding task, else the first task */
    const er_taskset *ts = srv_app_tasks(c->app);
    for (int i = er_taskset_count(ts) - 1; i >= 0; i--)
        if (!si.model || er_model_config(er_task_model(er_taskset_at(ts, i)))->head == ER_HEAD_EMBEDDING)
            si.model = er_taskset_at(ts, i);
    si.served_model_name = srv_compat_served_name(srv_app_compat(c->app), si.model);
    srv_reply_json(c, 200, pr_info_reply(&si, srv_app_tasks(c->app), cache_json(c->app)));
    return true;
}

bool srv_handle_tasks(srv_call *c) {
    srv_reply_json(c, 200, pr_tasks_reply(srv_app_tasks(c->app), srv_app_config(c->app)->max_tokens));
    return true;
}

bool srv_handle_metrics(srv_call *c) {
    const srv_app_view *a = c->app;
    size_t n = 0;
    char *s = srv_metrics_render(srv_app_metrics(a), er_taskset_store(srv_app_tasks(a)),
                                 er_taskset_tier(srv_app_tasks(a)),
                                 eng_queue_depth(srv_app_engine(a)), atomic_load(a->in_flight), &n);
    if (!s) {
        srv_error(c, 500, "out of memory");
        return true;
    }
    c->resp.status = 200;
    c->resp.body = s;
    c->resp.body_len = n;
    c->resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return true;
}

bool srv_handle_cache(srv_call *c) {
    if (strcmp(c->method, "DELETE") != 0) {
        srv_reply_json(c, 200, cache_json(c->app));
        return true;
    }
    er_store *s = er_taskset_store(srv_app_tasks(c->app));
    er_err err = {0};
    if (!s) srv_error(c, 404, "no store configured (--store)");
    else if (er_store_purge(s, &err) != ER_OK) srv_error(c, 500, "purge: %s", err.msg);
    else srv_reply_json(c, 200, pr_purge_reply(cache_json(c->app)));
    return true;
}

/* OpenAI's model list: every task by its name, then every alias. */
static json_t *models_list(const srv_app_view *a) {
    const er_taskset *ts = srv_app_tasks(a);
    const srv_compat *cx = srv_app_compat(a);
    long long created = srv_compat_created(cx);
    json_t *data = json_array();
    for (int i = 0; data && i < er_taskset_count(ts); i++) {
        const char *name = er_task_name(er_taskset_at(ts, i));
        if (er_model_config(er_task_model(er_taskset_at(ts, i)))->head == ER_HEAD_TOKEN_EMBEDDING)
            continue; /* /embed_all's twins are no model a client names */
        json_array_append_new(data, pr_model_json(name, created, name));
    }
    for (int i = 0; data && i < srv_compat_alias_count(cx); i++) {
        const er_task *t;
        const char *alias = srv_compat_alias_at(cx, i, &t);
        json_array_append_new(data, pr_model_json(alias, created, er_task_name(t)));
    }
    return data;
}

bool srv_handle_models(srv_call *c) {
    if (!c->path_task[0]) {
        srv_reply_json(c, 200, pr_models_reply(models_list(c->app)));
        return true;
    }
    const er_task *t = srv_compat_find(srv_app_compat(c->app), c->path_task);
    if (!t)
        srv_error_f(c, 404, PR_FAULT_MODEL, "model", "The model `%s` does not exist (see GET /v1/models)",
                    c->path_task);
    else
        srv_reply_json(c, 200, pr_model_json(c->path_task, srv_compat_created(srv_app_compat(c->app)),
                                             er_task_name(t)));
    return true;
}
