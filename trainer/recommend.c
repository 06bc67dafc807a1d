/* Recommendation index building and its Genre-Hit@k evaluation, for timbre-train. */
#include "recommend.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ann.h"
#include "catalog.h"
#include "clock.h"
#include "log.h"
#include "progress.h"

void tb_recommend_result_clear(tb_recommend_result *r) {
    tb_embedder_free(r->embedder);
    tb_index_free(r->index);
    for (size_t j = 0; j < r->n_features; j++)
        free(r->features[j]);
    free(r->features);
    memset(r, 0, sizeof *r);
}

static int sets_intersect(const uint64_t *a, const uint64_t *b, size_t words) {
    for (size_t w = 0; w < words; w++)
        if (a[w] & b[w])
            return 1;
    return 0;
}

double tb_recommend_genre_hit(const tb_hit *hits, size_t n_queries, size_t k_hits, size_t k, const uint64_t *query_genres,
                              const uint64_t *pool_genres, size_t words_per_set, const size_t *query_pool_row) {
    double total = 0.0;
    for (size_t q = 0; q < n_queries; q++) {
        size_t judged = 0, shared = 0;
        for (size_t h = 0; h < k_hits && judged < k; h++) {
            size_t row = hits[q * k_hits + h].row;
            if (row == UINT32_MAX) /* a filtered search found no more */
                break;
            if (query_pool_row && query_pool_row[q] == row)
                continue; /* the query's own track */
            judged++;
            shared += (size_t)sets_intersect(query_genres + q * words_per_set, pool_genres + row * words_per_set,
                                             words_per_set);
        }
        total += k ? (double)shared / (double)k : 0.0;
    }
    return n_queries ? total / (double)n_queries : 0.0;
}

/* Where a distinct track stands: its first row on each side of the split (SIZE_MAX: none). */
typedef struct track_side {
    size_t first;              /* index into the sorted track rows */
    size_t train_set, train_row, test_set, test_row;
} track_side;

/* The learned embeddings ("mlp", "genre"): a genre model trained on every training row (a track
 * listed under several genres teaches each of them), grouped by track for its early-stopping
 * hold-out: the mlp's last hidden layer, or a classifier's probabilities beside the standardized
 * features. Takes ownership of the pipeline. */
static tb_status learn_embedding(const tb_split_rows *split, const tb_track_rows *tr, const uint8_t *is_test,
                                 const double *X, size_t d, tb_pipeline *pipeline, const tb_recommend_options *opt,
                                 const tb_embedder_ops *kind, tb_embedder **ret) {
    const tb_dataset *ds = split->train_ds;
    size_t n = 0, track = 0, *rows = tb_malloc_n(tr->n, sizeof *rows), *group = tb_malloc_n(tr->n, sizeof *group);
    int32_t *y = tb_malloc_n(tr->n, sizeof *y);
    double *Xt = NULL;
    tb_model *model = NULL;
    tb_status st = TB_OK;
    if (!rows || !group || !y) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    if (!ds->y) {
        st = tb_error(TB_INVALID, "--embedding %s learns from genres: the training table has none", kind->kind);
        goto out;
    }
    for (size_t i = 0, j; i < tr->n; i = j, track++) {
        j = tb_track_rows_next(tr, i);
        for (size_t r = i; r < j; r++)
            if (tr->rows[r].set == 0 && !(is_test && is_test[tr->rows[r].row])) {
                rows[n] = tr->rows[r].row;
                group[n] = track;
                y[n++] = ds->y[tr->rows[r].row];
            }
    }
    if ((st = tb_pipeline_transform_rows(pipeline, X, rows, n, &Xt)) != TB_OK)
        goto out;
    tb_train_params params;
    if (opt->params)
        params = *opt->params;
    else
        tb_train_params_default(&params);
    params.threads = opt->threads;
    params.aux_weight = 0.0;
    const char *family = kind->family ? kind->family : opt->classifier ? opt->classifier : "gbdt";
    if (kind->defaults)
        kind->defaults(&params);
    tb_train_data data = {.X = Xt, .n = n, .d = d, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = ds->n_classes,
                          .group = group, .names = pipeline->names};
    const tb_model_ops *ops = tb_model_ops_find(family);
    tb_progress *bar = NULL;
    if (ops && ops->steps) {
        tb_model_resolve_params(ops, data.task, data.n_classes, &params);
        char label[48];
        snprintf(label, sizeof label, "recommend: %s", ops->steps);
        bar = tb_progress_new(label, tb_model_steps_bound(ops, &params));
        params.progress = tb_progress_callback;
        params.progress_ctx = bar;
    }
    st = tb_model_train(family, &data, &params, &model);
    tb_progress_free(bar);
    if (st != TB_OK)
        goto out;
    st = kind->family ? tb_embedder_mlp_new(pipeline, model, ret)
                      : tb_embedder_genre_new(pipeline, model, opt->genre_weight > 0 ? opt->genre_weight : 0.5, ret);
    pipeline = NULL;
out:
    tb_pipeline_free(pipeline);
    free(rows);
    free(group);
    free(y);
    free(Xt);
    return st;
}

/* What the phases of tb_recommend_build share: the inputs of both tables, each distinct track's
 * training and test row, and the counts of each side. */
typedef struct build {
    const tb_split_rows *split;
    const tb_recommend_options *opt;
    tb_recommend_result *ret;
    const tb_dataset *sets[2];
    size_t n_sets, d;
    double *X[2];       /* the input columns of each table */
    tb_track_rows tr;   /* every table's rows, sorted by track */
    track_side *side;
    uint8_t *is_test;   /* one table split in two: 1 for its test rows */
    size_t n_tracks, n_pool, n_query;
} build;

static void free_ids(char **ids, size_t n) {
    if (ids)
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
    free(ids);
}

static tb_status choose_features(build *b) {
    const tb_recommend_options *opt = b->opt;
    tb_recommend_result *ret = b->ret;
    if (!opt->features)
        return tb_trainer_feature_names(b->split->train_ds, TB_TARGET_POPULARITY, 0, &ret->features, &ret->n_features);
    if (!(ret->features = tb_calloc_n(opt->n_features, sizeof *ret->features)))
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t j = 0; j < opt->n_features; j++, ret->n_features++)
        if (!(ret->features[j] = strdup(opt->features[j])))
            return tb_error(TB_NOMEM, "out of memory");
    return TB_OK;
}

/* A row of the test side: the test table's, or one the split put on the test side. */
static int is_test_row(const build *b, const tb_track_row *row) {
    return row->set == 1 || (b->is_test && b->is_test[row->row]);
}

/* Each distinct track's first training row and first test row (either may be absent). */
static tb_status assign_sides(build *b) {
    const tb_split_rows *split = b->split;
    tb_status st;
    if (!split->test_ds) {
        if (!(b->is_test = calloc(split->train_ds->n_rows, 1)))
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < split->n_test; i++)
            b->is_test[split->test[i]] = 1;
    }
    if ((st = tb_trainer_track_rows(b->sets, b->n_sets, &b->tr)) != TB_OK)
        return st;
    if (!(b->side = tb_malloc_n(b->tr.n ? b->tr.n : 1, sizeof *b->side)))
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0, j; i < b->tr.n; i = j) {
        j = tb_track_rows_next(&b->tr, i);
        track_side *t = &b->side[b->n_tracks++];
        *t = (track_side){i, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
        for (size_t r = i; r < j; r++) {
            const tb_track_row *row = &b->tr.rows[r];
            int test = is_test_row(b, row);
            if (test && t->test_row == SIZE_MAX) {
                t->test_set = row->set;
                t->test_row = row->row;
            } else if (!test && t->train_row == SIZE_MAX) {
                t->train_set = row->set;
                t->train_row = row->row;
            }
        }
        b->n_pool += t->train_row != SIZE_MAX;
        b->n_query += t->test_row != SIZE_MAX;
    }
    if (b->n_pool == 0)
        return tb_error(TB_INVALID, "no training tracks to build a recommendation index from");
    return TB_OK;
}

/* The embedding is fitted on the training tracks, one row each. */
static tb_status fit_embedder(build *b) {
    size_t *fit_rows = tb_malloc_n(b->n_pool, sizeof *fit_rows);
    tb_pipeline *pipeline = NULL;
    if (!fit_rows)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t t = 0, p = 0; t < b->n_tracks; t++)
        if (b->side[t].train_row != SIZE_MAX)
            fit_rows[p++] = b->side[t].train_row;
    tb_status st = tb_pipeline_fit(b->X[0], b->d, b->ret->features, fit_rows, b->n_pool, &pipeline);
    free(fit_rows);
    if (st != TB_OK)
        return st;
    /* The default: genres beside the features when the table has genres (Genre-Hit@10 0.39 against
     * 0.17 on spotify_tracks_114k, docs/recommend.md), else the standardized features. */
    const char *kind = b->opt->embedding ? b->opt->embedding : b->split->train_ds->y ? "genre" : "standardized";
    const tb_embedder_ops *embedder = tb_embedder_ops_find(kind);
    if (embedder && embedder->learned) /* takes the pipeline */
        return learn_embedding(b->split, &b->tr, b->is_test, b->X[0], b->d, pipeline, b->opt, embedder,
                               &b->ret->embedder);
    st = tb_embedder_standardized_new(pipeline, b->opt->weights, &b->ret->embedder);
    if (st != TB_OK)
        tb_pipeline_free(pipeline);
    return st;
}

#define MAX_TRACK_GENRES 64

/* The genres a track is listed under on one side of the split (side 0: training rows, 1: test
 * rows, -1: every row), at most MAX_TRACK_GENRES, as class indices. */
static size_t track_genres(const build *b, size_t first, int side, size_t *out) {
    size_t n = 0, end = tb_track_rows_next(&b->tr, first);
    for (size_t r = first; r < end && n < MAX_TRACK_GENRES; r++) {
        const tb_track_row *row = &b->tr.rows[r];
        int test = is_test_row(b, row);
        if (!row->ds->y || (side >= 0 && test != side))
            continue;
        size_t c = (size_t)row->ds->y[row->row], i = 0;
        while (i < n && out[i] != c)
            i++;
        if (i == n)
            out[n++] = c;
    }
    return n;
}

/* A track's artists cell (NULL when the table has no artists column). */
static const char *artists_of(const tb_dataset *ds, size_t row) {
    return ds->col_artists >= 0 ? tb_dataset_text(ds, ds->col_artists, row) : NULL;
}

/* What the artist-excluded search needs: each query's artists and own pool row, each pool row's. */
typedef struct artist_filter {
    const char **query_artists, **pool_artists;
    const size_t *query_pool_row;
} artist_filter;

static int other_artist(void *ctx, size_t q, size_t row) {
    const artist_filter *f = ctx;
    return row != f->query_pool_row[q] && !tb_artists_overlap(f->query_artists[q], f->pool_artists[row]);
}

void tb_recommend_list_stats(const tb_hit *hits, size_t n_queries, size_t k_hits, size_t k, const size_t *query_pool_row,
                             const char **pool_artists, size_t n_pool, double *ret_coverage, double *ret_artist_share) {
    uint8_t *seen = calloc(n_pool, 1);
    double share = 0.0;
    size_t covered = 0;
    for (size_t q = 0; seen && q < n_queries; q++) {
        size_t list[64], n = 0;
        for (size_t h = 0; h < k_hits && n < k && n < 64; h++) {
            size_t row = hits[q * k_hits + h].row;
            if (row == UINT32_MAX)
                break;
            if (!query_pool_row || row != query_pool_row[q])
                list[n++] = row;
        }
        size_t distinct = 0;
        for (size_t i = 0; i < n; i++) {
            covered += !seen[list[i]];
            seen[list[i]] = 1;
            int repeat = 0;
            for (size_t j = 0; j < i && !repeat && pool_artists; j++)
                repeat = pool_artists[list[j]] && pool_artists[list[i]] &&
                         strcmp(pool_artists[list[j]], pool_artists[list[i]]) == 0;
            distinct += !repeat;
        }
        share += n ? (double)distinct / (double)n : 0.0;
    }
    *ret_coverage = seen && n_pool ? (double)covered / (double)n_pool : NAN;
    *ret_artist_share = seen && n_queries && pool_artists ? share / (double)n_queries : NAN;
    free(seen);
}

/* Genre-Hit@k: test tracks query an index of the training tracks; a hit shares a genre. Beside
 * it, the same with the query's artists excluded, coverage and artist variety. */
static tb_status evaluate(build *b) {
    const tb_dataset *labelled = b->split->train_ds;
    tb_recommend_result *ret = b->ret;
    const size_t n_pool = b->n_pool, n_query = b->n_query, d = b->d, dim = ret->embedder->dim, k = ret->eval_k;
    if (!labelled->y || n_query == 0)
        return TB_OK;
    size_t words = (labelled->n_classes + 63) / 64;
    float *pool_vec = tb_malloc_n(n_pool * dim, sizeof *pool_vec);
    float *query_vec = tb_malloc_n(n_query * dim, sizeof *query_vec);
    char **pool_ids = tb_calloc_n(n_pool, sizeof *pool_ids);
    uint64_t *pool_genres = tb_calloc_n(n_pool * words, sizeof *pool_genres);
    uint64_t *query_genres = tb_calloc_n(n_query * words, sizeof *query_genres);
    size_t *query_pool_row = tb_malloc_n(n_query, sizeof *query_pool_row);
    tb_hit *hits = tb_malloc_n(n_query * (k + 1), sizeof *hits);
    int with_artists = b->sets[0]->col_artists >= 0 && (!b->sets[1] || b->sets[1]->col_artists >= 0);
    const char **pool_artists = with_artists ? tb_calloc_n(n_pool, sizeof *pool_artists) : NULL;
    const char **query_artists = with_artists ? tb_calloc_n(n_query, sizeof *query_artists) : NULL;
    tb_index *pool = NULL;
    tb_status st = TB_OK;
    if (!pool_vec || !query_vec || !pool_ids || !pool_genres || !query_genres || !query_pool_row || !hits ||
        (with_artists && (!pool_artists || !query_artists))) {
        st = tb_error(TB_NOMEM, "out of memory for the evaluation");
        goto out;
    }
    size_t p = 0, q = 0;
    for (size_t t = 0; t < b->n_tracks; t++) {
        const track_side *s = &b->side[t];
        size_t pool_row = SIZE_MAX;
        if (s->train_row != SIZE_MAX) { /* a catalog track: its known genres, training side only */
            size_t classes[MAX_TRACK_GENRES], n_classes = track_genres(b, s->first, 0, classes);
            tb_embedder_embed_known(ret->embedder, b->X[s->train_set] + s->train_row * d, classes, n_classes,
                                    pool_vec + p * dim);
            if (!(pool_ids[p] = strdup(b->tr.rows[s->first].id))) {
                st = tb_error(TB_NOMEM, "out of memory");
                goto out;
            }
            if (pool_artists)
                pool_artists[p] = artists_of(b->sets[s->train_set], s->train_row);
            pool_row = p++;
        }
        if (s->test_row != SIZE_MAX) {
            tb_embedder_embed(ret->embedder, b->X[s->test_set] + s->test_row * d, query_vec + q * dim);
            if (query_artists)
                query_artists[q] = artists_of(b->sets[s->test_set], s->test_row);
            query_pool_row[q++] = pool_row;
        }
        /* Every genre the track is listed under, on whichever side. */
        size_t end = tb_track_rows_next(&b->tr, s->first);
        for (size_t r = s->first; r < end; r++) {
            const tb_track_row *row = &b->tr.rows[r];
            int test = is_test_row(b, row);
            uint32_t c = (uint32_t)row->ds->y[row->row];
            if (test)
                query_genres[(q - 1) * words + c / 64] |= 1ULL << (c % 64);
            else
                pool_genres[(p - 1) * words + c / 64] |= 1ULL << (c % 64);
        }
    }
    st = tb_index_new(pool_vec, pool_ids, n_pool, dim, &pool);
    pool_vec = NULL;
    pool_ids = NULL;
    if (st == TB_OK)
        st = tb_index_set_label_dims(pool, tb_embedder_label_dims(ret->embedder));
    if (st != TB_OK)
        goto out;
    double t0 = tb_now_seconds();
    size_t kh = k + 1 < n_pool ? k + 1 : n_pool;
    if ((st = tb_index_search_batch(pool, query_vec, n_query, kh, b->opt->threads, hits)) != TB_OK)
        goto out;
    ret->eval_seconds = tb_now_seconds() - t0;
    ret->genre_hit = tb_recommend_genre_hit(hits, n_query, kh, k, query_genres, pool_genres, words, query_pool_row);
    ret->n_queries = n_query;
    ret->n_pool = n_pool;
    tb_recommend_list_stats(hits, n_query, kh, k, query_pool_row, pool_artists, n_pool, &ret->coverage,
                            &ret->artist_share);
    ret->genre_hit_other_artists = NAN;
    if (with_artists) {
        artist_filter f = {query_artists, pool_artists, query_pool_row};
        size_t kf = k < n_pool ? k : n_pool;
        if ((st = tb_index_search_batch_filtered(pool, query_vec, n_query, kf, b->opt->threads, other_artist, &f,
                                                 hits)) != TB_OK)
            goto out;
        ret->genre_hit_other_artists = tb_recommend_genre_hit(hits, n_query, kf, k, query_genres, pool_genres, words,
                                                              NULL);
    }
out:
    free(pool_artists);
    free(query_artists);
    free_ids(pool_ids, n_pool);
    free(pool_vec);
    free(query_vec);
    free(pool_genres);
    free(query_genres);
    free(query_pool_row);
    free(hits);
    tb_index_free(pool);
    return st;
}

/* The published index: every distinct track, embedded from its first row. */
static tb_status index_all(build *b) {
    tb_recommend_result *ret = b->ret;
    const size_t n = b->n_tracks, dim = ret->embedder->dim;
    double t0 = tb_now_seconds();
    float *vec = tb_malloc_n(n * dim, sizeof *vec);
    char **ids = tb_calloc_n(n, sizeof *ids);
    tb_status st = TB_OK;
    if (!vec || !ids)
        st = tb_error(TB_NOMEM, "out of memory for the index");
    for (size_t t = 0; t < n && st == TB_OK; t++) {
        const tb_track_row *first = &b->tr.rows[b->side[t].first];
        size_t classes[MAX_TRACK_GENRES], n_classes = track_genres(b, b->side[t].first, -1, classes);
        tb_embedder_embed_known(ret->embedder, b->X[first->set] + first->row * b->d, classes, n_classes, vec + t * dim);
        if (!(ids[t] = strdup(first->id)))
            st = tb_error(TB_NOMEM, "out of memory");
    }
    if (st != TB_OK) {
        free(vec);
        free_ids(ids, n);
        return st;
    }
    st = tb_index_new(vec, ids, n, dim, &ret->index); /* takes both */
    if (st == TB_OK)
        st = tb_index_set_label_dims(ret->index, tb_embedder_label_dims(ret->embedder));
    ret->build_seconds = tb_now_seconds() - t0;
    return st;
}

#define ANN_PROBES 1000

/* The approximate index over the published vectors, kept in the embedder's blob, and its recall
 * against the exact index with evenly spaced published rows as the queries. */
static tb_status build_ann(tb_recommend_result *ret, int threads) {
    const tb_index *ix = ret->index;
    tb_ann_params p = TB_ANN_PARAMS_DEFAULT;
    tb_ann *a = NULL;
    double t0 = tb_now_seconds();
    tb_status st = tb_ann_build(ix->vectors, ix->n, ix->dim, &p, threads, &a);
    if (st != TB_OK)
        return st;
    ret->ann_seconds = tb_now_seconds() - t0;
    ret->ann_bytes = tb_ann_bytes(a);
    size_t k = ret->eval_k < ix->n ? ret->eval_k : ix->n, probes = ix->n < ANN_PROBES ? ix->n : ANN_PROBES;
    float *scores = tb_malloc_n(ix->n, sizeof *scores);
    tb_hit *exact = tb_malloc_n(k, sizeof *exact), *approx = tb_malloc_n(k, sizeof *approx);
    size_t found = 0;
    if (!scores || !exact || !approx)
        st = tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; st == TB_OK && i < probes; i++) {
        const float *q = ix->vectors + (i * (ix->n / probes)) * ix->dim;
        size_t ne = tb_index_search(ix, q, k, NULL, NULL, scores, exact), na = tb_ann_search(a, q, k, approx);
        for (size_t x = 0; x < na; x++)
            for (size_t y = 0; y < ne; y++)
                found += approx[x].row == exact[y].row;
    }
    ret->ann_probes = probes;
    ret->ann_recall = probes && k ? (double)found / (double)(probes * k) : 0.0;
    if (st == TB_OK)
        st = tb_ann_save(a, &ret->embedder->ann_blob, &ret->embedder->ann_len);
    free(scores);
    free(exact);
    free(approx);
    tb_ann_free(a);
    return st;
}

tb_status tb_recommend_build(const tb_split_rows *split, const tb_recommend_options *opt, tb_recommend_result *ret) {
    build b = {.split = split, .opt = opt, .ret = ret, .sets = {split->train_ds, split->test_ds},
               .n_sets = split->test_ds ? 2 : 1};
    memset(ret, 0, sizeof *ret);
    ret->eval_k = opt->eval_k ? opt->eval_k : 10;
    tb_status st = choose_features(&b);
    b.d = ret->n_features;
    for (size_t s = 0; s < b.n_sets && st == TB_OK; s++)
        st = tb_dataset_matrix(b.sets[s], ret->features, b.d, &b.X[s]);
    if (st == TB_OK && (st = assign_sides(&b)) == TB_OK && (st = fit_embedder(&b)) == TB_OK &&
        (st = evaluate(&b)) == TB_OK && (st = index_all(&b)) == TB_OK &&
        (opt->index_kind == TB_INDEX_HNSW || (opt->index_kind == TB_INDEX_AUTO && ret->index->n >= TB_HNSW_AUTO_ROWS)))
        st = build_ann(ret, opt->threads);
    free(b.side);
    free(b.is_test);
    free(b.X[0]);
    free(b.X[1]);
    tb_track_rows_clear(&b.tr);
    if (st != TB_OK)
        tb_recommend_result_clear(ret);
    return st;
}
