/* Multi-label genre training for timbre-train --multilabel (see trainer.h). */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "pipeline.h"
#include "trainer.h"

/* One side of the split as distinct tracks: the first row of each (into rows) and its genres
 * (labels, n × k). side[r] marks the rows of this side in the track-sorted order. */
typedef struct track_set {
    size_t *rows;     /* row of the side's dataset */
    uint8_t *labels;
    size_t n;
} track_set;

static void track_set_clear(track_set *s) {
    free(s->rows);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

/* Tracks of `set` (0: training table, 1: test table) whose rows are marked in `in_side`. */
static tb_status collect(const tb_track_rows *tr, size_t set, const uint8_t *in_side, size_t k, track_set *out) {
    memset(out, 0, sizeof *out);
    out->rows = tb_malloc_n(tr->n + 1, sizeof *out->rows);
    out->labels = tb_calloc_n((tr->n + 1) * k, sizeof *out->labels);
    if (!out->rows || !out->labels) {
        track_set_clear(out);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t i = 0, j; i < tr->n; i = j) {
        j = tb_track_rows_next(tr, i);
        int started = 0;
        for (size_t r = i; r < j; r++) {
            const tb_track_row *row = &tr->rows[r];
            if (row->set != set || !in_side[row->row])
                continue;
            if (!started) {
                out->rows[out->n++] = row->row;
                started = 1;
            }
            out->labels[(out->n - 1) * k + (size_t)row->ds->y[row->row]] = 1;
        }
    }
    return TB_OK;
}

/* The default: the first family that learns label sets. */
static const char *multilabel_kind(void) {
    for (size_t i = 0; tb_model_ops_at(i); i++)
        if (tb_model_ops_at(i)->multilabel)
            return tb_model_ops_at(i)->kind;
    return NULL;
}

tb_status tb_trainer_run_multilabel(const tb_split_rows *split, const tb_trainer_options *opt, tb_task_result *res) {
    const tb_dataset *ds = split->train_ds, *ts = split->test_ds ? split->test_ds : split->train_ds;
    memset(res, 0, sizeof *res);
    res->target = TB_TARGET_MULTILABEL;
    res->kind = opt->model_kind ? opt->model_kind : multilabel_kind();
    if (!ds->y || !ts->y)
        return tb_error_with_field(TB_INVALID, "label", "multi-label genres need a label column");
    size_t k = ds->n_classes, d = 0;
    const tb_dataset *sets[2] = {ds, ts};
    tb_track_rows tr = {0};
    track_set train = {0}, test = {0};
    uint8_t *in_train = calloc(ds->n_rows + 1, 1), *in_test = calloc(ts->n_rows + 1, 1);
    double *raw = NULL, *raw_test = NULL, *X = NULL, *proba = NULL;
    tb_pipeline *pipeline = NULL;
    tb_model *model = NULL;
    tb_status st = TB_OK;
    if (!in_train || !in_test) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < split->n_train; i++)
        in_train[split->train[i]] = 1;
    for (size_t i = 0; i < split->n_test; i++)
        in_test[split->test[i]] = 1;
    if ((st = tb_trainer_feature_names(ds, TB_TARGET_GENRE, opt->popularity_feature, &res->features,
                                       &res->n_features)) != TB_OK)
        goto out;
    d = res->n_features;
    if ((st = tb_dataset_matrix(ds, res->features, d, &raw)) != TB_OK ||
        (ts != ds && (st = tb_dataset_matrix(ts, res->features, d, &raw_test)) != TB_OK) ||
        (st = tb_trainer_track_rows(sets, ts != ds ? 2 : 1, &tr)) != TB_OK ||
        (st = collect(&tr, 0, in_train, k, &train)) != TB_OK ||
        (st = collect(&tr, ts != ds ? 1 : 0, in_test, k, &test)) != TB_OK)
        goto out;
    if (train.n == 0 || test.n == 0) {
        st = tb_error(TB_INVALID, "%zu training and %zu test tracks: need both", train.n, test.n);
        goto out;
    }
    double t0 = tb_now_seconds();
    if ((st = tb_pipeline_fit(raw, d, res->features, train.rows, train.n, &pipeline)) != TB_OK ||
        (opt->pca > 0.0 && (st = tb_pipeline_fit_pca(pipeline, raw, train.rows, train.n, opt->pca)) != TB_OK) ||
        (st = tb_pipeline_transform_rows(pipeline, raw, train.rows, train.n, &X)) != TB_OK)
        goto out;
    tb_train_params params = opt->params;
    params.threads = opt->threads;
    tb_train_data data = {.X = X, .n = train.n, .d = pipeline->n_outputs, .task = TB_TASK_MULTILABEL,
                          .n_classes = k, .labels = train.labels, .names = pipeline->components ? NULL : res->features};
    if ((st = tb_model_train(res->kind, &data, &params, &model)) != TB_OK)
        goto out;
    res->train_seconds = tb_now_seconds() - t0;
    res->threshold = tb_model_threshold(model);
    if ((st = tb_predictor_new(pipeline, model, ds->class_names, k, &res->predictor)) != TB_OK)
        goto out;
    pipeline = NULL;
    model = NULL;
    free(X);
    X = NULL;
    void *blob;
    if ((st = tb_predictor_save(res->predictor, &blob, &res->model_bytes)) != TB_OK)
        goto out;
    free(blob);
    t0 = tb_now_seconds();
    if ((st = tb_pipeline_transform_rows(res->predictor->pipeline, raw_test ? raw_test : raw, test.rows, test.n, &X)) !=
        TB_OK)
        goto out;
    if (!(proba = tb_malloc_n(test.n * k, sizeof *proba))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    tb_model_predict_batch(res->predictor->model, X, test.n, opt->threads, proba);
    res->predict_seconds = tb_now_seconds() - t0;
    tb_multilabel_metrics_compute(test.labels, proba, test.n, k, res->threshold, &res->ml);
    res->n_train = train.n;
    res->n_test = test.n;
    res->n_steps = tb_model_steps(res->predictor->model);
out:
    tb_pipeline_free(pipeline);
    tb_model_free(model);
    track_set_clear(&train);
    track_set_clear(&test);
    tb_track_rows_clear(&tr);
    free(in_train);
    free(in_test);
    free(raw);
    free(raw_test);
    free(X);
    free(proba);
    if (st != TB_OK)
        tb_task_result_clear(res);
    return st;
}
