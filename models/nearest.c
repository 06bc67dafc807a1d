/* Exact or approximate filtered top-k (see nearest.h). */
#include "nearest.h"

#include <math.h>
#include <stdlib.h>

double tb_nearest_pass_share(size_t n, tb_index_accept accept, void *ctx) {
    if (!accept || n == 0)
        return 1.0;
    size_t m = n < TB_NEAREST_SAMPLE ? n : TB_NEAREST_SAMPLE, pass = 0;
    for (size_t i = 0; i < m; i++)
        pass += accept(ctx, i * n / m) != 0;
    return (double)pass / (double)m;
}

static long exact_top(const tb_index *ix, const float *q, size_t k, tb_index_accept accept, void *ctx, tb_hit *out) {
    float *scores = malloc((ix->n ? ix->n : 1) * sizeof *scores);
    if (!scores)
        return -1;
    long got = (long)tb_index_search(ix, q, k, accept, ctx, scores, out);
    free(scores);
    return got;
}

/* k accepted rows among the graph's best `fetch`, widening; -1 when the bound is reached short of
 * k (or out of memory). */
static long approximate_top(const tb_index *ix, const tb_ann *ann, const float *q, size_t k, size_t fetch,
                            size_t limit, tb_index_accept accept, void *ctx, tb_hit *out) {
    limit = limit < ix->n ? limit : ix->n;
    fetch = fetch < limit ? fetch : limit;
    tb_hit *hits = malloc(limit * sizeof *hits);
    long result = -1;
    for (size_t tried = 0; hits && tried < limit; fetch = 4 * fetch < limit ? 4 * fetch : limit) {
        size_t got = tb_ann_search(ann, q, fetch, hits), n_keep = 0;
        for (size_t i = 0; i < got && n_keep < k; i++)
            if (!accept || accept(ctx, hits[i].row))
                out[n_keep++] = hits[i];
        tried = fetch;
        if (n_keep == k) {
            result = (long)k;
            break;
        }
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
    /* Widen no further than a sixteenth of the rows: a search of breadth ef scores about 16 new
     * neighbours per step, so by then it costs what the scan costs. */
    size_t first = 4 * k + 16, limit = ix->n / 16 < TB_NEAREST_MAX_FETCH ? ix->n / 16 : TB_NEAREST_MAX_FETCH;
    limit = limit > first ? limit : first;
    /* Expected passes among the widest candidates, were they drawn at random: under k, and the
     * graph would likely be searched in vain. */
    if (tb_nearest_pass_share(ix->n, accept, ctx) * (double)limit < (double)k)
        return exact_top(ix, q, k, accept, ctx, out);
    long got = approximate_top(ix, ann, q, k, first, limit, accept, ctx, out);
    if (got >= 0) {
        if (path)
            *path = TB_NEAREST_APPROXIMATE;
        return got;
    }
    return exact_top(ix, q, k, accept, ctx, out);
}
