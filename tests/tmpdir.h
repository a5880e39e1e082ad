/* A fresh temporary directory for a test, and its removal with everything
 * in it.  For libcheck tests (they fail the test on error); header-only so
 * that each suite stays one source file. */
#ifndef ER_TEST_TMPDIR_H
#define ER_TEST_TMPDIR_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* dir (at least 64 bytes) = a new directory "/tmp/er_<tag>_XXXXXX". */
static inline void er_test_mkdtemp(char *dir, size_t cap, const char *tag) {
    snprintf(dir, cap, "/tmp/er_%s_XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void er_test_rmtree(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

#endif
