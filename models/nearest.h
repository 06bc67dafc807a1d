/* The best k accepted rows of the published vectors for one query: from the approximate graph
 * when one is loaded and its candidates hold k rows that pass the filter, else from the exact
 * scan. hnswlib 0.6.2 cannot filter inside its search, so a filter is met by over-fetching: the
 * graph's best 4k + 16 rows, widened while fewer than k pass, to as many rows as the passes seen
 * so far promise k in, but no wider than the search that would cost what the scan costs (at most
 * TB_NEAREST_MAX_FETCH). When none of the first rows pass, or the promise lies beyond that
 * bound, the exact scan answers. Either way the answer holds only accepted rows; how close it
 * is to the exact one is measured by tests/bench/recommend_scale.sh. */
#ifndef TB_NEAREST_H
#define TB_NEAREST_H

#include "ann.h"
#include "index.h"

#define TB_NEAREST_MAX_FETCH 4096 /* graph candidates at most */

typedef enum tb_nearest_path {
    TB_NEAREST_EXACT,       /* no graph */
    TB_NEAREST_APPROXIMATE, /* the graph's candidates held k accepted rows */
    TB_NEAREST_FALLBACK,    /* a graph, but the filter passed too few of its candidates */
} tb_nearest_path;

/* Best first into out (k slots); returns how many (fewer than k only when fewer rows pass), -1
 * when out of memory. ann may be NULL. *path (may be NULL) says which search answered. */
long tb_nearest_top(const tb_index *ix, const tb_ann *ann, const float *q, size_t k, tb_index_accept accept,
                    void *ctx, tb_hit *out, tb_nearest_path *path);

#endif
