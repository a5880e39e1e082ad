/* The memcached second tier (core/tier.h) against a real memcached started
 * by the test on a loopback port: round trip in the store's value format,
 * damaged / stale / foreign values as misses, deadlines and breakers on dead
 * and hung nodes (bounded time), recovery, and er_run with the tier: a
 * replica with an empty store hits on what another replica computed, each
 * input of a batch on its own.  Skipped visibly without memcached. */
#include <math.h>
#include <string.h>

#include "../check_main.h"
#include "../memcached_proc.h"
#include "../tmpdir.h"
#include "recycle.h"
#include "store_internal.h"
#include "tier.h"

#define N 7
#define H 48
#define CUT 1

static void fill(float *x, int n, float seed) {
    for (int i = 0; i < n * H; i++) x[i] = sinf(seed + 0.37f * (float)i) * 3.0f;
}

static void key_of(int i, uint8_t key[ER_STORE_KEY_BYTES]) {
    uint8_t fp[32] = {0};
    int32_t ids[1] = {i};
    er_store_key(fp, CUT, 1, ids, NULL, 0, key);
}

static er_tier *tier_for(const char *servers, int timeout_ms, int failures, int cooldown_ms) {
    er_tier_params p = er_tier_default_params();
    p.servers = servers;
    p.timeout_ms = timeout_ms;
    p.failures = failures;
    p.cooldown_ms = cooldown_ms;
    er_tier *t = NULL;
    er_err e = {0};
    ck_assert_msg(er_tier_new(&p, &t, &e) == ER_OK, "%s", e.msg);
    return t;
}

#define START_OR_SKIP(m)                                                                 \
    do {                                                                                 \
        int r_ = mc_start(&(m), 0);                                                      \
        if (r_ == 0) ER_SKIP("no memcached binary (apt-get install memcached)");         \
        ck_assert_msg(r_ == 1, "memcached did not come up on port %d", (m).port);        \
    } while (0)

START_TEST(test_round_trip) {
    mc_proc m;
    START_OR_SKIP(m);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", m.port);
    er_tier *t = tier_for(servers, 200, 2, 1000);
    er_tier_client *c;
    ck_assert_int_eq(er_tier_client_new(t, 64, H, &c, NULL), ER_OK);
    float x[N * H], want[N * H], got[N * H];
    uint8_t k[32], k2[32];
    fill(x, N, 1.0f);
    key_of(1, k);
    key_of(2, k2);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_ERR_NOT_FOUND); /* absent */
    ck_assert_int_eq(er_tier_put(c, k, CUT, N, H, x), ER_OK);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_OK);
    memcpy(want, x, sizeof x);
    er_value_round(ER_DTYPE_FP16, N, H, want); /* the store's dtype, bit for bit */
    ck_assert_int_eq(memcmp(got, want, sizeof got), 0);
    ck_assert_int_eq(er_tier_get(c, k, CUT + 1, N, H, got), ER_ERR_NOT_FOUND); /* other cut */
    ck_assert_int_eq(er_tier_get(c, k, CUT, N - 1, H, got), ER_ERR_NOT_FOUND); /* other n */
    ck_assert_int_eq(er_tier_get(c, k2, CUT, N, H, got), ER_ERR_NOT_FOUND);
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.misses, 4);
    ck_assert_uint_eq(s.corrupt, 2); /* the two header mismatches */
    ck_assert_uint_eq(s.sets, 1);
    ck_assert_uint_eq(s.errors, 0);
    ck_assert_int_eq(s.nodes, 1);
    er_tier_client_free(c);
    er_tier_free(t);
    mc_stop(&m, SIGTERM);
}
END_TEST

/* Each kind of bad value in memcached is a miss counted as corrupt. */
START_TEST(test_corrupt_values) {
    mc_proc m;
    START_OR_SKIP(m);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", m.port);
    er_tier *t = tier_for(servers, 200, 2, 1000);
    er_tier_client *c;
    ck_assert_int_eq(er_tier_client_new(t, 64, H, &c, NULL), ER_OK);
    float x[N * H], got[N * H];
    uint8_t k[32], other[32];
    fill(x, N, 2.0f);
    key_of(10, k);
    key_of(11, other);
    size_t len = er_store_value_size(ER_DTYPE_FP16, N, H);
    uint8_t *v = malloc(len);
    er_value_encode(ER_DTYPE_FP16, CUT, N, H, x, v);
    er_value_bind_key(v, k);
    ck_assert_int_eq(er_tier_put_raw(c, k, v, len), ER_OK);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_OK); /* the good one */
    v[ER_STORE_HEADER_BYTES + 5] ^= 0x40;                      /* a flipped payload bit */
    ck_assert_int_eq(er_tier_put_raw(c, k, v, len), ER_OK);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_ERR_NOT_FOUND);
    v[ER_STORE_HEADER_BYTES + 5] ^= 0x40;
    ck_assert_int_eq(er_tier_put_raw(c, other, v, len), ER_OK); /* bound to k, stored at other */
    ck_assert_int_eq(er_tier_get(c, other, CUT, N, H, got), ER_ERR_NOT_FOUND);
    v[4] = 1; /* format version 1: stale */
    ck_assert_int_eq(er_tier_put_raw(c, k, v, len), ER_OK);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_ERR_NOT_FOUND);
    ck_assert_int_eq(er_tier_put_raw(c, k, v, len / 2), ER_OK); /* truncated */
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_ERR_NOT_FOUND);
    ck_assert_int_eq(er_tier_put_raw(c, k, "x", 1), ER_OK);
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, got), ER_ERR_NOT_FOUND);
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.corrupt, 5);
    ck_assert_uint_eq(s.errors, 0); /* the node answered every time: no breaker */
    ck_assert_uint_eq(s.breaker_opens, 0);
    free(v);
    er_tier_client_free(c);
    er_tier_free(t);
    mc_stop(&m, SIGTERM);
}
END_TEST

/* A node that accepts connections and never answers: `failures` timeouts,
 * then its breaker is open and calls cost nothing; after the cool-down one
 * probe (which times out again and reopens it). */
START_TEST(test_hung_node_breaker) {
    int port, fd = mc_listen_any(&port);
    ck_assert_int_ge(fd, 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    er_tier *t = tier_for(servers, 40, 2, 1000);
    er_tier_client *c;
    ck_assert_int_eq(er_tier_client_new(t, 64, H, &c, NULL), ER_OK);
    float x[N * H];
    uint8_t k[32];
    fill(x, N, 3.0f);
    double t0 = mc_now();
    for (int i = 0; i < 200; i++) {
        key_of(i, k);
        ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, x), ER_ERR_NOT_FOUND);
        er_tier_put(c, k, CUT, N, H, x);
    }
    double spent = mc_now() - t0;
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.errors, 2);
    ck_assert_uint_ge(s.timeouts, 1);
    ck_assert_uint_eq(s.breaker_opens, 1);
    ck_assert_uint_eq(s.skipped, 398);
    ck_assert_int_eq(s.nodes_open, 1);
    /* two waits of 40 ms (a connect that succeeds, then a read that never
     * returns), nothing for the other 398 calls */
    ck_assert_msg(spent < 0.5, "400 calls on a hung node took %.3f s", spent);
    er_tier_node_info ni;
    er_tier_node(t, 0, &ni);
    ck_assert_int_eq(ni.state, ER_BREAKER_OPEN);
    ck_assert_str_eq(er_breaker_state_name(ni.state), "open");
    usleep(1050 * 1000); /* the cool-down: one probe goes through, fails, reopens */
    er_tier_node(t, 0, &ni);
    ck_assert_int_eq(ni.state, ER_BREAKER_HALF_OPEN);
    t0 = mc_now();
    for (int i = 0; i < 50; i++) er_tier_get(c, k, CUT, N, H, x);
    spent = mc_now() - t0;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.errors, 3);
    ck_assert_uint_eq(s.breaker_opens, 2);
    ck_assert_msg(spent < 0.3, "probe + 49 skipped calls took %.3f s", spent);
    er_tier_client_free(c);
    er_tier_free(t);
    close(fd);
}
END_TEST

/* A killed memcached: refused connections open the breaker; a restarted one
 * on the same port closes it at the first probe after the cool-down. */
START_TEST(test_dead_node_recovers) {
    mc_proc m;
    START_OR_SKIP(m);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", m.port);
    er_tier *t = tier_for(servers, 50, 2, 1000);
    er_tier_client *c;
    ck_assert_int_eq(er_tier_client_new(t, 64, H, &c, NULL), ER_OK);
    float x[N * H];
    uint8_t k[32];
    fill(x, N, 4.0f);
    key_of(1, k);
    ck_assert_int_eq(er_tier_put(c, k, CUT, N, H, x), ER_OK);
    int port = m.port;
    mc_stop(&m, SIGKILL);
    double t0 = mc_now();
    for (int i = 0; i < 100; i++) ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, x), ER_ERR_NOT_FOUND);
    ck_assert_msg(mc_now() - t0 < 0.3, "100 calls on a dead node took %.3f s", mc_now() - t0);
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.breaker_opens, 1);
    ck_assert_uint_eq(s.skipped, 98);
    ck_assert_int_eq(mc_start(&m, port), 1); /* empty again: puts then gets */
    usleep(1050 * 1000);
    ck_assert_int_eq(er_tier_put(c, k, CUT, N, H, x), ER_OK); /* the probe */
    ck_assert_int_eq(er_tier_get(c, k, CUT, N, H, x), ER_OK);
    er_tier_stats(t, &s);
    ck_assert_int_eq(s.nodes_open, 0);
    ck_assert_uint_eq(s.breaker_opens, 1);
    er_tier_client_free(c);
    er_tier_free(t);
    mc_stop(&m, SIGTERM);
}
END_TEST

/* Two nodes, ketama: keys spread over both; one killed loses only its share. */
START_TEST(test_two_nodes) {
    mc_proc a, b;
    START_OR_SKIP(a);
    ck_assert_int_eq(mc_start(&b, 0), 1);
    char servers[128];
    snprintf(servers, sizeof servers, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    er_tier *t = tier_for(servers, 50, 1, 5000);
    er_tier_client *c;
    ck_assert_int_eq(er_tier_client_new(t, 64, H, &c, NULL), ER_OK);
    float x[N * H];
    uint8_t k[32];
    fill(x, N, 5.0f);
    for (int i = 0; i < 200; i++) {
        key_of(i, k);
        ck_assert_int_eq(er_tier_put(c, k, CUT, N, H, x), ER_OK);
    }
    mc_stop(&b, SIGKILL);
    int hits = 0;
    for (int i = 0; i < 200; i++) key_of(i, k), hits += er_tier_get(c, k, CUT, N, H, x) == ER_OK;
    ck_assert_msg(hits > 50 && hits < 150, "%d of 200 keys on the surviving node", hits);
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_int_eq(s.nodes, 2);
    ck_assert_int_eq(s.nodes_open, 1);
    ck_assert_uint_eq(s.breaker_opens, 1);
    er_tier_client_free(c);
    er_tier_free(t);
    mc_stop(&a, SIGTERM);
}
END_TEST

START_TEST(test_bad_params) {
    er_tier_params p = er_tier_default_params();
    er_tier *t = NULL;
    er_err e = {0};
    const char *bad[] = {"", "localhost", "127.0.0.1:0", "127.0.0.1:99999", ":11211",
                         "127.0.0.1:11211,", "127.0.0.1:1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p.servers = bad[i];
        ck_assert_msg(er_tier_new(&p, &t, &e) == ER_ERR_INVALID_ARG, "accepted '%s'", bad[i]);
        ck_assert_ptr_null(t);
    }
    p.servers = "127.0.0.1:11211";
    p.timeout_ms = 0;
    ck_assert_int_eq(er_tier_new(&p, &t, &e), ER_ERR_INVALID_ARG);
    p.timeout_ms = 50;
    p.cooldown_ms = 999;
    ck_assert_int_eq(er_tier_new(&p, &t, &e), ER_ERR_INVALID_ARG);
}
END_TEST

/* er_run with the tier: replica A computes and writes both tiers; replica B
 * (its own empty store, the same pool) hits in the pool, answers the same,
 * and keeps the value locally.  A batch of two inputs, one known and one
 * new, is looked up input by input. */
static er_taskset *replica(const char *store, er_tier *tier) {
    er_task_spec spec = {"t", "tests/fixtures/models/bert-seqcls", 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = store;
    p.store.dtype = ER_DTYPE_FP16;
    p.tier = tier;
    er_taskset *ts = NULL;
    er_err e = {0};
    ck_assert_msg(er_taskset_load(&spec, 1, &p, &ts, &e) == ER_OK, "%s", e.msg);
    return ts;
}

START_TEST(test_run_with_tier) {
    mc_proc m;
    START_OR_SKIP(m);
    char servers[64], da[64], db[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", m.port);
    er_tier *t = tier_for(servers, 200, 2, 1000);
    er_test_mkdtemp(da, sizeof da, "tier_a");
    er_test_mkdtemp(db, sizeof db, "tier_b");
    er_taskset *A = replica(da, t), *B = replica(db, t);
    er_worker *wa, *wb;
    ck_assert_int_eq(er_worker_init(A, NULL, &wa, NULL), ER_OK);
    ck_assert_int_eq(er_worker_init(B, NULL, &wb, NULL), ER_OK);
    int32_t ids[9] = {2, 5, 7, 3, 2, 9, 11, 13, 3};
    int lens[2] = {4, 5};
    er_batch one = {1, lens, ids, NULL}, two = {2, lens, ids, NULL};
    float oa[8], ob[8];
    uint8_t hit[2];
    er_run_stats st;
    ck_assert_int_eq(er_run(wa, er_taskset_at(A, 0), &one, 0, oa, hit, &st, NULL), ER_OK);
    ck_assert_int_eq(hit[0], 0);
    ck_assert_int_eq(er_run(wb, er_taskset_at(B, 0), &two, 0, ob, hit, &st, NULL), ER_OK);
    ck_assert_int_eq(hit[0], 1); /* from the pool */
    ck_assert_int_eq(hit[1], 0); /* new: computed, written to both */
    ck_assert_int_eq(st.tier_hits, 1);
    ck_assert_int_eq(st.hits, 1);
    ck_assert_int_eq(memcmp(oa, ob, 3 * sizeof *oa), 0); /* the same answer, bit for bit */
    er_store_flush(er_taskset_store(B));
    er_store_counters sc;
    er_store_stats(er_taskset_store(B), &sc);
    ck_assert_uint_eq(sc.entries, 2); /* the pool's value kept locally too */
    er_batch second = {1, lens + 1, ids + 4, NULL};
    ck_assert_int_eq(er_run(wa, er_taskset_at(A, 0), &second, 0, oa, hit, &st, NULL), ER_OK);
    ck_assert_int_eq(hit[0], 1);
    ck_assert_int_eq(st.tier_hits, 1); /* A's store missed it; B had put it in the pool */
    er_tier_counters s;
    er_tier_stats(t, &s);
    ck_assert_uint_eq(s.hits, 2);
    ck_assert_uint_eq(s.sets, 2);
    er_worker_free(wa);
    er_worker_free(wb);
    er_taskset_free(A);
    er_taskset_free(B);
    er_tier_free(t);
    er_test_rmtree(da);
    er_test_rmtree(db);
    mc_stop(&m, SIGTERM);
}
END_TEST

START_TEST(test_tier_needs_store) {
    er_tier_params p = er_tier_default_params();
    p.servers = "127.0.0.1:1";
    er_tier *t;
    ck_assert_int_eq(er_tier_new(&p, &t, NULL), ER_OK);
    er_task_spec spec = {"t", "tests/fixtures/models/bert-seqcls", 0, ER_COMPUTE_FP32};
    er_taskset_params tp = er_taskset_default_params();
    tp.tier = t;
    er_taskset *ts = NULL;
    er_err e = {0};
    ck_assert_int_eq(er_taskset_load(&spec, 1, &tp, &ts, &e), ER_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "store"));
    er_tier_free(t);
}
END_TEST

static Suite *tier_suite(void) {
    Suite *s = suite_create("tier");
    TCase *tc = tcase_create("memcached");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_corrupt_values);
    tcase_add_test(tc, test_hung_node_breaker);
    tcase_add_test(tc, test_dead_node_recovers);
    tcase_add_test(tc, test_two_nodes);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_run_with_tier);
    tcase_add_test(tc, test_tier_needs_store);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tier_suite)
