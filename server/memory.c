/* Reading the process's memory use and limit from /proc and /sys. */
#include "memory.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

size_t tb_memory_resident(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size_pages, resident_pages;
    size_t bytes = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (f && fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2)
        bytes = (size_t)resident_pages * (size_t)(page > 0 ? page : 4096);
    if (f)
        fclose(f);
    return bytes;
}

/* The cgroup v2 limit of this process ("max": none), from /proc/self/cgroup's "0::PATH". */
static size_t cgroup_limit(void) {
    char line[4096], path[4200];
    FILE *f = fopen("/proc/self/cgroup", "r");
    size_t limit = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            FILE *m = fopen(path, "r");
            unsigned long long v;
            if (m && fscanf(m, "%llu", &v) == 1)
                limit = (size_t)v;
            if (m)
                fclose(m);
        }
    if (f)
        fclose(f);
    return limit;
}

size_t tb_memory_limit(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t physical = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0, cgroup = cgroup_limit();
    return cgroup && (cgroup < physical || !physical) ? cgroup : physical;
}
