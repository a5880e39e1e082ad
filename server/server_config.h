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

#include "er_error.h"
#include "er_util.h"
#include "recycle.h"

#define SRV_MAX_TASKS 32
/* The name suffix of an embedding task's unpooled twin (--embed-all). */
#define SRV_TOKENS_SUFFIX ".tokens"

typedef struct {
    char *host;              /* 127.0.0.1 */
    int port;                /* 8080 (0 = any free port; the bound one is logged) */
    er_task_spec tasks[SRV_MAX_TASKS]; /* name and dir point at the two below */
    int n_tasks;
    char task_names[SRV_MAX_TASKS][ER_TASK_NAME_MAX + 1];
    char *task_dirs[SRV_MAX_TASKS]; /* owned */
    int task_compute[SRV_MAX_TASKS]; /* er_compute from "@MODE", or -1: --compute */
    char *tokenizer;         /* fallback tokenizer for tasks whose dir has none */
    int cut;                 /* -1 = half the layers */
    char *store_path;        /* NULL = no store */
    uint64_t store_budget;   /* bytes */
    char *store_dtype;       /* fp32 | fp16 | int8 */
    char *compute;           /* fp32 | bf16 | int8: tasks without their own "@MODE" */
    char *gemm;              /* auto | own | openblas (er_gemm_select) */
    char *memcached;         /* second tier: "host:port,host:port"; NULL = none */
    int memcached_timeout_ms;  /* bound on every wait on a memcached node */
    int memcached_failures;    /* consecutive failures that open a node's breaker */
    int memcached_cooldown_ms; /* an open breaker's pause before one probe */
    int workers;             /* compute threads */
    int blas_threads;        /* OpenBLAS threads per process (shared by workers) */
    int http_threads;        /* libmicrohttpd polling threads */
    int queue_max;           /* queued requests before 429 */
    int batch_tokens;        /* token budget of one batch */
    int batch_seqs;          /* sequences in one batch */
    int max_tokens;          /* tokens per input; 0 = each task's model positions
                                (er_task_max_input_tokens), independent of batch_tokens */
    int max_inputs;          /* inputs per request (--max-client-batch-size, --max-inputs) */
    size_t max_body;         /* request body bytes */
    int max_connections;
    int max_connections_per_ip; /* per client address; 0 = no cap */
    int conn_timeout_s;      /* idle connection timeout, also between keep-alive requests */
    int head_timeout_s;      /* request head complete within this (slow clients) */
    int body_timeout_s;      /* request body: this plus 1 s per body_min_rate bytes */
    size_t body_min_rate;    /* bytes/s; 0 = no body deadline */
    int deadline_ms;         /* a request waiting longer than this gets 503 */
    char *api_key;           /* NULL = open; else Authorization: Bearer KEY */
    char *admin_key;         /* NULL = cache admin open; else Bearer KEY */
    bool quiet;              /* no access log */
    /* TEI / OpenAI compatibility (server/compat.h) */
    char *served_model_name; /* "TASK=NAME" or "NAME" items, comma-separated; NULL = none */
    bool auto_truncate;      /* TEI routes truncate unless told not to [true] */
    char *default_prompt_name; /* sentence-transformers prompt applied by default */
    char *default_prompt;    /* a literal default prompt (instead of a name) */
    char *cors_allow_origin; /* comma-separated origins or "*"; NULL = CORS off */
    bool embed_all;          /* load each embedding task's unpooled twin NAME.tokens [true] */
    char *model_root;        /* POST /v1/tasks paths and adapters' bases lie under it; NULL = off */
    bool lora_merge;         /* merge LoRA adapters into copies of their weights */
    char *config_path;       /* --config FILE, re-read on SIGHUP; NULL = none (owned) */
} srv_config;

void srv_config_defaults(srv_config *c);
void srv_config_free(srv_config *c); /* NULL and defaults-only accepted */

/* Applies env, then --config FILE, then flags.  Returns ER_OK to go on (or,
 * with *printed set, to exit 0 after --help/--version wrote to out), else
 * ER_ERR_INVALID_ARG (ER_ERR_NOMEM) with err naming the option (exit 2). */
er_status srv_config_load(srv_config *c, int argc, char **argv, FILE *out, bool *printed,
                          er_err *err);

/* Adds (or replaces, by name) a task from "NAME=DIR[:CUT][@COMPUTE]"
 * (COMPUTE: fp32 | bf16 | int8; without it the task follows --compute). */
er_status srv_config_add_task(srv_config *c, const char *spec, er_err *err);

void srv_config_usage(FILE *f);

#endif
