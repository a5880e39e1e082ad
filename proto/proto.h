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
    int max_inputs;       /* inputs per request (array elements; TEI's --max-client-batch-size) */
    size_t max_text;      /* bytes per text */
    int max_ids;          /* ids per input given as input_ids */
    bool auto_truncate;   /* TEI routes' `truncate` default (TEI's --auto-truncate) */
} pr_limits;

pr_limits pr_default_limits(void); /* 64 inputs, 1 MiB text, 512 ids, auto_truncate */

/* The three dialects the server speaks.  Each route belongs to one; its
 * errors take that dialect's status codes and body (pr_error_status,
 * pr_error_body):
 *   ERSERVE  /v1/tasks/{task}/predict, the cache and probe routes: {"error": {"type", "message"}}
 *   OPENAI   /v1/embeddings, /embeddings, /v1/models[/{id}]: {"error": {"message",
 *            "type", "param", "code"}}; every invalid request is 400
 *   TEI      /embed, /predict, /rerank, /tokenize, /decode, ...: {"error",
 *            "error_type"} with TEI 1.9's codes (Empty 400, Validation and
 *            Tokenizer 422, Backend 424, Overloaded 429, Unhealthy 503) */
typedef enum { PR_API_ERSERVE, PR_API_OPENAI, PR_API_TEI } pr_api;

/* What kind of mistake an error is, where erserve's own status does not say
 * enough for the other dialects (erserve: 400 covers syntax and type, 422
 * covers empty and out of range). */
typedef enum {
    PR_FAULT_NONE,      /* the status says it all */
    PR_FAULT_SYNTAX,    /* not JSON, not an object */
    PR_FAULT_TYPE,      /* a field of the wrong type, missing, unknown value */
    PR_FAULT_EMPTY,     /* no inputs, an empty text or id list */
    PR_FAULT_RANGE,     /* a value out of range, an id outside the vocabulary */
    PR_FAULT_LIMIT,     /* more inputs or ids than allowed */
    PR_FAULT_TOO_LONG,  /* more tokens than the model takes, truncation off */
    PR_FAULT_TOKENIZER, /* the tokenizer refused the text */
    PR_FAULT_HEAD,      /* the task cannot do what the route asks */
    PR_FAULT_MODEL,     /* no such model / task */
} pr_fault;

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
    PR_ROUTE_TEI_EMBED_ALL,    /* POST /embed_all */
    PR_ROUTE_TEI_EMBED_SPARSE, /* POST /embed_sparse */
    PR_ROUTE_TEI_SIMILARITY,   /* POST /similarity: inputs[0] is the source sentence */
    PR_ROUTE_HF,               /* POST /models/{task}: the Hugging Face Inference API's pipelines */
} pr_route;

/* The dialect of a route's body kind (the route table also says it). */
pr_api pr_route_api(pr_route r);

typedef struct {
    json_t *root;      /* owns the strings inputs point at */
    pr_input *inputs;
    int n_inputs;
    bool batched;      /* inputs came as an array: reply with an array */
    /* options (defaults in brackets) */
    bool truncate;        /* [true; TEI routes: pr_limits.auto_truncate; OpenAI: false] */
    bool truncate_left;   /* TEI truncation_direction "left" [right] */
    const char *prompt_name; /* sentence-transformers prompt [NULL: the default] */
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
    int dimensions;       /* OpenAI, TEI /embed [0 = all] */
    pr_fault fault;       /* after a failed pr_parse: what kind of mistake */
    bool similarity;      /* inputs[0] is a source sentence to compare the others with */
} pr_req;

/* Parses and validates body for route.  On success returns ER_OK and fills
 * *req (release with pr_req_free); otherwise returns the error (see the
 * policy above; ER_ERR_NOMEM: 500), *req holds nothing to free but
 * req->fault, and err names the field at fault. */
er_status pr_parse(pr_route route, const char *body, size_t len, const pr_limits *lim,
                   pr_req *req, er_err *err);
void pr_req_free(pr_req *req); /* zeroed and freed requests accepted */

/* The HTTP status of an er_status: the policy above, plus NOT_FOUND 404,
 * UNSUPPORTED 422, anything else 500 (engine and tokenizer errors too). */
int pr_status_of(er_status st);

/* The status an error of erserve status `status` and kind f gets in api
 * (identity for PR_API_ERSERVE). */
int pr_error_status(pr_api api, int status, pr_fault f);

/* The one error body every reply uses, in api's shape (see pr_api), for an
 * error already mapped by pr_error_status.  param (OpenAI: the request
 * field at fault) may be NULL: it is then the first `name` quoted in msg, if
 * any.  Returns a malloc'd string, NULL only when out of memory. */
char *pr_error_body(pr_api api, int status, pr_fault f, const char *msg, const char *param,
                    size_t *len);
const char *pr_error_type(int status);
/* TEI's error_type: "Empty", "Validation", "Tokenizer", "Backend",
 * "Overloaded", "Unhealthy". */
const char *pr_tei_error_type(int status, pr_fault f);

/* Serialises j compactly with float32 round-trip precision (9 digits) and
 * releases j.  NULL when out of memory. */
char *pr_dump(json_t *j, size_t *len);

#endif
