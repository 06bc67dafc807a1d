/* The trainer's recommendation step: fit the embedding on the training tracks, judge it by
 * Genre-Hit@10 (test tracks querying the training catalog), and build the index to publish over
 * every distinct track given. */
#ifndef TB_RECOMMEND_H
#define TB_RECOMMEND_H

#include <stddef.h>

#include "embedding.h"
#include "index.h"
#include "status.h"
#include "trainer.h"

/* auto: the HNSW graph from TB_HNSW_AUTO_ROWS published tracks on. Below, the exact scan costs
 * under 0.4 ms a query (0.73 ns a row with the genre embedding, tests/bench/recommend_scale.sh)
 * and the graph would add build time and memory for little. */
typedef enum tb_index_kind { TB_INDEX_AUTO, TB_INDEX_EXACT, TB_INDEX_HNSW } tb_index_kind;
#define TB_HNSW_AUTO_ROWS 500000

typedef struct tb_recommend_options {
    char *const *features;   /* embedding inputs; NULL = the dataset's features (never popularity) */
    size_t n_features;
    const double *weights;   /* one per feature; NULL = all 1 (standardized only) */
    const char *embedding;   /* "standardized", "mlp" (a genre network's last hidden layer) or "genre"
                                (a classifier's genre probabilities beside the features); NULL: genre
                                when the table has genres, else standardized */
    const tb_train_params *params; /* for the learned embeddings' models; NULL = defaults */
    const char *classifier;  /* "genre": the family (NULL = gbdt) */
    double genre_weight;     /* "genre": the genre block's share of the cosine (0 = 0.5) */
    size_t eval_k;           /* neighbours judged per query (10) */
    tb_index_kind index_kind; /* whether an approximate (HNSW) index is built over the published vectors */
    int threads;             /* 0 = all cores */
} tb_recommend_options;

/* Owns everything in it. */
typedef struct tb_recommend_result {
    tb_embedder *embedder;
    tb_index *index;           /* every distinct track of the datasets, ascending id */
    char **features;
    size_t n_features;
    double genre_hit;          /* Genre-Hit@eval_k: mean share of a query's neighbours sharing a genre */
    /* For the same queries (NaN without an artists column): Genre-Hit@k when the query's artists'
     * tracks may not answer; the share of the pool in some query's top k (catalog coverage); the
     * mean share of distinct artists in a top k. */
    double genre_hit_other_artists, coverage, artist_share;
    size_t eval_k, n_queries, n_pool;
    double build_seconds;      /* embedding and indexing every track */
    double eval_seconds;       /* the evaluation's batch search */
    /* With opt->ann: its build time and recall@eval_k against exact search, with up to
     * ANN_PROBES published rows as the queries. */
    double ann_seconds, ann_recall;
    size_t ann_probes, ann_bytes;
} tb_recommend_result;

void tb_recommend_result_clear(tb_recommend_result *r);

/* Genre-Hit@k of `hits` (n_queries × k_hits, best first, may hold the query's own track: such
 * hits are skipped and the next ones judged). query_genres / pool_genres: per track, a bitset of
 * words_per_set uint64 words. Exposed for tests. */
double tb_recommend_genre_hit(const tb_hit *hits, size_t n_queries, size_t k_hits, size_t k, const uint64_t *query_genres,
                              const uint64_t *pool_genres, size_t words_per_set, const size_t *query_pool_row);

/* Over the hits Genre-Hit judges (the query's own track skipped, the first k): the share of the
 * n_pool rows in some query's list (coverage), and the mean share of distinct artists cells in a
 * list (NaN without pool_artists). Exposed for tests. */
void tb_recommend_list_stats(const tb_hit *hits, size_t n_queries, size_t k_hits, size_t k, const size_t *query_pool_row,
                             const char **pool_artists, size_t n_pool, double *ret_coverage, double *ret_artist_share);

tb_status tb_recommend_build(const tb_split_rows *split, const tb_recommend_options *opt, tb_recommend_result *ret);

#endif
