#include "er_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

er_status er_read_stream(FILE *f, const char *what, size_t max, char **out, size_t *len,
                         er_err *err) {
    *out = NULL;
    size_t cap = max < (1u << 16) ? max + 1 : (1u << 16), n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return er_set(err, ER_ERR_NOMEM, "%s: out of memory", what);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            free(buf);
            return er_set(err, ER_ERR_CAPACITY, "%s is larger than %zu bytes", what, max);
        }
        if (got == 0) break;
        if (n == cap) { /* grow, never past max + 1 (enough to see that it is too large) */
            size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                return er_set(err, ER_ERR_NOMEM, "%s: out of memory", what);
            }
            buf = nb;
            cap = ncap;
        }
    }
    if (ferror(f)) {
        free(buf);
        return er_set(err, ER_ERR_IO, "%s: read error", what);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return ER_OK;
}

er_status er_read_file(const char *path, size_t max, char **out, size_t *len, er_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return er_set(err, ER_ERR_NOT_FOUND, "%s: no such file", path);
        return er_set(err, ER_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    er_status st = er_read_stream(f, path, max, out, len, err);
    fclose(f);
    return st;
}
