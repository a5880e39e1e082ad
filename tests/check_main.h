/* One libcheck suite per test binary: each tests/<module>/test_*.c defines a
 * `static Suite *NAME_suite(void)` and ends with ER_CHECK_MAIN(NAME_suite).
 *
 * A test that cannot run here says so with ER_SKIP("why", ...): it prints
 * "SKIP: <test>: why" on stdout and returns.  libcheck has no skipped state,
 * so tests/run.sh counts those lines and reports them as skipped, never as
 * passed. */
#ifndef ER_CHECK_MAIN_H
#define ER_CHECK_MAIN_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define ER_SKIP(...)                                              \
    do {                                                          \
        printf("SKIP: %s: ", __func__);                           \
        printf(__VA_ARGS__);                                      \
        printf("\n");                                             \
        fflush(stdout);                                           \
        return;                                                   \
    } while (0)

#define ER_CHECK_MAIN(suite_fn)                                   \
    int main(void) {                                              \
        SRunner *sr = srunner_create(suite_fn());                 \
        srunner_run_all(sr, CK_NORMAL);                           \
        int failed = srunner_ntests_failed(sr);                   \
        srunner_free(sr);                                         \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;              \
    }

#endif
