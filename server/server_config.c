/* Configuration sources and --help (see config.h).  Every option is one row
 * of OPTS: its flag, env variable, JSON key, kind and field, so the three
 * sources cannot drift apart. */
#include "server_config.h"

#include "er_util.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_STR, K_INT, K_SIZE, K_BOOL, K_TASK, K_LIST } kind;

typedef struct {
    const char *flag, *env, *key;
    kind k;
    size_t off;
    long lo, hi;
    const char *help;
} opt;

#define F(field) offsetof(srv_config, field)
static const opt OPTS[] = {
    {"--host", "ERSERVE_HOST", "host", K_STR, F(host), 0, 0, "listen address [127.0.0.1]"},
    {"--port", "ERSERVE_PORT", "port", K_INT, F(port), 0, 65535, "listen port; 0 = any free [8080]"},
    {"--task", "ERSERVE_TASKS", "tasks", K_TASK, 0, 0, 0,
     "a task (repeatable; env: comma-separated; JSON: {\"NAME\": \"DIR\"})"},
    {"--tokenizer", "ERSERVE_TOKENIZER", "tokenizer", K_STR, F(tokenizer), 0, 0,
     "tokenizer.json for tasks whose directory has none"},
    {"--cut", "ERSERVE_CUT", "cut", K_INT, F(cut), -1, 256, "store cut layer; -1 = half [-1]"},
    {"--store", "ERSERVE_STORE", "store", K_STR, F(store_path), 0, 0,
     "LMDB store directory; unset = no recycling"},
    {"--store-budget", "ERSERVE_STORE_BUDGET", "store_budget", K_SIZE, F(store_budget), 1, LONG_MAX,
     "store byte budget (k/M/G suffixes) [1G]"},
    {"--store-dtype", "ERSERVE_STORE_DTYPE", "store_dtype", K_STR, F(store_dtype), 0, 0,
     "fp32 | fp16 | int8 [fp16]"},
    {"--compute", "ERSERVE_COMPUTE", "compute", K_STR, F(compute), 0, 0,
     "fp32 | bf16 | int8: number format of the weight GEMMs for tasks without @MODE [fp32]"},
    {"--gemm", "ERSERVE_GEMM", "gemm", K_STR, F(gemm), 0, 0,
     "auto | own | avx2 | openblas | onednn: the weight-GEMM backend; own = erserve's kernels, "
     "AVX-512 (bf16 and int8 need them) else AVX2+FMA (fp32), independent of OPENBLAS_CORETYPE; "
     "auto = AVX-512 where the CPU has it, else OpenBLAS; avx2 = the AVX2 kernels; onednn = "
     "oneDNN matmul, fp32 only, allocates per GEMM (opt-in) [auto]"},
    {"--memcached", "ERSERVE_MEMCACHED", "memcached", K_STR, F(memcached), 0, 0,
     "second tier shared by replicas: memcached pool host:port,host:port (ketama); asked on a "
     "store miss, written with every computed value; needs --store"},
    {"--memcached-timeout-ms", "ERSERVE_MEMCACHED_TIMEOUT_MS", "memcached_timeout_ms", K_INT,
     F(memcached_timeout_ms), 1, 10000, "bound on every wait on a memcached node, ms [50]"},
    {"--memcached-failures", "ERSERVE_MEMCACHED_FAILURES", "memcached_failures", K_INT,
     F(memcached_failures), 1, 1000, "consecutive failures that open a node's breaker [2]"},
    {"--memcached-cooldown-ms", "ERSERVE_MEMCACHED_COOLDOWN_MS", "memcached_cooldown_ms", K_INT,
     F(memcached_cooldown_ms), 1000, 3600000,
     "an open breaker skips its node this long, then lets one probe through, ms [2000]"},
    {"--workers", "ERSERVE_WORKERS", "workers", K_INT, F(workers), 1, 256,
     "compute workers [one per core]"},
    {"--blas-threads", "ERSERVE_BLAS_THREADS", "blas_threads", K_INT, F(blas_threads), 1, 256,
     "OpenBLAS threads, overrides OPENBLAS_NUM_THREADS [1]"},
    {"--http-threads", "ERSERVE_HTTP_THREADS", "http_threads", K_INT, F(http_threads), 1, 64,
     "HTTP polling threads [2]"},
    {"--queue", "ERSERVE_QUEUE", "queue", K_INT, F(queue_max), 1, 1000000,
     "queued requests before 429 [256]"},
    {"--batch-tokens", "ERSERVE_BATCH_TOKENS", "batch_tokens", K_INT, F(batch_tokens), 1, 1 << 20,
     "token budget of one batch [512]"},
    {"--batch-seqs", "ERSERVE_BATCH_SEQS", "batch_seqs", K_INT, F(batch_seqs), 1, 4096,
     "sequences in one batch [64]"},
    {"--max-tokens", "ERSERVE_MAX_TOKENS", "max_tokens", K_INT, F(max_tokens), 0, 1 << 20,
     "tokens per input; 0 = each task's model positions (RoBERTa: less its 2 reserved), "
     "e.g. 512 for BERT, 8192 for ModernBERT; a lower value caps them.  Not capped by "
     "--batch-tokens: a longer input runs as a batch of its own, and every worker's scratch "
     "is sized for the longest (logged at start; /info tasks[].max_input_tokens) [0]"},
    {"--max-client-batch-size", "ERSERVE_MAX_CLIENT_BATCH_SIZE", "max_client_batch_size", K_INT,
     F(max_inputs), 1, 4096,
     "inputs per request, TEI's name; more is 422 on TEI routes, 400 on OpenAI's, 413 on "
     "erserve's [2048, OpenAI's limit; the body is capped by --max-body]"},
    {"--max-inputs", "ERSERVE_MAX_INPUTS", "max_inputs", K_INT, F(max_inputs), 1, 4096,
     "the same as --max-client-batch-size"},
    {"--max-body", "ERSERVE_MAX_BODY", "max_body", K_SIZE, F(max_body), 64, 1L << 30,
     "request body bytes [1M]"},
    {"--max-connections", "ERSERVE_MAX_CONNECTIONS", "max_connections", K_INT, F(max_connections),
     1, 100000, "open connections [1024]"},
    {"--max-connections-per-ip", "ERSERVE_MAX_CONNECTIONS_PER_IP", "max_connections_per_ip", K_INT,
     F(max_connections_per_ip), 0, 100000,
     "open connections from one client address; more are closed at accept; 0 = no cap [64]"},
    {"--conn-timeout", "ERSERVE_CONN_TIMEOUT", "conn_timeout", K_INT, F(conn_timeout_s), 1, 3600,
     "idle connection timeout (also between keep-alive requests), s [30]"},
    {"--head-timeout", "ERSERVE_HEAD_TIMEOUT", "head_timeout", K_INT, F(head_timeout_s), 1, 3600,
     "a request head must be complete this long after the connection opened or its request "
     "line arrived, else 408 and close, s [10]"},
    {"--body-timeout", "ERSERVE_BODY_TIMEOUT", "body_timeout", K_INT, F(body_timeout_s), 1, 3600,
     "a request body may take this long plus 1 s per --body-min-rate bytes received, else 408 "
     "and close, s [10]"},
    {"--body-min-rate", "ERSERVE_BODY_MIN_RATE", "body_min_rate", K_SIZE, F(body_min_rate), 0,
     1L << 30, "least body bytes per second after --body-timeout; 0 = no body deadline [1k]"},
    {"--deadline-ms", "ERSERVE_DEADLINE_MS", "deadline_ms", K_INT, F(deadline_ms), 1, 3600000,
     "longest queue wait before 503, ms [30000]"},
    {"--api-key", "ERSERVE_API_KEY", "api_key", K_STR, F(api_key), 0, 0,
     "require Authorization: Bearer KEY on inference routes"},
    {"--admin-key", "ERSERVE_ADMIN_KEY", "admin_key", K_STR, F(admin_key), 0, 0,
     "require Authorization: Bearer KEY on /v1/cache routes; unset = loopback clients only"},
    {"--quiet", "ERSERVE_QUIET", "quiet", K_BOOL, F(quiet), 0, 1, "no access log"},
    {"--served-model-name", "ERSERVE_SERVED_MODEL_NAME", "served_model_name", K_LIST,
     F(served_model_name), 0, 0,
     "TASK=NAME: another name clients may use for a task (`model`, /v1/models); a bare NAME "
     "names the only (embedding) task; repeatable, or comma-separated"},
    {"--auto-truncate", "ERSERVE_AUTO_TRUNCATE", "auto_truncate", K_BOOL, F(auto_truncate), 0, 1,
     "TEI routes truncate over-long inputs unless the request says `truncate: false`; "
     "--auto-truncate=false makes them 422 instead [true, as TEI 1.9]"},
    {"--default-prompt-name", "ERSERVE_DEFAULT_PROMPT_NAME", "default_prompt_name", K_STR,
     F(default_prompt_name), 0, 0,
     "the config_sentence_transformers.json prompt prepended to every text when a request names "
     "none [the file's default_prompt_name]"},
    {"--default-prompt", "ERSERVE_DEFAULT_PROMPT", "default_prompt", K_STR, F(default_prompt), 0, 0,
     "a literal prompt prepended to every text when a request names none"},
    {"--embed-all", "ERSERVE_EMBED_ALL", "embed_all", K_BOOL, F(embed_all), 0, 1,
     "load every embedding task NAME once more unpooled, as task NAME" SRV_TOKENS_SUFFIX ", for TEI's "
     "/embed_all (it shares the lower stack; its upper layers take memory once more); "
     "--embed-all=false: /embed_all is 424 [true]"},
    {"--cors-allow-origin", "ERSERVE_CORS_ALLOW_ORIGIN", "cors_allow_origin", K_LIST,
     F(cors_allow_origin), 0, 0,
     "origins browsers may call from (repeatable or comma-separated; * = any); unset = CORS off"},
    {"--model-root", "ERSERVE_MODEL_ROOT", "model_root", K_STR, F(model_root), 0, 0,
     "directory under which POST /v1/tasks paths and adapters' base models (LoRA's "
     "base_model_name_or_path, AdapterHub's model_name) are looked up (nothing outside it "
     "loads); unset = POST /v1/tasks off"},
    {"--lora-merge", "ERSERVE_LORA_MERGE", "lora_merge", K_BOOL, F(lora_merge), 0, 1,
     "merge each LoRA adapter into a copy of the weights it changes, instead of applying it "
     "beside the base's (faster per request, more memory)"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

void srv_config_defaults(srv_config *c) {
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    c->port = 8080;
    c->cut = -1;
    c->store_budget = 1ull << 30;
    c->store_dtype = strdup("fp16");
    c->compute = strdup("fp32");
    c->gemm = strdup("auto");
    c->memcached_timeout_ms = 50;
    c->memcached_failures = 2;
    c->memcached_cooldown_ms = 2000;
    /* One single-threaded worker per core: measured fastest (SERVER.md). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
    c->blas_threads = 1;
    c->http_threads = 2;
    c->queue_max = 256;
    c->batch_tokens = 512; /* measured: see server/SERVER.md */
    c->batch_seqs = 64;
    c->max_tokens = 0; /* each model's positions */
    c->max_inputs = 2048; /* OpenAI's limit: a client's batches fit; --max-body bounds the work */
    c->auto_truncate = true;
    c->embed_all = true;
    c->max_body = 1u << 20;
    c->max_connections = 1024;
    c->max_connections_per_ip = 64;
    c->conn_timeout_s = 30;
    c->head_timeout_s = 10;
    c->body_timeout_s = 10;
    c->body_min_rate = 1024;
    c->deadline_ms = 30000;
}

void srv_config_free(srv_config *c) {
    if (!c) return;
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].k == K_STR || OPTS[i].k == K_LIST) free(*(char **)((char *)c + OPTS[i].off));
    for (int i = 0; i < c->n_tasks; i++) free(c->task_dirs[i]);
    free(c->config_path);
    memset(c, 0, sizeof *c);
}

/* Every error here is the user's (ER_ERR_INVALID_ARG) but memory. */
#define errf(err, ...) er_set(err, ER_ERR_INVALID_ARG, __VA_ARGS__)
#define oom(err) er_set(err, ER_ERR_NOMEM, "out of memory")

er_status srv_config_add_task(srv_config *c, const char *spec, er_err *err) {
    const char *eq = strchr(spec, '=');
    size_t nl = eq ? (size_t)(eq - spec) : 0;
    if (!eq || nl == 0 || nl > ER_TASK_NAME_MAX)
        return errf(err, "task `%s`: expected NAME=DIR[:CUT]", spec);
    char name[ER_TASK_NAME_MAX + 1];
    memcpy(name, spec, nl);
    name[nl] = '\0';
    if (!er_task_name_valid(name))
        return errf(err, "task `%s`: names use [A-Za-z0-9_.-]", name);
    char *dir = strdup(eq + 1);
    if (!dir) return oom(err);
    int compute = -1;
    char *at = strrchr(dir, '@');
    er_compute mode;
    if (at && er_compute_parse(at + 1, &mode)) {
        compute = (int)mode;
        *at = '\0';
    }
    int cut = 0;
    char *colon = strrchr(dir, ':');
    if (colon && colon[1]) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (!*end && v > 0 && v < 1024) {
            cut = (int)v;
            *colon = '\0';
        }
    }
    int slot = c->n_tasks;
    for (int i = 0; i < c->n_tasks; i++)
        if (!strcmp(c->task_names[i], name)) slot = i;
    if (slot == SRV_MAX_TASKS) {
        free(dir);
        return errf(err, "more than %d tasks", SRV_MAX_TASKS);
    }
    if (slot == c->n_tasks) c->n_tasks++;
    free(c->task_dirs[slot]);
    memcpy(c->task_names[slot], name, nl + 1);
    c->task_dirs[slot] = dir;
    c->tasks[slot] = (er_task_spec){.name = c->task_names[slot], .dir = dir, .cut = cut};
    c->task_compute[slot] = compute;
    return ER_OK;
}

static er_status set_opt(srv_config *c, const opt *o, const char *v, const char *src,
                         er_err *err) {
    void *f = (char *)c + o->off;
    long long x;
    uint64_t bytes;
    char *end;
    switch (o->k) {
    case K_STR:
        free(*(char **)f);
        *(char **)f = *v ? strdup(v) : NULL;
        return ER_OK;
    case K_LIST: { /* each source appends: "a" then "b" is "a,b" */
        char **cur = (char **)f, *joined = NULL;
        if (!*v) return ER_OK;
        if (asprintf(&joined, "%s%s%s", *cur ? *cur : "", *cur ? "," : "", v) < 0) return oom(err);
        free(*cur);
        *cur = joined;
        return ER_OK;
    }
    case K_TASK: {
        /* env: comma-separated list */
        char *dup = strdup(v), *save = NULL;
        if (!dup) return oom(err);
        er_status rc = ER_OK;
        for (char *t = strtok_r(dup, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save))
            rc = srv_config_add_task(c, t, err);
        free(dup);
        return rc;
    }
    case K_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)f = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)f = false;
        else return errf(err, "%s %s: expected true or false, got `%s`", src, o->flag, v);
        return ER_OK;
    case K_INT:
        errno = 0;
        x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < o->lo || x > o->hi)
            return errf(err, "%s %s: expected an integer in [%ld, %ld], got `%s`", src, o->flag,
                        o->lo, o->hi, v);
        *(int *)f = (int)x;
        return ER_OK;
    case K_SIZE:
        if (er_parse_bytes(v, o->flag, &bytes, NULL) || bytes < (uint64_t)o->lo ||
            bytes > (uint64_t)o->hi)
            return errf(err, "%s %s: expected a byte size like 512M, got `%s`", src, o->flag, v);
        if (o->off == F(store_budget)) c->store_budget = bytes;
        else *(size_t *)f = (size_t)bytes;
        return ER_OK;
    }
    return er_set(err, ER_ERR_INTERNAL, "%s: unknown option kind", o->flag);
}

/* `tasks`: {"NAME": "DIR[:CUT]", ...}. */
static er_status load_tasks(srv_config *c, const char *path, json_t *v, er_err *err) {
    if (!json_is_object(v)) return errf(err, "--config %s: `tasks` must map names to directories", path);
    const char *name;
    json_t *dir;
    json_object_foreach(v, name, dir) {
        if (!json_is_string(dir)) return errf(err, "--config %s: tasks.%s must be a string", path, name);
        char *spec = malloc(strlen(name) + json_string_length(dir) + 2);
        if (!spec) return oom(err);
        sprintf(spec, "%s=%s", name, json_string_value(dir));
        er_status rc = srv_config_add_task(c, spec, err);
        free(spec);
        if (rc) return rc;
    }
    return ER_OK;
}

static er_status load_value(srv_config *c, const char *path, const char *key, json_t *v,
                            er_err *err) {
    const opt *o = NULL;
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(OPTS[i].key, key)) o = &OPTS[i];
    if (!o) return errf(err, "--config %s: unknown key `%s`", path, key);
    if (o->k == K_TASK) return load_tasks(c, path, v, err);
    char buf[64];
    const char *s = buf;
    if (o->k == K_LIST && json_is_array(v)) { /* ["a", "b"]: one item each */
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item)) return errf(err, "--config %s: `%s` must hold strings", path, key);
            er_status rc = set_opt(c, o, json_string_value(item), "--config", err);
            if (rc) return rc;
        }
        return ER_OK;
    }
    if (json_is_string(v)) s = json_string_value(v);
    else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v)) s = json_is_true(v) ? "true" : "false";
    else return errf(err, "--config %s: `%s` has the wrong type", path, key);
    return set_opt(c, o, s, "--config", err);
}

static er_status load_file(srv_config *c, const char *path, er_err *err) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) return errf(err, "--config %s: line %d: %s", path, je.line, je.text);
    er_status rc = ER_OK;
    if (!json_is_object(root)) rc = errf(err, "--config %s: not a JSON object", path);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (rc) break;
        rc = load_value(c, path, key, v, err);
    }
    json_decref(root);
    return rc;
}

void srv_config_usage(FILE *f) {
    fprintf(f, "usage: erserve --task NAME=DIR [--task ...] [options]\n\n"
               "Serves transformer-encoder tasks over HTTP/JSON with embedding recycling.\n"
               "Precedence: flags > --config FILE (a JSON object of the keys below) >\n"
               "ERSERVE_* environment > defaults.  --flag=value also works.\n\n"
               "  --config FILE\n      JSON config file (env ERSERVE_CONFIG)\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *arg = OPTS[i].k == K_BOOL ? "" : OPTS[i].k == K_TASK ? " NAME=DIR[:CUT]"
                          : OPTS[i].k == K_INT ? " N" : OPTS[i].k == K_SIZE ? " BYTES" : " VALUE";
        fprintf(f, "  %s%s\n      %s (env %s, config key \"%s\")\n", OPTS[i].flag, arg, OPTS[i].help,
                OPTS[i].env, OPTS[i].key);
    }
    fprintf(f, "  --help\n      this text\n  --version\n      print the version\n"
               "\nRoutes: see proto/openapi.yaml and server/SERVER.md.\n");
}

static const opt *find_flag(const char *a) {
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(OPTS[i].flag, a)) return &OPTS[i];
    return NULL;
}

/* --help, --version and --config, which act before the other sources. */
static er_status first_pass(int argc, char **argv, FILE *out, bool *printed, const char **cfg,
                            er_err *err) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            srv_config_usage(out);
            *printed = true;
            return ER_OK;
        }
        if (!strcmp(argv[i], "--version")) {
            fprintf(out, "erserve %s\n", ER_VERSION);
            *printed = true;
            return ER_OK;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) return errf(err, "--config needs a value");
            *cfg = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) *cfg = argv[i] + 9;
    }
    return ER_OK;
}

static er_status apply_flags(srv_config *c, int argc, char **argv, er_err *err) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            v = eq + 1;
        } else snprintf(name, sizeof name, "%s", a);
        const opt *o = find_flag(name);
        if (!o) return errf(err, "unknown option `%s` (see --help)", a);
        if (!v && o->k == K_BOOL) v = "true";
        if (!v) {
            if (i + 1 >= argc) return errf(err, "%s needs a value", name);
            v = argv[++i];
        }
        er_status st = o->k == K_TASK ? srv_config_add_task(c, v, err) : set_opt(c, o, v, "flag", err);
        if (st) return st;
    }
    return ER_OK;
}

/* Each task's compute mode: its own "@MODE", else --compute. */
static er_status resolve_compute(srv_config *c, er_err *err) {
    er_compute mode;
    if (!er_compute_parse(c->compute ? c->compute : "fp32", &mode))
        return errf(err, "--compute must be fp32, bf16 or int8, not \"%s\"", c->compute);
    for (int i = 0; i < c->n_tasks; i++)
        c->tasks[i].compute = c->task_compute[i] < 0 ? mode : (er_compute)c->task_compute[i];
    return ER_OK;
}

er_status srv_config_load(srv_config *c, int argc, char **argv, FILE *out, bool *printed,
                          er_err *err) {
    const char *cfg = getenv("ERSERVE_CONFIG");
    *printed = false;
    er_status st = first_pass(argc, argv, out, printed, &cfg, err);
    if (st || *printed) return st;
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(OPTS[i].env);
        if (v && (st = set_opt(c, &OPTS[i], v, OPTS[i].env, err))) return st;
    }
    if (cfg && *cfg && (st = load_file(c, cfg, err))) return st;
    if (cfg && *cfg && !c->config_path && !(c->config_path = strdup(cfg))) return oom(err);
    if ((st = apply_flags(c, argc, argv, err))) return st;
    if (c->n_tasks == 0) return errf(err, "no tasks: give at least one --task NAME=DIR");
    if (!c->host) return errf(err, "--host must not be empty");
    return resolve_compute(c, err);
}
