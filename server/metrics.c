#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 499: the client hung up before its answer (nginx's convention), kept apart
 * from the 5xx so that those count server faults only. */
static const int STATUSES[] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 422, 424, 429, 499, 500, 503, 504};
#define N_STATUS (int)(sizeof STATUSES / sizeof STATUSES[0])
/* Seconds: 100 us .. 10 s, roughly x2.5 apart. */
static const double LAT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 10};
#define N_LAT (int)(sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0])
static const double SIZE_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
#define N_SIZE (int)(sizeof SIZE_BUCKETS / sizeof SIZE_BUCKETS[0])

typedef struct {
    _Atomic uint64_t b[16], count;
    _Atomic uint64_t sum; /* ns for latencies, units for sizes */
} hist;

typedef _Atomic uint64_t status_counts[N_STATUS + 1]; /* last: other statuses */

struct srv_metrics {
    const char **labels;       /* [n_routes], the strings borrowed */
    int n_routes;
    status_counts *req;        /* [n_routes + 1]: the last row is "other" */
    hist stage[M_STAGE_COUNT];
    hist batch_seqs, batch_tokens;
    _Atomic uint64_t tokens, hits, misses, batches, dropped_deadline, dropped_gone;
};

static const char *STAGES[] = {"queue", "tokenize", "lower", "store_read", "store_write",
                               "upper", "head", "total"};

srv_metrics *srv_metrics_new(const char *const *labels, int n_routes) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (m) m->req = calloc((size_t)n_routes + 1, sizeof *m->req);
    if (m) m->labels = malloc((size_t)(n_routes > 0 ? n_routes : 1) * sizeof *m->labels);
    if (!m || !m->req || !m->labels) {
        srv_metrics_free(m);
        return NULL;
    }
    memcpy(m->labels, labels, (size_t)n_routes * sizeof *labels);
    m->n_routes = n_routes;
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (m) {
        free(m->req);
        free(m->labels);
    }
    free(m);
}

static const char *label_of(const srv_metrics *m, int r) {
    return r < m->n_routes ? m->labels[r] : "other";
}

void srv_metrics_request(srv_metrics *m, int r, int status) {
    if (!m) return;
    if (r < 0 || r > m->n_routes) r = m->n_routes;
    int i = 0;
    while (i < N_STATUS && STATUSES[i] != status) i++;
    atomic_fetch_add(&m->req[r][i], 1);
}

static void observe(hist *h, const double *bk, int nb, double v, uint64_t raw) {
    int i = 0;
    while (i < nb && v > bk[i]) i++;
    atomic_fetch_add(&h->b[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum, raw);
}

void srv_metrics_stage(srv_metrics *m, m_stage s, uint64_t ns) {
    if (m && s < M_STAGE_COUNT) observe(&m->stage[s], LAT_BUCKETS, N_LAT, (double)ns * 1e-9, ns);
}

void srv_metrics_batch(srv_metrics *m, int seqs, int tokens, int hits, int misses) {
    if (!m) return;
    observe(&m->batch_seqs, SIZE_BUCKETS, N_SIZE, seqs, (uint64_t)seqs);
    observe(&m->batch_tokens, SIZE_BUCKETS, N_SIZE, tokens, (uint64_t)tokens);
    atomic_fetch_add(&m->hits, (uint64_t)hits);
    atomic_fetch_add(&m->misses, (uint64_t)misses);
    atomic_fetch_add(&m->batches, 1);
}

void srv_metrics_dropped(srv_metrics *m, bool client_gone) {
    if (m) atomic_fetch_add(client_gone ? &m->dropped_gone : &m->dropped_deadline, 1);
}

void srv_metrics_tokens(srv_metrics *m, uint64_t n) {
    if (m) atomic_fetch_add(&m->tokens, n);
}

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    for (int tries = 0; tries < 2 && b->s; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            free(b->s);
            b->s = NULL;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void put_hist(sbuf *b, const char *name, const char *labels, hist *h, const double *bk,
                     int nb, double scale) {
    uint64_t cum = 0;
    for (int i = 0; i <= nb; i++) {
        cum += atomic_load(&h->b[i]);
        if (i < nb) put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bk[i],
                        (unsigned long long)cum);
        else put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                 (unsigned long long)cum);
    }
    const char *o = *labels ? "{" : "", *c = *labels ? "}" : "";
    put(b, "%s_sum%s%s%s %.9g\n", name, o, labels, c, (double)atomic_load(&h->sum) * scale);
    put(b, "%s_count%s%s%s %llu\n", name, o, labels, c, (unsigned long long)atomic_load(&h->count));
}

static void put_requests(sbuf *b, srv_metrics *m) {
    put(b, "# HELP erserve_requests_total HTTP requests by route and status.\n"
           "# TYPE erserve_requests_total counter\n");
    for (int r = 0; r <= m->n_routes; r++)
        for (int i = 0; i <= N_STATUS; i++) {
            uint64_t v = atomic_load(&m->req[r][i]);
            if (!v) continue;
            if (i < N_STATUS)
                put(b, "erserve_requests_total{route=\"%s\",status=\"%d\"} %llu\n", label_of(m, r),
                    STATUSES[i], (unsigned long long)v);
            else
                put(b, "erserve_requests_total{route=\"%s\",status=\"other\"} %llu\n", label_of(m, r),
                    (unsigned long long)v);
        }
}

static void put_histograms(sbuf *b, srv_metrics *m) {
    put(b, "# HELP erserve_stage_seconds Latency per stage (queue, tokenize, lower layers, "
           "store read/write, upper layers, head, total).\n"
           "# TYPE erserve_stage_seconds histogram\n");
    for (int s = 0; s < M_STAGE_COUNT; s++) {
        char lab[48];
        snprintf(lab, sizeof lab, "stage=\"%s\"", STAGES[s]);
        put_hist(b, "erserve_stage_seconds", lab, &m->stage[s], LAT_BUCKETS, N_LAT, 1e-9);
    }
    put(b, "# HELP erserve_batch_sequences Sequences per engine batch.\n"
           "# TYPE erserve_batch_sequences histogram\n");
    put_hist(b, "erserve_batch_sequences", "", &m->batch_seqs, SIZE_BUCKETS, N_SIZE, 1);
    put(b, "# HELP erserve_batch_tokens Tokens per engine batch.\n"
           "# TYPE erserve_batch_tokens histogram\n");
    put_hist(b, "erserve_batch_tokens", "", &m->batch_tokens, SIZE_BUCKETS, N_SIZE, 1);
}

static void put_counters(sbuf *b, srv_metrics *m, int queue_depth, int in_flight) {
    put(b, "# HELP erserve_tokens_total Tokens of inputs accepted.\n"
           "# TYPE erserve_tokens_total counter\nerserve_tokens_total %llu\n",
        (unsigned long long)atomic_load(&m->tokens));
    put(b, "# HELP erserve_sequences_total Sequences run, by store outcome.\n"
           "# TYPE erserve_sequences_total counter\n"
           "erserve_sequences_total{cache=\"hit\"} %llu\n"
           "erserve_sequences_total{cache=\"miss\"} %llu\n",
        (unsigned long long)atomic_load(&m->hits), (unsigned long long)atomic_load(&m->misses));
    put(b, "# HELP erserve_dropped_total Queued requests dropped before compute.\n"
           "# TYPE erserve_dropped_total counter\n"
           "erserve_dropped_total{reason=\"deadline\"} %llu\n"
           "erserve_dropped_total{reason=\"client_gone\"} %llu\n",
        (unsigned long long)atomic_load(&m->dropped_deadline),
        (unsigned long long)atomic_load(&m->dropped_gone));
    put(b, "# HELP erserve_queue_depth Requests waiting for a worker.\n"
           "# TYPE erserve_queue_depth gauge\nerserve_queue_depth %d\n"
           "# HELP erserve_in_flight Requests accepted and not yet answered.\n"
           "# TYPE erserve_in_flight gauge\nerserve_in_flight %d\n",
        queue_depth, in_flight);
}

static void put_store(sbuf *b, const er_store *store) {
    er_store_counters c;
    er_store_stats(store, &c);
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"entries", "gauge", "Values in the store.", c.entries},
        {"bytes", "gauge", "Bytes of values in the store.", c.bytes},
        {"budget_bytes", "gauge", "Configured store budget.", c.budget_bytes},
        {"hits_total", "counter", "Store lookups that hit.", c.hits},
        {"misses_total", "counter", "Store lookups that missed.", c.misses},
        {"corrupt_total", "counter", "Values found corrupt (counted as misses).", c.corrupt},
        {"inserts_total", "counter", "Values committed.", c.inserts},
        {"evictions_total", "counter", "Values evicted for the budget.", c.evictions},
        {"dropped_total", "counter", "Values not cached (queue full, too large).", c.dropped},
        {"write_errors_total", "counter", "LMDB write failures.", c.write_errors},
        {"no_space_total", "counter", "Commits refused by the file system (evicted and retried).",
         c.no_space},
        {"damaged_total", "counter",
         "Structural LMDB errors; nonzero: the store is read-only until erserve-cache verify --repair.",
         c.damaged},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        put(b, "# HELP erserve_cache_%s %s\n# TYPE erserve_cache_%s %s\nerserve_cache_%s %llu\n",
            rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name,
            (unsigned long long)rows[i].v);
}

/* erserve_tier_*: the second tier's counters and each node's breaker. */
static void put_tier(sbuf *b, const er_tier *t) {
    er_tier_counters c;
    er_tier_stats(t, &c);
    struct {
        const char *name, *help;
        uint64_t v;
    } rows[] = {
        {"hits_total", "Second-tier lookups that found a good value.", c.hits},
        {"misses_total", "Second-tier lookups that did not (absent, corrupt, failed, skipped).", c.misses},
        {"corrupt_total", "Second-tier values that failed their checks (counted as misses).", c.corrupt},
        {"errors_total", "Second-tier calls that failed (timeouts included).", c.errors},
        {"timeouts_total", "Second-tier calls that ran out of time.", c.timeouts},
        {"skipped_total", "Second-tier calls not made: the node's breaker was open.", c.skipped},
        {"sets_total", "Values written to the second tier.", c.sets},
        {"set_errors_total", "Values not written to the second tier.", c.set_errors},
        {"breaker_opens_total", "Times a node's circuit breaker opened.", c.breaker_opens},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        put(b, "# HELP erserve_tier_%s %s\n# TYPE erserve_tier_%s counter\nerserve_tier_%s %llu\n",
            rows[i].name, rows[i].help, rows[i].name, rows[i].name, (unsigned long long)rows[i].v);
    put(b, "# HELP erserve_tier_nodes_open Nodes whose breaker is open or half-open.\n"
           "# TYPE erserve_tier_nodes_open gauge\nerserve_tier_nodes_open %d\n"
           "# HELP erserve_tier_breaker_state Per node: 0 closed, 1 open, 2 half-open (probing).\n"
           "# TYPE erserve_tier_breaker_state gauge\n", c.nodes_open);
    for (int i = 0; i < c.nodes; i++) {
        er_tier_node_info n;
        er_tier_node(t, i, &n);
        put(b, "erserve_tier_breaker_state{node=\"%s\"} %d\n", n.name, (int)n.state);
    }
}

char *srv_metrics_render(srv_metrics *m, const er_store *store, const er_tier *tier,
                         int queue_depth, int in_flight, size_t *len) {
    sbuf b = {malloc(8192), 0, 8192};
    put_requests(&b, m);
    put_histograms(&b, m);
    put_counters(&b, m, queue_depth, in_flight);
    if (store) put_store(&b, store);
    if (tier) put_tier(&b, tier);
    if (b.s && len) *len = b.len;
    return b.s;
}
