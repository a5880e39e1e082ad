/* Each task's tokenizer (see er_taskset_load): loaded once per distinct path
 * and shared by the tasks that use it, so tasks over one fallback vocabulary
 * hold one copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recycle_internal.h"

static bool dir_has_tokenizer(const char *dir) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (stat(p, &st) == 0) return true;
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    return stat(p, &st) == 0;
}

/* The set's tokenizer loaded from path: an earlier one, or a new one. */
static const er_tokenizer *tokenizer_at(er_taskset *ts, const char *path, er_err *err) {
    for (int i = 0; i < ts->n_toks; i++)
        if (!strcmp(ts->tok_paths[i], path)) return ts->toks[i];
    er_tokenizer *t = er_tokenizer_load(path, err);
    if (!t) return NULL;
    char *dup = strdup(path);
    if (!dup) {
        er_tokenizer_free(t);
        er_set(err, ER_ERR_NOMEM, "tokenizer");
        return NULL;
    }
    ts->toks[ts->n_toks] = t;
    ts->tok_paths[ts->n_toks++] = dup;
    return t;
}

er_status er_taskset_load_tokenizers(er_taskset *ts, const er_task_spec *specs,
                                     const char *fallback, er_err *err) {
    /* At most one per task slot plus the fallback. */
    ts->toks = calloc((size_t)ts->cap + 1, sizeof *ts->toks);
    ts->tok_paths = calloc((size_t)ts->cap + 1, sizeof *ts->tok_paths);
    if (!ts->toks || !ts->tok_paths) return er_set(err, ER_ERR_NOMEM, "tokenizers");
    er_status st = ER_OK;
    for (int i = 0; i < ts->n && st == ER_OK; i++)
        st = er_taskset_load_tokenizer_one(ts, i, &specs[i], fallback, err);
    return st;
}

/* An adapter directory rarely holds a tokenizer: its base's is the one. */
static const char *tokenizer_dir(const er_task *t, const char *dir, const char *fallback) {
    if (dir_has_tokenizer(dir)) return dir;
    const char *base = er_model_base_dir(t->model);
    if (base && dir_has_tokenizer(base)) return base;
    return fallback;
}

er_status er_taskset_load_tokenizer_one(er_taskset *ts, int i, const er_task_spec *spec,
                                        const char *fallback, er_err *err) {
    const char *path = tokenizer_dir(&ts->tasks[i], spec->dir, fallback);
    if (!path) return ER_OK; /* none: er_task_tokenizer says NULL */
    ts->tasks[i].tok = tokenizer_at(ts, path, err);
    if (ts->tasks[i].tok) return ER_OK;
    er_status st = err ? err->code : ER_ERR_IO;
    if (err && !strstr(err->msg, spec->name)) {
        er_err e = *err;
        er_set(err, st, "task %s: %s", spec->name, e.msg);
    }
    return st;
}

void er_taskset_free_tokenizers(er_taskset *ts) {
    for (int i = 0; i < ts->n_toks; i++) {
        er_tokenizer_free(ts->toks[i]);
        free(ts->tok_paths[i]);
    }
    free(ts->toks);
    free(ts->tok_paths);
}
