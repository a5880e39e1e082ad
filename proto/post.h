/* Head post-processing: turns raw head outputs into what the API returns.
 * Pure functions on plain arrays (no JSON, no I/O, no allocation unless the
 * function says so); they follow Hugging Face's pipelines so that a client
 * moving from `transformers` gets the same labels, scores and spans.
 *
 *   pp_softmax / pp_sigmoid   text-classification (sigmoid for multi-label
 *                             problem types and single-logit heads, as HF)
 *   pp_top_k                  label indices by descending score
 *   pp_entities               token-classification aggregation none | simple
 *                             | first | average | max (HF
 *                             TokenClassificationPipeline semantics)
 *   pp_qa_best_span           question answering: best start <= end span
 *                             inside the context, length <= max_answer_len
 *   pp_base64                 OpenAI `encoding_format: base64` (little-endian
 *                             float32 bytes) */
#ifndef ER_POST_H
#define ER_POST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* out may alias x.  n >= 1.  Numerically safe for any finite input. */
void pp_softmax(const float *x, int n, float *out);
void pp_sigmoid(const float *x, int n, float *out);

/* Fills idx[0..k) with the indices of the k largest p, descending; ties keep
 * the lower index first.  k is clamped to [0, n]; returns the count written. */
int pp_top_k(const float *p, int n, int k, int *idx);

/* Standard base64 (with padding) of n little-endian float32 values.
 * Returns a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *pp_base64_f32(const float *x, int n);

typedef enum { PP_AGG_NONE, PP_AGG_SIMPLE, PP_AGG_FIRST, PP_AGG_AVERAGE, PP_AGG_MAX } pp_agg;
int pp_agg_parse(const char *s); /* "none"... ; -1 if unknown */

/* One token of a token-classification input.  Offsets are half-open, in
 * characters (code points) and bytes of the original text; has_offsets is
 * false for requests given as input_ids (then subwords are told by the
 * "##" prefix and entities carry no span). */
typedef struct {
    const char *token; /* vocabulary string, e.g. "##ing" */
    uint32_t cstart, cend, bstart, bend;
    bool special; /* [CLS]/[SEP]/...: never part of an entity */
    bool unk;     /* the unknown token: always a word start, as HF */
} pp_token;

typedef struct {
    int label;         /* index into the labels; for grouped entities the
                        * label of the first member */
    const char *group; /* label text without its "B-"/"I-" prefix (grouped),
                        * or the full label (none); points into labels */
    size_t group_len;
    float score;
    int index;         /* token index (aggregation none), else -1 */
    int first, last;   /* tokens [first, last) it covers */
    uint32_t cstart, cend, bstart, bend;
} pp_entity;

/* Computes the entities for one sequence: logits [n_tok, n_labels], softmax
 * per token, then HF's aggregation; entities whose (group) label is "O" are
 * dropped as HF's ignore_labels does.  out must hold n_tok entries (never
 * more are produced).  scratch must hold 2 * n_labels floats.
 * Returns the number of entities. */
int pp_entities(const float *logits, int n_tok, int n_labels, const char *const *labels,
                const pp_token *tok, pp_agg agg, float *scratch, pp_entity *out);

/* QA: start/end logits interleaved [n_tok][2] (the engine's layout).
 * ctx[i] is true for tokens of the context.  Like HF's pipeline: softmax of
 * start and end over context tokens only, best start <= end with
 * end - start + 1 <= max_len by p_start * p_end.  Returns false when no
 * context token exists. */
bool pp_qa_best_span(const float *logits, int n_tok, const bool *ctx, int max_len, int *start,
                     int *end, float *score);

#endif
