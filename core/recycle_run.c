/* The recycling forward pass: store lookups, lower layers for the misses
 * (written back), then the task's upper layers and head.  Every buffer is
 * sized in er_worker_init; er_run and er_warm never allocate. */
#include <stdlib.h>
#include <string.h>

#include "er_util.h"
#include "recycle_internal.h"

struct er_worker {
    const er_taskset *ts;
    er_ctx *ctx;
    er_store_reader *reader; /* NULL without a store */
    er_tier_client *tier;    /* NULL without a second tier */
    int max_tokens, max_seqs, hidden;
    float *x;         /* [max_tokens, hidden] the batch at the cut, then above */
    float *xm;        /* [max_tokens, hidden] the misses' lower layers */
    int32_t *mids;    /* [max_tokens] the misses' ids, packed */
    int32_t *mtypes;  /* [max_tokens] and type ids */
    int *mlen;        /* [max_seqs] the misses' lengths */
    int *miss;        /* [max_seqs] batch index of each miss */
    int *off;         /* [max_seqs] first token of each sequence */
    uint8_t (*keys)[ER_STORE_KEY_BYTES]; /* [max_seqs] */
    uint8_t *hit;     /* [max_seqs] */
    size_t bytes;     /* of the buffers above */
};

void er_worker_free(er_worker *w) {
    if (!w) return;
    er_ctx_free(w->ctx);
    er_store_reader_free(w->reader);
    er_tier_client_free(w->tier);
    free(w->x); free(w->xm); free(w->mids); free(w->mtypes); free(w->mlen); free(w->miss);
    free(w->off); free(w->keys); free(w->hit);
    free(w);
}

er_status er_worker_init(const er_taskset *ts, const er_ctx_params *params, er_worker **out,
                         er_err *err) {
    *out = NULL;
    er_ctx_params d = er_ctx_default_params();
    er_ctx_params p = params ? *params : er_worker_params(ts, d.max_tokens, d.max_seqs, 0);
    /* One ctx serves every task: sized for the largest of each size over
     * the tasks' models (and any family scratch one of them needs). */
    const er_model **models = malloc((size_t)ts->n * sizeof *models);
    if (!models) return er_set(err, ER_ERR_NOMEM, "out of memory");
    int hidden = 0;
    for (int i = 0; i < ts->n; i++) {
        models[i] = ts->tasks[i].model;
        int h = er_model_config(models[i])->hidden_size;
        hidden = h > hidden ? h : hidden;
    }
    er_worker *w = calloc(1, sizeof *w);
    if (!w) {
        free(models);
        return er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    w->ts = ts;
    er_status st = er_ctx_init_models(models, ts->n, &p, &w->ctx, err);
    free(models);
    if (st != ER_OK) {
        er_worker_free(w);
        return st;
    }
    for (int i = 0; i < ts->n; i++)
        if (!er_ctx_fits(w->ctx, ts->tasks[i].model)) {
            er_worker_free(w);
            return er_set(err, ER_ERR_UNSUPPORTED, "task %s: no one worker scratch fits every "
                          "task's sizes", ts->tasks[i].name);
        }
    w->max_tokens = p.max_tokens;
    w->max_seqs = p.max_seqs;
    w->hidden = hidden;
    size_t T = (size_t)p.max_tokens, S = (size_t)p.max_seqs, H = (size_t)w->hidden;
    w->bytes = T * (2 * H * sizeof(float) + 2 * sizeof(int32_t)) +
               S * (3 * sizeof(int) + ER_STORE_KEY_BYTES + 1);
    w->x = malloc(T * H * sizeof *w->x);
    w->xm = malloc(T * H * sizeof *w->xm);
    w->mids = malloc(T * sizeof *w->mids);
    w->mtypes = malloc(T * sizeof *w->mtypes);
    w->mlen = malloc(S * sizeof *w->mlen);
    w->miss = malloc(S * sizeof *w->miss);
    w->off = malloc(S * sizeof *w->off);
    w->keys = malloc(S * sizeof *w->keys);
    w->hit = malloc(S);
    if (!w->x || !w->xm || !w->mids || !w->mtypes || !w->mlen || !w->miss || !w->off || !w->keys ||
        !w->hit) {
        er_worker_free(w);
        return er_set(err, ER_ERR_NOMEM, "out of memory for worker buffers");
    }
    if ((ts->store && (st = er_store_reader_new(ts->store, &w->reader, err)) != ER_OK) ||
        (ts->tier && (st = er_tier_client_new(ts->tier, w->max_tokens, w->hidden, &w->tier, err)) != ER_OK)) {
        er_worker_free(w);
        return st;
    }
    *out = w;
    return ER_OK;
}

size_t er_worker_bytes(const er_worker *w) { return er_ctx_bytes(w->ctx) + w->bytes; }

/* A local miss: asks the second tier, and keeps what it has in the local
 * store too (so the next request for it stays on this replica's disk). */
static bool tier_lookup(er_worker *w, const uint8_t *key, int n, int H, float *dst) {
    const er_taskset *ts = w->ts;
    if (!w->tier || er_tier_get(w->tier, key, ts->cut, n, H, dst) != ER_OK) return false;
    er_store_put(ts->store, key, ts->cut, n, H, dst, false, NULL);
    return true;
}

/* Looks every sequence of b up in the store, then the second tier (into w->x
 * where it hits), and lists the misses in w->miss.  Returns how many missed;
 * *tier_hits how many hit in the second tier. */
static int lookup(er_worker *w, const er_task *t, const er_batch *b, uint64_t salt, int H,
                  int *tier_hits) {
    const int cut = w->ts->cut;
    int n_miss = 0, off = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        w->off[s] = off;
        w->hit[s] = 0;
        if (w->reader) {
            const int32_t *ty = b->type_ids ? b->type_ids + off : NULL;
            er_store_key(t->fp, cut, b->seq_len[s], b->ids + off, ty, salt, w->keys[s]);
            /* any failure (miss, corrupt, LMDB error) means: compute it */
            float *dst = w->x + (size_t)off * H;
            w->hit[s] = er_store_get(w->reader, w->keys[s], cut, b->seq_len[s], H, dst, NULL) == ER_OK;
            if (!w->hit[s] && tier_lookup(w, w->keys[s], b->seq_len[s], H, dst))
                w->hit[s] = 1, ++*tier_hits;
        }
        if (!w->hit[s]) w->miss[n_miss++] = s;
        off += b->seq_len[s];
    }
    return n_miss;
}

/* The batch of b's n_miss missing sequences, packed into w's staging
 * buffers; when every sequence missed, b itself. */
static er_batch miss_batch(er_worker *w, const er_batch *b, int n_miss) {
    if (n_miss == b->n_seqs) return *b;
    int m_off = 0;
    for (int i = 0; i < n_miss; i++) {
        int s = w->miss[i], n = b->seq_len[s];
        memcpy(w->mids + m_off, b->ids + w->off[s], (size_t)n * sizeof *w->mids);
        if (b->type_ids) memcpy(w->mtypes + m_off, b->type_ids + w->off[s], (size_t)n * sizeof *w->mtypes);
        w->mlen[i] = n;
        m_off += n;
    }
    return (er_batch){.n_seqs = n_miss, .seq_len = w->mlen, .ids = w->mids,
                      .type_ids = b->type_ids ? w->mtypes : NULL};
}

/* Queues the misses' computed activations xm [miss tokens, H] for writing
 * and places them in w->x, rounded as the store rounds them. */
static void store_misses(er_worker *w, const er_batch *b, int n_miss, const float *xm, int H,
                         bool wait) {
    const er_taskset *ts = w->ts;
    int m_off = 0;
    for (int i = 0; i < n_miss; i++) {
        int s = w->miss[i], n = b->seq_len[s];
        const float *rows = xm + (size_t)m_off * H; // [n, H]
        if (ts->store) er_store_put(ts->store, w->keys[s], ts->cut, n, H, rows, wait, NULL);
        if (w->tier) er_tier_put(w->tier, w->keys[s], ts->cut, n, H, rows);
        float *dst = w->x + (size_t)w->off[s] * H; // [n, H]
        if (xm != w->x) memcpy(dst, rows, (size_t)n * H * sizeof *rows);
        /* The upper layers see what a later hit will see: same answer either way. */
        if (ts->store) er_store_round(ts->store, n, H, dst);
        m_off += n;
    }
}

/* Fills w->x [n_tokens, hidden] with the layer-`cut` activations of b: from
 * the store where it has them, else computed (all misses in one batch) and
 * queued for writing (`wait`: block on a full queue instead of dropping). */
static er_status lower(er_worker *w, const er_task *t, const er_batch *b, uint64_t salt, bool wait,
                       er_run_stats *stats, er_err *err) {
    const er_taskset *ts = w->ts;
    const er_model *S = ts->stacks[t->stack].model;
    const int H = er_model_config(S)->hidden_size;
    uint64_t t0 = er_now_ns();
    int n_miss = lookup(w, t, b, salt, H, &stats->tier_hits);
    uint64_t t1 = er_now_ns();
    stats->store_read_ns += w->reader ? t1 - t0 : 0;
    stats->hits += b->n_seqs - n_miss;
    stats->misses += n_miss;
    if (n_miss == 0) return ER_OK;
    /* All missing: the batch as given, so the result is er_forward's own. */
    er_batch mb = miss_batch(w, b, n_miss);
    float *xm = n_miss == b->n_seqs ? w->x : w->xm;
    er_status st = er_embed(S, w->ctx, &mb, xm, err);
    if (st == ER_OK) st = er_layers(S, w->ctx, &mb, 0, ts->cut, xm, err);
    if (st != ER_OK) return st;
    uint64_t t2 = er_now_ns();
    stats->lower_ns += t2 - t1;
    store_misses(w, b, n_miss, xm, H, wait);
    stats->store_write_ns += ts->store ? er_now_ns() - t2 : 0;
    return ER_OK;
}

static er_status check_call(er_worker *w, const er_task *t, const er_batch *b, er_err *err) {
    const er_taskset *ts = w->ts;
    if (!t || t < ts->tasks || t >= ts->tasks + ts->n)
        return er_set(err, ER_ERR_INVALID_ARG, "task is not from this worker's task set");
    if (!b || !b->ids || !b->seq_len)
        return er_set(err, ER_ERR_INVALID_ARG, "no batch");
    return er_batch_check(t->model, w->ctx, b, err);
}

er_status er_run(er_worker *w, const er_task *t, const er_batch *b, uint64_t key_salt, float *out,
                 uint8_t *cache_hit, er_run_stats *stats, er_err *err) {
    er_run_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    er_status st = check_call(w, t, b, err);
    if (st == ER_OK) st = lower(w, t, b, key_salt, false, stats, err);
    if (st != ER_OK) return st;
    if (cache_hit) memcpy(cache_hit, w->hit, (size_t)b->n_seqs);
    const er_model *S = w->ts->stacks[t->stack].model;
    const int L = er_model_config(t->model)->num_layers;
    uint64_t t0 = er_now_ns();
    if (t->run_from > w->ts->cut) st = er_layers(S, w->ctx, b, w->ts->cut, t->run_from, w->x, err);
    if (st == ER_OK) st = er_layers(t->model, w->ctx, b, t->run_from, L, w->x, err);
    uint64_t t1 = er_now_ns();
    if (st == ER_OK) st = er_head(t->model, w->ctx, b, w->x, out, err);
    stats->upper_ns = t1 - t0;
    stats->head_ns = er_now_ns() - t1;
    return st;
}

er_status er_warm(er_worker *w, const er_task *t, const er_batch *b, uint64_t key_salt,
                  uint8_t *cache_hit, er_run_stats *stats, er_err *err) {
    er_run_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!w->ts->store) return er_set(err, ER_ERR_INVALID_ARG, "no store to warm");
    er_status st = check_call(w, t, b, err);
    if (st == ER_OK) st = lower(w, t, b, key_salt, true, stats, err);
    if (st == ER_OK && cache_hit) memcpy(cache_hit, w->hit, (size_t)b->n_seqs);
    return st;
}
