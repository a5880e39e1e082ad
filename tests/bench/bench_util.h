/* Timing helpers shared by the C benchmarks. */
#ifndef ER_BENCH_UTIL_H
#define ER_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "er_util.h"
#include "model.h"

/* The monotonic clock (er_now_ns) in seconds. */
static inline double now_s(void) { return 1e-9 * (double)er_now_ns(); }

/* CPU seconds the whole process has used (all its threads): on a loaded
 * host, where wall time also counts waiting for a core, this is the figure
 * to compare variants by. */
static inline double process_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), n >= 1 (sorts v). */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Model parameters of a benchmark: BENCH_COMPUTE=fp32|bf16|int8 (default fp32);
 * exits with a message on another value. */
static inline er_model_params bench_model_params(void) {
    er_model_params p = er_model_default_params();
    const char *c = getenv("BENCH_COMPUTE");
    if (c && *c && !er_compute_parse(c, &p.compute)) {
        fprintf(stderr, "BENCH_COMPUTE must be fp32, bf16 or int8, not %s\n", c);
        exit(2);
    }
    return p;
}

/* A memory line of /proc/self/status ("VmRSS:", "RssAnon:", ...) in MiB,
 * 0 if unknown. */
static inline double bench_status_mib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    const size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) kib = atof(line + n);
    if (f) fclose(f);
    return kib / 1024.0;
}

/* The process's resident set (VmRSS) in MiB, 0 if unknown. */
static inline double bench_rss_mib(void) { return bench_status_mib("VmRSS:"); }

#endif
