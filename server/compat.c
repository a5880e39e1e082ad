/* Model aliases, prompts and CORS origins (see compat.h). */
#include "compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "st_prompts.h"

#define MAX_ALIASES 64
#define MAX_ORIGINS 32

typedef struct {
    char *name;
    const er_task *task;
} alias;

struct srv_compat {
    alias aliases[MAX_ALIASES];
    int n_aliases;
    int n_tasks;
    er_prompts *prompts;         /* [n_tasks], by task index */
    const char **default_prompt; /* [n_tasks], NULL = none */
    char *default_literal;       /* --default-prompt, owned */
    char *origins[MAX_ORIGINS];
    int n_origins;
    bool any_origin;
    long long created;
    const er_taskset *ts;
};

static int task_index(const srv_compat *c, const er_task *t) {
    for (int i = 0; i < er_taskset_count(c->ts); i++)
        if (er_taskset_at(c->ts, i) == t) return i;
    return -1;
}

static bool is_embedding(const er_task *t) {
    return er_model_config(er_task_model(t))->head == ER_HEAD_EMBEDDING;
}

/* A bare alias names the only task, else the only embedding task. */
static const er_task *sole_task(const er_taskset *ts) {
    if (er_taskset_count(ts) == 1) return er_taskset_at(ts, 0);
    const er_task *found = NULL;
    for (int i = 0; i < er_taskset_count(ts); i++) {
        const er_task *t = er_taskset_at(ts, i);
        if (!is_embedding(t)) continue;
        if (found) return NULL;
        found = t;
    }
    return found;
}

static er_status add_alias(srv_compat *c, const char *spec, er_err *err) {
    const char *eq = strchr(spec, '=');
    const char *name = eq ? eq + 1 : spec;
    const er_task *t = NULL;
    if (eq) {
        char task[ER_TASK_NAME_MAX + 1];
        size_t n = (size_t)(eq - spec);
        if (n > ER_TASK_NAME_MAX) n = ER_TASK_NAME_MAX;
        memcpy(task, spec, n);
        task[n] = '\0';
        if (!(t = er_taskset_find(c->ts, task)))
            return er_set(err, ER_ERR_INVALID_ARG, "--served-model-name %s: no task `%s`", spec, task);
    } else if (!(t = sole_task(c->ts))) {
        return er_set(err, ER_ERR_INVALID_ARG, "--served-model-name %s: several tasks are served; "
                      "write TASK=NAME", spec);
    }
    if (!*name || strlen(name) > 128)
        return er_set(err, ER_ERR_INVALID_ARG, "--served-model-name %s: the name must be 1 to 128 bytes", spec);
    const er_task *other = srv_compat_find(c, name);
    if (other && other != t)
        return er_set(err, ER_ERR_INVALID_ARG, "--served-model-name %s: `%s` already names task %s", spec,
                      name, er_task_name(other));
    if (other) return ER_OK;
    if (c->n_aliases == MAX_ALIASES)
        return er_set(err, ER_ERR_INVALID_ARG, "--served-model-name: more than %d names", MAX_ALIASES);
    c->aliases[c->n_aliases].name = strdup(name);
    c->aliases[c->n_aliases].task = t;
    if (!c->aliases[c->n_aliases++].name) return er_set(err, ER_ERR_NOMEM, "out of memory");
    return ER_OK;
}

/* Calls fn for each comma-separated item of list. */
static er_status each_item(srv_compat *c, const char *list, er_status (*fn)(srv_compat *, const char *, er_err *),
                           er_err *err) {
    char *dup = list ? strdup(list) : NULL, *save = NULL;
    if (list && !dup) return er_set(err, ER_ERR_NOMEM, "out of memory");
    er_status st = ER_OK;
    for (char *s = dup ? strtok_r(dup, ",", &save) : NULL; s && !st; s = strtok_r(NULL, ",", &save)) {
        while (*s == ' ') s++;
        if (*s) st = fn(c, s, err);
    }
    free(dup);
    return st;
}

static er_status add_origin(srv_compat *c, const char *o, er_err *err) {
    if (!strcmp(o, "*")) c->any_origin = true;
    else if (c->n_origins == MAX_ORIGINS)
        return er_set(err, ER_ERR_INVALID_ARG, "--cors-allow-origin: more than %d origins", MAX_ORIGINS);
    else if (!(c->origins[c->n_origins++] = strdup(o))) return er_set(err, ER_ERR_NOMEM, "out of memory");
    return ER_OK;
}

/* Task i's prompts and default prompt: --default-prompt, else
 * --default-prompt-name (which every embedding task must define, as TEI
 * refuses to start otherwise), else the file's default_prompt_name. */
static er_status load_prompts(srv_compat *c, const srv_config *cfg, int i, er_err *err) {
    const er_task *t = er_taskset_at(c->ts, i);
    const char *dir = NULL;
    for (int k = 0; k < cfg->n_tasks; k++)
        if (!strcmp(cfg->tasks[k].name, er_task_name(t))) dir = cfg->tasks[k].dir;
    er_status st = dir ? er_prompts_load_dir(dir, &c->prompts[i], err) : ER_OK;
    if (st != ER_OK) return st;
    const er_prompts *p = &c->prompts[i];
    if (c->default_literal) c->default_prompt[i] = c->default_literal;
    else if (cfg->default_prompt_name && er_prompts_get(p, cfg->default_prompt_name))
        c->default_prompt[i] = er_prompts_get(p, cfg->default_prompt_name);
    else if (cfg->default_prompt_name && is_embedding(t))
        return er_set(err, ER_ERR_INVALID_ARG, "--default-prompt-name %s: task %s has no such prompt in "
                      "%s/config_sentence_transformers.json (%d prompts)", cfg->default_prompt_name,
                      er_task_name(t), dir ? dir : "?", p->n);
    else if (p->default_name) c->default_prompt[i] = er_prompts_get(p, p->default_name);
    return ER_OK;
}

er_status srv_compat_new(const srv_config *cfg, const er_taskset *ts, srv_compat **out, er_err *err) {
    *out = NULL;
    srv_compat *c = calloc(1, sizeof *c);
    if (!c) return er_set(err, ER_ERR_NOMEM, "out of memory");
    c->ts = ts;
    c->created = (long long)time(NULL);
    c->n_tasks = er_taskset_count(ts);
    c->prompts = calloc((size_t)c->n_tasks, sizeof *c->prompts);
    c->default_prompt = calloc((size_t)c->n_tasks, sizeof *c->default_prompt);
    er_status st = c->prompts && c->default_prompt ? ER_OK : er_set(err, ER_ERR_NOMEM, "out of memory");
    if (!st && cfg->default_prompt && !(c->default_literal = strdup(cfg->default_prompt)))
        st = er_set(err, ER_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < c->n_tasks; i++) st = load_prompts(c, cfg, i, err);
    if (!st) st = each_item(c, cfg->served_model_name, add_alias, err);
    if (!st) st = each_item(c, cfg->cors_allow_origin, add_origin, err);
    if (st) {
        srv_compat_free(c);
        return st;
    }
    *out = c;
    return ER_OK;
}

void srv_compat_free(srv_compat *c) {
    if (!c) return;
    for (int i = 0; i < c->n_aliases; i++) free(c->aliases[i].name);
    for (int i = 0; c->prompts && i < c->n_tasks; i++) er_prompts_free(&c->prompts[i]);
    for (int i = 0; i < c->n_origins; i++) free(c->origins[i]);
    free(c->prompts);
    free(c->default_prompt);
    free(c->default_literal);
    free(c);
}

const er_task *srv_compat_find(const srv_compat *c, const char *name) {
    if (!name) return NULL;
    const er_task *t = er_taskset_find(c->ts, name);
    for (int i = 0; !t && i < c->n_aliases; i++)
        if (!strcmp(c->aliases[i].name, name)) t = c->aliases[i].task;
    return t;
}

const char *srv_compat_served_name(const srv_compat *c, const er_task *t) {
    for (int i = 0; i < c->n_aliases; i++)
        if (c->aliases[i].task == t) return c->aliases[i].name;
    return er_task_name(t);
}

int srv_compat_alias_count(const srv_compat *c) { return c->n_aliases; }

const char *srv_compat_alias_at(const srv_compat *c, int i, const er_task **task) {
    *task = c->aliases[i].task;
    return c->aliases[i].name;
}

long long srv_compat_created(const srv_compat *c) { return c->created; }

bool srv_compat_prompt(const srv_compat *c, const er_task *t, const char *prompt_name,
                       const char **text, char *msg, size_t n) {
    int i = task_index(c, t);
    *text = NULL;
    if (i < 0) return true;
    if (!prompt_name) {
        *text = c->default_prompt[i];
        return true;
    }
    const er_prompts *p = &c->prompts[i];
    if ((*text = er_prompts_get(p, prompt_name))) return true;
    size_t k = (size_t)snprintf(msg, n, "`prompt_name` `%s`: task %s has %s", prompt_name,
                                er_task_name(t), p->n ? "the prompts" : "no prompts");
    for (int j = 0; j < p->n && k < n; j++)
        k += (size_t)snprintf(msg + k, n - k, "%s`%s`", j ? ", " : " ", p->names[j]);
    return false;
}

bool srv_compat_cors_on(const srv_compat *c) { return c->any_origin || c->n_origins > 0; }

const char *srv_compat_cors_origin(const srv_compat *c, const char *origin) {
    if (c->any_origin) return "*";
    for (int i = 0; origin && i < c->n_origins; i++)
        if (!strcmp(c->origins[i], origin)) return c->origins[i];
    return NULL;
}
