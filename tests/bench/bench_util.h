/* Timing helpers shared by the C benchmarks. */
#ifndef ER_BENCH_UTIL_H
#define ER_BENCH_UTIL_H

#include <stdlib.h>

#include "er_util.h"

/* The monotonic clock (er_now_ns) in seconds. */
static inline double now_s(void) { return 1e-9 * (double)er_now_ns(); }

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), n >= 1 (sorts v). */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

#endif
