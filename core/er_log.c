#include "er_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "er_util.h"

#define LINE_MAX_BYTES 2048
#define N_SITES 64 /* distinct limited call sites tracked; more share the last slot */

typedef struct {
    const char *fmt; /* the call site's identity */
    uint64_t window_start_ns;
    int in_window;
    long suppressed;
} site;

static struct {
    pthread_mutex_t mu;
    char prefix[32];
    er_log_level min_level;
    er_log_sink sink;
    void *sink_user;
    site sites[N_SITES];
} g = {PTHREAD_MUTEX_INITIALIZER, "erserve", ER_LOG_INFO, NULL, NULL, {{0}}};

static const char *const LEVEL_NAMES[] = {"debug", "info", "warning", "error", "off"};

const char *er_log_level_name(er_log_level level) {
    return (unsigned)level <= ER_LOG_OFF ? LEVEL_NAMES[level] : "?";
}

int er_log_level_parse(const char *name) {
    for (int i = 0; name && i <= ER_LOG_OFF; i++)
        if (!strcmp(name, LEVEL_NAMES[i])) return i;
    if (name && !strcmp(name, "warn")) return ER_LOG_WARN;
    return -1;
}

void er_log_setup(const char *prefix, er_log_level min_level) {
    pthread_mutex_lock(&g.mu);
    snprintf(g.prefix, sizeof g.prefix, "%s", prefix ? prefix : "erserve");
    g.min_level = min_level;
    pthread_mutex_unlock(&g.mu);
}

void er_log_set_sink(er_log_sink sink, void *user) {
    pthread_mutex_lock(&g.mu);
    g.sink = sink;
    g.sink_user = user;
    pthread_mutex_unlock(&g.mu);
}

int er_log_enabled(er_log_level level) { return level >= g.min_level && level < ER_LOG_OFF; }

/* Under g.mu.  Returns how many earlier lines of this site were suppressed
 * (to report now), or -1 when this line is itself suppressed. */
static long rate_limit(const char *fmt, uint64_t now) {
    site *s = NULL;
    for (int i = 0; i < N_SITES && !s; i++)
        if (g.sites[i].fmt == fmt || !g.sites[i].fmt) s = &g.sites[i];
    if (!s) s = &g.sites[N_SITES - 1];
    if (s->fmt != fmt) *s = (site){.fmt = fmt, .window_start_ns = now};
    long report = 0;
    if (now - s->window_start_ns >= (uint64_t)ER_LOG_WINDOW_S * 1000000000u) {
        report = s->suppressed;
        s->window_start_ns = now;
        s->in_window = 0;
        s->suppressed = 0;
    }
    if (++s->in_window > ER_LOG_BURST) {
        s->suppressed++;
        return -1;
    }
    return report;
}

static void emit(er_log_level level, const char *line) {
    if (g.sink) {
        g.sink(g.sink_user, level, line);
        return;
    }
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void er_log(er_log_level level, const char *fmt, ...) {
    if (!er_log_enabled(level)) return;
    char line[LINE_MAX_BYTES];
    pthread_mutex_lock(&g.mu);
    long suppressed = level >= ER_LOG_WARN ? rate_limit(fmt, er_now_ns()) : 0;
    if (suppressed >= 0) {
        int n = snprintf(line, sizeof line, "%s: %s", g.prefix,
                         level == ER_LOG_WARN ? "warning: " : level == ER_LOG_ERROR ? "error: " : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        size_t len = strlen(line);
        for (size_t i = 0; i < len; i++) /* one event, one line */
            if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
        while (len > 0 && line[len - 1] == ' ') line[--len] = '\0';
        if (suppressed > 0)
            snprintf(line + len, sizeof line - len, " (and %ld similar messages suppressed in the last %d s)",
                     suppressed, ER_LOG_WINDOW_S);
        emit(level, line);
    }
    pthread_mutex_unlock(&g.mu);
}
