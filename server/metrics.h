/* Server metrics in Prometheus text format.  Lock-free counters (C11
 * atomics) updated from HTTP and worker threads; rendering reads them
 * without stopping anyone, so a scrape sees each counter consistently but
 * not all of them at one instant (as Prometheus expects). */
#ifndef ER_SRV_METRICS_H
#define ER_SRV_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tier.h"

typedef enum {
    M_STAGE_QUEUE, M_STAGE_TOKENIZE, M_STAGE_LOWER, M_STAGE_STORE_READ, M_STAGE_STORE_WRITE,
    M_STAGE_UPPER, M_STAGE_HEAD, M_STAGE_TOTAL, M_STAGE_COUNT
} m_stage;

typedef struct srv_metrics srv_metrics;

/* Requests are counted per route label (the route table's, routes.h) plus
 * "other" for requests that matched no route.  The array is copied; the
 * strings must outlive m (the table's are static). */
srv_metrics *srv_metrics_new(const char *const *labels, int n_routes);
void srv_metrics_free(srv_metrics *m);

/* route: an index into the labels; -1 (or out of range) = "other". */
void srv_metrics_request(srv_metrics *m, int route, int status);
void srv_metrics_stage(srv_metrics *m, m_stage s, uint64_t ns);
void srv_metrics_batch(srv_metrics *m, int seqs, int tokens, int hits, int misses);
void srv_metrics_tokens(srv_metrics *m, uint64_t n);
/* A queued request dropped before compute: deadline passed or client gone. */
void srv_metrics_dropped(srv_metrics *m, bool client_gone);

/* Renders everything; store and tier (the second tier) may be NULL;
 * queue_depth / in_flight are gauges the caller reads from the engine.
 * Returns a malloc'd string. */
char *srv_metrics_render(srv_metrics *m, const er_store *store, const er_tier *tier,
                         int queue_depth, int in_flight, size_t *len);

#endif
