/* er_par: every item runs exactly once, on a valid thread id, for any mix of
 * thread and item counts, and the team can be reused many times. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "../check_main.h"
#include "par.h"

typedef struct {
    _Atomic int hits[1000];
    int n_threads;
    _Atomic int bad_thread;
} counts;

static void count_item(void *arg, int item, int thread) {
    counts *c = arg;
    atomic_fetch_add(&c->hits[item], 1);
    if (thread < 0 || thread >= c->n_threads) atomic_store(&c->bad_thread, 1);
}

START_TEST(every_item_once) {
    static const int threads[] = {1, 2, 3, 8};
    static const int items[] = {0, 1, 2, 7, 1000};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        er_par *p;
        er_err err;
        ck_assert_int_eq(er_par_init(threads[t], &p, &err), ER_OK);
        ck_assert_int_eq(er_par_threads(p), threads[t]);
        for (int round = 0; round < 50; round++)
            for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
                static counts c;
                memset(&c, 0, sizeof c);
                c.n_threads = threads[t];
                er_par_run(p, count_item, &c, items[i]);
                for (int k = 0; k < items[i]; k++) ck_assert_int_eq(c.hits[k], 1);
                ck_assert_int_eq(c.bad_thread, 0);
            }
        er_par_free(p);
    }
    er_par_free(NULL);
}
END_TEST

static void sleep_us(long us) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

typedef struct {
    int out[64]; /* plain ints: the run's return must publish them */
    int gen;
    long slow_us; /* item 1 sleeps this long: the caller blocks, not only spins */
} plain;

static void plain_item(void *arg, int item, int thread) {
    (void)thread;
    plain *p = arg;
    if (item == 1 && p->slow_us) sleep_us(p->slow_us);
    p->out[item] = p->gen * 100 + item;
}

/* Both hand-off paths (par.c): runs back to back (the workers are still
 * spinning), runs after a pause longer than the spin (the workers are parked
 * and must be woken), and runs whose items outlast the caller's spin. */
START_TEST(spin_and_park_paths) {
    er_par *p;
    er_err err;
    ck_assert_int_eq(er_par_init(3, &p, &err), ER_OK);
    static plain c;
    for (int gen = 1; gen <= 60; gen++) {
        c.gen = gen;
        c.slow_us = gen % 3 == 0 ? 3000 : 0;
        er_par_run(p, plain_item, &c, 64);
        for (int i = 0; i < 64; i++) ck_assert_int_eq(c.out[i], gen * 100 + i);
        if (gen % 4 == 0) sleep_us(5000); /* past the spin: workers park */
    }
    er_par_free(p);
}
END_TEST

START_TEST(bad_sizes) {
    er_par *p = NULL;
    er_err err;
    ck_assert_int_eq(er_par_init(0, &p, &err), ER_ERR_INVALID_ARG);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(er_par_init(100000, &p, &err), ER_ERR_INVALID_ARG);
}
END_TEST

static Suite *par_suite(void) {
    Suite *s = suite_create("par");
    TCase *tc = tcase_create("par");
    tcase_add_test(tc, every_item_once);
    tcase_add_test(tc, spin_and_park_paths);
    tcase_add_test(tc, bad_sizes);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(par_suite)
