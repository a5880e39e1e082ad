#include "er_error.h"

#include <stdarg.h>
#include <stdio.h>

const char *er_strerror(er_status code) {
    switch (code) {
    case ER_OK: return "ok";
    case ER_ERR_INVALID_ARG: return "invalid_argument";
    case ER_ERR_IO: return "io";
    case ER_ERR_NOMEM: return "out_of_memory";
    case ER_ERR_FORMAT: return "format";
    case ER_ERR_UNSUPPORTED: return "unsupported";
    case ER_ERR_MISMATCH: return "mismatch";
    case ER_ERR_CAPACITY: return "capacity";
    case ER_ERR_NOT_FOUND: return "not_found";
    case ER_ERR_STORE: return "store";
    case ER_ERR_INTERNAL: return "internal";
    case ER_ERR_COUNT_: break;
    }
    return "unknown";
}

er_status er_set(er_err *err, er_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n <= 0) snprintf(err->msg, sizeof err->msg, "%s", er_strerror(code));
    }
    return code;
}

void er_clear(er_err *err) {
    if (err) {
        err->code = ER_OK;
        err->msg[0] = '\0';
    }
}
