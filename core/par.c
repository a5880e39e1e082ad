#include "par.h"

#include <pthread.h>
#include <stdlib.h>

struct er_par {
    int n_threads;
    pthread_t *threads; /* [n_threads - 1]: thread 0 is the caller */
    int started;        /* threads created */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation; /* bumped per run; workers wait for a change */
    int pending;              /* workers still on the current run */
    int stop;
    er_par_fn fn;
    void *arg;
    int n_items;
};

typedef struct {
    er_par *p;
    int tid;
} worker_arg;

static void run_share(er_par *p, int tid) {
    for (int i = tid; i < p->n_items; i += p->n_threads) p->fn(p->arg, i, tid);
}

static void *worker_main(void *a) {
    worker_arg wa = *(worker_arg *)a;
    free(a);
    er_par *p = wa.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_share(p, wa.tid);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void er_par_free(er_par *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

er_status er_par_init(int n_threads, er_par **out, er_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 256)
        return er_set(err, ER_ERR_INVALID_ARG, "parallel team of %d threads (1 to 256)", n_threads);
    er_par *p = calloc(1, sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        er_par_free(p);
        return er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    for (int t = 1; t < n_threads; t++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            er_par_free(p);
            return er_set(err, ER_ERR_NOMEM, "out of memory");
        }
        *wa = (worker_arg){p, t};
        if (pthread_create(&p->threads[p->started], NULL, worker_main, wa) != 0) {
            free(wa);
            er_par_free(p);
            return er_set(err, ER_ERR_NOMEM, "cannot start parallel team thread %d", t);
        }
        p->started++;
    }
    *out = p;
    return ER_OK;
}

int er_par_threads(const er_par *p) { return p->n_threads; }

void er_par_run(er_par *p, er_par_fn fn, void *arg, int n_items) {
    if (p->n_threads == 1 || n_items <= 1) {
        for (int i = 0; i < n_items; i++) fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_items = n_items;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_share(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
