/* erserve's configuration: defaults, then ERSERVE_* environment variables,
 * then a JSON file given by --config, then command-line flags (each later
 * source overrides the earlier ones).  srv_config_usage() is the complete
 * --help text and names every key of every source. */
#ifndef ER_SRV_CONFIG_H
#define ER_SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SRV_MAX_TASKS 32

typedef struct {
    char name[65];
    char *dir;
    int cut; /* 0 = the set's cut */
} srv_task_arg;

typedef struct {
    char *host;              /* 127.0.0.1 */
    int port;                /* 8080 (0 = any free port; the bound one is logged) */
    srv_task_arg tasks[SRV_MAX_TASKS];
    int n_tasks;
    char *tokenizer;         /* fallback tokenizer for tasks whose dir has none */
    int cut;                 /* -1 = half the layers */
    char *store_path;        /* NULL = no store */
    uint64_t store_budget;   /* bytes */
    char *store_dtype;       /* fp32 | fp16 | int8 */
    int workers;             /* compute threads */
    int blas_threads;        /* OpenBLAS threads per process (shared by workers) */
    int http_threads;        /* libmicrohttpd polling threads */
    int queue_max;           /* queued requests before 429 */
    int batch_tokens;        /* token budget of one batch */
    int batch_seqs;          /* sequences in one batch */
    int max_tokens;          /* tokens per input (also capped by the model) */
    int max_inputs;          /* inputs per request */
    size_t max_body;         /* request body bytes */
    int max_connections;
    int conn_timeout_s;      /* idle connection timeout (slow clients) */
    int deadline_ms;         /* a request waiting longer than this gets 503 */
    char *api_key;           /* NULL = open; else Authorization: Bearer KEY */
    char *admin_key;         /* NULL = cache admin open; else Bearer KEY */
    bool quiet;              /* no access log */
} srv_config;

void srv_config_defaults(srv_config *c);
void srv_config_free(srv_config *c); /* NULL and defaults-only accepted */

/* Applies env, then --config FILE, then flags.  Returns 0 to go on, 1 when
 * --help/--version was printed (exit 0), -1 on an error written to err
 * (exit 2). */
int srv_config_load(srv_config *c, int argc, char **argv, char **env_unused, FILE *out, char *err,
                    size_t errlen);

void srv_config_usage(FILE *f);

#endif
