/* Shared between app.c (lifecycle, router, simple routes) and handlers.c
 * (the routes that tokenize and run the engine).  Not a public header. */
#ifndef ER_SRV_APP_INTERNAL_H
#define ER_SRV_APP_INTERNAL_H

#include <stdatomic.h>

#include "app.h"
#include "engine.h"
#include "metrics.h"
#include "proto.h"
#include "recycle.h"
#include "tokenizer.h"

struct srv_app {
    srv_config cfg; /* a shallow copy: the caller's config must outlive the app */
    er_taskset *ts;
    er_tokenizer **tok;   /* [n_tasks], several may point at one loaded tokenizer */
    er_tokenizer **owned; /* distinct loaded tokenizers */
    int n_owned;
    eng *eng;
    srv_metrics *m;
    pr_limits lim;
    int max_seq_len; /* tokens per input after every cap */
    atomic_int in_flight;
    atomic_bool draining;
};

struct srv_call {
    srv_app *app;
    srv_response resp;
    m_route route;
    uint64_t t0;
    const srv_request *rq; /* valid during srv_call_run only */
    char method[16];
    bool (*alive)(void *user);
    void (*resume)(void *user);
    void *user;
    /* compute routes */
    pr_route pr;
    pr_req req;
    const er_task *task;
    er_encoding **enc; /* [n_inputs] (NULL entries for ids inputs) */
    int *seq_len;
    int32_t *ids, *type_ids;
    float *out;
    uint8_t *hit;
    int n_tokens;
    eng_job job;
};

/* The one function that builds every error reply. */
void srv_error(srv_call *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void srv_reply_json(srv_call *c, int status, json_t *j); /* steals j; NULL -> 500 */
int srv_status_of(er_status st);
void srv_call_finished(srv_call *c); /* metrics + access log, once per call */ /* engine/tokenizer error -> HTTP status */

/* handlers.c: parse, tokenize, submit.  Returns true when answered now. */
bool srv_compute_route(srv_call *c, pr_route r, const char *task_name, const srv_request *req);
bool srv_tokenize_route(srv_call *c, const srv_request *req);
void srv_call_release_compute(srv_call *c);

#endif
