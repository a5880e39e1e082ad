/* The route table (see routes.h).  Order is the metrics' order. */
#include "routes.h"

#include <string.h>

#include "handlers.h"
#include "proto.h"

#define TASK_PREFIX "/v1/tasks/"
#define TASK_SUFFIX "/predict"

#define E PR_API_ERSERVE
#define O PR_API_OPENAI
#define T PR_API_TEI
static const srv_route ROUTES[] = {
    {"POST", TASK_PREFIX "{task}" TASK_SUFFIX, SRV_AUTH_API, E, PR_ROUTE_PREDICT, "predict",
     srv_handle_compute},
    {"POST", "/v1/embeddings", SRV_AUTH_API, O, PR_ROUTE_EMBEDDINGS, "embeddings", srv_handle_compute},
    {"GET", "/v1/models", SRV_AUTH_API, O, SRV_NO_BODY, "models", srv_handle_models},
    {"GET", "/v1/models/{task}", SRV_AUTH_API, O, SRV_NO_BODY, "model", srv_handle_models},
    {"POST", "/embeddings", SRV_AUTH_API, O, PR_ROUTE_EMBEDDINGS, "embeddings_alias", srv_handle_compute},
    {"POST", "/embed", SRV_AUTH_API, T, PR_ROUTE_TEI_EMBED, "embed", srv_handle_compute},
    {"POST", "/embed_all", SRV_AUTH_API, T, PR_ROUTE_TEI_EMBED_ALL, "embed_all", srv_handle_compute},
    {"POST", "/embed_sparse", SRV_AUTH_API, T, PR_ROUTE_TEI_EMBED_SPARSE, "embed_sparse",
     srv_handle_compute},
    {"POST", "/similarity", SRV_AUTH_API, T, PR_ROUTE_TEI_SIMILARITY, "similarity", srv_handle_compute},
    {"POST", "/predict", SRV_AUTH_API, T, PR_ROUTE_TEI_PREDICT, "tei_predict", srv_handle_compute},
    {"POST", "/rerank", SRV_AUTH_API, T, PR_ROUTE_TEI_RERANK, "rerank", srv_handle_compute},
    {"POST", "/tokenize", SRV_AUTH_API, T, PR_ROUTE_TOKENIZE, "tokenize", srv_handle_tokenize},
    {"POST", "/decode", SRV_AUTH_API, T, PR_ROUTE_DECODE, "decode", srv_handle_decode},
    /* the Hugging Face Inference API (@huggingface/inference with endpointUrl) */
    {"POST", "/models/{task}", SRV_AUTH_API, T, PR_ROUTE_HF, "hf_models", srv_handle_compute},
    /* SageMaker: /invocations is /embed or /predict by the first task's head */
    {"POST", "/invocations", SRV_AUTH_API, T, PR_ROUTE_TEI_EMBED, "invocations", srv_handle_invocations},
    {"GET, HEAD", "/ping", SRV_AUTH_NONE, T, SRV_NO_BODY, "ping", srv_handle_health},
    {"GET, HEAD", "/health", SRV_AUTH_NONE, E, SRV_NO_BODY, "health", srv_handle_health},
    {"GET, HEAD", "/ready", SRV_AUTH_NONE, E, SRV_NO_BODY, "ready", srv_handle_ready},
    {"GET", "/info", SRV_AUTH_API, T, SRV_NO_BODY, "info", srv_handle_info},
    {"GET", "/v1/tasks", SRV_AUTH_API, E, SRV_NO_BODY, "tasks", srv_handle_tasks},
    {"GET", "/metrics", SRV_AUTH_NONE, E, SRV_NO_BODY, "metrics", srv_handle_metrics},
    {"GET, DELETE", "/v1/cache", SRV_AUTH_ADMIN, E, SRV_NO_BODY, "cache", srv_handle_cache},
    {"POST", "/v1/cache/warm", SRV_AUTH_ADMIN, E, PR_ROUTE_WARM, "cache_warm", srv_handle_compute},
};
#undef E
#undef O
#undef T
#define N_ROUTES (int)(sizeof ROUTES / sizeof ROUTES[0])

int srv_route_count(void) { return N_ROUTES; }
const srv_route *srv_route_at(int i) { return i >= 0 && i < N_ROUTES ? &ROUTES[i] : NULL; }
int srv_route_index(const srv_route *r) { return (int)(r - ROUTES); }

/* path against "PREFIX{task}SUFFIX": the segment must be non-empty, hold no
 * '/', and fit task.  With no suffix the segment is the rest of the path,
 * slashes included (model names such as "BAAI/bge-small-en-v1.5"). */
static bool match_task(const char *pattern, const char *path, char *task, size_t n) {
    const char *open = strstr(pattern, "{task}");
    size_t pre = (size_t)(open - pattern);
    const char *suffix = open + strlen("{task}");
    if (strncmp(path, pattern, pre) != 0) return false;
    const char *name = path + pre, *slash = *suffix ? strchr(name, '/') : name + strlen(name);
    if (!slash || slash == name || strcmp(slash, suffix) != 0 || (size_t)(slash - name) >= n)
        return false;
    memcpy(task, name, (size_t)(slash - name));
    task[slash - name] = '\0';
    return true;
}

const srv_route *srv_route_find(const char *path, char *task, size_t n) {
    if (n) task[0] = '\0';
    for (int i = 0; i < N_ROUTES; i++) {
        const srv_route *r = &ROUTES[i];
        if (strstr(r->path, "{task}") ? match_task(r->path, path, task, n) : !strcmp(r->path, path))
            return r;
    }
    return NULL;
}

bool srv_route_allows(const srv_route *r, const char *m) {
    size_t n = strlen(m);
    if (n == 0) return false;
    for (const char *p = r->allow; (p = strstr(p, m)); p += n)
        if ((p == r->allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',')) return true;
    return false;
}
