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
 * asks: `normalize: true`, or (OpenAI) shortened `dimensions`. */
void pr_embedding_normalize(const pr_req *req, float *v, int dim);

/* OpenAI: {"object": "list", "data": [{"object": "embedding", "index",
 * "embedding": [floats] | base64}], "model", "usage"}.  Rows are hidden
 * wide; the first req->dimensions (0 = all) are returned, renormalised
 * in place when shortened.  model: req->model, or the task's name. */
json_t *pr_openai_embeddings(const pr_req *req, float *x, size_t stride, int hidden,
                             const char *task, int n_tokens);

/* TEI /embed: [[floats]], normalised in place as the request asks. */
json_t *pr_tei_embed(const pr_req *req, float *x, size_t stride, int hidden);

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

/* /tokenize, one input: [{"id", "text", "special", "start", "stop"}] with
 * byte offsets. */
json_t *pr_tokens(const er_encoding *e);

/* /decode: the text of one input as a JSON string, or (batched) an array of
 * them; texts[i] is lens[i] bytes of UTF-8.  NULL when a text is not UTF-8
 * or out of memory. */
json_t *pr_decode_reply(const char *const *texts, const size_t *lens, int n, bool batched);

/* ---- the routes that describe the server ---- */

json_t *pr_health_reply(void);         /* {"status": "ok"} */
json_t *pr_ready_reply(int n_tasks);   /* {"status": "ready", "tasks"} */

/* {"tasks": [{"name", "head", "architecture", "model_type", "labels",
 * "multi_label", "hidden_size", "num_layers", "cut", "lower_stack",
 * "max_input_tokens", "output_width": floats per head output row (an
 * embedding's dimension, a sparse embedding's vocabulary)}]} */
json_t *pr_tasks_reply(const er_taskset *ts, int max_input_tokens);

/* {"enabled": false}, or the store's counters with its path and dtype. */
json_t *pr_cache_reply(const er_store *s, const char *path, const char *dtype);
/* DELETE /v1/cache: {"purged": true, "cache"}; steals cache. */
json_t *pr_purge_reply(json_t *cache);

/* What /info reports besides the tasks: versions and limits, as the server
 * was built and configured. */
typedef struct {
    const char *version, *libmicrohttpd, *jansson, *lmdb, *openblas;
    int max_inputs, max_input_tokens;
    size_t max_body;
    int queue, batch_tokens, batch_seqs, deadline_ms, conn_timeout_s, workers, blas_threads;
} pr_server_info;

/* {"version", "versions", "cut", "lower_stacks", "tasks", "limits",
 * "compute", "cache"}; steals cache (pr_cache_reply's). */
json_t *pr_info_reply(const pr_server_info *si, const er_taskset *ts, json_t *cache);

#endif
