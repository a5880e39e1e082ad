/* Worker pool, bounded queue and dynamic batching (see engine.h). */
#include "engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "er_util.h"

struct eng {
    const er_taskset *ts;
    eng_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    eng_job *head, *tail;
    int depth;
    bool stopping, joined;
    int n_threads;
    pthread_t *threads;
    er_worker **workers;
    size_t out_cap; /* floats of one batch's head output, any task */
    int max_tokens; /* tokens of one batch: the budget, or one longer input alone */
};

typedef struct {
    eng_job *j;
    int from, to, tok_from, ntok;
} slice;

size_t eng_out_floats(const er_task *t, int n_seqs, int n_tokens) {
    size_t w = (size_t)er_model_head_width(er_task_model(t));
    return w * (size_t)(er_head_per_token(er_model_config(er_task_model(t))->head) ? n_tokens : n_seqs);
}

int eng_queue_depth(eng *e) {
    pthread_mutex_lock(&e->mu);
    int d = e->depth;
    pthread_mutex_unlock(&e->mu);
    return d;
}

static void unlink_job(eng *e, eng_job *prev, eng_job *q) {
    if (prev) prev->next = q->next;
    else e->head = q->next;
    if (e->tail == q) e->tail = prev;
    q->next = NULL;
    e->depth--;
}

/* Under the lock: fills slices for one batch (returns their count, at
 * most batch_seqs); jobs found expired or abandoned go to *dead. */
static int pick(eng *e, slice *sl, eng_job **dead, uint64_t now) {
    const er_task *task = NULL;
    bool warm = false;
    int ns = 0, n = 0, toks = 0;
    eng_job *prev = NULL, *q = e->head;
    /* Bounded by the queue length (queue_max). */
    while (q && n < e->p.batch_seqs) {
        eng_job *next = q->next;
        if (q->taken == 0) {
            eng_outcome o = ENG_OK;
            if (q->deadline_ns && now > q->deadline_ns) o = ENG_DEADLINE;
            else if (q->alive && !q->alive(q->alive_user)) o = ENG_GONE;
            if (o != ENG_OK) {
                q->outcome = o;
                unlink_job(e, prev, q);
                q->next = *dead;
                *dead = q;
                q = next;
                continue;
            }
        }
        if (!task) {
            task = q->task;
            warm = q->warm;
        }
        if (q->task != task || q->warm != warm) {
            prev = q;
            q = next;
            continue;
        }
        int from = q->taken, to = from, t = 0;
        while (to < q->n_seqs && n + (to - from) < e->p.batch_seqs &&
               (toks + t + q->seq_len[to] <= e->p.batch_tokens || (n == 0 && to == from)))
            t += q->seq_len[to++];
        if (to == from) break; /* the batch is full: keep FIFO order */
        if (q->taken == 0) q->start_ns = now;
        sl[ns++] = (slice){q, from, to, q->tok_taken, t};
        n += to - from;
        toks += t;
        q->taken = to;
        q->tok_taken += t;
        if (q->taken < q->n_seqs) break; /* partly taken: the batch is full */
        unlink_job(e, prev, q);
        q = next;
    }
    return ns;
}

typedef struct {
    eng *e;
    int idx;
} warg;

/* One worker's batch buffers, sized once for the largest batch. */
typedef struct {
    int32_t *ids, *tt; /* [max_tokens] packed ids and token types */
    int *lens;         /* [batch_seqs] */
    uint8_t *hit;      /* [batch_seqs] */
    slice *sl;         /* [batch_seqs] */
    float *out;        /* [out_cap] the batch's head output */
    bool oom;
} wbufs;

static void wbufs_init(wbufs *b, const eng *e) {
    int bt = e->max_tokens, bs = e->p.batch_seqs;
    b->ids = malloc((size_t)bt * sizeof *b->ids);
    b->tt = malloc((size_t)bt * sizeof *b->tt);
    b->lens = malloc((size_t)bs * sizeof *b->lens);
    b->hit = malloc((size_t)bs);
    b->sl = malloc((size_t)bs * sizeof *b->sl);
    b->out = malloc(e->out_cap * sizeof *b->out);
    b->oom = !b->ids || !b->tt || !b->lens || !b->hit || !b->sl || !b->out;
}

static void wbufs_free(wbufs *b) {
    free(b->ids);
    free(b->tt);
    free(b->lens);
    free(b->hit);
    free(b->sl);
    free(b->out);
}

/* Completes a list of jobs linked by next (outside the lock). */
static void finish_all(eng_job *list) {
    while (list) {
        eng_job *d = list;
        list = d->next;
        d->done(d, d->user);
    }
}

/* Waits for work and takes one batch's slices.  Returns -1 when stopping
 * with nothing queued, else the slice count (0: only dropped jobs). */
static int take_batch(eng *e, slice *sl, uint64_t *t0) {
    eng_job *dead = NULL;
    pthread_mutex_lock(&e->mu);
    while (!e->head && !e->stopping) pthread_cond_wait(&e->cv, &e->mu);
    if (!e->head) {
        pthread_mutex_unlock(&e->mu);
        return -1;
    }
    *t0 = er_now_ns();
    int ns = pick(e, sl, &dead, *t0);
    if (e->head) pthread_cond_signal(&e->cv); /* more work: wake a peer */
    pthread_mutex_unlock(&e->mu);
    for (eng_job *d = dead; d; d = d->next) d->queue_ns = *t0 - d->enq_ns;
    finish_all(dead);
    return ns;
}

/* Copies the slices' sequences into the batch buffers. */
static er_batch pack_batch(eng *e, wbufs *b, int ns, uint64_t t0, int *toks_out) {
    int n = 0, toks = 0;
    for (int i = 0; i < ns; i++) {
        const slice *s = &b->sl[i];
        const eng_job *j = s->j;
        if (s->from == 0) srv_metrics_stage(e->p.metrics, M_STAGE_QUEUE, t0 - j->enq_ns);
        memcpy(b->ids + toks, j->ids + s->tok_from, (size_t)s->ntok * sizeof *b->ids);
        if (j->type_ids) memcpy(b->tt + toks, j->type_ids + s->tok_from, (size_t)s->ntok * sizeof *b->tt);
        else memset(b->tt + toks, 0, (size_t)s->ntok * sizeof *b->tt);
        memcpy(b->lens + n, j->seq_len + s->from, (size_t)(s->to - s->from) * sizeof *b->lens);
        n += s->to - s->from;
        toks += s->ntok;
    }
    *toks_out = toks;
    return (er_batch){.n_seqs = n, .seq_len = b->lens, .ids = b->ids, .type_ids = b->tt};
}

static void batch_metrics(eng *e, const er_batch *bt, int toks, const er_run_stats *st) {
    srv_metrics_batch(e->p.metrics, bt->n_seqs, toks, st->hits, st->misses);
    srv_metrics_stage(e->p.metrics, M_STAGE_LOWER, st->lower_ns);
    srv_metrics_stage(e->p.metrics, M_STAGE_STORE_READ, st->store_read_ns);
    srv_metrics_stage(e->p.metrics, M_STAGE_STORE_WRITE, st->store_write_ns);
    srv_metrics_stage(e->p.metrics, M_STAGE_UPPER, st->upper_ns);
    srv_metrics_stage(e->p.metrics, M_STAGE_HEAD, st->head_ns);
}

/* The outcome of one batch, for scatter. */
typedef struct {
    er_status rc;
    er_err err;
    er_run_stats st;
    uint64_t ns;
} batch_result;

static void add_stats(er_run_stats *to, const er_run_stats *st) {
    to->lower_ns += st->lower_ns;
    to->store_read_ns += st->store_read_ns;
    to->store_write_ns += st->store_write_ns;
    to->upper_ns += st->upper_ns;
    to->head_ns += st->head_ns;
}

/* Under the lock: gives each slice's job its rows of the batch output and
 * its timings; returns the jobs whose last sequence ran. */
static eng_job *scatter(const wbufs *b, int ns, const batch_result *r) {
    const er_task *task = b->sl[0].j->task;
    bool pt = er_head_per_token(er_model_config(er_task_model(task))->head);
    size_t wd = (size_t)er_model_head_width(er_task_model(task));
    int bseq = 0, btok = 0;
    eng_job *fin = NULL;
    for (int i = 0; i < ns; i++) {
        const slice *s = &b->sl[i];
        eng_job *j = s->j;
        int cnt = s->to - s->from;
        if (r->rc == ER_OK) {
            if (!j->warm && pt)
                memcpy(j->out + (size_t)s->tok_from * wd, b->out + (size_t)btok * wd,
                       (size_t)s->ntok * wd * sizeof(float));
            else if (!j->warm)
                memcpy(j->out + (size_t)s->from * wd, b->out + (size_t)bseq * wd,
                       (size_t)cnt * wd * sizeof(float));
            memcpy(j->hit + s->from, b->hit + bseq, (size_t)cnt);
        } else if (j->err.code == ER_OK)
            j->err = r->err;
        bseq += cnt;
        btok += s->ntok;
        add_stats(&j->stats, &r->st);
        j->compute_ns += r->ns;
        j->finished += cnt;
        if (j->finished == j->n_seqs) {
            j->queue_ns = j->start_ns - j->enq_ns;
            j->next = fin;
            fin = j;
        }
    }
    return fin;
}

static void run_batch(eng *e, er_worker *w, wbufs *b, int ns, uint64_t t0) {
    int toks = 0;
    er_batch bt = pack_batch(e, b, ns, t0, &toks);
    const eng_job *first = b->sl[0].j;
    batch_result r = {.rc = ER_ERR_NOMEM};
    uint64_t t1 = er_now_ns();
    if (b->oom) er_set(&r.err, ER_ERR_NOMEM, "worker buffers");
    else if (first->warm)
        r.rc = er_warm(w, first->task, &bt, first->salt, b->hit, &r.st, &r.err);
    else r.rc = er_run(w, first->task, &bt, first->salt, b->out, b->hit, &r.st, &r.err);
    r.ns = er_now_ns() - t1;
    batch_metrics(e, &bt, toks, &r.st);
    pthread_mutex_lock(&e->mu);
    eng_job *fin = scatter(b, ns, &r);
    pthread_mutex_unlock(&e->mu);
    for (eng_job *d = fin; d; d = d->next) {
        for (int s = 0; s < d->n_seqs; s++) d->stats.hits += d->hit[s] ? 1 : 0;
        d->stats.misses = d->n_seqs - d->stats.hits;
    }
    finish_all(fin);
}

static void *worker_main(void *arg) {
    eng *e = ((warg *)arg)->e;
    er_worker *w = e->workers[((warg *)arg)->idx];
    free(arg);
    wbufs b;
    wbufs_init(&b, e);
    for (;;) {
        uint64_t t0 = 0;
        int ns = take_batch(e, b.sl, &t0);
        if (ns < 0) break;
        if (ns > 0) run_batch(e, w, &b, ns, t0);
    }
    wbufs_free(&b);
    return NULL;
}

/* The memory the workers' scratch costs, once at start-up: it is sized for
 * the longest input a task accepts, not only for the batch budget. */
static void log_scratch(const eng *e) {
    size_t w = er_worker_bytes(e->workers[0]);
    size_t per_batch = e->out_cap * sizeof(float) + (size_t)e->max_tokens * 2 * sizeof(int32_t);
    er_log(ER_LOG_INFO, "worker scratch: %.1f MiB each x %d workers = %.1f MiB, for %d tokens "
           "(batch budget %d; inputs up to %d tokens run as a batch of their own)",
           (double)(w + per_batch) / (1 << 20), e->p.workers,
           (double)(w + per_batch) * e->p.workers / (1 << 20), e->max_tokens, e->p.batch_tokens,
           e->p.max_seq_len);
}

er_status eng_init(const er_taskset *ts, const eng_params *p, eng **out, er_err *err) {
    *out = NULL;
    if (p->workers < 1 || p->queue_max < 1 || p->batch_tokens < 1 || p->batch_seqs < 1 ||
        p->max_seq_len < 1)
        return er_set(err, ER_ERR_INVALID_ARG, "engine: bad parameters");
    eng *e = calloc(1, sizeof *e);
    if (!e) return er_set(err, ER_ERR_NOMEM, "engine");
    e->ts = ts;
    e->p = *p;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    /* An input longer than the budget runs alone (pick): every buffer holds
     * the larger of the two. */
    e->max_tokens = p->batch_tokens > p->max_seq_len ? p->batch_tokens : p->max_seq_len;
    for (int i = 0; i < er_taskset_count(ts); i++) {
        size_t c = eng_out_floats(er_taskset_at(ts, i), p->batch_seqs, e->max_tokens);
        if (c > e->out_cap) e->out_cap = c;
    }
    e->workers = calloc((size_t)p->workers, sizeof *e->workers);
    e->threads = calloc((size_t)p->workers, sizeof *e->threads);
    if (!e->workers || !e->threads) {
        eng_free(e);
        return er_set(err, ER_ERR_NOMEM, "engine");
    }
    er_ctx_params cp = er_ctx_default_params();
    cp.max_tokens = e->max_tokens;
    cp.max_seqs = p->batch_seqs;
    cp.max_seq_len = p->max_seq_len;
    for (int i = 0; i < p->workers; i++) {
        er_status st = er_worker_init(ts, &cp, &e->workers[i], err);
        if (st != ER_OK) {
            eng_free(e);
            return st;
        }
    }
    log_scratch(e);
    for (int i = 0; i < p->workers; i++) {
        warg *a = malloc(sizeof *a);
        if (a) *a = (warg){e, i};
        if (!a || pthread_create(&e->threads[i], NULL, worker_main, a)) {
            free(a);
            eng_free(e);
            return er_set(err, ER_ERR_NOMEM, "engine: cannot start worker %d", i);
        }
        e->n_threads++;
    }
    *out = e;
    return ER_OK;
}

void eng_drain(eng *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    bool join = !e->joined;
    e->joined = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (!join) return;
    for (int i = 0; i < e->n_threads; i++) pthread_join(e->threads[i], NULL);
}

void eng_free(eng *e) {
    if (!e) return;
    eng_drain(e);
    for (int i = 0; e->workers && i < e->p.workers; i++) er_worker_free(e->workers[i]);
    free(e->workers);
    free(e->threads);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

eng_outcome eng_submit(eng *e, eng_job *j) {
    j->outcome = ENG_OK;
    er_clear(&j->err);
    memset(&j->stats, 0, sizeof j->stats);
    j->queue_ns = j->compute_ns = 0;
    j->next = NULL;
    j->taken = j->tok_taken = j->finished = 0;
    j->enq_ns = er_now_ns();
    pthread_mutex_lock(&e->mu);
    if (e->stopping) j->outcome = ENG_STOPPING;
    else if (e->depth >= e->p.queue_max) j->outcome = ENG_FULL;
    else {
        if (e->tail) e->tail->next = j;
        else e->head = j;
        e->tail = j;
        e->depth++;
        pthread_cond_signal(&e->cv);
    }
    eng_outcome o = j->outcome;
    pthread_mutex_unlock(&e->mu);
    if (o != ENG_OK) j->done(j, j->user);
    return o;
}
