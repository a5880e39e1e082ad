/* The replies of the routes that describe the server (see reply.h). */
#include "reply.h"

#include <stdio.h>

json_t *pr_health_reply(void) { return json_pack("{s:s}", "status", "ok"); }

json_t *pr_ready_reply(int n_tasks) {
    return json_pack("{s:s,s:i}", "status", "ready", "tasks", n_tasks);
}

static json_t *task_json(const er_task *t, int token_cap) {
    const er_config *mc = er_model_config(er_task_model(t));
    json_t *labels = json_array();
    for (int i = 0; i < mc->num_labels; i++) json_array_append_new(labels, json_string(mc->labels[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:b,s:i,s:i,s:i,s:i,s:i,s:i,s:s}", "name", er_task_name(t),
                     "head", er_head_type_name(mc->head), "architecture", mc->architecture,
                     "model_type", mc->model_type, "labels", labels, "multi_label", mc->multi_label,
                     "hidden_size", mc->hidden_size, "num_layers", mc->num_layers, "cut",
                     er_task_cut(t), "lower_stack", er_task_lower_stack(t), "max_input_tokens",
                     er_task_max_input_tokens(t, token_cap), "output_width",
                     er_model_head_width(er_task_model(t)), "compute",
                     er_compute_name(er_model_compute(er_task_model(t))));
}

static json_t *tasks_list(const er_taskset *ts, int token_cap) {
    json_t *arr = json_array();
    for (int i = 0; i < er_taskset_count(ts); i++) {
        const er_task *t = er_taskset_at(ts, i);
        if (!er_task_acquire(ts, t)) continue; /* removed at run time */
        json_array_append_new(arr, task_json(t, token_cap));
        er_task_release(ts, t);
    }
    return arr;
}

json_t *pr_tasks_reply(const er_taskset *ts, int token_cap) {
    return json_pack("{s:o}", "tasks", tasks_list(ts, token_cap));
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

json_t *pr_models_reply(json_t *data) {
    if (!data) return NULL;
    return json_pack("{s:s,s:o}", "object", "list", "data", data);
}

json_t *pr_model_json(const char *id, long long created, const char *task) {
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", id, "object", "model", "created",
                     (json_int_t)created, "owned_by", "erserve", "task", task);
}

/* TEI's model_type: {"embedding": {"pooling"}}, {"classifier": {"id2label",
 * "label2id"}} ({"reranker": ...} for one label), or for the heads TEI has
 * no name for, {"<head>": {}}. */
static json_t *tei_model_type(const er_config *mc) {
    static const char *const pool[] = {"cls", "mean", "max"};
    if (mc->head == ER_HEAD_EMBEDDING)
        return json_pack("{s:{s:s}}", "embedding", "pooling", pool[mc->pooling]);
    if (mc->head != ER_HEAD_SEQUENCE_CLASSIFICATION) return json_pack("{s:{}}", er_head_type_name(mc->head));
    json_t *id2label = json_object(), *label2id = json_object();
    for (int i = 0; i < mc->num_labels; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        json_object_set_new(id2label, k, json_string(mc->labels[i]));
        json_object_set_new(label2id, mc->labels[i], json_integer(i));
    }
    return json_pack("{s:{s:o,s:o}}", mc->num_labels == 1 ? "reranker" : "classifier", "id2label",
                     id2label, "label2id", label2id);
}

/* TEI's /info fields, added to j (erserve's own); NULL on failure. */
static json_t *add_tei_info(json_t *j, const pr_server_info *si) {
    if (!j) return NULL;
    const er_config *mc = si->model ? er_model_config(er_task_model(si->model)) : NULL;
    json_t *tei = json_pack(
        "{s:s?,s:s?,s:s,s:o,s:i,s:i,s:i,s:i,s:i,s:b,s:i}", "model_id",
        si->model ? er_task_name(si->model) : NULL, "served_model_name", si->served_model_name,
        "model_dtype", "float32", "model_type", mc ? tei_model_type(mc) : json_null(),
        "max_concurrent_requests", si->queue, "max_input_length",
        si->model ? er_task_max_input_tokens(si->model, si->token_cap) : 0,
        "max_batch_tokens", si->batch_tokens, "max_batch_requests", si->batch_seqs,
        "max_client_batch_size", si->max_inputs, "auto_truncate", si->auto_truncate,
        "tokenization_workers", si->tokenization_workers);
    if (!tei || json_object_update(j, tei)) {
        json_decref(tei);
        json_decref(j);
        return NULL;
    }
    json_decref(tei);
    return j;
}

json_t *pr_info_reply(const pr_server_info *si, const er_taskset *ts, json_t *cache) {
    json_t *j = json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s},s:i,s:i,s:o,s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i},"
        "s:o}",
        "version", si->version, "versions", "libmicrohttpd", si->libmicrohttpd, "jansson",
        si->jansson, "lmdb", si->lmdb, "openblas", si->openblas, "cut", er_taskset_cut(ts),
        "lower_stacks", er_taskset_lower_stacks(ts), "tasks",
        tasks_list(ts, si->token_cap), "limits", "max_inputs", si->max_inputs,
        "max_input_tokens", er_taskset_longest_input(ts, si->token_cap), "max_body_bytes", (json_int_t)si->max_body,
        "queue", si->queue, "batch_tokens", si->batch_tokens, "batch_sequences", si->batch_seqs,
        "deadline_ms", si->deadline_ms, "connection_timeout_s", si->conn_timeout_s, "compute",
        "workers", si->workers, "blas_threads", si->blas_threads, "cache", cache);
    return add_tei_info(j, si);
}
