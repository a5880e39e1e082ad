/* Regular expressions for the tokenizer components, with Oniguruma: the
 * engine the Rust library uses (its onig crate: the default syntax, Ruby's,
 * no options), so \s, \p{L}, look-ahead and the rest mean the same.  A
 * pattern is compiled once, at load; a compiled pattern is immutable and
 * may be searched by any number of threads at once. */
#ifndef ER_TOK_REGEX_H
#define ER_TOK_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "er_error.h"

typedef struct tk_regex tk_regex;

/* Compiles pattern (n bytes of UTF-8).  ER_ERR_FORMAT with the engine's
 * message ("tokenizer.json: " first) if it does not compile. */
er_status tk_regex_new(const char *pattern, size_t n, tk_regex **out, er_err *err);
void tk_regex_free(tk_regex *re);

/* Where a search is: the text, its end and the next byte to search from. */
typedef struct {
    const tk_regex *re;
    const uint8_t *text;
    size_t len, pos;
    void *region; /* the engine's match registers (tk_regex_matches_end frees them) */
} tk_regex_matches;

void tk_regex_matches_begin(tk_regex_matches *m, const tk_regex *re, const uint8_t *text, size_t len);
/* The next match at or after m->pos, as bytes [*start, *end) of the text
 * (never empty: an empty match moves on by one code point, as the onig
 * crate's find_iter does); *found false when there is none.  ER_OK, or
 * ER_ERR_NOMEM / ER_ERR_INTERNAL from the engine. */
er_status tk_regex_next(tk_regex_matches *m, bool *found, size_t *start, size_t *end, er_err *err);
void tk_regex_matches_end(tk_regex_matches *m);

#endif
