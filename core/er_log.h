/* One logging function for every program: a line on stderr (or a sink set by
 * the program or a test) as "PREFIX: [level: ]message".
 *
 *   er_log(ER_LOG_WARN, "store: %s", msg)   ->  "erserve: warning: store: ..."
 *
 * Levels below the threshold are dropped.  Warnings and errors are rate
 * limited per call site (per format string): at most ER_LOG_BURST lines in
 * ER_LOG_WINDOW_S seconds; the rest are counted and reported once the window
 * has passed ("... N similar messages suppressed").  Info lines (start-up,
 * access log) are never limited: each one is its own event.
 *
 * Thread-safe: every call writes one whole line with one write under a lock.
 * The settings are process-wide; set them once at start, before threads. */
#ifndef ER_LOG_H
#define ER_LOG_H

typedef enum { ER_LOG_DEBUG = 0, ER_LOG_INFO, ER_LOG_WARN, ER_LOG_ERROR, ER_LOG_OFF } er_log_level;

#define ER_LOG_BURST 10
#define ER_LOG_WINDOW_S 10

/* prefix: the program's name, copied (at most 31 bytes; default "erserve").
 * Lines below min_level are dropped (default ER_LOG_INFO). */
void er_log_setup(const char *prefix, er_log_level min_level);

/* Where whole lines go instead of stderr (tests); NULL restores stderr.  The
 * line has no trailing newline and is valid only during the call. */
typedef void (*er_log_sink)(void *user, er_log_level level, const char *line);
void er_log_set_sink(er_log_sink sink, void *user);

/* True when a line of this level would be written (to skip building it). */
int er_log_enabled(er_log_level level);

void er_log(er_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "debug", "info", "warning", "error", "off"; and back (-1 when unknown). */
const char *er_log_level_name(er_log_level level);
int er_log_level_parse(const char *name);

#endif
