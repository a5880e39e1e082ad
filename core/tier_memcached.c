/* The second tier on a memcached pool (tier.h): libmemcached clients, one per
 * thread, and per-node circuit breakers shared by all of them. */
#include <libmemcached/memcached.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "er_util.h"
#include "store_internal.h"
#include "tier.h"

#define KEY_PREFIX "erv2:"
#define KEY_LEN (sizeof KEY_PREFIX - 1 + 2 * ER_STORE_KEY_BYTES)

typedef struct {
    char name[280];
    atomic_int fails;          /* consecutive failed calls */
    atomic_uint_fast64_t open_until; /* 0 = closed; else skip until this er_now_ns */
    atomic_int probing;        /* the one caller allowed through after the cool-down */
    atomic_uint_fast64_t opens, errors, timeouts;
} node;

struct er_tier {
    er_tier_params p;
    memcached_st *proto; /* configured template; clients are its clones */
    int n;
    node nodes[ER_TIER_MAX_NODES];
    atomic_uint_fast64_t hits, misses, corrupt, errors, timeouts, skipped, sets, set_errors, opens;
};

struct er_tier_client {
    er_tier *t;
    memcached_st *mc;
    /* reused: their buffers grow once, then stay.  Embedded, not allocated by
     * libmemcached, which frees an allocated result at the end of a fetch. */
    memcached_result_st res_s, tail_s;
    memcached_result_st *res, *tail; /* &res_s, &tail_s once created */
    uint8_t *buf;             /* [max value bytes] encode buffer for puts */
    size_t cap;
};

er_tier_params er_tier_default_params(void) {
    return (er_tier_params){.servers = NULL, .timeout_ms = 50, .failures = 2,
                            .cooldown_ms = 2000, .dtype = ER_DTYPE_FP16, .expire_s = 0};
}

const char *er_breaker_state_name(er_breaker_state s) {
    return s == ER_BREAKER_OPEN ? "open" : s == ER_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* ---- the pool ---- */

/* One "host:port" entry of len bytes into the template. */
static er_status add_server(er_tier *t, const char *e, size_t len, er_err *err) {
    char host[256];
    const char *colon = memrchr(e, ':', len);
    size_t hl = colon ? (size_t)(colon - e) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || end != e + len || port < 1 || port > 65535)
        return er_set(err, ER_ERR_INVALID_ARG, "memcached server '%.*s': expected host:port",
                      (int)len, e);
    if (t->n == ER_TIER_MAX_NODES)
        return er_set(err, ER_ERR_INVALID_ARG, "memcached servers: more than %d", ER_TIER_MAX_NODES);
    memcpy(host, e, hl);
    host[hl] = '\0';
    if (memcached_server_add(t->proto, host, (in_port_t)port) != MEMCACHED_SUCCESS)
        return er_set(err, ER_ERR_INVALID_ARG, "memcached server '%.*s' refused by libmemcached",
                      (int)len, e);
    snprintf(t->nodes[t->n++].name, sizeof t->nodes[0].name, "%s:%ld", host, port);
    return ER_OK;
}

/* Ketama, binary protocol, and every wait bounded by the deadline.
 * libmemcached's own retry pause is as short as it goes (it counts whole
 * seconds: a failed node is retried once the clock's second has passed,
 * hence the breakers' cool-down of at least 1 s); the breakers decide. */
static void configure(memcached_st *mc, const er_tier_params *p) {
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)p->timeout_ms);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)p->timeout_ms);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)p->timeout_ms * 1000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)p->timeout_ms * 1000);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
}

er_status er_tier_new(const er_tier_params *p, er_tier **out, er_err *err) {
    *out = NULL;
    if (!p || !p->servers || !*p->servers)
        return er_set(err, ER_ERR_INVALID_ARG, "memcached servers: none given (host:port,...)");
    if (p->timeout_ms < 1 || p->failures < 1 || p->cooldown_ms < 1000 ||
        !er_store_dtype_valid(p->dtype))
        return er_set(err, ER_ERR_INVALID_ARG, "tier: timeout and failures must be positive, the "
                      "cool-down at least 1000 ms, the dtype a store dtype");
    er_tier *t = calloc(1, sizeof *t);
    if (!t || !(t->proto = memcached_create(NULL))) {
        free(t);
        return er_set(err, ER_ERR_NOMEM, "out of memory for the memcached tier");
    }
    t->p = *p;
    t->p.servers = NULL; /* not kept: the template has them */
    for (const char *s = p->servers;; s++) { /* an empty entry is an error too */
        size_t len = strcspn(s, ",");
        er_status st = add_server(t, s, len, err);
        if (st != ER_OK) {
            er_tier_free(t);
            return st;
        }
        s += len;
        if (!*s) break;
    }
    configure(t->proto, &t->p);
    *out = t;
    return ER_OK;
}

void er_tier_free(er_tier *t) {
    if (!t) return;
    memcached_free(t->proto);
    free(t);
}

er_dtype er_tier_dtype(const er_tier *t) { return t->p.dtype; }

er_status er_tier_client_new(er_tier *t, int max_tokens, int hidden, er_tier_client **out,
                             er_err *err) {
    *out = NULL;
    er_tier_client *c = calloc(1, sizeof *c);
    if (!c) return er_set(err, ER_ERR_NOMEM, "out of memory for a tier client");
    c->t = t;
    c->cap = er_store_value_size(ER_DTYPE_FP32, max_tokens, hidden); /* the largest dtype */
    c->buf = malloc(c->cap);
    c->mc = memcached_clone(NULL, t->proto);
    c->res = c->mc ? memcached_result_create(c->mc, &c->res_s) : NULL;
    c->tail = c->mc ? memcached_result_create(c->mc, &c->tail_s) : NULL;
    if (!c->buf || !c->res || !c->tail) {
        er_tier_client_free(c);
        return er_set(err, ER_ERR_NOMEM, "out of memory for a tier client");
    }
    return *out = c, ER_OK;
}

void er_tier_client_free(er_tier_client *c) {
    if (!c) return;
    if (c->res) memcached_result_free(c->res);
    if (c->tail) memcached_result_free(c->tail);
    memcached_free(c->mc);
    free(c->buf);
    free(c);
}

/* ---- breakers ---- */

/* May this call go to node n?  *probe: it is the one after a cool-down. */
static bool breaker_allow(node *n, bool *probe) {
    *probe = false;
    uint64_t until = atomic_load(&n->open_until);
    if (until == 0) return true;
    if (er_now_ns() < until) return false;
    int idle = 0;
    return *probe = atomic_compare_exchange_strong(&n->probing, &idle, 1);
}

static void breaker_ok(node *n, bool probe) {
    atomic_store(&n->fails, 0);
    if (atomic_exchange(&n->open_until, 0) != 0)
        er_log(ER_LOG_INFO, "tier: memcached %s answers again: breaker closed", n->name);
    if (probe) atomic_store(&n->probing, 0);
}

static void breaker_fail(er_tier *t, node *n, bool probe, bool timeout, const char *why) {
    atomic_fetch_add(&t->errors, 1);
    atomic_fetch_add(&n->errors, 1);
    if (timeout) atomic_fetch_add(&t->timeouts, 1), atomic_fetch_add(&n->timeouts, 1);
    int f = atomic_fetch_add(&n->fails, 1) + 1;
    bool closed = atomic_load(&n->open_until) == 0;
    if (probe || (closed && f >= t->p.failures)) {
        atomic_store(&n->open_until, er_now_ns() + (uint64_t)t->p.cooldown_ms * 1000000u);
        atomic_fetch_add(&t->opens, 1);
        atomic_fetch_add(&n->opens, 1);
        er_log(ER_LOG_WARN, "tier: memcached %s: %s; breaker open, not called for %d ms",
               n->name, why, t->p.cooldown_ms);
    }
    if (probe) atomic_store(&n->probing, 0);
}

/* A call's outcome: true when the node answered (found or not). */
static bool node_answered(memcached_return_t rc) {
    return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND ||
           rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_E2BIG || rc == MEMCACHED_DATA_EXISTS;
}

static bool is_timeout(memcached_return_t rc) {
    return rc == MEMCACHED_TIMEOUT || rc == MEMCACHED_IN_PROGRESS;
}

/* The node key goes to, or NULL (with the call counted) when its breaker
 * says no. */
static node *pick(er_tier_client *c, const char *k, bool *probe) {
    er_tier *t = c->t;
    uint32_t i = memcached_generate_hash(c->mc, k, KEY_LEN);
    node *n = &t->nodes[i < (uint32_t)t->n ? i : 0];
    if (breaker_allow(n, probe)) return n;
    atomic_fetch_add(&t->skipped, 1);
    return NULL;
}

/* ---- calls ---- */

static void key_text(const uint8_t key[ER_STORE_KEY_BYTES], char out[KEY_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    memcpy(out, KEY_PREFIX, sizeof KEY_PREFIX - 1);
    char *p = out + sizeof KEY_PREFIX - 1;
    for (int i = 0; i < ER_STORE_KEY_BYTES; i++) {
        p[2 * i] = hex[key[i] >> 4];
        p[2 * i + 1] = hex[key[i] & 15];
    }
    out[KEY_LEN] = '\0';
}

/* Checks a fetched value and decodes it into out: 0 when good. */
static int accept_value(const uint8_t *v, size_t len, const uint8_t *key, int cut, int n, int h,
                        float *out) {
    if (er_value_check_header(v, len, cut, n, h) || er_value_check_key(v, key) ||
        er_value_check_sum(v, len))
        return -1;
    er_value_decode(v, out);
    return 0;
}

/* Fetches k's value from the node (mget + fetch, into the reused result).
 * Returns the node's answer; *found when a value came back. */
static memcached_return_t fetch(er_tier_client *c, const char *k, bool *found) {
    const char *keys[1] = {k};
    size_t lens[1] = {KEY_LEN};
    memcached_return_t rc = memcached_mget(c->mc, keys, lens, 1);
    *found = false;
    if (rc != MEMCACHED_SUCCESS) return rc;
    if (memcached_fetch_result(c->mc, c->res, &rc)) {
        *found = true;
        rc = MEMCACHED_SUCCESS;
    }
    return rc;
}

/* Reads what is left of an mget's answer (its end marker) so the
 * connection is ready for the next call. */
static void drain(er_tier_client *c) {
    memcached_return_t rc;
    while (memcached_fetch_result(c->mc, c->tail, &rc)) {
    }
}

er_status er_tier_get(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                      int n_tokens, int hidden, float *out) {
    er_tier *t = c->t;
    char k[KEY_LEN + 1];
    bool probe, found;
    key_text(key, k);
    node *n = pick(c, k, &probe);
    if (!n) return atomic_fetch_add(&t->misses, 1), ER_ERR_NOT_FOUND;
    memcached_return_t rc = fetch(c, k, &found);
    if (!node_answered(rc)) {
        breaker_fail(t, n, probe, is_timeout(rc), memcached_strerror(c->mc, rc));
        return atomic_fetch_add(&t->misses, 1), ER_ERR_NOT_FOUND;
    }
    breaker_ok(n, probe);
    int bad = found ? accept_value((const uint8_t *)memcached_result_value(c->res),
                                   memcached_result_length(c->res), key, cut, n_tokens, hidden, out)
                    : 1;
    if (found) drain(c);
    if (bad) {
        if (found) atomic_fetch_add(&t->corrupt, 1);
        return atomic_fetch_add(&t->misses, 1), ER_ERR_NOT_FOUND;
    }
    atomic_fetch_add(&t->hits, 1);
    return ER_OK;
}

er_status er_tier_put_raw(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES],
                          const void *v, size_t len) {
    er_tier *t = c->t;
    char k[KEY_LEN + 1];
    bool probe;
    key_text(key, k);
    node *n = pick(c, k, &probe);
    if (!n) return atomic_fetch_add(&t->set_errors, 1), ER_ERR_IO;
    memcached_return_t rc = memcached_set(c->mc, k, KEY_LEN, v, len, (time_t)t->p.expire_s, 0);
    if (!node_answered(rc)) breaker_fail(t, n, probe, is_timeout(rc), memcached_strerror(c->mc, rc));
    else breaker_ok(n, probe);
    if (rc != MEMCACHED_SUCCESS) return atomic_fetch_add(&t->set_errors, 1), ER_ERR_IO;
    atomic_fetch_add(&t->sets, 1);
    return ER_OK;
}

er_status er_tier_put(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                      int n_tokens, int hidden, const float *x) {
    size_t len = er_store_value_size(c->t->p.dtype, n_tokens, hidden);
    if (len > c->cap) return atomic_fetch_add(&c->t->set_errors, 1), ER_ERR_IO;
    er_value_encode(c->t->p.dtype, cut, n_tokens, hidden, x, c->buf);
    er_value_bind_key(c->buf, key);
    return er_tier_put_raw(c, key, c->buf, len);
}

/* ---- counters ---- */

static er_breaker_state state_of(const node *n) {
    uint64_t until = atomic_load(&n->open_until);
    return until == 0 ? ER_BREAKER_CLOSED : er_now_ns() < until ? ER_BREAKER_OPEN : ER_BREAKER_HALF_OPEN;
}

void er_tier_stats(const er_tier *t, er_tier_counters *o) {
    memset(o, 0, sizeof *o);
    o->hits = atomic_load(&t->hits);
    o->misses = atomic_load(&t->misses);
    o->corrupt = atomic_load(&t->corrupt);
    o->errors = atomic_load(&t->errors);
    o->timeouts = atomic_load(&t->timeouts);
    o->skipped = atomic_load(&t->skipped);
    o->sets = atomic_load(&t->sets);
    o->set_errors = atomic_load(&t->set_errors);
    o->breaker_opens = atomic_load(&t->opens);
    o->nodes = t->n;
    for (int i = 0; i < t->n; i++) o->nodes_open += state_of(&t->nodes[i]) != ER_BREAKER_CLOSED;
}

void er_tier_node(const er_tier *t, int i, er_tier_node_info *o) {
    memset(o, 0, sizeof *o);
    if (i < 0 || i >= t->n) return;
    const node *n = &t->nodes[i];
    snprintf(o->name, sizeof o->name, "%s", n->name);
    o->state = state_of(n);
    o->opens = atomic_load(&n->opens);
    o->errors = atomic_load(&n->errors);
    o->timeouts = atomic_load(&n->timeouts);
}
