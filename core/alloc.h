/* Array allocation with overflow checks; a zero count still yields a unique pointer to free. */
#ifndef TB_ALLOC_H
#define TB_ALLOC_H

#include <stdint.h>
#include <stdlib.h>

static inline void *tb_malloc_n(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    return malloc(bytes > 0 ? bytes : 1);
}

static inline void *tb_calloc_n(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

#endif
