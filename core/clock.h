/* Seconds on the monotonic clock, for measuring durations (training, search, requests). */
#ifndef TB_CLOCK_H
#define TB_CLOCK_H

#include <time.h>

static inline double tb_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
