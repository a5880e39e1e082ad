/* The route table: every route the server answers, with the methods it
 * allows, who may call it, what its body parses as, its metrics label and
 * its handler.  The router, the 405 + Allow check, the 401 check, the
 * metrics, the access log, CORS preflights and the error dialect all read
 * this one table.  Immutable; any thread. */
#ifndef ER_SRV_ROUTES_H
#define ER_SRV_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

typedef struct srv_call srv_call;

typedef enum {
    SRV_AUTH_NONE,  /* open: probes and scrapes */
    SRV_AUTH_API,   /* --api-key, when set */
    SRV_AUTH_ADMIN, /* --admin-key, when set */
} srv_auth;

#define SRV_NO_BODY (-1)

typedef struct {
    const char *allow;  /* methods, exactly as the Allow header of a 405 */
    const char *path;   /* exact, or with one "{task}" segment (last: the rest of the path) */
    srv_auth auth;
    pr_api api;         /* the dialect of its errors (proto.h) */
    int kind;           /* the pr_route its body parses as; SRV_NO_BODY */
    const char *label;  /* metrics route label and access-log name */
    /* Answers c, or starts it: true when answered now, false when a worker
     * will answer (and call srv_call_finished and resume). */
    bool (*handler)(srv_call *c);
} srv_route;

int srv_route_count(void);
const srv_route *srv_route_at(int i);    /* [0, count) */
int srv_route_index(const srv_route *r); /* its position in the table */

/* The route serving path, or NULL.  A "{task}" segment is copied to task
 * (n bytes; "" for routes without one). */
const srv_route *srv_route_find(const char *path, char *task, size_t n);

/* Whether r's Allow list names method exactly. */
bool srv_route_allows(const srv_route *r, const char *method);

#endif
