/* Timing helpers shared by the in-process benchmark programs. */
#ifndef TB_BENCH_CLOCK_H
#define TB_BENCH_CLOCK_H

#include "clock.h"

static inline double bench_now(void) { return tb_now_seconds(); }

/* qsort comparator for doubles, ascending (for medians). */
static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
