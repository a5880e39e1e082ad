/* The route handlers, named by the route table (routes.c) and called only
 * through it.  Each answers one call (see routes.h for the return value).
 *   handlers_info.c     health, ready, info, tasks, metrics, cache admin
 *   handlers_compute.c  the routes that tokenize and run the engine, and
 *                       /tokenize, /decode */
#ifndef ER_SRV_HANDLERS_H
#define ER_SRV_HANDLERS_H

#include <stdbool.h>

#include "call.h"

bool srv_handle_health(srv_call *c);
bool srv_handle_ready(srv_call *c);
bool srv_handle_info(srv_call *c);
bool srv_handle_tasks(srv_call *c);
bool srv_handle_metrics(srv_call *c);
bool srv_handle_cache(srv_call *c);
/* predict, embeddings, TEI routes, cache warm: c->route->kind says which. */
bool srv_handle_compute(srv_call *c);
bool srv_handle_tokenize(srv_call *c);
bool srv_handle_decode(srv_call *c);
/* SageMaker's /invocations: /embed for an embedding first task, else /predict. */
bool srv_handle_invocations(srv_call *c);
/* OpenAI /v1/models and /v1/models/{id}. */
bool srv_handle_models(srv_call *c);

#endif
