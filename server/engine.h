/* The compute engine: a fixed pool of workers (each owns one er_worker, see
 * recycle.h) fed by one bounded FIFO of jobs.
 *
 * Dynamic batching: a worker takes the oldest job and fills one er_run batch
 * with its sequences and those of later queued jobs for the same task and
 * mode, up to batch_tokens tokens and batch_seqs sequences (a job larger
 * than one batch is split across batches; its sequences never reorder).  A
 * sequence longer than batch_tokens (up to max_seq_len) runs as a batch of
 * its own; every worker's scratch is sized once for it (er_worker_params).
 * Before its first sequence runs, a job is dropped if its deadline passed
 * (status ER_ERR_CAPACITY-like "deadline", see eng_job.outcome) or its
 * client has gone (alive() false), so abandoned requests cost no compute.
 *
 * A job's done() runs exactly once, on a worker thread (or in eng_submit's
 * caller when refused), after its last sequence; the job must stay valid
 * until then. */
#ifndef ER_SRV_ENGINE_H
#define ER_SRV_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "recycle.h"

typedef enum {
    ENG_OK,        /* ran; per-job er status in err */
    ENG_FULL,      /* queue full: 429 */
    ENG_STOPPING,  /* draining for shutdown: 503 */
    ENG_DEADLINE,  /* waited past its deadline: 503 */
    ENG_GONE,      /* client disconnected: nobody to answer */
} eng_outcome;

typedef struct eng_job eng_job;
struct eng_job {
    /* in */
    const er_task *task;
    bool warm;               /* lower layers only (er_warm); out unused */
    int n_seqs;
    const int *seq_len;      /* [n_seqs] */
    const int32_t *ids;      /* packed [sum seq_len] */
    const int32_t *type_ids; /* packed, or NULL */
    uint64_t salt;
    float *out;              /* eng_out_floats(task, n_seqs, tokens) */
    uint8_t *hit;            /* [n_seqs] */
    uint64_t deadline_ns;    /* er_now_ns() clock; 0 = none */
    bool (*alive)(void *alive_user); /* false: the client has gone */
    void *alive_user;
    void (*done)(eng_job *j, void *user);
    void *user;
    /* out (valid in done) */
    eng_outcome outcome;
    er_err err;              /* err.code != ER_OK: the engine refused the batch */
    er_run_stats stats;      /* summed over its batches */
    uint64_t queue_ns, compute_ns;
    /* engine-private */
    eng_job *next;
    uint64_t enq_ns, start_ns;
    int taken, tok_taken, finished;
};

typedef struct {
    int workers, queue_max, batch_tokens, batch_seqs;
    int max_seq_len; /* the longest input (er_taskset_longest_input): one
                        longer than batch_tokens runs as a batch of its own */
    srv_metrics *metrics;
} eng_params;

typedef struct eng eng;

er_status eng_init(const er_taskset *ts, const eng_params *p, eng **out, er_err *err);
/* Stops accepting (ENG_STOPPING), lets the workers finish everything queued,
 * joins them.  Idempotent. */
void eng_drain(eng *e);
void eng_free(eng *e); /* drains first; NULL accepted */

/* Queues j, or completes it at once (done() in this thread) with ENG_FULL /
 * ENG_STOPPING.  Returns j->outcome at return time (ENG_OK = queued). */
eng_outcome eng_submit(eng *e, eng_job *j);

size_t eng_out_floats(const er_task *t, int n_seqs, int n_tokens);
int eng_queue_depth(eng *e);

#endif
