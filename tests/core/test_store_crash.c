/* Crash safety: a child process writes to the store as fast as it can (with
 * evictions) and is SIGKILLed at a random moment, again and again; after each
 * kill the parent reopens the store and checks every value (header, checksum,
 * content) and that the indexes agree with the values.  Bounded by
 * ERSERVE_CRASH_SECONDS (default 20; 4 under valgrind).  The store is opened only after each
 * fork, in one process at a time. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "store.h"

#define N 16
#define H 64
#define PER_ROUND 200000

static void fill(float *x, int i) {
    uint32_t r = 2463534242u + (uint32_t)i * 7919u;
    for (int k = 0; k < N * H; k++) {
        r ^= r << 13; r ^= r >> 17; r ^= r << 5;
        x[k] = (float)(r >> 8) / 16777216.0f - 0.5f;
    }
}

static void key_of(int i, uint8_t key[32]) {
    uint8_t fp[32] = {3};
    int32_t ids[1] = {i};
    er_store_key(fp, 2, 1, ids, NULL, 0, key);
}

static er_store_params params(void) {
    er_store_params p = er_store_default_params();
    p.dtype = ER_DTYPE_FP32;
    p.budget_bytes = 2u << 20; /* ~500 values: the storm evicts constantly */
    p.queue_bytes = 1u << 20;
    return p;
}

static void storm(const char *dir, int round) {
    er_store_params p = params();
    er_store *s;
    if (er_store_open(dir, &p, &s, NULL) != ER_OK) _exit(3);
    float x[N * H];
    for (int k = 0;; k++) {
        uint8_t key[32];
        int i = round * PER_ROUND + k % 40000; /* the parent scans 40000 a round */
        key_of(i, key);
        fill(x, i);
        er_store_put(s, key, 2, N, H, x, true, NULL);
        if (k % 16 == 15) er_store_flush(s);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(test_kill9_storm) {
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "crash");
    const char *env = getenv("ERSERVE_CRASH_SECONDS");
    /* under valgrind (tests/run.sh) a few rounds prove the same */
    double budget = env ? atof(env) : getenv("ERSERVE_VALGRIND") ? 4.0 : 20.0, t0 = now_s();
    srand((unsigned)time(NULL));
    int rounds = 0;
    uint64_t seen = 0;
    static float x[N * H], y[N * H];
    while (now_s() - t0 < budget || rounds < 2) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) storm(dir, rounds);
        usleep(150000 + (useconds_t)(rand() % 600000));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "writer exited by itself (status %d)", status);

        er_store_params p = params();
        er_store *s;
        er_err e;
        ck_assert_msg(er_store_open(dir, &p, &s, &e) == ER_OK, "round %d: %s", rounds, e.msg);
        uint64_t ok, bad;
        ck_assert_msg(er_store_verify(s, false, &ok, &bad, &e) == ER_OK, "round %d: %s", rounds, e.msg);
        ck_assert_uint_eq(bad, 0);
        er_store_counters c;
        er_store_stats(s, &c);
        ck_assert_uint_le(c.bytes, p.budget_bytes);
        er_store_reader *r;
        ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
        uint64_t found = 0;
        for (int rd = 0; rd <= rounds; rd++)
            for (int k = 0; k < 40000; k++) {
                int i = rd * PER_ROUND + k;
                uint8_t key[32];
                key_of(i, key);
                if (er_store_get(r, key, 2, N, H, y, NULL) != ER_OK) continue;
                fill(x, i);
                ck_assert_msg(!memcmp(x, y, sizeof x), "round %d: value %d has wrong content", rounds, i);
                found++;
            }
        ck_assert_uint_eq(found, ok); /* every stored value is one the writer wrote */
        seen += ok;
        er_store_reader_free(r);
        er_store_close(s);
        rounds++;
    }
    fprintf(stderr, "  crash test: %d kills in %.1f s, %llu values verified\n", rounds,
            now_s() - t0, (unsigned long long)seen);
    ck_assert_uint_gt(seen, 0);
    er_test_rmtree(dir);
}
END_TEST

static Suite *store_crash_suite(void) {
    Suite *s = suite_create("store_crash");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_kill9_storm);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(store_crash_suite)
