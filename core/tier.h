/* er_tier: an optional shared second tier behind the local store, on a
 * memcached pool (libmemcached, ketama consistent hashing, binary protocol).
 * Replicas behind a round-robin balancer share what each computed: on a
 * local LMDB miss the pool is asked before computing, and computed values
 * are written to both (core/recycle_run.c).
 *
 * Values are the store's own (store.h): the 64-byte header with format
 * version, sizes, cut, checksum and the key's first 16 bytes, then the
 * payload.  A pool value that is missing, of another format version, of
 * other sizes or cut, bound to another key, or whose checksum fails is a
 * miss (counted: corrupt).  Pool keys: "erv2:" + the store key in hex.
 *
 * Deadlines and breakers: every wait on a node (connect, send, receive) is
 * bounded by timeout_ms.  Each node has a circuit breaker shared by every
 * client: after `failures` consecutive failed calls (timeouts, refused or
 * reset connections, server errors; a miss is not a failure) the node is
 * not called for cooldown_ms; then one caller probes it, and its success
 * closes the breaker (its failure reopens it).  Keys of an open node are
 * misses at no cost, so a dead node costs `failures` timeouts, then nothing.
 *
 * Ownership and threads: er_tier (the pool's configuration, breakers and
 * counters) is thread-safe and outlives its clients.  An er_tier_client is
 * one thread's connection set (a libmemcached clone) and value buffer: one
 * thread at a time, sized once at creation. */
#ifndef ER_TIER_H
#define ER_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "er_error.h"
#include "store.h"

typedef struct er_tier er_tier;
typedef struct er_tier_client er_tier_client;

#define ER_TIER_MAX_NODES 64

typedef struct {
    const char *servers; /* "host:port,host:port" (copied) */
    int timeout_ms;      /* bound on every wait on a node [50] */
    int failures;        /* consecutive failures that open a node's breaker [2] */
    int cooldown_ms;     /* how long an open breaker skips its node, >= 1000 [2000]
                            (libmemcached retries a failed node after whole seconds) */
    er_dtype dtype;      /* of values written: the local store's [FP16] */
    uint32_t expire_s;   /* item lifetime in the pool; 0 = until memcached evicts it [0] */
} er_tier_params;

er_tier_params er_tier_default_params(void);

/* Parses the server list and sets the pool up (no connection is made yet).
 * ER_ERR_INVALID_ARG naming the bad entry (host:port, port 1..65535, at most
 * ER_TIER_MAX_NODES), ER_ERR_NOMEM. */
er_status er_tier_new(const er_tier_params *p, er_tier **out, er_err *err);
void er_tier_free(er_tier *t); /* NULL accepted; every client must be freed first */
er_dtype er_tier_dtype(const er_tier *t); /* of the values it writes */

/* A client for one thread, holding a value buffer for n_tokens x hidden
 * values (any store dtype). */
er_status er_tier_client_new(er_tier *t, int max_tokens, int hidden, er_tier_client **out,
                             er_err *err);
void er_tier_client_free(er_tier_client *c); /* NULL accepted */

/* Looks key up in the pool and decodes the value into out [n_tokens, hidden]
 * after checking header (cut, sizes), key binding and checksum.  ER_OK (hit)
 * or ER_ERR_NOT_FOUND (a miss of any kind: absent, corrupt, node failed or
 * its breaker open; counted). */
er_status er_tier_get(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                      int n_tokens, int hidden, float *out);

/* Encodes x [n_tokens, hidden] in the tier's dtype and stores it in the
 * pool.  ER_OK, or ER_ERR_IO (not stored; counted).  A failure never needs
 * handling: the value is just not shared. */
er_status er_tier_put(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                      int n_tokens, int hidden, const float *x);

/* Stores raw bytes as key's value (tests: corrupt values).  ER_OK / ER_ERR_IO. */
er_status er_tier_put_raw(er_tier_client *c, const uint8_t key[ER_STORE_KEY_BYTES],
                          const void *v, size_t len);

typedef enum { ER_BREAKER_CLOSED = 0, ER_BREAKER_OPEN = 1, ER_BREAKER_HALF_OPEN = 2 } er_breaker_state;

typedef struct {
    uint64_t hits, misses;   /* gets: found and good / everything else */
    uint64_t corrupt;        /* gets that found a value failing its checks (also misses) */
    uint64_t errors;         /* failed calls (gets and sets), timeouts included */
    uint64_t timeouts;       /* failed calls that ran out of time */
    uint64_t skipped;        /* calls not made: the node's breaker was open */
    uint64_t sets, set_errors; /* values stored / not stored */
    uint64_t breaker_opens;  /* closed (or half-open) -> open transitions, all nodes */
    int nodes, nodes_open;   /* configured / with an open or half-open breaker now */
} er_tier_counters;

void er_tier_stats(const er_tier *t, er_tier_counters *out);

typedef struct {
    char name[280];          /* host:port */
    er_breaker_state state;
    uint64_t opens, errors, timeouts;
} er_tier_node_info;

/* Node i (0 <= i < nodes) as it stands now. */
void er_tier_node(const er_tier *t, int i, er_tier_node_info *out);

const char *er_breaker_state_name(er_breaker_state s); /* "closed", "open", "half_open" */

#endif
