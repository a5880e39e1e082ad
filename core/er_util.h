/* The small rules that the server and the command-line tools must apply
 * identically: the version, the monotonic clock, byte sizes as people write
 * them, and what a task name may be.  One definition each, here, so that two
 * programs can never drift apart.  (The store-key salt is recycle.h's
 * er_key_salt, beside the key it salts.)
 *
 * Every function is pure or reads only the clock: thread-safe, no allocation. */
#ifndef ER_UTIL_H
#define ER_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "er_error.h"

#define ER_VERSION "0.1.0"

/* ER_VERSION, for callers that want a function (never NULL, static). */
const char *er_version(void);

/* CLOCK_MONOTONIC in nanoseconds: for durations and deadlines, never dates. */
uint64_t er_now_ns(void);

/* Parses a byte size: a non-negative decimal number, optionally fractional,
 * then an optional K, M or G (powers of 1024, any case) and an optional B:
 * "512", "64K", "1.5G", "1GB".  Returns ER_OK and sets *out, or
 * ER_ERR_INVALID_ARG naming the text (what = the option or key, for the
 * message) when it is malformed or above 2^63. */
er_status er_parse_bytes(const char *text, const char *what, uint64_t *out, er_err *err);

/* A task name: 1 to 64 of [A-Za-z0-9_.-].  It appears in URLs, metric labels
 * and log lines, so nothing else is allowed.  NULL is not a name. */
#define ER_TASK_NAME_MAX 64
bool er_task_name_valid(const char *name);

#endif
