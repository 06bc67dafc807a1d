/* Exact or approximate filtered top-k (see nearest.h). */
#include "nearest.h"

#include <math.h>
#include <stdlib.h>

static long exact_top(const tb_index *ix, const float *q, size_t k, tb_index_accept accept, void *ctx, tb_hit *out) {
    float *scores = malloc((ix->n ? ix->n : 1) * sizeof *scores);
    if (!scores)
        return -1;
    long got = (long)tb_index_search(ix, q, k, accept, ctx, scores, out);
    free(scores);
    return got;
}

/* The widest graph search worth trying: a search of breadth ef scores about 16 neighbours of
 * dim values per step, the scan every row's dense values (and a genre block's one or two
 * nonzeros), so past n · dense / (16 · dim) rows the scan is cheaper. */
static size_t widest_fetch(const tb_index *ix, size_t first) {
    size_t dense = ix->dim - ix->n_labels + (ix->n_labels ? 2 : 0);
    double rows = (double)ix->n * (double)dense / (16.0 * (double)ix->dim);
    size_t limit = rows < TB_NEAREST_MAX_FETCH ? (size_t)rows : TB_NEAREST_MAX_FETCH;
    limit = limit > first ? limit : first;
    return limit < ix->n ? limit : ix->n;
}

/* k accepted rows among the graph's best `fetch`, widening while the share that passes promises
 * k within the widest search; -1 when it does not (the caller scans) or out of memory. */
static long approximate_top(const tb_index *ix, const tb_ann *ann, const float *q, size_t k, tb_index_accept accept,
                            void *ctx, tb_hit *out) {
    size_t first = 4 * k + 16 < ix->n ? 4 * k + 16 : ix->n, limit = widest_fetch(ix, first), fetch = first;
    tb_hit *hits = malloc(limit * sizeof *hits);
    long result = -1;
    while (hits) {
        size_t got = tb_ann_search(ann, q, fetch, hits), n_keep = 0, pass = 0;
        for (size_t i = 0; i < got; i++)
            if (!accept || accept(ctx, hits[i].row)) {
                if (n_keep < k)
                    out[n_keep++] = hits[i];
                pass++;
            }
        if (n_keep == k) {
            result = (long)k;
            break;
        }
        /* None of the nearest pass: the filter lies away from the query. Else the rows the
         * passes seen so far promise k in, with a quarter to spare. */
        double needed = pass ? 1.25 * (double)fetch * (double)k / (double)pass : INFINITY;
        if (got < fetch || fetch >= limit || needed > (double)limit)
            break;
        fetch = needed > 4.0 * (double)fetch ? (size_t)needed : 4 * fetch;
        fetch = fetch < limit ? fetch : limit;
    }
    free(hits);
    return result;
}

long tb_nearest_top(const tb_index *ix, const tb_ann *ann, const float *q, size_t k, tb_index_accept accept,
                    void *ctx, tb_hit *out, tb_nearest_path *path) {
    if (path)
        *path = ann ? TB_NEAREST_FALLBACK : TB_NEAREST_EXACT;
    k = k < ix->n ? k : ix->n;
    if (!ann || k == 0)
        return exact_top(ix, q, k, accept, ctx, out);
    long got = approximate_top(ix, ann, q, k, accept, ctx, out);
    if (got >= 0) {
        if (path)
            *path = TB_NEAREST_APPROXIMATE;
        return got;
    }
    return exact_top(ix, q, k, accept, ctx, out);
}
