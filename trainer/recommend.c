/* Recommendation index building and its Genre-Hit@k evaluation, for timbre-train. */
#include "recommend.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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

/* The "mlp" embedding: a genre network trained on every training row (a track listed under
 * several genres teaches each of them), grouped by track for its early-stopping hold-out. Takes
 * ownership of the pipeline. */
static tb_status learn_embedding(const tb_split_rows *split, const tb_track_rows *tr, const uint8_t *is_test,
                                 const double *X, size_t d, tb_pipeline *pipeline, const tb_recommend_options *opt,
                                 tb_embedder **ret) {
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
        st = tb_error(TB_INVALID, "--embedding mlp learns from genres: the training table has none");
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
    if (opt->mlp_params)
        params = *opt->mlp_params;
    else
        tb_train_params_default(&params);
    params.threads = opt->threads;
    params.aux_weight = 0.0;
    if (params.hidden.n == 0) { /* measured on spotify_tracks_114k: a wide trunk and a narrow last
                                   layer embed best (docs/performance.md, "Learned embeddings") */
        static const size_t widths[] = {512, 256, 64};
        params.hidden.n = 3;
        memcpy(params.hidden.v, widths, sizeof widths);
    }
    if (params.numeric_bins < 0)
        params.numeric_bins = 32;
    tb_train_data data = {.X = Xt, .n = n, .d = d, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = ds->n_classes,
                          .group = group, .names = pipeline->names};
    tb_model_resolve_params(tb_model_ops_find("mlp"), data.task, data.n_classes, &params);
    tb_progress *bar = tb_progress_new("recommend: epochs", params.epochs);
    params.progress = tb_progress_callback;
    params.progress_ctx = bar;
    st = tb_model_train("mlp", &data, &params, &model);
    tb_progress_free(bar);
    if (st != TB_OK)
        goto out;
    st = tb_embedder_mlp_new(pipeline, model, ret);
    pipeline = NULL;
out:
    tb_pipeline_free(pipeline);
    free(rows);
    free(group);
    free(y);
    free(Xt);
    return st;
}

tb_status tb_recommend_build(const tb_split_rows *split, const tb_recommend_options *opt, tb_recommend_result *ret) {
    const tb_dataset *sets[2] = {split->train_ds, split->test_ds};
    size_t n_sets = split->test_ds ? 2 : 1;
    tb_status st = TB_OK;
    double *X[2] = {NULL, NULL};
    tb_track_rows tr = {0};
    track_side *side = NULL;
    uint8_t *is_test = NULL;
    size_t *fit_rows = NULL, *query_pool_row = NULL;
    uint64_t *pool_genres = NULL, *query_genres = NULL;
    float *pool_vec = NULL, *query_vec = NULL, *all_vec = NULL;
    char **pool_ids = NULL, **all_ids = NULL;
    tb_hit *hits = NULL;
    tb_index *pool = NULL;
    tb_pipeline *pipeline = NULL;
    size_t n_tracks = 0, n_pool = 0, n_query = 0, k = opt->eval_k ? opt->eval_k : 10;
    memset(ret, 0, sizeof *ret);
    ret->eval_k = k;

    if (opt->features) {
        if (!(ret->features = tb_calloc_n(opt->n_features, sizeof *ret->features)))
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t j = 0; j < opt->n_features; j++, ret->n_features++)
            if (!(ret->features[j] = strdup(opt->features[j]))) {
                st = tb_error(TB_NOMEM, "out of memory");
                goto out;
            }
    } else if ((st = tb_trainer_feature_names(split->train_ds, TB_TARGET_POPULARITY, 0, &ret->features,
                                              &ret->n_features)) != TB_OK) {
        goto out;
    }
    size_t d = ret->n_features;
    for (size_t s = 0; s < n_sets; s++)
        if ((st = tb_dataset_matrix(sets[s], ret->features, d, &X[s])) != TB_OK)
            goto out;
    /* Which training-table rows are test rows (one table, split in two). */
    if (!split->test_ds) {
        if (!(is_test = calloc(split->train_ds->n_rows, 1))) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < split->n_test; i++)
            is_test[split->test[i]] = 1;
    }
    if ((st = tb_trainer_track_rows(sets, n_sets, &tr)) != TB_OK)
        goto out;
    if (!(side = tb_malloc_n(tr.n ? tr.n : 1, sizeof *side))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0, j; i < tr.n; i = j) {
        j = tb_track_rows_next(&tr, i);
        track_side *t = &side[n_tracks++];
        *t = (track_side){i, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
        for (size_t r = i; r < j; r++) {
            const tb_track_row *row = &tr.rows[r];
            int test = row->set == 1 || (is_test && is_test[row->row]);
            if (test && t->test_row == SIZE_MAX) {
                t->test_set = row->set;
                t->test_row = row->row;
            } else if (!test && t->train_row == SIZE_MAX) {
                t->train_set = row->set;
                t->train_row = row->row;
            }
        }
        n_pool += t->train_row != SIZE_MAX;
        n_query += t->test_row != SIZE_MAX;
    }
    if (n_pool == 0) {
        st = tb_error(TB_INVALID, "no training tracks to build a recommendation index from");
        goto out;
    }
    /* The embedding is fitted on the training tracks, one row each. */
    if (!(fit_rows = tb_malloc_n(n_pool, sizeof *fit_rows))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t t = 0, p = 0; t < n_tracks; t++)
        if (side[t].train_row != SIZE_MAX)
            fit_rows[p++] = side[t].train_row;
    if ((st = tb_pipeline_fit(X[0], d, ret->features, fit_rows, n_pool, &pipeline)) != TB_OK)
        goto out;
    const tb_embedder_ops *embedder = tb_embedder_ops_find(opt->embedding ? opt->embedding : "standardized");
    if (embedder && embedder->learned) {
        st = learn_embedding(split, &tr, is_test, X[0], d, pipeline, opt, &ret->embedder);
        pipeline = NULL;
    } else {
        st = tb_embedder_standardized_new(pipeline, opt->weights, &ret->embedder);
        if (st == TB_OK)
            pipeline = NULL;
    }
    if (st != TB_OK)
        goto out;
    size_t dim = ret->embedder->dim;

    /* Evaluation: test tracks query an index of the training tracks. */
    const tb_dataset *labelled = split->train_ds;
    if (labelled->y && n_query > 0) {
        size_t words = (labelled->n_classes + 63) / 64;
        pool_vec = tb_malloc_n(n_pool * dim, sizeof *pool_vec);
        query_vec = tb_malloc_n(n_query * dim, sizeof *query_vec);
        pool_ids = tb_calloc_n(n_pool, sizeof *pool_ids);
        pool_genres = tb_calloc_n(n_pool * words, sizeof *pool_genres);
        query_genres = tb_calloc_n(n_query * words, sizeof *query_genres);
        query_pool_row = tb_malloc_n(n_query, sizeof *query_pool_row);
        hits = tb_malloc_n(n_query * (k + 1), sizeof *hits);
        if (!pool_vec || !query_vec || !pool_ids || !pool_genres || !query_genres || !query_pool_row || !hits) {
            st = tb_error(TB_NOMEM, "out of memory for the evaluation");
            goto out;
        }
        size_t p = 0, q = 0;
        for (size_t t = 0; t < n_tracks; t++) {
            const track_side *s = &side[t];
            size_t pool_row = SIZE_MAX;
            if (s->train_row != SIZE_MAX) {
                tb_embedder_embed(ret->embedder, X[s->train_set] + s->train_row * d, pool_vec + p * dim);
                if (!(pool_ids[p] = strdup(tr.rows[s->first].id))) {
                    st = tb_error(TB_NOMEM, "out of memory");
                    goto out;
                }
                pool_row = p++;
            }
            if (s->test_row != SIZE_MAX) {
                tb_embedder_embed(ret->embedder, X[s->test_set] + s->test_row * d, query_vec + q * dim);
                query_pool_row[q++] = pool_row;
            }
            /* Every genre the track is listed under, on whichever side. */
            size_t end = tb_track_rows_next(&tr, s->first);
            for (size_t r = s->first; r < end; r++) {
                const tb_track_row *row = &tr.rows[r];
                int test = row->set == 1 || (is_test && is_test[row->row]);
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
        if (st != TB_OK)
            goto out;
        double t0 = tb_now_seconds();
        size_t kh = k + 1 < n_pool ? k + 1 : n_pool;
        if ((st = tb_index_search_batch(pool, query_vec, n_query, kh, opt->threads, hits)) != TB_OK)
            goto out;
        ret->eval_seconds = tb_now_seconds() - t0;
        ret->genre_hit = tb_recommend_genre_hit(hits, n_query, kh, k, query_genres, pool_genres, words, query_pool_row);
        ret->n_queries = n_query;
        ret->n_pool = n_pool;
    }

    /* The published index: every distinct track, embedded from its first row. */
    double t0 = tb_now_seconds();
    all_vec = tb_malloc_n(n_tracks * dim, sizeof *all_vec);
    all_ids = tb_calloc_n(n_tracks, sizeof *all_ids);
    if (!all_vec || !all_ids) {
        st = tb_error(TB_NOMEM, "out of memory for the index");
        goto out;
    }
    for (size_t t = 0; t < n_tracks; t++) {
        const tb_track_row *first = &tr.rows[side[t].first];
        tb_embedder_embed(ret->embedder, X[first->set] + first->row * d, all_vec + t * dim);
        if (!(all_ids[t] = strdup(first->id))) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
    }
    st = tb_index_new(all_vec, all_ids, n_tracks, dim, &ret->index);
    all_vec = NULL;
    all_ids = NULL;
    ret->build_seconds = tb_now_seconds() - t0;
out:
    if (pool_ids)
        for (size_t i = 0; i < n_pool; i++)
            free(pool_ids[i]);
    if (all_ids)
        for (size_t i = 0; i < n_tracks; i++)
            free(all_ids[i]);
    free(pool_ids);
    free(all_ids);
    free(pool_vec);
    free(query_vec);
    free(all_vec);
    free(pool_genres);
    free(query_genres);
    free(query_pool_row);
    free(hits);
    free(fit_rows);
    free(side);
    free(is_test);
    free(X[0]);
    free(X[1]);
    tb_index_free(pool);
    tb_pipeline_free(pipeline);
    tb_track_rows_clear(&tr);
    if (st != TB_OK)
        tb_recommend_result_clear(ret);
    return st;
}
