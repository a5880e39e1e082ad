/* proto: the erserve HTTP API's request validation and error replies.
 *
 * Pure functions: parse a request body (bytes from the network) into a
 * pr_req, or say precisely what is wrong with it as an er_status (mapped to
 * an HTTP status by pr_status_of) and a message naming the field.  No I/O, no globals; any thread.  Every size that
 * grows with the input is capped by pr_limits, so a hostile body costs at
 * most O(body bytes) memory.
 *
 * Status policy (documented in proto/openapi.yaml and server/SERVER.md):
 *   400  ER_ERR_FORMAT: body is not JSON, not an object, a duplicate key, a field of the
 *        wrong type, a missing required field, an unknown option value
 *   413  ER_ERR_CAPACITY: more inputs or ids than the limits allow
 *   422  ER_ERR_INVALID_ARG: well-formed but unusable: empty input list or empty text, a value
 *        out of range (top_k < 0, dimensions < 1, ...)
 * The server adds 401/404/405/415/429/503 and maps engine errors. */
#ifndef ER_PROTO_H
#define ER_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "er_error.h"
#include "post.h"

typedef struct {
    int max_inputs;       /* inputs per request (array elements) */
    size_t max_text;      /* bytes per text */
    int max_ids;          /* ids per input given as input_ids */
} pr_limits;

pr_limits pr_default_limits(void); /* 64 inputs, 1 MiB text, 512 ids */

typedef enum { PR_TEXT, PR_PAIR, PR_IDS } pr_kind;

/* One input sequence.  Strings are borrowed from the request's JSON tree
 * (valid until pr_req_free); ids are owned by the request. */
typedef struct {
    pr_kind kind;
    const char *text, *pair; /* PR_TEXT / PR_PAIR (pair = text_pair, or the
                              * context of a {question, context} input) */
    size_t text_len, pair_len;
    int32_t *ids, *type_ids; /* PR_IDS; type_ids may be NULL */
    int n_ids;
} pr_input;

typedef enum {
    PR_ROUTE_PREDICT,    /* POST /v1/tasks/{task}/predict */
    PR_ROUTE_EMBEDDINGS, /* POST /v1/embeddings (OpenAI) */
    PR_ROUTE_TEI_EMBED,  /* POST /embed */
    PR_ROUTE_TEI_PREDICT,/* POST /predict */
    PR_ROUTE_TEI_RERANK, /* POST /rerank */
    PR_ROUTE_TOKENIZE,   /* POST /tokenize */
    PR_ROUTE_WARM,       /* POST /v1/cache/warm */
    PR_ROUTE_DECODE,     /* POST /decode */
} pr_route;

typedef struct {
    json_t *root;      /* owns the strings inputs point at */
    pr_input *inputs;
    int n_inputs;
    bool batched;      /* inputs came as an array: reply with an array */
    /* options (defaults in brackets) */
    bool truncate;        /* [true; TEI routes: false] */
    int top_k;            /* [0 = all labels] */
    bool return_offsets;  /* [false] */
    pp_agg aggregation;   /* [none] */
    int max_answer_len;   /* [15] */
    int normalize;        /* [-1 = as the model; TEI /embed: 1] */
    bool raw_scores;      /* TEI /predict, /rerank [false] */
    bool return_text;     /* TEI /rerank [false] */
    bool add_special_tokens; /* /tokenize [true] */
    bool skip_special_tokens; /* /decode [true] */
    const char *model;    /* OpenAI `model`, warm `task` (NULL if absent) */
    bool base64;          /* OpenAI encoding_format [float] */
    int dimensions;       /* OpenAI [0 = all] */
} pr_req;

/* Parses and validates body for route.  On success returns ER_OK and fills
 * *req (release with pr_req_free); otherwise returns the error (see the
 * policy above; ER_ERR_NOMEM: 500), *req holds nothing to free, and err
 * names the field at fault. */
er_status pr_parse(pr_route route, const char *body, size_t len, const pr_limits *lim,
                   pr_req *req, er_err *err);
void pr_req_free(pr_req *req); /* zeroed and freed requests accepted */

/* The HTTP status of an er_status: the policy above, plus NOT_FOUND 404,
 * UNSUPPORTED 422, anything else 500 (engine and tokenizer errors too). */
int pr_status_of(er_status st);

/* The one error body every reply uses: {"error":{"type","message"}} with a
 * type derived from the status ("invalid_request_error", ...).  Returns a
 * malloc'd string, NULL only when out of memory. */
char *pr_error_body(int status, const char *msg, size_t *len);
const char *pr_error_type(int status);

/* Serialises j compactly with float32 round-trip precision (9 digits) and
 * releases j.  NULL when out of memory. */
char *pr_dump(json_t *j, size_t *len);

#endif
