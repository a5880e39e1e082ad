/* The encoder forward pass, split by layer so that the lower layers can be
 * computed once and recycled (see store.h).
 *
 * Batches are packed: the sequences of a batch lie one after another in a
 * [n_tokens, hidden] buffer with no padding, so padding can never change a
 * sequence's result and no compute is spent on it.  Projections run as one
 * cblas_sgemm over all tokens of the batch; attention runs per sequence and
 * head.
 *
 *   er_embed(ids)              -> x  [n_tokens, hidden]   ("layer 0")
 *   er_layers(x, from, to)        x  [n_tokens, hidden]   (layers [from, to))
 *   er_head(x)                 -> head output (er_head_out_size floats)
 *
 * Ownership and thread-safety: an er_ctx is one worker's scratch, sized once
 * by er_ctx_init from er_ctx_params; the forward functions never allocate.
 * One thread at a time may use a given er_ctx; each worker owns one.  The
 * er_model is only read.  A ctx may run any model whose sizes fit it (see
 * er_ctx_fits), so one ctx per worker serves every task. */
#ifndef ER_ENCODER_H
#define ER_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "er_error.h"
#include "model.h"

typedef struct er_ctx er_ctx;

typedef struct {
    int max_tokens;  /* total real tokens in one batch */
    int max_seqs;    /* sequences in one batch */
    int max_seq_len; /* tokens in one sequence (also bounded by each model's
                        positions, er_batch_check); at most max_tokens */
    /* Threads for the parts OpenBLAS does not parallelise well: attention
     * (per sequence and head) and the elementwise passes.  Results do not
     * depend on it.  With n_threads > 1, OpenBLAS is switched to one thread
     * while attention runs (openblas_set_num_threads is process-wide), so use
     * it only where one ctx computes at a time in the process (a CLI, a
     * benchmark); a server runs one ctx per worker with n_threads = 1.
     * 0 means 1. */
    int n_threads;
} er_ctx_params;

/* 4096 tokens, 64 seqs, 4096 per seq (so: the model's positions), 1 thread */
er_ctx_params er_ctx_default_params(void);

/* A packed batch.  Sequence s holds seq_len[s] tokens starting at the sum of
 * the lengths before it.  type_ids may be NULL (all zero).  All arrays are
 * borrowed for the duration of a call. */
typedef struct {
    int n_seqs;
    const int *seq_len;      /* [n_seqs] */
    const int32_t *ids;      /* [n_tokens] */
    const int32_t *type_ids; /* [n_tokens] or NULL */
} er_batch;

int er_batch_tokens(const er_batch *b); /* sum of seq_len */

/* Allocates scratch for `m` (and any model of the same or smaller sizes).
 * ER_ERR_INVALID_ARG for non-positive params, ER_ERR_NOMEM.
 *
 * Memory: the scratch grows linearly with max_tokens, never with its square
 * (attention is tiled, one tile per thread): per token 4 * hidden (q, k, v,
 * context) + max(hidden, embedding) + intermediate floats, plus max_seqs *
 * 2 * hidden and a fixed attention tile per thread.  At the bert-base shape
 * (768, 3072) that is 27 KiB a token: 216 MiB for one 8192-token input
 * (er_ctx_bytes gives the exact figure). */
er_status er_ctx_init(const er_model *m, const er_ctx_params *p, er_ctx **out, er_err *err);
/* The same for several models: scratch that fits each of models[0..n) (the
 * largest of every size, and any family-specific buffer one of them needs). */
er_status er_ctx_init_models(const er_model *const *models, int n_models, const er_ctx_params *p,
                             er_ctx **out, er_err *err);
void er_ctx_free(er_ctx *ctx); /* NULL accepted */

/* Bytes of scratch er_ctx_init allocated for ctx. */
size_t er_ctx_bytes(const er_ctx *ctx);

/* true when ctx's scratch is large enough to run m. */
bool er_ctx_fits(const er_ctx *ctx, const er_model *m);

/* Checks a batch against the model and ctx: counts within capacity, every
 * sequence non-empty and within the model's positions, ids < vocab, type ids
 * < type_vocab_size.  ER_ERR_CAPACITY / ER_ERR_INVALID_ARG, naming the first
 * offending sequence and token. */
er_status er_batch_check(const er_model *m, const er_ctx *ctx, const er_batch *b, er_err *err);

/* Embeddings: x[n_tokens, hidden] = LN(word + position + type) (+ ELECTRA's
 * projection).  Validates the batch (er_batch_check). */
er_status er_embed(const er_model *m, er_ctx *ctx, const er_batch *b, float *x, er_err *err);

/* Runs layers [from, to) in place on x[n_tokens, hidden]; 0 <= from <= to <=
 * num_layers, and from must be >= the model's skip_below_layer.  Running
 * [0, k) then [k, L) gives bit-identical results to [0, L). */
er_status er_layers(const er_model *m, er_ctx *ctx, const er_batch *b, int from, int to, float *x,
                    er_err *err);

/* Floats the head writes for batch b: [n_seqs, n_labels] (sequence
 * classification), [n_tokens, n_labels] (token classification), [n_tokens, 2]
 * (QA start/end), [n_seqs, er_model_head_width] (embedding: hidden, or the
 * last Dense module's out_features), [n_seqs, vocab_size] (sparse embedding),
 * [n_tokens, hidden] (token embedding). */
size_t er_head_out_size(const er_model *m, const er_batch *b);

/* The task head on the last layer's output x[n_tokens, hidden] (unchanged).
 * Logits are raw (no softmax); embeddings are pooled, passed through the
 * sentence-transformers Dense modules and, when the model's modules say so
 * and it was not loaded with raw_embeddings, L2-normalised; sparse
 * embeddings are SPLADE's max over tokens of log(1 + relu(MLM logits));
 * token embeddings are x itself. */
er_status er_head(const er_model *m, er_ctx *ctx, const er_batch *b, const float *x, float *out,
                  er_err *err);

/* Convenience: embed + all layers + head.  x must hold [n_tokens, hidden]. */
er_status er_forward(const er_model *m, er_ctx *ctx, const er_batch *b, float *x, float *out,
                     er_err *err);

#endif
