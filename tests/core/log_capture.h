/* The core logger's lines captured into a buffer, for tests that check what
 * a load logged: er_test_log_start() empties the buffer and routes every
 * line there (one per "\n"), er_test_log_stop() restores the default sink.
 * Header-only, so each suite stays one source file. */
#ifndef ER_TEST_LOG_CAPTURE_H
#define ER_TEST_LOG_CAPTURE_H
#include <stdio.h>
#include <string.h>

#include "er_log.h"

static char er_test_logbuf[4096];

static void er_test_log_line(void *user, er_log_level level, const char *line) {
    (void)user, (void)level;
    size_t n = strlen(er_test_logbuf);
    snprintf(er_test_logbuf + n, sizeof er_test_logbuf - n, "%s\n", line);
}

static inline void er_test_log_start(void) {
    er_test_logbuf[0] = 0;
    er_log_set_sink(er_test_log_line, NULL);
}

static inline void er_test_log_stop(void) { er_log_set_sink(NULL, NULL); }

#endif
