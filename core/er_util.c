#include "er_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *er_version(void) { return ER_VERSION; }

uint64_t er_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

er_status er_parse_bytes(const char *text, const char *what, uint64_t *out, er_err *err) {
    if (!text) return er_set(err, ER_ERR_INVALID_ARG, "%s: missing byte size", what);
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || end == text || !(v >= 0))
        return er_set(err, ER_ERR_INVALID_ARG, "%s: `%s` is not a byte size (e.g. 512M, 1.5G)", what,
                      text);
    switch (*end) {
    case 'k': case 'K': v *= 1024.0; end++; break;
    case 'm': case 'M': v *= 1024.0 * 1024; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v > 9.2e18)
        return er_set(err, ER_ERR_INVALID_ARG, "%s: `%s` is not a byte size (e.g. 512M, 1.5G)", what,
                      text);
    *out = (uint64_t)v;
    return ER_OK;
}

bool er_task_name_valid(const char *name) {
    size_t len = name ? strlen(name) : 0;
    if (len < 1 || len > ER_TASK_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}
