/* The process's memory: what it holds now, and what it may hold (the budget a load is checked
 * against, so a catalog too large is refused with a message instead of the kernel's OOM kill). */
#ifndef TB_SERVER_MEMORY_H
#define TB_SERVER_MEMORY_H

#include <stddef.h>

/* Resident bytes (/proc/self/statm); 0 where there is no /proc. */
size_t tb_memory_resident(void);
/* The most this process may hold: its cgroup's memory.max when one is set (a container's limit),
 * else the machine's physical memory; 0 when neither can be read. */
size_t tb_memory_limit(void);

#endif
