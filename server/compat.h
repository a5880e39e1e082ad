/* What the server adds to the tasks for TEI and OpenAI clients: the model
 * names clients may use (--served-model-name aliases), each task's
 * sentence-transformers prompts and default prompt (--default-prompt-name,
 * --default-prompt, config_sentence_transformers.json), and the CORS origins
 * (--cors-allow-origin).  Built once by srv_compat_new at start, immutable
 * afterwards; every function may be called from any thread. */
#ifndef ER_SRV_COMPAT_H
#define ER_SRV_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

#include "er_error.h"
#include "recycle.h"
#include "server_config.h"

typedef struct srv_compat srv_compat;

/* Resolves cfg's aliases and prompts against the loaded tasks.  Errors
 * (ER_ERR_INVALID_ARG, naming the option or the task; the prompt loader's
 * for a bad config_sentence_transformers.json): an alias of an unknown task,
 * a bare alias with several candidate tasks, two tasks with one alias,
 * --default-prompt-name that an embedding task does not define. */
er_status srv_compat_new(const srv_config *cfg, const er_taskset *ts, srv_compat **out, er_err *err);
void srv_compat_free(srv_compat *c); /* NULL accepted */

/* The task named name, or aliased so; NULL when none. */
const er_task *srv_compat_find(const srv_compat *c, const char *name);
/* The name a task is served as: its first alias, else its task name. */
const char *srv_compat_served_name(const srv_compat *c, const er_task *t);
int srv_compat_alias_count(const srv_compat *c);
/* Alias i (< count) and its task. */
const char *srv_compat_alias_at(const srv_compat *c, int i, const er_task **task);
/* The server's start (unix seconds): /v1/models' `created`. */
long long srv_compat_created(const srv_compat *c);

/* The prompt text for task t: prompt_name's (NULL: the task's default,
 * which may be NULL for no prompt).  False when prompt_name is given and t
 * has no prompt by that name, with msg saying which exist. */
bool srv_compat_prompt(const srv_compat *c, const er_task *t, const char *prompt_name,
                       const char **text, char *msg, size_t n);

/* CORS: whether it is on, and the Access-Control-Allow-Origin value for a
 * request from origin ("*", or origin itself when listed), or NULL. */
bool srv_compat_cors_on(const srv_compat *c);
const char *srv_compat_cors_origin(const srv_compat *c, const char *origin);

#endif
