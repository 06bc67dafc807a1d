/* timbre-train's outputs: published model rows, the JSON report, log lines and prediction files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "train_cli.h"

const char *tb_train_target_name(tb_target t) {
    return t == TB_TARGET_GENRE ? "genre" : t == TB_TARGET_MULTILABEL ? "multilabel" : "popularity";
}

static const char *const genre_metric_names[5] = {"accuracy", "micro_f1", "macro_f1", "top3_accuracy", "log_loss"};
static const char *const pop_metric_names[5] = {"mse", "rmse", "mae", "r2", "spearman"};

static cJSON *metrics_json(const tb_task_result *r) {
    cJSON *m = cJSON_CreateObject();
    if (r->target == TB_TARGET_MULTILABEL) {
        cJSON_AddNumberToObject(m, "micro_f1", r->ml.micro_f1);
        cJSON_AddNumberToObject(m, "macro_f1", r->ml.macro_f1);
        cJSON_AddNumberToObject(m, "jaccard", r->ml.jaccard);
        cJSON_AddNumberToObject(m, "hamming_loss", r->ml.hamming_loss);
        cJSON_AddNumberToObject(m, "any_genre_accuracy", r->ml.any_accuracy);
        cJSON_AddNumberToObject(m, "mean_set_size", r->ml.mean_set_size);
        cJSON_AddNumberToObject(m, "threshold", r->threshold);
    } else if (r->target == TB_TARGET_GENRE) {
        double v[5] = {r->cls.accuracy, r->cls.micro_f1, r->cls.macro_f1, r->cls.top3_accuracy, r->cls.log_loss};
        for (int i = 0; i < 5; i++)
            cJSON_AddNumberToObject(m, genre_metric_names[i], v[i]);
    } else {
        double v[5] = {r->reg.mse, r->reg.rmse, r->reg.mae, r->reg.r2, r->reg.spearman};
        for (int i = 0; i < 5; i++)
            cJSON_AddNumberToObject(m, pop_metric_names[i], v[i]);
    }
    return m;
}

static cJSON *cv_json(const tb_task_result *r) {
    cJSON *cv = cJSON_CreateObject();
    if (!r->cv_folds)
        return cv;
    const char *const *names = r->target == TB_TARGET_GENRE ? genre_metric_names : pop_metric_names;
    cJSON_AddNumberToObject(cv, "folds", (double)r->cv_folds);
    for (int i = 0; i < 5; i++) {
        cJSON *e = cJSON_AddObjectToObject(cv, names[i]);
        cJSON_AddNumberToObject(e, "mean", r->cv_mean[i]);
        cJSON_AddNumberToObject(e, "std", r->cv_std[i]);
    }
    return cv;
}

/* Genre: whether twins were kept, what decided it, and (kept) their size and test share; in the
 * report and in the published model's params alike. */
static cJSON *twins_json(const tb_task_result *r) {
    const tb_twins *twins = r->predictor->twins;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddBoolToObject(t, "kept", twins != NULL);
    cJSON_AddNumberToObject(t, "train_rows_with_twin", (double)r->twin_rows);
    cJSON_AddNumberToObject(t, "agreement", r->twin_rows ? (double)r->twin_agree / (double)r->twin_rows : 0.0);
    if (twins) {
        cJSON_AddNumberToObject(t, "keys", (double)tb_twins_n_keys(twins));
        cJSON_AddNumberToObject(t, "prior", tb_twins_prior(twins));
        cJSON_AddNumberToObject(t, "test_rate", r->twin_rate);
    }
    return t;
}

/* One parameter under its report name, as the type of its field says. */
static void add_param(cJSON *o, const tb_opt *row, const tb_train_params *p) {
    const char *field = (const char *)p + row->offset;
    switch (row->type) {
    case TB_OPT_UINT: cJSON_AddNumberToObject(o, row->key, *(const unsigned *)field); break;
    case TB_OPT_INT: cJSON_AddNumberToObject(o, row->key, *(const int *)field); break;
    case TB_OPT_SIZE: cJSON_AddNumberToObject(o, row->key, (double)*(const size_t *)field); break;
    case TB_OPT_U64: cJSON_AddNumberToObject(o, row->key, (double)*(const uint64_t *)field); break;
    case TB_OPT_DOUBLE: cJSON_AddNumberToObject(o, row->key, *(const double *)field); break;
    case TB_OPT_STRING: {
        const char *v = *(const char *const *)field;
        cJSON_AddItemToObject(o, row->key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
        break;
    }
    case TB_OPT_ON:
    case TB_OPT_OFF: cJSON_AddBoolToObject(o, row->key, *(const int *)field > 0); break;
    case TB_OPT_SIZE_LIST: {
        const tb_size_list *list = (const tb_size_list *)field;
        cJSON *a = cJSON_AddArrayToObject(o, row->key);
        for (size_t i = 0; i < list->n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)list->v[i]));
        break;
    }
    case TB_OPT_CUSTOM: break;
    }
}

/* Every parameter the family reads (its table, then the one it also takes), once each. */
static void add_family_params(cJSON *o, const tb_model_ops *ops, const tb_train_params *p) {
    for (size_t i = 0; i < ops->n_params; i++)
        if (ops->params[i].key && !cJSON_GetObjectItemCaseSensitive(o, ops->params[i].key))
            add_param(o, &ops->params[i], p);
    if (ops->also)
        add_family_params(o, ops->also, p);
}

static cJSON *params_json(const cli *c, const tb_task_result *r) {
    /* The values the family trained with, its defaults filled in by the family itself. */
    const tb_model *model = r->predictor->model;
    tb_train_params p = c->opt.params;
    tb_model_resolve_params(model->ops, model->task, model->n_outputs, &p);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->kind);
    const tb_pipeline *pl = r->predictor->pipeline;
    if (pl->components) {
        cJSON *pca = cJSON_AddObjectToObject(o, "pca");
        cJSON_AddNumberToObject(pca, "components", (double)pl->n_outputs);
        cJSON_AddNumberToObject(pca, "explained_variance", pl->explained);
    }
    add_family_params(o, model->ops, &p);
    if (model->ops->steps) {
        char key[32];
        snprintf(key, sizeof key, "%s_fitted", model->ops->steps);
        cJSON_AddNumberToObject(o, key, (double)r->n_steps);
    }
    const tb_model_ops *partner = model->ops->partner ? model->ops->partner(&p) : NULL;
    if (partner) { /* the partner resolves its own defaults */
        tb_train_params pp = c->opt.params;
        tb_model_resolve_params(partner, model->task, model->n_outputs, &pp);
        cJSON *po = cJSON_AddObjectToObject(o, "partner");
        cJSON_AddStringToObject(po, "model", partner->kind);
        add_family_params(po, partner, &pp);
    }
    if (r->target == TB_TARGET_GENRE)
        cJSON_AddItemToObject(o, "twins", twins_json(r));
    cJSON_AddNumberToObject(o, "seed", (double)p.seed);
    cJSON_AddStringToObject(o, "data", c->data);
    if (c->test)
        cJSON_AddStringToObject(o, "test", c->test);
    else
        cJSON_AddNumberToObject(o, "test_fraction", c->opt.test_fraction);
    return o;
}

static cJSON *string_array(char *const *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *conformal_json(const tb_task_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "calibration_rows", (double)r->n_calibration);
    cJSON *rows = cJSON_AddArrayToObject(o, r->target == TB_TARGET_GENRE ? "sets" : "intervals");
    for (size_t i = 0; i < r->n_conformal; i++) {
        const tb_conformal_row *c = &r->conformal[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "alpha", c->alpha);
        cJSON_AddStringToObject(e, "method", c->method);
        if (r->target == TB_TARGET_GENRE) {
            cJSON_AddBoolToObject(e, "mondrian", c->mondrian);
            cJSON_AddNumberToObject(e, "coverage", c->coverage);
            cJSON_AddNumberToObject(e, "avg_set_size", c->size);
            cJSON_AddNumberToObject(e, "empty_rate", c->empty_rate);
            cJSON_AddNumberToObject(e, "worst_genre_coverage", c->worst_class_coverage);
        } else {
            cJSON_AddNumberToObject(e, "coverage", c->coverage);
            cJSON_AddNumberToObject(e, "mean_width", c->size);
        }
        cJSON_AddBoolToObject(e, "alpha_too_small", c->alpha_too_small);
        cJSON_AddItemToArray(rows, e);
    }
    return o;
}

void tb_train_log_conformal(const tb_task_result *r) {
    if (!r->n_conformal)
        return;
    int genre = r->target == TB_TARGET_GENRE;
    fprintf(stderr, "%s: conformal %s on %zu test rows, calibrated on %zu held-out rows\n", tb_train_target_name(r->target),
            genre ? "genre sets" : "popularity intervals", r->n_test, r->n_calibration);
    if (genre)
        fprintf(stderr, "  %-5s %-15s %-9s %8s %9s %7s %12s\n", "alpha", "method", "mondrian", "coverage", "avg size",
                "empty", "worst genre");
    else
        fprintf(stderr, "  %-5s %-15s %8s %10s\n", "alpha", "method", "coverage", "mean width");
    for (size_t i = 0; i < r->n_conformal; i++) {
        const tb_conformal_row *c = &r->conformal[i];
        if (genre)
            fprintf(stderr, "  %-5.2f %-15s %-9s %8.4f %9.2f %6.2f%% %12.4f%s\n", c->alpha, c->method,
                    c->mondrian ? "yes" : "no", c->coverage, c->size, 100.0 * c->empty_rate, c->worst_class_coverage,
                    c->alpha_too_small ? "  (alpha too small: full sets)" : "");
        else
            fprintf(stderr, "  %-5.2f %-15s %8.4f %10.2f%s\n", c->alpha, c->method, c->coverage, c->size,
                    c->alpha_too_small ? "  (alpha too small)" : "");
    }
}

/* {"space", "rows", "seconds", "features": [{"feature", "mean_abs"}] largest first}, or NULL. */
static cJSON *importance_json(const tb_task_result *r) {
    if (!r->importance)
        return NULL;
    size_t d = r->n_features, order[1024];
    for (size_t j = 0; j < d && j < 1024; j++) {
        size_t i = j;
        for (; i > 0 && r->importance[order[i - 1]] < r->importance[j]; i--)
            order[i] = order[i - 1];
        order[i] = j;
    }
    cJSON *o = cJSON_CreateObject();
    const char *space = r->predictor->model->ops->explain_space;
    cJSON_AddStringToObject(o, "space", r->target == TB_TARGET_POPULARITY ? "value" : space);
    cJSON_AddNumberToObject(o, "rows", (double)r->importance_rows);
    cJSON_AddNumberToObject(o, "seconds", r->importance_seconds);
    cJSON *list = cJSON_AddArrayToObject(o, "features");
    for (size_t i = 0; i < d && i < 1024; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "feature", r->features[order[i]]);
        cJSON_AddNumberToObject(e, "mean_abs", r->importance[order[i]]);
        cJSON_AddItemToArray(list, e);
    }
    return o;
}

/* Publishes one trained task; fills model id and version. */
tb_status tb_train_publish(tb_store *store, const cli *c, const tb_task_result *r, int64_t *ret_id, int *ret_version) {
    char name[128];
    if (c->name)
        snprintf(name, sizeof name, "%s-%s", c->name, tb_train_target_name(r->target));
    else
        snprintf(name, sizeof name, "%s-%s", tb_train_target_name(r->target), r->kind);
    void *blob = NULL;
    size_t blob_len;
    tb_status st = tb_predictor_save(r->predictor, &blob, &blob_len);
    if (st != TB_OK)
        return st;
    cJSON *params = params_json(c, r), *metrics = metrics_json(r);
    cJSON_AddNumberToObject(metrics, "n_train", (double)r->n_train);
    cJSON_AddNumberToObject(metrics, "n_test", (double)r->n_test);
    if (r->n_calibration)
        cJSON_AddItemToObject(metrics, "conformal", conformal_json(r));
    if (r->cv_folds)
        cJSON_AddItemToObject(metrics, "cv", cv_json(r));
    if (r->importance)
        cJSON_AddItemToObject(metrics, "importances", importance_json(r));
    if (r->evaluation)
        cJSON_AddItemToObject(metrics, "evaluation", cJSON_Duplicate(r->evaluation, 1));
    cJSON *schema = string_array(r->features, r->n_features);
    cJSON *classes = r->target != TB_TARGET_POPULARITY
                         ? string_array(r->predictor->class_names, r->predictor->n_classes)
                         : NULL;
    tb_model_record rec = {
        .task = (char *)tb_train_target_name(r->target),
        .kind = (char *)r->kind,
        .name = name,
        .params = cJSON_PrintUnformatted(params),
        .metrics = cJSON_PrintUnformatted(metrics),
        .feature_schema = cJSON_PrintUnformatted(schema),
        .class_names = classes ? cJSON_PrintUnformatted(classes) : NULL,
        .blob = blob,
        .blob_len = blob_len,
    };
    if (!rec.params || !rec.metrics || !rec.feature_schema || (classes && !rec.class_names))
        st = tb_error(TB_NOMEM, "out of memory");
    else
        st = tb_store_publish_model(store, &rec, ret_id, ret_version);
    if (st == TB_OK)
        tb_log(TB_LOG_INFO, "%s: published %s version %d (%zu bytes)", tb_train_target_name(r->target), name, *ret_version,
               blob_len);
    free(rec.params);
    free(rec.metrics);
    free(rec.feature_schema);
    free(rec.class_names);
    cJSON_Delete(params);
    cJSON_Delete(metrics);
    cJSON_Delete(schema);
    cJSON_Delete(classes);
    free(blob);
    return st;
}

static cJSON *recommend_metrics(const tb_recommend_result *r) {
    cJSON *m = cJSON_CreateObject();
    if (r->n_queries) {
        char key[48];
        snprintf(key, sizeof key, "genre_hit_at_%zu", r->eval_k);
        cJSON_AddNumberToObject(m, key, r->genre_hit);
        struct { const char *name; double v; } more[] = {
            {"genre_hit_at_%zu_other_artists", r->genre_hit_other_artists},
            {"coverage_at_%zu", r->coverage},
            {"artist_share_at_%zu", r->artist_share},
        };
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
            snprintf(key, sizeof key, more[i].name, r->eval_k);
            if (isfinite(more[i].v))
                cJSON_AddNumberToObject(m, key, more[i].v);
        }
        cJSON_AddNumberToObject(m, "n_queries", (double)r->n_queries);
        cJSON_AddNumberToObject(m, "n_pool", (double)r->n_pool);
        cJSON_AddNumberToObject(m, "eval_search_seconds", r->eval_seconds);
    }
    cJSON_AddNumberToObject(m, "n_tracks", (double)r->index->n);
    cJSON_AddStringToObject(m, "index", r->embedder->ann_len ? "hnsw" : "exact");
    if (r->embedder->ann_len) {
        char key[48];
        snprintf(key, sizeof key, "ann_recall_at_%zu", r->eval_k);
        cJSON_AddNumberToObject(m, key, r->ann_recall);
        cJSON_AddNumberToObject(m, "ann_build_seconds", r->ann_seconds);
        cJSON_AddNumberToObject(m, "ann_bytes", (double)r->ann_bytes);
    }
    cJSON_AddNumberToObject(m, "dim", (double)r->index->dim);
    cJSON_AddNumberToObject(m, "build_seconds", r->build_seconds);
    return m;
}

tb_status tb_train_publish_recommend(tb_store *store, const cli *c, const tb_recommend_result *r,
                                   const double *weights, int64_t *ret_id, int *ret_version) {
    char name[128];
    snprintf(name, sizeof name, "%s-%s", c->name ? c->name : "recommend", c->name ? "recommend" : r->embedder->ops->kind);
    void *blob = NULL;
    size_t blob_len;
    tb_status st = tb_embedder_save(r->embedder, &blob, &blob_len);
    if (st != TB_OK)
        return st;
    cJSON *params = cJSON_CreateObject(), *metrics = recommend_metrics(r);
    cJSON_AddStringToObject(params, "embedding", r->embedder->ops->kind);
    if (r->embedder->ops->weighted) {
        cJSON *wj = cJSON_AddObjectToObject(params, "feature_weights");
        for (size_t j = 0; j < r->n_features; j++)
            cJSON_AddNumberToObject(wj, r->features[j], weights[j]);
    }
    cJSON *schema = string_array(r->features, r->n_features);
    tb_model_record rec = {
        .task = "recommend",
        .kind = (char *)r->embedder->ops->kind,
        .name = name,
        .params = cJSON_PrintUnformatted(params),
        .metrics = cJSON_PrintUnformatted(metrics),
        .feature_schema = cJSON_PrintUnformatted(schema),
        .blob = blob,
        .blob_len = blob_len,
    };
    tb_index_payload ix = {r->index->n, r->index->dim, r->index->vectors, r->index->ids};
    if (!rec.params || !rec.metrics || !rec.feature_schema)
        st = tb_error(TB_NOMEM, "out of memory");
    else
        st = tb_store_publish_index(store, &rec, &ix, ret_id, ret_version);
    if (st == TB_OK)
        tb_log(TB_LOG_INFO, "recommend: published %s version %d (%zu tracks × %zu values)", name, *ret_version,
               r->index->n, r->index->dim);
    free(rec.params);
    free(rec.metrics);
    free(rec.feature_schema);
    cJSON_Delete(params);
    cJSON_Delete(metrics);
    cJSON_Delete(schema);
    free(blob);
    return st;
}

cJSON *tb_train_recommend_report(const tb_recommend_result *r, int64_t id, int version) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", "recommend");
    cJSON_AddStringToObject(o, "embedding", r->embedder->ops->kind);
    cJSON_AddItemToObject(o, "features", string_array(r->features, r->n_features));
    cJSON_AddItemToObject(o, "metrics", recommend_metrics(r));
    cJSON_AddNumberToObject(o, "model_id", (double)id);
    cJSON_AddNumberToObject(o, "version", version);
    return o;
}

cJSON *tb_train_report_json(const tb_task_result *r, int64_t id, int version) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", tb_train_target_name(r->target));
    cJSON_AddStringToObject(o, "model", r->kind);
    cJSON_AddNumberToObject(o, "n_train", (double)r->n_train);
    cJSON_AddNumberToObject(o, "n_test", (double)r->n_test);
    cJSON_AddNumberToObject(o, "n_features", (double)r->n_features);
    cJSON_AddItemToObject(o, "features", string_array(r->features, r->n_features));
    cJSON_AddNumberToObject(o, "train_seconds", r->train_seconds);
    const tb_model_ops *ops = r->predictor->model->ops;
    if (ops->steps) /* "trees", "rounds" or "epochs" */
        cJSON_AddNumberToObject(o, ops->steps, (double)r->n_steps);
    cJSON_AddNumberToObject(o, "model_bytes", (double)r->model_bytes);
    cJSON_AddNumberToObject(o, "predict_seconds", r->predict_seconds);
    cJSON_AddItemToObject(o, "metrics", metrics_json(r));
    cJSON_AddItemToObject(o, "cv", cv_json(r));
    if (r->n_calibration)
        cJSON_AddItemToObject(o, "conformal", conformal_json(r));
    if (r->target == TB_TARGET_GENRE)
        cJSON_AddItemToObject(o, "twins", twins_json(r));
    if (r->importance)
        cJSON_AddItemToObject(o, "importances", importance_json(r));
    if (r->evaluation)
        cJSON_AddItemToObject(o, "evaluation", cJSON_Duplicate(r->evaluation, 1));
    cJSON_AddNumberToObject(o, "model_id", (double)id);
    cJSON_AddNumberToObject(o, "version", version);
    return o;
}

void tb_train_log_result(const tb_task_result *r) {
    if (r->target == TB_TARGET_MULTILABEL)
        tb_log(TB_LOG_INFO,
               "multilabel: %zu train / %zu test tracks, %zu features: micro-F1 %.4f, macro-F1 %.4f, Jaccard %.4f, "
               "Hamming loss %.4f, any-genre accuracy %.4f, %.2f genres per set (threshold %.2f); trained in %.2fs",
               r->n_train, r->n_test, r->n_features, r->ml.micro_f1, r->ml.macro_f1, r->ml.jaccard,
               r->ml.hamming_loss, r->ml.any_accuracy, r->ml.mean_set_size, r->threshold, r->train_seconds);
    else if (r->target == TB_TARGET_GENRE)
        tb_log(TB_LOG_INFO,
               "genre: %zu train / %zu test rows, %zu features: accuracy %.4f, macro-F1 %.4f, top-3 %.4f, "
               "log-loss %.4f; trained in %.2fs, predicted in %.3fs",
               r->n_train, r->n_test, r->n_features, r->cls.accuracy, r->cls.macro_f1, r->cls.top3_accuracy,
               r->cls.log_loss, r->train_seconds, r->predict_seconds);
    else
        tb_log(TB_LOG_INFO,
               "popularity: %zu train / %zu test rows, %zu features: RMSE %.3f, MAE %.3f, R2 %.4f, Spearman %.4f; "
               "trained in %.2fs, predicted in %.3fs",
               r->n_train, r->n_test, r->n_features, r->reg.rmse, r->reg.mae, r->reg.r2, r->reg.spearman,
               r->train_seconds, r->predict_seconds);
    if (r->target == TB_TARGET_GENRE && r->predictor->twins)
        tb_log(TB_LOG_INFO,
               "genre: twins kept: %zu of %zu training rows with a twin under another track find their genre "
               "there; %zu distinct inputs; %.1f%% of the test rows have a twin",
               r->twin_agree, r->twin_rows, tb_twins_n_keys(r->predictor->twins), 100.0 * r->twin_rate);
    else if (r->target == TB_TARGET_GENRE && r->twin_rows)
        tb_log(TB_LOG_INFO,
               "genre: twins dropped: only %zu of %zu training rows with a twin under another track find their "
               "genre there",
               r->twin_agree, r->twin_rows);
    if (r->cv_folds) {
        const char *const *names = r->target == TB_TARGET_GENRE ? genre_metric_names : pop_metric_names;
        int main_metric = r->target == TB_TARGET_GENRE ? 1 : 3;
        tb_log(TB_LOG_INFO, "%s: %zu-fold cv %s %.4f ± %.4f", tb_train_target_name(r->target), r->cv_folds, names[main_metric],
               r->cv_mean[main_metric], r->cv_std[main_metric]);
    }
}

void tb_train_print_comparison(tb_target target, const tb_compare_row *rows, size_t n) {
    if (target == TB_TARGET_GENRE) {
        printf("\ngenre: every family on the same rows (validation: accuracy on a 10%% share of the training rows)\n");
        printf("%-8s %10s %9s %9s %9s %9s %12s %10s\n", "model", "val acc", "accuracy", "macro-F1", "log-loss",
               "train s", "predict us", "size MB");
        for (size_t i = 0; i < n; i++)
            printf("%-8s %10.4f %9.4f %9.4f %9.4f %9.2f %12.2f %10.2f%s\n", rows[i].kind, rows[i].validation,
                   rows[i].cls.accuracy, rows[i].cls.macro_f1, rows[i].cls.log_loss, rows[i].train_seconds,
                   rows[i].predict_us_per_row, (double)rows[i].model_bytes / 1e6,
                   rows[i].published ? "  <- published" : "");
    } else {
        printf("\npopularity: every family on the same rows (validation: R2 on a 10%% share of the training rows)\n");
        printf("%-8s %10s %8s %8s %8s %9s %9s %12s %10s\n", "model", "val R2", "R2", "RMSE", "MAE", "Spearman",
               "train s", "predict us", "size MB");
        for (size_t i = 0; i < n; i++)
            printf("%-8s %10.4f %8.4f %8.3f %8.3f %9.4f %9.2f %12.2f %10.2f%s\n", rows[i].kind, rows[i].validation,
                   rows[i].reg.r2, rows[i].reg.rmse, rows[i].reg.mae, rows[i].reg.spearman, rows[i].train_seconds,
                   rows[i].predict_us_per_row, (double)rows[i].model_bytes / 1e6,
                   rows[i].published ? "  <- published" : "");
    }
    fflush(stdout);
}

cJSON *tb_train_comparison_json(tb_target target, const tb_compare_row *rows, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", rows[i].kind);
        cJSON_AddNumberToObject(o, "validation", rows[i].validation);
        if (target == TB_TARGET_GENRE) {
            cJSON_AddNumberToObject(o, "accuracy", rows[i].cls.accuracy);
            cJSON_AddNumberToObject(o, "macro_f1", rows[i].cls.macro_f1);
            cJSON_AddNumberToObject(o, "log_loss", rows[i].cls.log_loss);
        } else {
            cJSON_AddNumberToObject(o, "r2", rows[i].reg.r2);
            cJSON_AddNumberToObject(o, "rmse", rows[i].reg.rmse);
            cJSON_AddNumberToObject(o, "mae", rows[i].reg.mae);
            cJSON_AddNumberToObject(o, "spearman", rows[i].reg.spearman);
        }
        cJSON_AddNumberToObject(o, "train_seconds", rows[i].train_seconds);
        cJSON_AddNumberToObject(o, "predict_us_per_row", rows[i].predict_us_per_row);
        cJSON_AddNumberToObject(o, "model_bytes", (double)rows[i].model_bytes);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

void tb_train_log_multitask(const tb_task_result *m, const tb_task_result *s) {
    if (m->target == TB_TARGET_GENRE)
        tb_log(TB_LOG_INFO, "genre: multi-task network accuracy %.4f, macro-F1 %.4f, log-loss %.4f (%.2fs); the "
               "single-task network on the same rows %.4f, %.4f, %.4f (%.2fs)", m->cls.accuracy, m->cls.macro_f1,
               m->cls.log_loss, m->train_seconds, s->cls.accuracy, s->cls.macro_f1, s->cls.log_loss, s->train_seconds);
    else
        tb_log(TB_LOG_INFO, "popularity: multi-task network R2 %.4f, RMSE %.3f, MAE %.3f (%.2fs); the single-task "
               "network on the same rows %.4f, %.3f, %.3f (%.2fs)", m->reg.r2, m->reg.rmse, m->reg.mae,
               m->train_seconds, s->reg.r2, s->reg.rmse, s->reg.mae, s->train_seconds);
}

cJSON *tb_train_single_task_json(const tb_task_result *single) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "metrics", metrics_json(single));
    cJSON_AddNumberToObject(o, "train_seconds", single->train_seconds);
    return o;
}

tb_status tb_train_write_report(const char *path, cJSON *report) {
    char *text = cJSON_Print(report);
    if (!text)
        return tb_error(TB_NOMEM, "out of memory");
    FILE *f = fopen(path, "w");
    tb_status st = TB_OK;
    if (!f || fputs(text, f) == EOF || fputc('\n', f) == EOF)
        st = tb_error(TB_IO, "%s: cannot write the report", path);
    if (f && fclose(f) != 0 && st == TB_OK)
        st = tb_error(TB_IO, "%s: cannot write the report", path);
    free(text);
    return st;
}

void tb_train_put_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

tb_status tb_train_explainable(const tb_predictor *p, const char *task) {
    if (!p->model->ops->explain || p->pipeline->components)
        return tb_error(TB_INVALID, "--explain: the %s model is '%s'%s, which has no exact explanation (gbdt, rf, "
                                    "extra and linear have)", task, p->model->ops->kind,
                        p->pipeline->components ? " on PCA components" : "");
    return TB_OK;
}

void tb_train_put_explain_header(FILE *f, const tb_predictor *p, const char *task) {
    fprintf(f, ",%s_base", task);
    for (size_t j = 0; j < p->pipeline->n_features; j++) {
        char col[300];
        snprintf(col, sizeof col, "why_%s_%s", task, p->pipeline->names[j]);
        fputc(',', f);
        tb_train_put_csv_field(f, col);
    }
}

tb_status tb_train_put_explain_row(FILE *f, const tb_predictor *p, const double *raw, const double *out) {
    size_t d = p->pipeline->n_features;
    double phi[1024], base, value; /* MODEL_MAX_FEATURES inputs at most */
    int32_t best;
    tb_argmax_rows(out, 1, p->model->n_outputs, &best);
    size_t explained = (size_t)best;
    tb_status st = tb_predictor_explain(p, raw, &explained, 1, phi, &base, &value);
    if (st != TB_OK)
        return st;
    fprintf(f, ",%.17g", base);
    for (size_t j = 0; j < d; j++)
        fprintf(f, ",%.17g", phi[j]);
    return TB_OK;
}

tb_status tb_train_write_predictions(const cli *c, tb_task_result *results, size_t n_results) {
    tb_dataset_options o = c->ds_opt;
    o.require_label = 0;
    tb_dataset *ds = NULL;
    tb_status st = tb_dataset_load(c->predict, &o, &ds);
    if (st != TB_OK)
        return st;
    double *pred[2] = {NULL, NULL}, *raw[2] = {NULL, NULL};
    const tb_predictor *genre = NULL;
    for (size_t i = 0; i < n_results && st == TB_OK; i++) {
        const tb_predictor *p = results[i].predictor;
        if (results[i].target == TB_TARGET_GENRE)
            genre = p;
        if (c->explain && (st = tb_train_explainable(p, tb_train_target_name(results[i].target))) == TB_OK)
            st = tb_dataset_matrix(ds, p->pipeline->names, p->pipeline->n_features, &raw[i]);
        if (st != TB_OK)
            break;
        size_t absent = 0;
        st = tb_trainer_predict_dataset(results[i].predictor, ds, c->opt.threads, &pred[i], &absent);
        if (st == TB_OK && absent)
            tb_log(TB_LOG_WARN, "%s: %zu of the %s model's inputs are not columns of this file; they count as missing",
                   c->predict, absent, tb_train_target_name(results[i].target));
    }
    FILE *f = st == TB_OK ? fopen(c->out, "w") : NULL;
    if (st == TB_OK && !f)
        st = tb_error(TB_IO, "%s: cannot open for writing", c->out);
    if (st == TB_OK) {
        fputs("track_id", f);
        for (size_t i = 0; i < n_results; i++)
            fputs(results[i].target == TB_TARGET_GENRE ? ",genre" : ",popularity", f);
        if (c->proba && genre)
            for (size_t k = 0; k < genre->n_classes; k++) {
                fputs(",", f);
                char col[300];
                snprintf(col, sizeof col, "p_%s", genre->class_names[k]);
                tb_train_put_csv_field(f, col);
            }
        for (size_t i = 0; c->explain && i < n_results; i++)
            tb_train_put_explain_header(f, results[i].predictor, tb_train_target_name(results[i].target));
        fputc('\n', f);
        for (size_t r = 0; r < ds->n_rows && st == TB_OK; r++) {
            char buf[32];
            tb_train_put_csv_field(f, tb_dataset_id(ds, r, buf));
            const double *gp = NULL;
            for (size_t i = 0; i < n_results; i++) {
                if (results[i].target == TB_TARGET_GENRE) {
                    size_t k = results[i].predictor->n_classes;
                    gp = pred[i] + r * k;
                    int32_t best;
                    tb_argmax_rows(gp, 1, k, &best);
                    fputc(',', f);
                    tb_train_put_csv_field(f, results[i].predictor->class_names[best]);
                } else {
                    fprintf(f, ",%.17g", pred[i][r]);
                }
            }
            if (c->proba && gp)
                for (size_t k = 0; k < genre->n_classes; k++)
                    fprintf(f, ",%.17g", gp[k]);
            for (size_t i = 0; c->explain && i < n_results && st == TB_OK; i++) {
                const tb_predictor *p = results[i].predictor;
                st = tb_train_put_explain_row(f, p, raw[i] + r * p->pipeline->n_features,
                                              pred[i] + r * p->model->n_outputs);
            }
            fputc('\n', f);
        }
        if (fclose(f) != 0 && st == TB_OK)
            st = tb_error(TB_IO, "%s: write failed", c->out);
        else if (st == TB_OK)
            tb_log(TB_LOG_INFO, "wrote %zu predictions to %s", ds->n_rows, c->out);
    }
    free(pred[0]);
    free(pred[1]);
    free(raw[0]);
    free(raw[1]);
    tb_dataset_free(ds);
    return st;
}
