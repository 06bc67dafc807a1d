/* sched_setattr has no glibc wrapper; the struct is the kernel's (linux/sched/types.h clashes with
 * glibc's sched.h, so its layout, stable since 4.13, is spelled out here). */
#define _GNU_SOURCE
#include "slice.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct kernel_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

int tb_thread_slice_set(unsigned us) {
#ifdef SYS_sched_setattr
    struct kernel_sched_attr cur, next;
    memset(&cur, 0, sizeof cur);
    if (syscall(SYS_sched_getattr, 0, &cur, (unsigned)sizeof cur, 0) != 0)
        return TB_SLICE_REFUSED;
    if (cur.sched_policy != 0 /* SCHED_OTHER */)
        return TB_SLICE_OTHER_POLICY;
    memset(&next, 0, sizeof next);
    next.size = sizeof next;
    next.sched_policy = 0;
    next.sched_nice = cur.sched_nice;
    next.sched_runtime = (uint64_t)us * 1000u;
    return syscall(SYS_sched_setattr, 0, &next, 0) == 0 ? 0 : TB_SLICE_REFUSED;
#else
    (void)us;
    return TB_SLICE_REFUSED;
#endif
}

int tb_seccomp_filtered(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 1;
    char line[256];
    int mode = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    return mode != 0;
}
