/* er_pool: a fixed fork-join pool for the parts of one forward pass that
 * OpenBLAS does not parallelise well (per-head attention, elementwise row
 * passes).  The calling thread takes part; the others are created once at
 * init and park on a condition variable between calls, so er_pool_run does
 * not allocate.
 *
 * Item i always runs the same computation whichever thread takes it, so
 * results do not depend on the thread count.
 *
 * Thread-safety: one caller at a time per pool (it belongs to one er_ctx). */
#ifndef ER_POOL_H
#define ER_POOL_H

#include "er_error.h"

typedef struct er_pool er_pool;

/* fn(arg, item, thread) for every item in [0, n_items); thread in
 * [0, er_pool_threads) identifies per-thread scratch. */
typedef void (*er_pool_fn)(void *arg, int item, int thread);

/* n_threads >= 1 (1 = no extra threads: everything runs on the caller).
 * ER_ERR_INVALID_ARG, ER_ERR_NOMEM (thread creation failed). */
er_status er_pool_init(int n_threads, er_pool **out, er_err *err);
void er_pool_free(er_pool *p); /* NULL accepted; joins the threads */

int er_pool_threads(const er_pool *p);

/* Runs fn on every item, items dealt round-robin to the threads, and returns
 * when all are done. */
void er_pool_run(er_pool *p, er_pool_fn fn, void *arg, int n_items);

#endif
