/* One HTTP call's life inside the app, and what a route handler may use:
 * the reply helpers (the one error-reply function among them) and the parts
 * of the app it reads.  Shared by app.c (dispatch) and the handlers; not
 * part of the public app.h.
 *
 * Ownership: the call owns its response body and its handler's state
 * (released by the handler's release function, exactly once, when the
 * handler is done or when the call is freed).  A call is used by one thread
 * at a time: the HTTP thread until its handler returns false, then the
 * worker that answers it, then the HTTP thread again after resume. */
#ifndef ER_SRV_CALL_H
#define ER_SRV_CALL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "compat.h"
#include "engine.h"
#include "metrics.h"
#include "proto.h"
#include "recycle.h"
#include "routes.h"

/* What calls and handlers read of the app: pointers into it, set once by
 * app.c when the app has started, valid until srv_app_free, all reads
 * thread-safe.  Calls and handlers reach the app only through this view,
 * never by calling into app.c, so the dependencies run one way:
 * app.c -> routes.c -> handlers -> call.c. */
typedef struct {
    const srv_config *cfg;
    const er_taskset *ts;
    srv_metrics *metrics;
    eng *engine;
    const pr_limits *limits;
    const srv_compat *compat;    /* aliases, prompts, CORS origins */
    const atomic_bool *draining; /* set once by srv_app_drain */
    atomic_int *in_flight;       /* calls alive (created, not freed), for draining */
} srv_app_view;

struct srv_call {
    const srv_app_view *app;
    srv_response resp;
    const srv_route *route; /* NULL until routed (counted as "other") */
    int route_index;        /* its place in the table (metrics); -1 until routed */
    char path_task[160];    /* the {task} segment of the path (a task or a model alias), or "" */
    uint64_t t0;
    const srv_request *rq; /* valid while srv_call_run runs */
    char method[16];
    bool (*alive)(void *user);
    void (*resume)(void *user);
    void *user;
    void *state;                  /* the handler's, or NULL */
    void (*release)(srv_call *c); /* frees state; NULL when there is none */
};

/* The status of a call whose client hung up before its answer (nginx's 499):
 * counted and logged apart from the server's own 5xx. */
#define SRV_CLIENT_CLOSED 499

/* The one function that builds every error reply: erserve's status for the
 * error and what kind of mistake it is (pr_fault); the reply takes the
 * route's dialect (routes.h `api`): its status (pr_error_status) and body
 * (pr_error_body; param is OpenAI's `param`, NULL to take it from the
 * message). */
void srv_error_f(srv_call *c, int status, pr_fault f, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* srv_error_f with no fault and no param. */
#define srv_error(c, status, ...) srv_error_f(c, status, PR_FAULT_NONE, NULL, __VA_ARGS__)
/* An er_status (engine, tokenizer, parser) as its HTTP status and message. */
void srv_error_er(srv_call *c, er_status st, const er_err *err);
void srv_reply_json(srv_call *c, int status, json_t *j); /* steals j; NULL -> 500 */
/* Metrics and the access log, once per call, when its reply is final. */
void srv_call_finished(srv_call *c);
void srv_call_release(srv_call *c); /* the handler's state, if any */

/* A call of the app behind view (app.c's srv_call_new passes its view);
 * counts it in flight until srv_call_free.  NULL when out of memory. */
srv_call *srv_call_create(const srv_app_view *view, const srv_request *req,
                          bool (*alive)(void *user), void (*resume)(void *user), void *user);

/* What handlers read of the app, by name. */
static inline const srv_config *srv_app_config(const srv_app_view *a) { return a->cfg; }
static inline const er_taskset *srv_app_tasks(const srv_app_view *a) { return a->ts; }
static inline srv_metrics *srv_app_metrics(const srv_app_view *a) { return a->metrics; }
static inline eng *srv_app_engine(const srv_app_view *a) { return a->engine; }
static inline const pr_limits *srv_app_limits(const srv_app_view *a) { return a->limits; }
static inline const srv_compat *srv_app_compat(const srv_app_view *a) { return a->compat; }
/* Tokens per input of task t: its model's positions, or --max-tokens when
 * lower; not the batch budget (a longer input runs as a batch of its own).
 * Truncation cuts to it, and it is part of the store key (er_key_salt). */
static inline int srv_app_max_input_tokens(const srv_app_view *a, const er_task *t) {
    return er_task_max_input_tokens(t, a->cfg->max_tokens);
}
static inline bool srv_app_draining(const srv_app_view *a) { return atomic_load(a->draining); }

#endif
