/* The erserve application: configuration, tasks (with their tokenizers),
 * engine and metrics, and the dispatch of one HTTP request through the
 * route table (routes.h) to its handler.  No sockets here: http.c feeds
 * requests in, and tests call srv_app_handle_sync directly.
 *
 * A call is answered either at once (srv_call_run returns true) or later,
 * from a worker thread, which then calls the resume function exactly once.
 * Thread safety: everything here may be called from any thread, but one
 * call is driven by one thread at a time. */
#ifndef ER_SRV_APP_H
#define ER_SRV_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "server_config.h"
#include "er_error.h"

typedef struct srv_app srv_app;
typedef struct srv_call srv_call;

typedef struct {
    const char *method, *path; /* path without the query string */
    const char *content_type, *authorization, *request_id; /* headers or NULL */
    const char *origin, *cors_method; /* Origin, Access-Control-Request-Method, or NULL */
    const char *body;
    size_t body_len;
    bool body_too_large; /* over max_body (declared or read): answered at once with
                          * 404/405/401/413, never handed to a handler */
    /* The peer's address (AF_INET or AF_INET6), or NULL when unknown.  Without
     * --admin-key the admin routes answer loopback peers only; NULL is not
     * loopback. */
    const struct sockaddr *client_addr;
} srv_request;

typedef struct {
    int status;
    char *body; /* owned */
    size_t body_len;
    const char *content_type;
    char request_id[72];
    int retry_after; /* seconds; 0 = no header */
    const char *allow; /* Allow header for 405 */
    /* CORS (--cors-allow-origin): Access-Control-Allow-Origin when non-empty,
     * and for a preflight (cors_methods set) its Allow-Methods / -Headers /
     * Max-Age. */
    char cors_origin[256];
    const char *cors_methods;
    double queue_ms, tokenize_ms, compute_ms, total_ms;
} srv_response;

/* Loads tasks and tokenizers, opens the store, starts the workers.  cfg
 * (with its task names) must outlive the app.  Start-up lines go to er_log. */
er_status srv_app_new(const srv_config *cfg, srv_app **out, er_err *err);
void srv_app_free(srv_app *app); /* drains first; NULL accepted */

/* The one-line startup summary (versions, BLAS, tasks, stacks, store). */
void srv_app_describe(const srv_app *app, char *buf, size_t n);

/* Stops accepting compute (503), finishes what is queued, flushes the store. */
void srv_app_drain(srv_app *app);
int srv_app_in_flight(const srv_app *app);
/* Waits until every store write queued so far is committed (tests, admin). */
void srv_app_flush(srv_app *app);

/* req's strings must stay valid until srv_call_run returns. */
srv_call *srv_call_new(srv_app *app, const srv_request *req, bool (*alive)(void *user),
                       void (*resume)(void *user), void *user);
bool srv_call_run(srv_call *c);
srv_response *srv_call_response(srv_call *c); /* valid once answered */
/* Answers a call with an error without dispatching it: the HTTP layer's own
 * refusals (request framing, deadlines).  The reply is srv_error's JSON;
 * metrics (route "other") and the access log count it like any call. */
void srv_call_reject(srv_call *c, int status, const char *msg);
void srv_call_free(srv_call *c);              /* NULL accepted; not while pending */

/* Runs one request to completion in the calling thread (tests); the caller
 * frees out->body. */
void srv_app_handle_sync(srv_app *app, const srv_request *req, srv_response *out);

#endif
