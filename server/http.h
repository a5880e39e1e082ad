/* The HTTP front: libmicrohttpd (0.9.75) with an internal thread pool
 * polling with epoll, feeding srv_app.  Request bodies are accumulated up
 * to max_body across upload callbacks; compute requests suspend their
 * connection and are resumed by the worker that answers them. */
#ifndef ER_SRV_HTTP_H
#define ER_SRV_HTTP_H

#include "app.h"

typedef struct srv_http srv_http;

/* Listens on cfg->host:cfg->port (port 0 = any; *bound gets the port). */
er_status srv_http_start(srv_app *app, const srv_config *cfg, srv_http **out, int *bound,
                         er_err *err);
/* Stops accepting new connections (the listening socket closes). */
void srv_http_quiesce(srv_http *h);
/* Waits (bounded) for answered requests to be sent, then stops. */
void srv_http_stop(srv_http *h);

#endif
