/* An approximate nearest-neighbour index over the recommendation index's unit vectors (inner
 * product = cosine): hnswlib's HNSW graph (Debian libhnswlib-dev) behind a C interface; ann.cpp is
 * the only C++ of the project. Distances are OpenBLAS's sdot (its run-time AVX kernels). Built
 * once, then read-only: searches may run on many threads at once. Saved as a blob (magic
 * "TMBA", parameters, the SHA-256 of hnswlib's bytes, those bytes); loading checks the digest,
 * then every graph link, before a search may follow one. */
#ifndef TB_ANN_H
#define TB_ANN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* our C headers, for ann.cpp */
#endif

#include "index.h"
#include "status.h"

typedef struct tb_ann tb_ann;

typedef struct tb_ann_params {
    size_t m;               /* links per node (hnswlib's M; 16) */
    size_t ef_construction; /* breadth while building (200) */
    size_t ef_search;       /* breadth of a search, at least k (128) */
    uint64_t seed;
} tb_ann_params;

/* ef 128: recall@10 0.973 at 1 M jittered tracks, where 64 gives 0.948 (recommend_scale.sh) */
#define TB_ANN_PARAMS_DEFAULT {16, 200, 128, 42}

/* Rows 0..n-1 of vectors (n × dim, unit length), inserted one at a time (`threads` is kept for a
 * library whose concurrent insert is safe; hnswlib 0.6.2's is not). */
tb_status tb_ann_build(const float *vectors, size_t n, size_t dim, const tb_ann_params *p, int threads, tb_ann **ret);
/* The best k rows by inner product (at most k; fewer only when the graph has fewer rows), best
 * first; score = inner product. Thread-safe. */
size_t tb_ann_search(const tb_ann *a, const float *q, size_t k, tb_hit *out);
/* Bytes the graph and its copy of the vectors hold in memory. */
size_t tb_ann_bytes(const tb_ann *a);
const tb_ann_params *tb_ann_get_params(const tb_ann *a);
/* A search's breadth from now on (at least k is used anyway). Not while searches run: for
 * benchmarks that sweep it over one graph. */
void tb_ann_set_ef(tb_ann *a, size_t ef_search);

tb_status tb_ann_save(const tb_ann *a, void **ret_blob, size_t *ret_len);
/* Refuses a wrong magic or version, a digest that does not match, parameters or counts other
 * than n × dim, and any link to a row that does not exist. */
tb_status tb_ann_load(const void *blob, size_t len, size_t n, size_t dim, tb_ann **ret);
tb_ann *tb_ann_free(tb_ann *a);

#ifdef __cplusplus
}
#endif

#endif
