/* The replies of the routes that describe the server (see reply.h). */
#include "reply.h"

json_t *pr_health_reply(void) { return json_pack("{s:s}", "status", "ok"); }

json_t *pr_ready_reply(int n_tasks) {
    return json_pack("{s:s,s:i}", "status", "ready", "tasks", n_tasks);
}

static json_t *task_json(const er_task *t, int max_input_tokens) {
    const er_config *mc = er_model_config(er_task_model(t));
    json_t *labels = json_array();
    for (int i = 0; i < mc->num_labels; i++) json_array_append_new(labels, json_string(mc->labels[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:b,s:i,s:i,s:i,s:i,s:i,s:i}", "name", er_task_name(t),
                     "head", er_head_type_name(mc->head), "architecture", mc->architecture,
                     "model_type", mc->model_type, "labels", labels, "multi_label", mc->multi_label,
                     "hidden_size", mc->hidden_size, "num_layers", mc->num_layers, "cut",
                     er_task_cut(t), "lower_stack", er_task_lower_stack(t), "max_input_tokens",
                     max_input_tokens, "output_width", er_model_head_width(er_task_model(t)));
}

static json_t *tasks_list(const er_taskset *ts, int max_input_tokens) {
    json_t *arr = json_array();
    for (int i = 0; i < er_taskset_count(ts); i++)
        json_array_append_new(arr, task_json(er_taskset_at(ts, i), max_input_tokens));
    return arr;
}

json_t *pr_tasks_reply(const er_taskset *ts, int max_input_tokens) {
    return json_pack("{s:o}", "tasks", tasks_list(ts, max_input_tokens));
}

json_t *pr_purge_reply(json_t *cache) { return json_pack("{s:b,s:o}", "purged", 1, "cache", cache); }

json_t *pr_cache_reply(const er_store *s, const char *path, const char *dtype) {
    if (!s) return json_pack("{s:b}", "enabled", 0);
    er_store_counters c;
    er_store_stats(s, &c);
    return json_pack("{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "path",
                     path, "dtype", dtype, "entries", (json_int_t)c.entries, "bytes",
                     (json_int_t)c.bytes, "budget_bytes", (json_int_t)c.budget_bytes, "hits",
                     (json_int_t)c.hits, "misses", (json_int_t)c.misses, "inserts",
                     (json_int_t)c.inserts, "evictions", (json_int_t)c.evictions, "corrupt",
                     (json_int_t)c.corrupt, "dropped", (json_int_t)c.dropped, "write_errors",
                     (json_int_t)c.write_errors);
}

json_t *pr_info_reply(const pr_server_info *si, const er_taskset *ts, json_t *cache) {
    return json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s},s:i,s:i,s:o,s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i},"
        "s:o}",
        "version", si->version, "versions", "libmicrohttpd", si->libmicrohttpd, "jansson",
        si->jansson, "lmdb", si->lmdb, "openblas", si->openblas, "cut", er_taskset_cut(ts),
        "lower_stacks", er_taskset_lower_stacks(ts), "tasks",
        tasks_list(ts, si->max_input_tokens), "limits", "max_inputs", si->max_inputs,
        "max_input_tokens", si->max_input_tokens, "max_body_bytes", (json_int_t)si->max_body,
        "queue", si->queue, "batch_tokens", si->batch_tokens, "batch_sequences", si->batch_seqs,
        "deadline_ms", si->deadline_ms, "connection_timeout_s", si->conn_timeout_s, "compute",
        "workers", si->workers, "blas_threads", si->blas_threads, "cache", cache);
}
