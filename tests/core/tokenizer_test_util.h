/* Helpers shared by the tokenizer suites (tests/core/test_tokenizer_*.c). */
#ifndef ER_TOKENIZER_TEST_UTIL_H
#define ER_TOKENIZER_TEST_UTIL_H

#include <check.h>
#include <string.h>

#include "tokenizer.h"

/* Loads a tokenizer.json given as a string and asserts the outcome: a
 * tokenizer when want is ER_OK, else NULL with err->code == want. */
static inline er_tokenizer *load_json_expect(const char *json, er_status want, er_err *err) {
    er_tokenizer *t = er_tokenizer_load_json(json, strlen(json), err);
    if (want == ER_OK) ck_assert_msg(t != NULL, "load: %s", t ? "" : err->msg);
    else ck_assert_msg(!t && err->code == want, "load gave %s, want %s (%s)", t ? "ok" : er_strerror(err->code),
                       er_strerror(want), t ? "" : err->msg);
    return t;
}

#endif
