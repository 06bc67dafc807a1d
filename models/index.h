/* The exact top-k embedding index behind recommendations: n unit vectors (rows ascending by
 * track id), searched by inner product (= cosine). One query is a matrix-vector product (OpenBLAS
 * sgemv) and a bounded heap; a batch is blocked matrix products (sgemm). Exact: recall is 1 by
 * construction. Ties in score go to the lower row, i.e. the smaller track id. The index keeps a
 * transposed copy of the vectors for the products (memory: twice the vectors). */
#ifndef TB_INDEX_H
#define TB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Immutable once built: share across threads. */
typedef struct tb_index {
    size_t n, dim;
    float *vectors; /* n × dim, row-major (as stored) */
    float *columns; /* the same transposed, dim × n: a query is then n-long axpy-like passes
                       (BLAS sgemv_n) instead of n dot products of dim values, 2-3× faster */
    char **ids;     /* n track ids, strictly ascending */
    /* tb_index_set_label_dims: the first n_labels values of a row are kept sparse (a catalog
     * track's known genres: one or two nonzeros), columns then hold only the rest. */
    size_t n_labels;
    uint32_t *label_start, *label_row; /* by label: rows label_row[label_start[g] .. [g + 1]) */
    float *label_value;
    uint32_t *row_start, *row_label;   /* the same by row, for the batch search */
    float *row_value;
} tb_index;

typedef struct tb_hit {
    float score;
    uint32_t row;
} tb_hit;

/* Row filter for a search: nonzero keeps the row. Called only for rows that would enter the
 * top k, so a costly test runs a few hundred times, not n. */
typedef int (*tb_index_accept)(void *ctx, size_t row);

/* Takes ownership of vectors and ids (also on failure). TB_INVALID when ids are not strictly
 * ascending or a value is not finite. */
tb_status tb_index_new(float *vectors, char **ids, size_t n, size_t dim, tb_index **ret);
tb_index *tb_index_free(tb_index *ix);

/* Keeps the first n_labels values of every row sparse: scores are the dense product of the other
 * values plus each label's query weight times the row's value (the same sums, in another order:
 * equal to float rounding). For embeddings whose leading block is a one-hot-like label vector,
 * where the dense scan would spend most of its time on zeros. Call before any search. */
tb_status tb_index_set_label_dims(tb_index *ix, size_t n_labels);
/* Bytes the index holds: vectors, their transposed copy, the sparse label block, the ids. */
size_t tb_index_bytes(const tb_index *ix);
/* Row of the track id, or -1. */
long tb_index_find(const tb_index *ix, const char *id);

/* OpenBLAS runs single-threaded from here on: every caller (a server request thread, an OpenMP
 * worker of a batch) is already one of several threads, and nested BLAS threads only contend. */
void tb_index_blas_single_thread(void);

/* Inner products of q (dim floats) with every row: scores gets n floats. */
void tb_index_scores(const tb_index *ix, const float *q, float *scores);
/* Offers `count` scores of rows first_row.. (ascending across calls) to a bounded heap of the k best
 * (heap: k slots, *n_heap how many are kept; not yet in order). For a caller that scores rows in
 * blocks of its own, as k-nearest neighbours does. */
void tb_index_offer(const float *scores, size_t count, size_t first_row, size_t k, tb_index_accept accept, void *ctx,
                    tb_hit *heap, size_t *n_heap);
/* The best k of n scores among accepted rows (accept NULL: all), best first; returns how many
 * (< k when fewer rows pass). out needs k slots. */
size_t tb_index_top(const float *scores, size_t n, size_t k, tb_index_accept accept, void *ctx, tb_hit *out);
/* tb_index_scores then tb_index_top; scores is n floats of caller scratch. */
size_t tb_index_search(const tb_index *ix, const float *q, size_t k, tb_index_accept accept, void *ctx,
                       float *scores, tb_hit *out);
/* m queries (m × dim, row-major) at once, no filter: out gets m × min(k, n) hits, each query's
 * best first. Parallel over query blocks on `threads` threads (0 = all cores). */
tb_status tb_index_search_batch(const tb_index *ix, const float *queries, size_t m, size_t k, int threads,
                                tb_hit *out);
/* Whether row may answer query q (a batch's per-query filter). */
typedef int (*tb_index_accept_query)(void *ctx, size_t q, size_t row);
/* The same with a filter: each query keeps its best k accepted rows; slots past the last one
 * found hold row UINT32_MAX and score -INFINITY. out: m × min(k, n) hits. */
tb_status tb_index_search_batch_filtered(const tb_index *ix, const float *queries, size_t m, size_t k, int threads,
                                         tb_index_accept_query accept, void *ctx, tb_hit *out);

#endif
