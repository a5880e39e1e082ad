/* Tasks added and removed while a set serves (recycle.h).  Slots never
 * move: a task pointer stays valid for the set's life, and readers find the
 * published count (an atomic) without a lock.  Add, remove, acquire and
 * release take the set's mutex; a removed task's weights are released when the
 * last call holding it releases it and no live task runs on its stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "er_util.h"
#include "recycle_internal.h"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

er_status er_taskset_init_dynamic(er_taskset *ts, int n, const er_taskset_params *p, er_err *err) {
    ts->cap = n > ER_TASKSET_MIN_SLOTS ? n : ER_TASKSET_MIN_SLOTS;
    ts->tasks = calloc((size_t)ts->cap, sizeof *ts->tasks);
    ts->stacks = calloc((size_t)ts->cap, sizeof *ts->stacks);
    ts->mu = malloc(sizeof *ts->mu);
    ts->p = *p;
    ts->model_root = dup_or_null(p->model_root);
    ts->tokenizer = dup_or_null(p->tokenizer);
    ts->p.model_root = ts->model_root;
    ts->p.tokenizer = ts->tokenizer;
    ts->p.store_path = NULL; /* opened once, at load */
    ts->p.token_embeddings = NULL; /* per spec at load; added tasks pool as their config says */
    if (!ts->tasks || !ts->stacks || !ts->mu || (p->model_root && !ts->model_root) ||
        (p->tokenizer && !ts->tokenizer)) {
        free(ts->mu);
        ts->mu = NULL;
        return er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(ts->mu, NULL);
    return ER_OK;
}

void er_taskset_note_sizes(er_taskset *ts) {
    for (int i = 0; i < ts->n; i++) {
        const er_config *c = er_model_config(ts->tasks[i].model);
        if (c->hidden_size > ts->max_hidden) ts->max_hidden = c->hidden_size;
        if (c->intermediate_size > ts->max_inter) ts->max_inter = c->intermediate_size;
        if (c->embedding_size > ts->max_emb) ts->max_emb = c->embedding_size;
    }
}

void er_taskset_free_dynamic(er_taskset *ts) {
    if (ts->mu) pthread_mutex_destroy(ts->mu);
    free(ts->mu);
    free(ts->model_root);
    free(ts->tokenizer);
}

static bool stack_in_use(const er_taskset *ts, int j, int except) {
    for (int i = 0; i < ts->n; i++)
        if (i != except && ts->tasks[i].stack == j && !ts->tasks[i].unloaded &&
            (!ts->tasks[i].removed || ts->tasks[i].refs > 0))
            return true;
    return false;
}

/* Under the mutex: frees what removed tasks no longer need — a removed,
 * unheld task's model, unless it carries a stack others still run on. */
static void collect(const er_taskset *ts) {
    for (int i = 0; i < ts->n; i++) {
        er_task *t = &ts->tasks[i];
        if (!t->removed || t->refs > 0 || t->unloaded) continue;
        er_stack *s = &ts->stacks[t->stack];
        bool owner = s->owner == i && !s->dead;
        if (owner && stack_in_use(ts, t->stack, i)) continue; /* freed with its last sharer */
        er_model_unload(t->model); /* its config stays for readers (er_taskset_at) */
        t->unloaded = true;
        if (owner) {
            s->dead = true;
        }
        er_log(ER_LOG_INFO, "task %s: unloaded", t->name);
    }
}

/* The new slot's size check: workers were built for the sizes at load. */
static er_status fits(const er_taskset *ts, const er_task *t, er_err *err) {
    const er_config *c = er_model_config(t->model);
    if (c->hidden_size > ts->max_hidden || c->intermediate_size > ts->max_inter ||
        c->embedding_size > ts->max_emb)
        return er_set(err, ER_ERR_UNSUPPORTED, "task %s: hidden %d / intermediate %d exceed what "
                      "the workers were sized for at start (%d / %d)", t->name, c->hidden_size,
                      c->intermediate_size, ts->max_hidden, ts->max_inter);
    return ER_OK;
}

static er_status add_locked(er_taskset *ts, const er_task_spec *sp, er_err *err) {
    if (!er_task_name_valid(sp->name))
        return er_set(err, ER_ERR_INVALID_ARG, "task name \"%s\" must match [A-Za-z0-9_.-]{1,64}",
                      sp->name ? sp->name : "");
    if (!sp->dir || sp->cut < 0)
        return er_set(err, ER_ERR_INVALID_ARG, "task %s: no directory or negative cut", sp->name);
    if (er_taskset_find(ts, sp->name))
        return er_set(err, ER_ERR_INVALID_ARG, "task %s is already served", sp->name);
    if (ts->n == ts->cap)
        return er_set(err, ER_ERR_CAPACITY, "the set holds %d task slots, all used", ts->cap);
    const int i = ts->n, n_stacks = ts->n_stacks;
    er_task *t = &ts->tasks[i];
    er_status st = er_taskset_load_task(ts, i, sp, &ts->p, err);
    if (st == ER_OK) st = fits(ts, t, err);
    if (st == ER_OK) st = er_taskset_load_tokenizer_one(ts, i, sp, ts->p.tokenizer, err);
    if (st != ER_OK) { /* undo: the slot and any stack it opened */
        for (int j = n_stacks; j < ts->n_stacks; j++) free(ts->stacks[j].tensors);
        if (ts->n_stacks > n_stacks) memset(&ts->stacks[n_stacks], 0, sizeof *ts->stacks);
        ts->n_stacks = n_stacks;
        er_model_free(t->model);
        memset(t, 0, sizeof *t);
        if (err && !strstr(err->msg, sp->name)) {
            er_err e = *err;
            er_set(err, st, "task %s: %s", sp->name, e.msg);
        }
        return st;
    }
    ts->n = i + 1; /* published: complete */
    er_log(ER_LOG_INFO, "task %s added (cut %d, lower stack %d%s)", t->name, t->cut, t->stack,
           t->stack < n_stacks ? ", shared" : ", its own");
    return ER_OK;
}

er_status er_taskset_add(er_taskset *ts, const er_task_spec *spec, er_err *err) {
    pthread_mutex_lock(ts->mu);
    er_status st = add_locked(ts, spec, err);
    pthread_mutex_unlock(ts->mu);
    return st;
}

/* ts->tasks is not const where ts is: the slot behind a task pointer. */
static er_task *slot_of(const er_taskset *ts, const er_task *t) {
    ptrdiff_t i = t - ts->tasks;
    return i >= 0 && i < ts->n ? &ts->tasks[i] : NULL;
}

er_status er_taskset_remove(er_taskset *ts, const char *name, er_err *err) {
    pthread_mutex_lock(ts->mu);
    const er_task *found = er_taskset_find(ts, name);
    er_task *t = found ? slot_of(ts, found) : NULL;
    er_status st = ER_OK;
    if (!t) {
        st = er_set(err, ER_ERR_NOT_FOUND, "no task named %s", name ? name : "(null)");
    } else {
        t->removed = true;
        er_log(ER_LOG_INFO, "task %s removed (%d call(s) still hold it)", t->name, t->refs);
        collect(ts);
    }
    pthread_mutex_unlock(ts->mu);
    return st;
}

bool er_task_acquire(const er_taskset *ts, const er_task *t) {
    er_task *s = t ? slot_of(ts, t) : NULL;
    if (!s) return false;
    pthread_mutex_lock(ts->mu);
    bool ok = !s->removed;
    if (ok) s->refs++;
    pthread_mutex_unlock(ts->mu);
    return ok;
}

void er_task_release(const er_taskset *ts, const er_task *t) {
    er_task *s = t ? slot_of(ts, t) : NULL;
    if (!s) return;
    pthread_mutex_lock(ts->mu);
    s->refs--;
    /* collect() changes only slots and stacks: the pointees of ts's
     * pointer members, mutable through a const set */
    if (s->removed && s->refs == 0) collect(ts);
    pthread_mutex_unlock(ts->mu);
}

bool er_task_live(const er_task *t) { return t && !t->removed; }
