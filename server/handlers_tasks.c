/* Tasks added and removed while serving: POST /v1/tasks {"name", "path",
 * "cut"?, "compute"?} and DELETE /v1/tasks/{name} (admin routes), and the task list of
 * a re-read --config (SIGHUP).  The task set does the work (recycle.h:
 * er_taskset_add shares a lower stack by fingerprint, removal waits for the
 * calls that hold the task); here: where a path may point, and whether the
 * running engine can serve the new task. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "handlers.h"

/* path (relative: to the root) resolved with every symlink followed; it
 * must stay inside the resolved root.  Returns false with why. */
static bool under_root(const char *root, const char *path, char *out, size_t n, char *why,
                       size_t wn) {
    char joined[PATH_MAX], real_root[PATH_MAX], real[PATH_MAX];
    if (!realpath(root, real_root)) {
        snprintf(why, wn, "--model-root %s does not exist", root);
        return false;
    }
    snprintf(joined, sizeof joined, "%s%s%s", path[0] == '/' ? "" : real_root,
             path[0] == '/' ? "" : "/", path);
    if (!realpath(joined, real)) {
        snprintf(why, wn, "`path` %s does not exist under the model root", path);
        return false;
    }
    size_t k = strlen(real_root);
    if (strncmp(real, real_root, k) != 0 || (real[k] != '/' && real[k] != '\0')) {
        snprintf(why, wn, "`path` %s lies outside the model root (after following links)", path);
        return false;
    }
    snprintf(out, n, "%s", real);
    return true;
}

/* Adds the task; then checks the engine, built at start, can run it (its
 * sizes, head output and longest input fit the workers), else removes it
 * again.  Returns the HTTP status (201 or the error's). */
static int add_task(const srv_app_view *a, const er_task_spec *sp, er_err *err) {
    er_taskset *ts = a->tasks_admin;
    if (er_taskset_find(ts, sp->name))
        return er_set(err, ER_ERR_INVALID_ARG, "task %s is already served", sp->name), 409;
    er_status st = er_taskset_add(ts, sp, err);
    if (st != ER_OK)
        return st == ER_ERR_NOT_FOUND ? 404 : st == ER_ERR_NOMEM ? 500 : 422;
    const er_task *t = er_taskset_find(ts, sp->name);
    const char *why = eng_fits(srv_app_engine(a), t, srv_app_config(a)->max_tokens);
    if (!why) return 201;
    er_taskset_remove(ts, sp->name, NULL);
    er_set(err, ER_ERR_UNSUPPORTED, "task %s: %s (restart the server with it instead)", sp->name,
           why);
    return 422;
}

static bool handle_post(srv_call *c) {
    const srv_app_view *a = c->app;
    const char *root = srv_app_config(a)->model_root;
    if (!root)
        return srv_error(c, 403, "POST /v1/tasks needs --model-root (ERSERVE_MODEL_ROOT): task "
                                 "paths must lie under it"), true;
    json_error_t je;
    json_t *body = json_loadb(c->rq->body ? c->rq->body : "", c->rq->body_len,
                              JSON_REJECT_DUPLICATES, &je);
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *path = json_string_value(json_object_get(body, "path"));
    const json_t *cut = json_object_get(body, "cut"), *compute = json_object_get(body, "compute");
    const char *mode_name = compute ? json_string_value(compute) : srv_app_config(a)->compute;
    er_compute mode = ER_COMPUTE_FP32;
    char real[PATH_MAX], why[PATH_MAX + 128];
    if (!json_is_object(body)) srv_error(c, 400, "body: invalid JSON: %s", je.text);
    else if (!name || !path) srv_error(c, 400, "body needs string fields `name` and `path`");
    else if (cut && (!json_is_integer(cut) || json_integer_value(cut) < 0 ||
                     json_integer_value(cut) > 256))
        srv_error(c, 400, "`cut` must be an integer in [0, 256]");
    else if (!er_compute_parse(mode_name ? mode_name : "fp32", &mode))
        srv_error(c, 400, "`compute` must be \"fp32\", \"bf16\" or \"int8\"");
    else if (!under_root(root, path, real, sizeof real, why, sizeof why)) srv_error(c, 403, "%s", why);
    else {
        er_task_spec sp = {.name = name, .dir = real, .cut = cut ? (int)json_integer_value(cut) : 0,
                           .compute = mode};
        er_err err = {0};
        int status = add_task(a, &sp, &err);
        if (status != 201) {
            srv_error(c, status, "%s", err.msg);
        } else {
            const er_task *t = er_taskset_find(srv_app_tasks(a), name);
            srv_reply_json(c, 201, json_pack("{s:s,s:s,s:s,s:i,s:i,s:i}", "name", name, "head",
                                             er_head_type_name(er_model_config(er_task_model(t))->head),
                                             "compute", er_compute_name(mode),
                                             "cut", er_task_cut(t), "lower_stack",
                                             er_task_lower_stack(t), "lower_stacks",
                                             er_taskset_lower_stacks(srv_app_tasks(a))));
        }
    }
    json_decref(body);
    return true;
}

bool srv_handle_tasks_admin(srv_call *c) {
    if (!strcmp(c->method, "POST")) return handle_post(c);
    er_err err = {0};
    if (er_taskset_remove(c->app->tasks_admin, c->path_task, &err) != ER_OK)
        return srv_error(c, 404, "no task named `%s`", c->path_task), true;
    char twin[ER_TASK_NAME_MAX + 16]; /* its /embed_all twin (--embed-all) goes with it */
    snprintf(twin, sizeof twin, "%s" SRV_TOKENS_SUFFIX, c->path_task);
    er_taskset_remove(c->app->tasks_admin, twin, NULL);
    srv_reply_json(c, 200, json_pack("{s:s,s:b}", "name", c->path_task, "removed", 1));
    return true;
}

/* A task of cfg by name, or NULL. */
static const er_task_spec *spec_in(const srv_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_tasks; i++)
        if (!strcmp(cfg->tasks[i].name, name)) return &cfg->tasks[i];
    return NULL;
}

int srv_tasks_reload(const srv_app_view *a, const srv_config *old, const srv_config *now) {
    int changes = 0;
    er_err err = {0};
    for (int i = 0; i < old->n_tasks; i++) { /* gone, or pointing elsewhere */
        const er_task_spec *o = &old->tasks[i], *n = spec_in(now, o->name);
        if (n && !strcmp(n->dir, o->dir) && n->cut == o->cut && n->compute == o->compute) continue;
        if (er_taskset_remove(a->tasks_admin, o->name, &err) == ER_OK) changes++;
    }
    for (int i = 0; i < now->n_tasks; i++) {
        const er_task_spec *n = &now->tasks[i];
        if (er_taskset_find(srv_app_tasks(a), n->name)) continue;
        if (add_task(a, n, &err) == 201) changes++;
        else er_log(ER_LOG_ERROR, "SIGHUP: task %s not added: %s", n->name, err.msg);
    }
    return changes;
}
