/* The routes that need no compute: probes, descriptions, metrics and the
 * cache admin. */
#include <cblas.h>
#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <string.h>

#include "er_util.h"
#include "handlers.h"

bool srv_handle_health(srv_call *c) {
    srv_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
    return true;
}

bool srv_handle_ready(srv_call *c) {
    if (srv_app_draining(c->app)) srv_error(c, 503, "draining for shutdown");
    else srv_reply_json(c, 200, json_pack("{s:s,s:i}", "status", "ready", "tasks",
                                         er_taskset_count(srv_app_tasks(c->app))));
    return true;
}

static json_t *task_json(const srv_app *a, const er_task *t) {
    const er_config *mc = er_model_config(er_task_model(t));
    json_t *labels = json_array();
    for (int i = 0; i < mc->num_labels; i++) json_array_append_new(labels, json_string(mc->labels[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:b,s:i,s:i,s:i,s:i,s:i}", "name", er_task_name(t),
                     "head", er_head_type_name(mc->head), "architecture", mc->architecture,
                     "model_type", mc->model_type, "labels", labels, "multi_label", mc->multi_label,
                     "hidden_size", mc->hidden_size, "num_layers", mc->num_layers, "cut",
                     er_task_cut(t), "lower_stack", er_task_lower_stack(t), "max_input_tokens",
                     srv_app_max_seq_len(a));
}

static json_t *tasks_json(const srv_app *a) {
    const er_taskset *ts = srv_app_tasks(a);
    json_t *arr = json_array();
    for (int i = 0; i < er_taskset_count(ts); i++)
        json_array_append_new(arr, task_json(a, er_taskset_at(ts, i)));
    return arr;
}

static json_t *cache_json(const srv_app *a) {
    er_store *s = er_taskset_store(srv_app_tasks(a));
    const srv_config *cfg = srv_app_config(a);
    if (!s) return json_pack("{s:b}", "enabled", 0);
    er_store_counters c;
    er_store_stats(s, &c);
    return json_pack("{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "path",
                     cfg->store_path, "dtype", cfg->store_dtype, "entries", (json_int_t)c.entries,
                     "bytes", (json_int_t)c.bytes, "budget_bytes", (json_int_t)c.budget_bytes, "hits",
                     (json_int_t)c.hits, "misses", (json_int_t)c.misses, "inserts",
                     (json_int_t)c.inserts, "evictions", (json_int_t)c.evictions, "corrupt",
                     (json_int_t)c.corrupt, "dropped", (json_int_t)c.dropped, "write_errors",
                     (json_int_t)c.write_errors);
}

static json_t *info_json(const srv_app *a) {
    const srv_config *c = srv_app_config(a);
    const er_taskset *ts = srv_app_tasks(a);
    return json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s},s:i,s:i,s:o,s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i},"
        "s:o}",
        "version", ER_VERSION, "versions", "libmicrohttpd", MHD_get_version(), "jansson",
        JANSSON_VERSION, "lmdb", mdb_version(NULL, NULL, NULL), "openblas", openblas_get_config(),
        "cut", er_taskset_cut(ts), "lower_stacks", er_taskset_lower_stacks(ts), "tasks",
        tasks_json(a), "limits", "max_inputs", c->max_inputs, "max_input_tokens",
        srv_app_max_seq_len(a), "max_body_bytes", (json_int_t)c->max_body, "queue", c->queue_max,
        "batch_tokens", c->batch_tokens, "batch_sequences", c->batch_seqs, "deadline_ms",
        c->deadline_ms, "connection_timeout_s", c->conn_timeout_s, "compute", "workers",
        c->workers, "blas_threads", openblas_get_num_threads(), "cache", cache_json(a));
}

bool srv_handle_info(srv_call *c) {
    srv_reply_json(c, 200, info_json(c->app));
    return true;
}

bool srv_handle_tasks(srv_call *c) {
    srv_reply_json(c, 200, json_pack("{s:o}", "tasks", tasks_json(c->app)));
    return true;
}

bool srv_handle_metrics(srv_call *c) {
    srv_app *a = c->app;
    size_t n = 0;
    char *s = srv_metrics_render(srv_app_metrics(a), er_taskset_store(srv_app_tasks(a)),
                                 eng_queue_depth(srv_app_engine(a)), srv_app_in_flight(a), &n);
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
    else srv_reply_json(c, 200, json_pack("{s:b,s:o}", "purged", 1, "cache", cache_json(c->app)));
    return true;
}
