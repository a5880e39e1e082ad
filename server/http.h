/* The HTTP front: libmicrohttpd (0.9.75) with an internal thread pool
 * polling with epoll, feeding srv_app.  Request heads are checked for
 * ambiguous framing before any body byte is read; request bodies are
 * accumulated up to max_body across upload callbacks; compute requests
 * suspend their connection and are resumed by the worker that answers
 * them. */
#ifndef ER_SRV_HTTP_H
#define ER_SRV_HTTP_H

#include "app.h"

typedef struct srv_http srv_http;

/* Binds and listens on cfg->host:cfg->port (port 0 = any; *bound gets the
 * port): *fd.  A port in use is an error (ER_ERR_IO, the message says so);
 * SO_REUSEPORT is never set, so a second server cannot share the port. */
er_status srv_http_listen(const srv_config *cfg, int *fd, int *bound, er_err *err);
/* Serves on listen_fd (from srv_http_listen; owned from now on, also on
 * failure): libmicrohttpd plus a reaper thread that enforces
 * --head-timeout, --body-timeout / --body-min-rate and the keep-alive idle
 * time (server/SERVER.md, "Hardening"). */
er_status srv_http_start(srv_app *app, const srv_config *cfg, int listen_fd, srv_http **out,
                         er_err *err);
/* Stops accepting new connections (the listening socket closes). */
void srv_http_quiesce(srv_http *h);
/* Waits (bounded) for answered requests to be sent, then stops. */
void srv_http_stop(srv_http *h);

#endif
