/* The reply JSON of every route but predict's per-input results (result.h)
 * and errors (proto.h): the predict envelope, OpenAI's embedding list, TEI's
 * /embed, /predict and /rerank, the cache-warm summary, /tokenize's tokens
 * (reply.c), and health, ready, tasks, info and cache (reply_info.c); the
 * shapes of proto/openapi.yaml.
 *
 * Pure builders over plain arrays and the parsed request (its options
 * choose normalisation, encoding, ordering); no I/O, any thread.  Each
 * returns a new json_t, NULL when out of memory.  Head outputs come as
 * rows: row i of n starts at x + i * stride floats. */
#ifndef ER_REPLY_H
#define ER_REPLY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "recycle.h"
#include "store.h"
#include "tokenizer.h"

/* {"task", "results": results}; steals results (NULL -> NULL). */
json_t *pr_predict_reply(const char *task, json_t *results);

/* Scales v[0, dim) to unit L2 norm (torch F.normalize) when the request
 * asks (`normalize: true`), or leaves it to the model (`normalize` absent on
 * erserve's routes) and model_normalizes (it has a Normalize module).  The
 * rows it gets are the raw pooled vectors (er_model_params.raw_embeddings). */
void pr_embedding_normalize(const pr_req *req, float *v, int dim, bool model_normalizes);

/* OpenAI: {"object": "list", "data": [{"object": "embedding", "index",
 * "embedding": [floats] | base64}], "model", "usage"}.  Rows are hidden
 * wide; the first req->dimensions (0 = all) are returned, always unit
 * length (normalised in place), as OpenAI's and TEI's. */
json_t *pr_openai_embeddings(const pr_req *req, float *x, size_t stride, int hidden,
                             const char *model, int n_tokens);

/* TEI /embed: [[floats]]: the first req->dimensions (0 = all) of each row,
 * then normalised in place as the request asks (pr_embedding_normalize). */
json_t *pr_tei_embed(const pr_req *req, float *x, size_t stride, int hidden, bool model_normalizes);

/* TEI /embed_all: [[[float] per token] per input], the rows of x (packed:
 * seq_len[i] rows of `hidden` floats for input i), unnormalised. */
json_t *pr_tei_embed_all(const float *x, const int *seq_len, int n, int hidden);

/* TEI /similarity: [cosine(row 0, row i) for i in 1..n-1] (sentence-
 * transformers' cos_sim; 0 against a zero vector). */
json_t *pr_similarity(const float *x, size_t stride, int hidden, int n);

/* TEI /embed_sparse, one row of n floats (vocabulary wide, zero where a
 * term is inactive): [{"index", "value"}] of its non-zeros, by index. */
json_t *pr_sparse_row(const float *row, int n);
/* TEI /embed_sparse: [pr_sparse_row per input] (always a list of rows). */
json_t *pr_tei_embed_sparse(const pr_req *req, const float *x, size_t stride, int width);

/* TEI /predict: pr_tei_scores per input; an array of them when batched. */
json_t *pr_tei_predict(const pr_req *req, const float *x, size_t stride, int n_labels,
                       const char *const *labels, bool multi_label);

/* A rerank score from one input's logits: the raw last logit, else the
 * sigmoid of a single logit or the softmax probability of the last label. */
float pr_rerank_score(const float *logits, int n_labels, bool raw);

/* TEI /rerank: [{"index", "score", "text"?}] by descending score (ties:
 * lower index first); text (the input's pair) when return_text. */
json_t *pr_rerank(const pr_req *req, const float *x, size_t stride, int n_labels);

/* /v1/cache/warm: {"task", "inputs", "tokens", "already_cached", "computed"};
 * hit: [n_inputs], nonzero = the store had it. */
json_t *pr_warm_reply(const char *task, int n_inputs, int n_tokens, const uint8_t *hit);

/* /tokenize, one input: [{"id", "text", "special", "start", "stop"}], as
 * TEI: start/stop are byte offsets into input (input_len bytes, the text
 * that was tokenized, prompt included) and text is that slice of it; a
 * special token has its own text and null start/stop. */
json_t *pr_tokens(const er_encoding *e, const char *input, size_t input_len);

/* /decode: [texts] (a list even for one input, as TEI); texts[i] is lens[i]
 * bytes of UTF-8.  NULL when a text is not UTF-8 or out of memory. */
json_t *pr_decode_reply(const char *const *texts, const size_t *lens, int n);

/* The Hugging Face Inference API's token-classification shape from a
 * pr_tokcls_result (stolen): its entities, "entity" renamed "entity_group"
 * when aggregated, as transformers' pipeline names them. */
json_t *pr_hf_entities(json_t *tokcls_result, bool aggregated);
/* A predict result (stolen) without erserve's "cache" member. */
json_t *pr_without_cache(json_t *result);

/* OpenAI /v1/models: {"object": "list", "data": [model objects]}; steals
 * data.  pr_model_json: {"id", "object": "model", "created", "owned_by",
 * "task"} for a task or an alias of it (task = the task it serves). */
json_t *pr_models_reply(json_t *data);
json_t *pr_model_json(const char *id, long long created, const char *task);

/* ---- the routes that describe the server ---- */

json_t *pr_health_reply(void);         /* {"status": "ok"} */
json_t *pr_ready_reply(int n_tasks);   /* {"status": "ready", "tasks"} */

/* {"tasks": [{"name", "head", "architecture", "model_type", "labels",
 * "multi_label", "hidden_size", "num_layers", "cut", "lower_stack",
 * "max_input_tokens", "output_width": floats per head output row (an
 * embedding's dimension, a sparse embedding's vocabulary)}]}; a task's
 * max_input_tokens is er_task_max_input_tokens(task, token_cap)
 * (--max-tokens; 0: its model's positions). */
json_t *pr_tasks_reply(const er_taskset *ts, int token_cap);

/* {"enabled": false}, or the store's counters with its path and dtype. */
json_t *pr_cache_reply(const er_store *s, const char *path, const char *dtype);
/* {"enabled": false}, or the second tier's counters (tier.h) and
 * "nodes": [{"node", "breaker", "breaker_opens", "errors", "timeouts"}]
 * (reply_tier.c). */
json_t *pr_tier_reply(const er_tier *t);
/* DELETE /v1/cache: {"purged": true, "cache"}; steals cache. */
json_t *pr_purge_reply(json_t *cache);

/* What /info reports besides the tasks: versions and limits, as the server
 * was built and configured. */
typedef struct {
    const char *version, *libmicrohttpd, *jansson, *lmdb, *openblas;
    int max_inputs;
    int token_cap; /* --max-tokens: each task's limit is er_task_max_input_tokens(t,
                      token_cap); limits.max_input_tokens is the longest of them */
    size_t max_body;
    int queue, batch_tokens, batch_seqs, deadline_ms, conn_timeout_s, workers, blas_threads;
    bool auto_truncate;
    int tokenization_workers;
    const er_task *model;          /* the task the TEI routes serve by default (NULL: none) */
    const char *served_model_name; /* its name for clients (an alias, or its task name) */
} pr_server_info;

/* {"version", "versions", "cut", "lower_stacks", "tasks", "limits",
 * "compute", "cache"} and TEI's /info fields ("model_id",
 * "served_model_name", "model_dtype", "model_type", "max_concurrent_requests",
 * "max_input_length", "max_batch_tokens", "max_batch_requests",
 * "max_client_batch_size", "auto_truncate", "tokenization_workers"); steals
 * cache (pr_cache_reply's). */
json_t *pr_info_reply(const pr_server_info *si, const er_taskset *ts, json_t *cache);

#endif
