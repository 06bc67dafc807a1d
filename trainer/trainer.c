/* Training, evaluation, cross-validation and catalog storage for timbre-train. */
#include "trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "card.h"
#include "clock.h"
#include "importance.h"
#include "number_text.h"
#include "log.h"
#include "pipeline.h"
#include "split.h"

static void free_names(char **names, size_t n) {
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void tb_task_result_clear(tb_task_result *r) {
    tb_predictor_free(r->predictor);
    free_names(r->features, r->n_features);
    free(r->importance);
    cJSON_Delete(r->evaluation);
    memset(r, 0, sizeof *r);
}

const char *tb_trainer_kind(const tb_trainer_options *opt, tb_target target) {
    if (opt->model_kind)
        return opt->model_kind;
    return target == TB_TARGET_GENRE ? "gbdt" : "rf";
}

tb_status tb_trainer_feature_names(const tb_dataset *ds, tb_target target, int popularity_feature, char ***ret_names,
                                   size_t *ret_n) {
    const char *pop = tb_dataset_popularity_name(ds);
    char **names = tb_calloc_n(ds->n_features + 1, sizeof *names);
    size_t n = 0;
    int has_pop = 0;
    if (!names)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t j = 0; j < ds->n_features; j++) {
        int is_pop = pop && strcmp(ds->feature_names[j], pop) == 0;
        if (is_pop && target == TB_TARGET_POPULARITY)
            continue;
        has_pop |= is_pop;
        if (!(names[n++] = strdup(ds->feature_names[j]))) {
            free_names(names, n);
            return tb_error(TB_NOMEM, "out of memory");
        }
    }
    if (target == TB_TARGET_GENRE && popularity_feature && pop && !has_pop) {
        if (!(names[n++] = strdup(pop))) {
            free_names(names, n);
            return tb_error(TB_NOMEM, "out of memory");
        }
    }
    if (n == 0) {
        free(names);
        return tb_error(TB_INVALID, "no input features left for the %s task",
                        target == TB_TARGET_GENRE ? "genre" : "popularity");
    }
    *ret_names = names;
    *ret_n = n;
    return TB_OK;
}

/* Rows usable for a target: all rows for genre; rows with a known popularity for popularity. */
static tb_status usable_rows(const tb_dataset *ds, tb_target target, const size_t *rows, size_t n, size_t **ret,
                             size_t *ret_n) {
    size_t *out = tb_malloc_n(n, sizeof *out), m = 0;
    if (!out)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (target == TB_TARGET_GENRE || !isnan(ds->popularity[rows[i]]))
            out[m++] = rows[i];
    *ret = out;
    *ret_n = m;
    return TB_OK;
}

/* Twins for a genre predictor fitted on `train`, kept only when they name genres in this data:
 * leaving each track out, at least half the rows that still have a twin find their genre among
 * the twins' (see tb_twins_agreement). *ret_with_twin and *ret_agree say what was measured. */
static tb_status attach_twins(tb_predictor *p, const tb_dataset *ds, const size_t *ds_group, const double *raw,
                              size_t d, const size_t *train, size_t n_train, const tb_trainer_options *opt,
                              size_t *ret_with_twin, size_t *ret_agree) {
    tb_twins *twins = NULL;
    tb_status st = tb_twins_build(raw, d, train, n_train, ds->y, ds->n_classes, opt->twins_prior, &twins);
    if (st == TB_OK)
        st = tb_twins_agreement(twins, raw, train, n_train, ds->y, ds_group, ret_with_twin, ret_agree);
    if (st != TB_OK || *ret_with_twin == 0 || 2 * *ret_agree < *ret_with_twin) {
        tb_twins_free(twins);
        return st;
    }
    return tb_predictor_set_twins(p, twins);
}

/* Fits pipeline + model on `train` rows of (ds, raw) and returns a predictor; ds_group holds the
 * group of every ds row. Genre: *ret_twin_rows / *ret_twin_agree (may be NULL) get what
 * attach_twins measured. */
static tb_status fit_predictor(const tb_dataset *ds, const size_t *ds_group, const double *raw, char **names, size_t d,
                               const size_t *train, size_t n_train, tb_target target, const tb_trainer_options *opt,
                               int with_progress, tb_predictor **ret, size_t *ret_twin_rows, size_t *ret_twin_agree) {
    tb_pipeline *pipeline = NULL;
    tb_model *model = NULL;
    double *X = NULL, *target_values = NULL;
    int32_t *y = NULL;
    size_t *group = NULL;
    tb_status st = tb_pipeline_fit(raw, d, names, train, n_train, &pipeline);
    if (st != TB_OK)
        return st;
    const char *kind = tb_trainer_kind(opt, target);
    const tb_model_ops *ops = tb_model_ops_find(kind);
    if (opt->pca > 0.0) { /* the model then sees components, not named features */
        if ((st = tb_pipeline_fit_pca(pipeline, raw, train, n_train, opt->pca)) != TB_OK)
            goto out;
    } else if (ops && ops->handles_missing) {
        pipeline->impute = 0;
    }
    if ((st = tb_pipeline_transform_rows(pipeline, raw, train, n_train, &X)) != TB_OK)
        goto out;
    tb_train_data data = {.X = X, .n = n_train, .d = pipeline->n_outputs, .names = opt->pca > 0.0 ? NULL : names};
    /* Groups (one per track id) keep a model's internal hold-out free of leaked duplicates. */
    if (!(group = tb_malloc_n(n_train, sizeof *group))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_train; i++)
        group[i] = ds_group[train[i]];
    data.group = group;
    /* Multi-task: both labels go in; the task decides which head answers. */
    int multitask = opt->params.aux_weight > 0.0 && ds->popularity && ds->y;
    if (target == TB_TARGET_GENRE || multitask) {
        y = tb_malloc_n(n_train, sizeof *y);
        if (!y) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n_train; i++)
            y[i] = ds->y[train[i]];
        data.task = TB_TASK_CLASSIFY;
        data.y = y;
        data.n_classes = ds->n_classes;
    }
    if (target == TB_TARGET_POPULARITY || multitask) {
        target_values = tb_malloc_n(n_train, sizeof *target_values);
        if (!target_values) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n_train; i++)
            target_values[i] = ds->popularity[train[i]];
        data.task = target == TB_TARGET_GENRE ? TB_TASK_CLASSIFY : TB_TASK_REGRESS;
        data.target = target_values;
    }
    tb_train_params params = opt->params;
    params.threads = opt->threads;
    if (ops) /* the bar's total is the family's resolved count */
        tb_model_resolve_params(ops, data.task, data.task == TB_TASK_REGRESS ? 1 : data.n_classes, &params);
    tb_progress *bar = NULL;
    if (with_progress && ops && ops->steps) {
        char label[48];
        snprintf(label, sizeof label, "%s: %s", target == TB_TARGET_GENRE ? "genre" : "popularity", ops->steps);
        bar = tb_progress_new(label, tb_model_steps_bound(ops, &params));
        params.progress = tb_progress_callback;
        params.progress_ctx = bar;
    }
    st = tb_model_train(kind, &data, &params, &model);
    tb_progress_free(bar);
    if (st != TB_OK)
        goto out;
    st = tb_predictor_new(pipeline, model, target == TB_TARGET_GENRE ? ds->class_names : NULL,
                          target == TB_TARGET_GENRE ? ds->n_classes : 0, ret);
    if (st == TB_OK)
        pipeline = NULL, model = NULL;
    size_t with_twin = 0, agree = 0;
    if (st == TB_OK && target == TB_TARGET_GENRE && opt->twins &&
        (st = attach_twins(*ret, ds, ds_group, raw, d, train, n_train, opt, &with_twin, &agree)) != TB_OK)
        *ret = tb_predictor_free(*ret);
    if (ret_twin_rows) {
        *ret_twin_rows = with_twin;
        *ret_twin_agree = agree;
    }
out:
    tb_pipeline_free(pipeline);
    tb_model_free(model);
    free(group);
    free(X);
    free(y);
    free(target_values);
    return st;
}

/* Predicts `rows` of raw (pipeline, then the model in cache-friendly blocks); out is
 * n × n_outputs. Same numbers as tb_predictor_predict row by row. *ret_with_twin (may be NULL):
 * how many rows twins answered. */
static tb_status predict_rows(const tb_predictor *p, const double *raw, const size_t *rows, size_t n, int threads,
                              double *out, size_t *ret_with_twin) {
    double *X;
    tb_status st = tb_pipeline_transform_rows(p->pipeline, raw, rows, n, &X);
    if (st != TB_OK)
        return st;
    tb_model_predict_batch(p->model, X, n, threads, out);
    free(X);
    size_t d = p->pipeline->n_features, k = p->model->n_outputs, with_twin = 0;
    for (size_t i = 0; p->twins && i < n; i++)
        with_twin += tb_predictor_finish(p, raw + rows[i] * d, out + i * k) > 0;
    if (ret_with_twin)
        *ret_with_twin = with_twin;
    return TB_OK;
}

/* Scores predictions of `rows` against the truth of `ds` into *cls or *reg as a 5-vector. */
static tb_status score(const tb_dataset *ds, tb_target target, const size_t *rows, size_t n, const double *pred,
                       tb_class_metrics *cls, tb_reg_metrics *reg) {
    tb_status st;
    if (target == TB_TARGET_GENRE) {
        int32_t *y = tb_malloc_n(n, sizeof *y);
        if (!y)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            y[i] = ds->y[rows[i]];
        st = tb_class_metrics_compute(y, pred, n, ds->n_classes, cls);
        free(y);
    } else {
        double *y = tb_malloc_n(n, sizeof *y);
        if (!y)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            y[i] = ds->popularity[rows[i]];
        st = tb_reg_metrics_compute(y, pred, n, reg);
        free(y);
    }
    return st;
}

static void metrics_vector(tb_target target, const tb_class_metrics *c, const tb_reg_metrics *r, double v[5]) {
    if (target == TB_TARGET_GENRE) {
        double a[5] = {c->accuracy, c->micro_f1, c->macro_f1, c->top3_accuracy, c->log_loss};
        memcpy(v, a, sizeof a);
    } else {
        double a[5] = {r->mse, r->rmse, r->mae, r->r2, r->spearman};
        memcpy(v, a, sizeof a);
    }
}

static tb_status cross_validate(const tb_dataset *ds, const size_t *ds_group, const double *raw, char **names,
                                size_t d, const size_t *train, size_t n_train, tb_target target,
                                const tb_trainer_options *opt, tb_task_result *res) {
    size_t k = opt->cv_folds;
    size_t *group = tb_malloc_n(n_train, sizeof *group), *fold = tb_malloc_n(n_train, sizeof *fold);
    int32_t *y = tb_malloc_n(n_train, sizeof *y);
    size_t *fit = tb_malloc_n(n_train, sizeof *fit), *hold = tb_malloc_n(n_train, sizeof *hold);
    double *pred = NULL, sums[5] = {0}, sq[5] = {0};
    tb_status st = TB_OK;
    if (!group || !fold || !y || !fit || !hold) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_train; i++) {
        group[i] = ds_group[train[i]];
        y[i] = target == TB_TARGET_GENRE ? ds->y[train[i]] : 0;
    }
    if ((st = tb_split_kfold(y, group, n_train, k, opt->params.seed, fold)) != TB_OK)
        goto out;
    tb_progress *bar = tb_progress_new(target == TB_TARGET_GENRE ? "genre: cv folds" : "popularity: cv folds", k);
    for (size_t f = 0; f < k && st == TB_OK; f++) {
        size_t n_fit = 0, n_hold = 0;
        for (size_t i = 0; i < n_train; i++) {
            if (fold[i] == f)
                hold[n_hold++] = train[i];
            else
                fit[n_fit++] = train[i];
        }
        tb_predictor *p = NULL;
        if ((st = fit_predictor(ds, ds_group, raw, names, d, fit, n_fit, target, opt, 0, &p, NULL, NULL)) != TB_OK)
            break;
        size_t outs = p->model->n_outputs;
        free(pred);
        pred = tb_malloc_n(n_hold * outs, sizeof *pred);
        if (!pred) {
            tb_predictor_free(p);
            st = tb_error(TB_NOMEM, "out of memory");
            break;
        }
        st = predict_rows(p, raw, hold, n_hold, opt->threads, pred, NULL);
        tb_predictor_free(p);
        if (st != TB_OK)
            break;
        tb_class_metrics cls;
        tb_reg_metrics reg;
        if ((st = score(ds, target, hold, n_hold, pred, &cls, &reg)) != TB_OK)
            break;
        double v[5];
        metrics_vector(target, &cls, &reg, v);
        for (int m = 0; m < 5; m++) {
            sums[m] += v[m];
            sq[m] += v[m] * v[m];
        }
        tb_progress_update(bar, f + 1);
    }
    tb_progress_free(bar);
    if (st == TB_OK) {
        res->cv_folds = k;
        for (int m = 0; m < 5; m++) {
            double mean = sums[m] / (double)k;
            res->cv_mean[m] = mean;
            res->cv_std[m] = sqrt(fmax(0.0, sq[m] / (double)k - mean * mean)); /* population std, as numpy */
        }
    }
out:
    free(group);
    free(fold);
    free(y);
    free(fit);
    free(hold);
    free(pred);
    return st;
}

/* Predicts the test rows with res->predictor and scores them: metrics, conformal table, time. */
static tb_status evaluate(tb_task_result *res, const tb_dataset *ts, const double *raw, const size_t *test,
                          size_t n_test, int threads) {
    double *pred = tb_malloc_n(n_test * res->predictor->model->n_outputs, sizeof *pred);
    if (!pred)
        return tb_error(TB_NOMEM, "out of memory");
    double t0 = tb_now_seconds();
    size_t with_twin = 0;
    tb_status st = predict_rows(res->predictor, raw, test, n_test, threads, pred, &with_twin);
    res->predict_seconds = tb_now_seconds() - t0;
    res->n_test = n_test;
    res->n_conformal = 0;
    res->twin_rate = n_test ? (double)with_twin / (double)n_test : 0.0;
    if (st == TB_OK)
        st = score(ts, res->target, test, n_test, pred, &res->cls, &res->reg);
    if (st == TB_OK) {
        cJSON_Delete(res->evaluation);
        res->evaluation = tb_card_evaluation(ts, res->target, test, n_test, pred, res->predictor->model->n_outputs,
                                             res->predictor->class_names);
    }
    if (st == TB_OK)
        st = tb_trainer_conformal_eval(res->predictor, ts, raw, test, n_test, pred, res->target, res);
    t0 = tb_now_seconds();
    if (st == TB_OK)
        st = tb_trainer_importances(res->predictor, raw, test, n_test, pred, threads, &res->importance,
                                    &res->importance_rows);
    res->importance_seconds = tb_now_seconds() - t0;
    free(pred);
    return st;
}

tb_status tb_trainer_run_task(const tb_split_rows *split, tb_target target, const tb_trainer_options *opt,
                              tb_task_result *res) {
    const tb_dataset *ds = split->train_ds, *ts = split->test_ds ? split->test_ds : split->train_ds;
    memset(res, 0, sizeof *res);
    res->target = target;
    res->kind = tb_trainer_kind(opt, target);
    if (target == TB_TARGET_GENRE && !ds->y)
        return tb_error_with_field(TB_INVALID, "label", "the genre task needs a label column");
    if (target == TB_TARGET_POPULARITY && (!ds->popularity || !ts->popularity))
        return tb_error_with_field(TB_INVALID, "popularity", "the popularity task needs a popularity column");
    double *raw = NULL, *raw_test = NULL;
    size_t *train = NULL, *test = NULL, *fit = NULL, *cal = NULL, n_train = 0, n_test = 0, n_cal = 0;
    tb_status st = tb_trainer_feature_names(ds, target, opt->popularity_feature, &res->features, &res->n_features);
    if (st != TB_OK)
        return st;
    size_t d = res->n_features;
    if ((st = tb_dataset_matrix(ds, res->features, d, &raw)) != TB_OK)
        goto out;
    if (ts != ds && (st = tb_dataset_matrix(ts, res->features, d, &raw_test)) != TB_OK)
        goto out;
    if ((st = usable_rows(ds, target, split->train, split->n_train, &train, &n_train)) != TB_OK ||
        (st = usable_rows(ts, target, split->test, split->n_test, &test, &n_test)) != TB_OK)
        goto out;
    if (n_train == 0 || n_test == 0) {
        st = tb_error(TB_INVALID, "%zu training and %zu test rows: need both", n_train, n_test);
        goto out;
    }
    /* The calibration rows: a share of the training rows (grouped, stratified), never fitted on. */
    if (opt->calibration_fraction > 0.0) {
        int32_t *ys = NULL;
        size_t *gs = tb_malloc_n(n_train, sizeof *gs), *fit_i = NULL, *cal_i = NULL, n_fit = 0;
        if (gs && target == TB_TARGET_GENRE && !(ys = tb_malloc_n(n_train, sizeof *ys))) {
            free(gs);
            gs = NULL;
        }
        if (!gs) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n_train; i++) {
            gs[i] = split->group[train[i]];
            if (ys)
                ys[i] = ds->y[train[i]];
        }
        st = tb_split_train_test(ys, gs, n_train, opt->calibration_fraction, opt->params.seed ^ 0xca11bULL, &fit_i,
                                 &n_fit, &cal_i, &n_cal);
        free(gs);
        free(ys);
        if (st == TB_OK && (!(cal = tb_malloc_n(n_cal + 1, sizeof *cal)) || !(fit = tb_malloc_n(n_fit + 1, sizeof *fit))))
            st = tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; st == TB_OK && i < n_cal; i++)
            cal[i] = train[cal_i[i]];
        for (size_t i = 0; st == TB_OK && i < n_fit; i++)
            fit[i] = train[fit_i[i]];
        free(fit_i);
        free(cal_i);
        if (st != TB_OK)
            goto out;
        if (n_cal == 0 || n_fit == 0) {
            st = tb_error(TB_INVALID, "%zu training rows leave no calibration split", n_train);
            goto out;
        }
        free(train);
        train = fit;
        fit = NULL;
        n_train = n_fit;
    }
    res->n_train = n_train;
    res->n_test = n_test;
    res->n_calibration = n_cal;
    double t0 = tb_now_seconds();
    if ((st = fit_predictor(ds, split->group, raw, res->features, d, train, n_train, target, opt, 1, &res->predictor,
                            &res->twin_rows, &res->twin_agree)) != TB_OK)
        goto out;
    res->train_seconds = tb_now_seconds() - t0;
    if (n_cal) {
        size_t k = res->predictor->model->n_outputs;
        double *pred_cal = tb_malloc_n(n_cal * k, sizeof *pred_cal);
        if (!pred_cal) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
        st = predict_rows(res->predictor, raw, cal, n_cal, opt->threads, pred_cal, NULL);
        if (st == TB_OK)
            st = tb_trainer_calibrate(res->predictor, ds, split->group, raw, cal, n_cal, pred_cal, target, opt);
        free(pred_cal);
        if (st != TB_OK)
            goto out;
    }
    res->n_steps = tb_model_steps(res->predictor->model);
    void *blob;
    if ((st = tb_predictor_save(res->predictor, &blob, &res->model_bytes)) != TB_OK)
        goto out;
    free(blob);
    if ((st = evaluate(res, ts, raw_test ? raw_test : raw, test, n_test, opt->threads)) != TB_OK)
        goto out;
    if (opt->cv_folds)
        st = cross_validate(ds, split->group, raw, res->features, d, train, n_train, target, opt, res);
out:
    free(raw);
    free(raw_test);
    free(train);
    free(test);
    free(fit);
    free(cal);
    if (st != TB_OK)
        tb_task_result_clear(res);
    return st;
}

tb_status tb_trainer_compare(const tb_split_rows *split, tb_target target, const tb_trainer_options *opt,
                             tb_compare_row *rows, size_t *ret_n_rows, tb_task_result *ret_best) {
    const tb_dataset *ds = split->train_ds, *ts = split->test_ds ? split->test_ds : split->train_ds;
    size_t *gs = tb_malloc_n(split->n_train + 1, sizeof *gs), *fit_i = NULL, *val_i = NULL, n_fit = 0, n_val = 0;
    size_t *fit = NULL, *val = NULL, *test = NULL, n_test = 0;
    int32_t *ys = NULL;
    double *raw_test = NULL;
    char **names = NULL;
    size_t d = 0, n_rows = 0;
    tb_task_result res;
    memset(ret_best, 0, sizeof *ret_best);
    tb_status st = TB_OK;
    if (!gs || (target == TB_TARGET_GENRE && ds->y && !(ys = tb_malloc_n(split->n_train + 1, sizeof *ys)))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < split->n_train; i++) {
        gs[i] = split->group[split->train[i]];
        if (ys)
            ys[i] = ds->y[split->train[i]];
    }
    if ((st = tb_split_train_test(ys, gs, split->n_train, 0.1, opt->params.seed ^ 0xa11ULL, &fit_i, &n_fit, &val_i,
                                  &n_val)) != TB_OK)
        goto out;
    if (!(fit = tb_malloc_n(n_fit + 1, sizeof *fit)) || !(val = tb_malloc_n(n_val + 1, sizeof *val))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_fit; i++)
        fit[i] = split->train[fit_i[i]];
    for (size_t i = 0; i < n_val; i++)
        val[i] = split->train[val_i[i]];
    /* The test rows, as run_task sees them. */
    if ((st = tb_trainer_feature_names(ds, target, opt->popularity_feature, &names, &d)) != TB_OK ||
        (st = tb_dataset_matrix(ts, names, d, &raw_test)) != TB_OK ||
        (st = usable_rows(ts, target, split->test, split->n_test, &test, &n_test)) != TB_OK)
        goto out;
    tb_split_rows on_val = {.train_ds = ds, .train = fit, .n_train = n_fit, .test = val, .n_test = n_val,
                            .group = split->group};
    double best = -INFINITY;
    const tb_model_ops *ops;
    for (size_t f = 0; (ops = tb_model_ops_at(f)) && n_rows < TB_COMPARE_MAX_ROWS; f++) {
        const char *kind = ops->kind;
        tb_trainer_options o = *opt;
        o.model_kind = kind; /* static: the result keeps it */
        o.cv_folds = 0;
        tb_log(TB_LOG_INFO, "%s: training %s", target == TB_TARGET_GENRE ? "genre" : "popularity", kind);
        if ((st = tb_trainer_run_task(&on_val, target, &o, &res)) != TB_OK)
            goto out;
        tb_compare_row *row = &rows[n_rows++];
        row->kind = res.kind;
        row->validation = target == TB_TARGET_GENRE ? res.cls.accuracy : res.reg.r2;
        row->train_seconds = res.train_seconds;
        row->model_bytes = res.model_bytes;
        if ((st = evaluate(&res, ts, raw_test, test, n_test, opt->threads)) != TB_OK) {
            tb_task_result_clear(&res);
            goto out;
        }
        row->cls = res.cls;
        row->reg = res.reg;
        row->predict_us_per_row = n_test ? res.predict_seconds * 1e6 / (double)n_test : 0.0;
        if (row->validation > best) {
            best = row->validation;
            for (size_t i = 0; i < n_rows; i++)
                rows[i].published = &rows[i] == row;
            tb_task_result_clear(ret_best);
            *ret_best = res;
        } else {
            tb_task_result_clear(&res);
        }
    }
    *ret_n_rows = n_rows;
out:
    if (st != TB_OK)
        tb_task_result_clear(ret_best);
    free_names(names, d);
    free(gs);
    free(ys);
    free(fit_i);
    free(val_i);
    free(fit);
    free(val);
    free(test);
    free(raw_test);
    return st;
}

tb_status tb_trainer_predict_dataset(const tb_predictor *p, const tb_dataset *ds, int threads, double **ret_out,
                                     size_t *ret_absent) {
    double *raw = NULL;
    size_t d = p->pipeline->n_features, n = ds->n_rows, absent = 0;
    tb_status st = tb_dataset_matrix_lenient(ds, p->pipeline->names, d, &raw, &absent);
    if (ret_absent)
        *ret_absent = absent;
    if (st != TB_OK)
        return st;
    size_t *rows = tb_malloc_n(n, sizeof *rows);
    double *out = tb_malloc_n(n * p->model->n_outputs, sizeof *out);
    if (!rows || !out) {
        free(raw);
        free(rows);
        free(out);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = i;
    st = predict_rows(p, raw, rows, n, threads, out, NULL);
    free(raw);
    free(rows);
    if (st != TB_OK) {
        free(out);
        return st;
    }
    *ret_out = out;
    return TB_OK;
}

tb_status tb_trainer_predict_raw(const tb_predictor *p, const double *raw, size_t n, int threads, double *out) {
    size_t *rows = tb_malloc_n(n ? n : 1, sizeof *rows);
    if (!rows)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        rows[i] = i;
    tb_status st = predict_rows(p, raw, rows, n, threads, out, NULL);
    free(rows);
    return st;
}

/* ---------- catalog ---------- */

static int cmp_track_row(const void *a, const void *b) {
    const tb_track_row *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    if (x->set != y->set)
        return x->set < y->set ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

tb_status tb_trainer_track_rows(const tb_dataset *const *sets, size_t n_sets, tb_track_rows *ret) {
    size_t total = 0, n = 0;
    for (size_t s = 0; s < n_sets; s++)
        total += sets[s]->n_rows;
    memset(ret, 0, sizeof *ret);
    ret->rows = tb_malloc_n(total ? total : 1, sizeof *ret->rows);
    ret->id_buf = tb_malloc_n(total ? total : 1, sizeof *ret->id_buf);
    if (!ret->rows || !ret->id_buf) {
        tb_track_rows_clear(ret);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t s = 0; s < n_sets; s++)
        for (size_t r = 0; r < sets[s]->n_rows; r++, n++)
            ret->rows[n] = (tb_track_row){sets[s], s, r, tb_dataset_id(sets[s], r, ret->id_buf[n])};
    qsort(ret->rows, n, sizeof *ret->rows, cmp_track_row);
    ret->n = n;
    return TB_OK;
}

size_t tb_track_rows_next(const tb_track_rows *t, size_t i) {
    size_t j = i + 1;
    while (j < t->n && strcmp(t->rows[j].id, t->rows[i].id) == 0)
        j++;
    return j;
}

void tb_track_rows_clear(tb_track_rows *t) {
    free(t->rows);
    free(t->id_buf);
    memset(t, 0, sizeof *t);
}

static cJSON *exact_number(double v) {
    char text[32];
    tb_format_double(v, text);
    return cJSON_CreateRaw(text);
}

static char *features_json(const tb_dataset *ds, size_t row) {
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    for (size_t j = 0; j < ds->n_features; j++) {
        double v = ds->X[row * ds->n_features + j];
        if (isfinite(v)) /* exact: a catalog lookup must give the model what the file gave it */
            cJSON_AddItemToObject(obj, ds->feature_names[j], exact_number(v));
    }
    const char *pop = tb_dataset_popularity_name(ds);
    if (pop && isfinite(ds->popularity[row]) && !cJSON_GetObjectItemCaseSensitive(obj, pop))
        cJSON_AddItemToObject(obj, pop, exact_number(ds->popularity[row]));
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return s;
}

tb_status tb_trainer_store_catalog(tb_store *store, const tb_dataset *const *sets, size_t n_sets) {
    tb_track_rows tr_rows;
    tb_status st = tb_trainer_track_rows(sets, n_sets, &tr_rows);
    if (st != TB_OK)
        return st;
    const tb_track_row *rows = tr_rows.rows;
    size_t n = tr_rows.n, n_tracks = 0;
    tb_track *tracks = tb_calloc_n(n ? n : 1, sizeof *tracks);
    if (!tracks) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0, j; i < n; i = j) {
        j = tb_track_rows_next(&tr_rows, i);
        /* One track per id: text and features from its first row, every distinct genre kept. */
        const tb_dataset *ds = rows[i].ds;
        size_t r = rows[i].row;
        cJSON *genres = cJSON_CreateArray();
        for (size_t t = i; t < j && genres; t++) {
            const tb_dataset *gds = rows[t].ds;
            if (gds->col_label < 0)
                continue;
            const char *g = tb_dataset_text(gds, gds->col_label, rows[t].row);
            int seen = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, genres) seen |= strcmp(e->valuestring, g) == 0;
            if (!seen)
                cJSON_AddItemToArray(genres, cJSON_CreateString(g));
        }
        tb_track *tr = &tracks[n_tracks++];
        tr->track_id = strdup(rows[i].id);
        tr->track_name = strdup(tb_dataset_text(ds, ds->col_name, r));
        tr->artists = strdup(tb_dataset_text(ds, ds->col_artists, r));
        tr->genres = genres ? cJSON_PrintUnformatted(genres) : NULL;
        tr->popularity = ds->popularity ? ds->popularity[r] : NAN;
        tr->features = features_json(ds, r);
        cJSON_Delete(genres);
        if (!tr->track_id || !tr->track_name || !tr->artists || !tr->genres || !tr->features) {
            st = tb_error(TB_NOMEM, "out of memory building the catalog");
            goto out;
        }
    }
    st = tb_store_put_tracks(store, tracks, n_tracks);
out:
    if (tracks)
        for (size_t i = 0; i < n_tracks; i++)
            tb_track_clear(&tracks[i]);
    free(tracks);
    tb_track_rows_clear(&tr_rows);
    return st;
}
