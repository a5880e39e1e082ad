/* One libcheck suite per test binary: each tests/<module>/test_*.c defines a
 * `Suite *NAME_suite(void)` and ends with ER_CHECK_MAIN(NAME_suite). */
#ifndef ER_CHECK_MAIN_H
#define ER_CHECK_MAIN_H
#include <check.h>
#include <stdlib.h>

#define ER_CHECK_MAIN(suite_fn)                                   \
    int main(void) {                                              \
        SRunner *sr = srunner_create(suite_fn());                 \
        srunner_run_all(sr, CK_NORMAL);                           \
        int failed = srunner_ntests_failed(sr);                   \
        srunner_free(sr);                                         \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;              \
    }

#endif
