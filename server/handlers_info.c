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
    return pr_cache_reply(er_taskset_store(srv_app_tasks(a)), cfg->store_path, cfg->store_dtype);
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
        .blas_threads = openblas_get_num_threads()};
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
