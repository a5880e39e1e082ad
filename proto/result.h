/* Result JSON for each head type (the `predict` result shapes in
 * proto/openapi.yaml).  Pure builders over plain arrays: they apply the
 * post-processing in post.h and return a new json_t (NULL when out of
 * memory).  `hit` adds "cache": "hit"|"miss"; pass -1 to omit it. */
#ifndef ER_RESULT_H
#define ER_RESULT_H

#include <jansson.h>
#include <stdbool.h>

#include "post.h"

json_t *pr_floats(const float *x, int n);

/* {"label", "score", "scores": {label: p}}: softmax, or sigmoid when
 * multi_label or a single logit (as HF); top_k > 0 keeps the k best in
 * "scores" (descending). */
json_t *pr_seqcls_result(const float *logits, int n_labels, const char *const *labels,
                         bool multi_label, int top_k, int hit);

/* TEI /predict: [{"score", "label"}] sorted by score; raw = logits. */
json_t *pr_tei_scores(const float *logits, int n_labels, const char *const *labels,
                      bool multi_label, bool raw);

/* {"entities": [{"entity", "score", "start", "end", "text", "index"?}]}.
 * text is the input (bytes); without offsets (ids input) start/end/text are
 * omitted and "word" is given instead. */
json_t *pr_tokcls_result(const float *logits, int n_tok, int n_labels, const char *const *labels,
                         const pp_token *tok, bool has_offsets, const char *text, pp_agg agg,
                         int hit);

/* {"answer", "score", "start", "end"}: chars into context; ctx marks context
 * tokens, whose offsets index context. */
json_t *pr_qa_result(const float *logits, int n_tok, const pp_token *tok, const bool *ctx,
                     const char *context, int max_answer_len, int hit);

/* {"embedding": [...]} */
json_t *pr_embedding_result(const float *v, int dim, int hit);

/* A sparse embedding v[dim] (SPLADE: vocabulary weights, >= 0) as its
 * non-zero entries in index order: [{"index": i, "value": v[i]}, ...]. */
json_t *pr_sparse_values(const float *v, int dim);
/* {"sparse_embedding": pr_sparse_values(v, dim)} */
json_t *pr_sparse_result(const float *v, int dim, int hit);

#endif
