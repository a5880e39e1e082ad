/* er_par: a parallel-for team, a fixed set of fork-join threads for one
 * forward pass: the weight GEMMs (gemm.h: panels of output columns per
 * thread), attention (per sequence, head and query block) and the row
 * passes.  The calling thread takes part; the others are created once at
 * init, spin briefly after each run (the next one of a forward follows within
 * microseconds) and then park on a condition variable, so er_par_run does
 * not allocate and an idle team costs no CPU.
 *
 * Item i always runs the same computation whichever thread takes it, so
 * results do not depend on the thread count.
 *
 * Thread-safety: one caller at a time per team (it belongs to one er_ctx). */
#ifndef ER_PAR_H
#define ER_PAR_H

#include "er_error.h"

typedef struct er_par er_par;

/* fn(arg, item, thread) for every item in [0, n_items); thread in
 * [0, er_par_threads) identifies per-thread scratch. */
typedef void (*er_par_fn)(void *arg, int item, int thread);

/* n_threads >= 1 (1 = no extra threads: everything runs on the caller).
 * ER_ERR_INVALID_ARG, ER_ERR_NOMEM (thread creation failed). */
er_status er_par_init(int n_threads, er_par **out, er_err *err);
void er_par_free(er_par *p); /* NULL accepted; joins the threads */

int er_par_threads(const er_par *p);

/* Runs fn on every item, items dealt round-robin to the threads, and returns
 * when all are done. */
void er_par_run(er_par *p, er_par_fn fn, void *arg, int n_items);

#endif
