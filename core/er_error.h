/* erserve error codes, shared by every module.
 *
 * Functions that can fail return an er_status and, where the caller wants a
 * human-readable reason, fill an er_err.  er_err is a plain value: no
 * allocation, safe to copy, may be NULL wherever a function takes one. */
#ifndef ER_ERROR_H
#define ER_ERROR_H

#include <stddef.h>

typedef enum {
    ER_OK = 0,
    ER_ERR_INVALID_ARG,   /* caller passed something out of contract */
    ER_ERR_IO,            /* open/read/mmap/stat failed (errno in message) */
    ER_ERR_NOMEM,         /* an allocation failed */
    ER_ERR_FORMAT,        /* outside bytes are malformed (file, JSON, value) */
    ER_ERR_UNSUPPORTED,   /* well-formed but not something erserve handles */
    ER_ERR_MISMATCH,      /* dtype/shape/config disagree with each other */
    ER_ERR_CAPACITY,      /* input larger than a configured or sized limit */
    ER_ERR_NOT_FOUND,     /* a named thing (tensor, file, key) is absent */
    ER_ERR_STORE,         /* the activation store failed (LMDB error in message) */
    ER_ERR_INTERNAL,      /* a bug: an invariant did not hold */
    ER_ERR_COUNT_
} er_status;

#define ER_ERR_MSG_MAX 512

typedef struct {
    er_status code;
    char msg[ER_ERR_MSG_MAX]; /* NUL-terminated, never empty when code != ER_OK */
} er_err;

/* Static, never NULL: a short stable name for the code ("format", "io", ...). */
const char *er_strerror(er_status code);

/* Sets err (if non-NULL) to code and a printf-formatted message; returns code
 * so callers can `return er_set(err, ER_ERR_FORMAT, "...", ...)`. */
er_status er_set(er_err *err, er_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to ER_OK with an empty message (NULL accepted). */
void er_clear(er_err *err);

#endif
