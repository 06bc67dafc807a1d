/* timbre-train: reads a CSV, trains the genre and/or popularity models, evaluates them, publishes
 * them into the SQLite database with the track catalog, and optionally labels an unlabelled file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "split.h"
#include "train_cli.h"

/* Checks a test table against the training one and re-indexes its labels to the training classes. */
static tb_status align_test(const tb_dataset *train, tb_dataset *test) {
    if (!test->y)
        return TB_OK;
    for (size_t r = 0; r < test->n_rows; r++) {
        const char *label = test->class_names[test->y[r]];
        long k = tb_dataset_class_index(train, label);
        if (k < 0)
            return tb_error_with_field(TB_INVALID, "label", "%s:%u: genre '%s' does not occur in the training data",
                                       test->table->path, test->table->lines[r], label);
        test->y[r] = (int32_t)k;
    }
    /* Class names now follow the training set's numbering. */
    for (size_t k = 0; k < test->n_classes; k++)
        free(test->class_names[k]);
    free(test->class_names);
    test->class_names = calloc(train->n_classes, sizeof *test->class_names);
    test->n_classes = 0;
    if (!test->class_names)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t k = 0; k < train->n_classes; k++) {
        if (!(test->class_names[k] = strdup(train->class_names[k])))
            return tb_error(TB_NOMEM, "out of memory");
        test->n_classes = k + 1;
    }
    return TB_OK;
}

static tb_status make_split(const cli *c, const tb_dataset *ds, const tb_dataset *ts, tb_split_rows *split) {
    memset(split, 0, sizeof *split);
    split->train_ds = ds;
    split->test_ds = ts;
    size_t n_groups;
    tb_status st = tb_dataset_groups(ds, &split->group, &n_groups);
    if (st != TB_OK)
        return st;
    if (ts) {
        split->train = tb_malloc_n(ds->n_rows, sizeof *split->train);
        split->test = tb_malloc_n(ts->n_rows, sizeof *split->test);
        if (!split->train || !split->test)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < ds->n_rows; i++)
            split->train[i] = i;
        for (size_t i = 0; i < ts->n_rows; i++)
            split->test[i] = i;
        split->n_train = ds->n_rows;
        split->n_test = ts->n_rows;
        return TB_OK;
    }
    st = tb_split_train_test(ds->y, split->group, ds->n_rows, c->opt.test_fraction, c->opt.params.seed, &split->train,
                             &split->n_train, &split->test, &split->n_test);
    if (st == TB_OK)
        tb_log(TB_LOG_INFO, "split %zu rows (%zu distinct ids) into %zu train and %zu test rows, seed %llu",
               ds->n_rows, n_groups, split->n_train, split->n_test, (unsigned long long)c->opt.params.seed);
    return st;
}

static int fail(tb_status st) {
    const char *msg = tb_error_message();
    tb_log(TB_LOG_ERROR, "%s", msg[0] ? msg : tb_strerror(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "models") == 0)
        return tb_train_versions_main(argc - 1, argv + 1);
    cli c = {.db = "timbre.db", .task = "all"};
    c.opt.popularity_feature = 1;
    c.opt.test_fraction = 0.2;
    c.opt.calibration_fraction = 0.1;
    c.opt.raps_lambda = 0.01;
    c.opt.twins = 1;
    c.opt.twins_prior = 0.1;
    tb_train_params_default(&c.opt.params);
    c.ds_opt.derive_year = 1;
    int pr = tb_train_parse_args(argc, argv, &c);
    if (pr)
        return pr > 0 ? 0 : 2;
    if (c.ds_opt.features)
        c.opt.popularity_feature = 0; /* an explicit list is the whole list */
    if (!c.data) { /* --predict alone: no training */
        tb_status st = tb_train_label_stream(&c);
        return st == TB_OK ? 0 : fail(st);
    }

    int all = strcmp(c.task, "all") == 0;
    int want_genre = all || strcmp(c.task, "genre") == 0, want_pop = all || strcmp(c.task, "popularity") == 0;
    int want_rec = all || strcmp(c.task, "recommend") == 0;
    tb_dataset *ds = NULL, *ts = NULL;
    tb_store *store = NULL;
    tb_split_rows split = {0};
    tb_task_result results[2];
    tb_recommend_result rec = {0};
    double *weights = NULL;
    size_t n_results = 0;
    int rc = 1;
    tb_status st;
    memset(results, 0, sizeof results);
    tb_compare_row cmp[2][TB_COMPARE_MAX_ROWS];
    tb_task_result single[2]; /* --multitask: the single-task networks, for the comparison */
    memset(single, 0, sizeof single);
    size_t n_cmp[2] = {0, 0};

    c.ds_opt.require_label = want_genre;
    if ((st = tb_dataset_load(c.data, &c.ds_opt, &ds)) != TB_OK)
        goto out;
    tb_log(TB_LOG_INFO, "%s: %zu rows (%zu blank skipped), %zu features, %zu genres", c.data, ds->n_rows,
           ds->table->n_blank_rows, ds->n_features, ds->n_classes);
    if (c.test && (st = tb_dataset_load(c.test, &c.ds_opt, &ts)) != TB_OK)
        goto out;
    if (ts && (st = align_test(ds, ts)) != TB_OK)
        goto out;
    if (want_pop && !ds->popularity) {
        if (!all) {
            st = tb_error(TB_INVALID, "%s: no popularity column for --task popularity", c.data);
            goto out;
        }
        tb_log(TB_LOG_WARN, "%s: no popularity column; training the genre model only", c.data);
        want_pop = 0;
    }
    /* Open (and migrate) the database before the long training, so a bad path fails fast. */
    if ((st = tb_store_open(c.db, TB_STORE_READ_WRITE, &store)) != TB_OK)
        goto out;
    if ((st = make_split(&c, ds, ts, &split)) != TB_OK)
        goto out;

    tb_target targets[2];
    size_t n_targets = 0;
    if (want_genre)
        targets[n_targets++] = c.multilabel ? TB_TARGET_MULTILABEL : TB_TARGET_GENRE;
    if (want_pop)
        targets[n_targets++] = TB_TARGET_POPULARITY;
    int64_t ids[2] = {0, 0};
    int versions[2] = {0, 0};
    int compare = c.compare;
    for (size_t t = 0; t < n_targets; t++) {
        if (targets[t] == TB_TARGET_MULTILABEL) {
            if ((st = tb_trainer_run_multilabel(&split, &c.opt, &results[t])) != TB_OK)
                goto out;
        } else if (compare) {
            if ((st = tb_trainer_compare(&split, targets[t], &c.opt, cmp[t], &n_cmp[t], &results[t])) != TB_OK)
                goto out;
            tb_train_print_comparison(targets[t], cmp[t], n_cmp[t]);
        } else if ((st = tb_trainer_run_task(&split, targets[t], &c.opt, &results[t])) != TB_OK) {
            goto out;
        } else if (c.opt.params.aux_weight > 0.0) {
            /* The same network without the other head, on the same rows, for the comparison. */
            tb_trainer_options alone_opt = c.opt;
            alone_opt.params.aux_weight = 0.0;
            if ((st = tb_trainer_run_task(&split, targets[t], &alone_opt, &single[t])) != TB_OK)
                goto out;
            tb_train_log_multitask(&results[t], &single[t]);
        }
        n_results = t + 1;
        tb_train_log_result(&results[t]);
        tb_train_log_conformal(&results[t]);
    }
    int64_t rec_id = 0;
    int rec_version = 0;
    if (want_rec) {
        tb_recommend_options ropt = {.eval_k = 10, .threads = c.opt.threads, .embedding = c.embedding,
                                     .mlp_params = &c.opt.params};
        char **names = NULL;
        size_t n_names = 0;
        if ((st = tb_trainer_feature_names(ds, TB_TARGET_POPULARITY, 0, &names, &n_names)) != TB_OK)
            goto out;
        ropt.features = names;
        ropt.n_features = n_names;
        if (!(weights = tb_malloc_n(n_names ? n_names : 1, sizeof *weights)))
            st = tb_error(TB_NOMEM, "out of memory");
        else if ((st = tb_train_parse_weights(c.feature_weights, names, n_names, weights)) == TB_OK)
            ropt.weights = weights;
        if (st == TB_OK)
            st = tb_recommend_build(&split, &ropt, &rec);
        for (size_t j = 0; j < n_names; j++)
            free(names[j]);
        free(names);
        if (st != TB_OK)
            goto out;
        if (rec.n_queries)
            tb_log(TB_LOG_INFO, "recommend: Genre-Hit@%zu %.4f (%zu test tracks querying %zu training tracks, "
                   "search %.2fs); index of %zu tracks built in %.2fs", rec.eval_k, rec.genre_hit, rec.n_queries,
                   rec.n_pool, rec.eval_seconds, rec.index->n, rec.build_seconds);
        else
            tb_log(TB_LOG_INFO, "recommend: index of %zu tracks built in %.2fs (no labelled test tracks to judge it)",
                   rec.index->n, rec.build_seconds);
    }
    /* Publish only once every task trained, and every task with the catalog in one transaction:
     * a failure, or a kill -9, leaves the database as it was. Then the snapshot, whose pointer
     * moves in one rename: replicas see all of this run or none of it. */
    if ((st = tb_store_begin(store)) != TB_OK)
        goto out;
    for (size_t t = 0; t < n_results; t++)
        if ((st = tb_train_publish(store, &c, &results[t], &ids[t], &versions[t])) != TB_OK)
            goto rollback;
    if (want_rec && (st = tb_train_publish_recommend(store, &c, &rec, weights, &rec_id, &rec_version)) != TB_OK)
        goto rollback;
    const tb_dataset *sets[2] = {ds, ts};
    if ((st = tb_trainer_store_catalog(store, sets, ts ? 2 : 1)) != TB_OK)
        goto rollback;
    if ((st = tb_store_commit(store)) != TB_OK)
        goto out;
    if ((st = tb_train_snapshot(store, c.db, c.snapshots)) != TB_OK)
        goto out;
    int64_t n_tracks = 0;
    tb_store_count_tracks(store, &n_tracks);
    tb_log(TB_LOG_INFO, "catalog: %lld tracks in %s", (long long)n_tracks, c.db);
    if (c.report) {
        cJSON *tasks[2] = {NULL, NULL}, *report;
        for (size_t t = 0; t < n_results; t++) {
            tasks[t] = tb_train_report_json(&results[t], ids[t], versions[t]);
            if (single[t].predictor)
                cJSON_AddItemToObject(tasks[t], "single_task", tb_train_single_task_json(&single[t]));
            if (compare)
                cJSON_AddItemToObject(tasks[t], "comparison", tb_train_comparison_json(results[t].target, cmp[t], n_cmp[t]));
        }
        if (n_results + (size_t)want_rec == 1) {
            report = n_results ? tasks[0] : tb_train_recommend_report(&rec, rec_id, rec_version);
        } else {
            report = cJSON_CreateObject();
            for (size_t t = 0; t < n_results; t++)
                cJSON_AddItemToObject(report, tb_train_target_name(results[t].target), tasks[t]);
            if (want_rec)
                cJSON_AddItemToObject(report, "recommend", tb_train_recommend_report(&rec, rec_id, rec_version));
        }
        st = tb_train_write_report(c.report, report);
        cJSON_Delete(report);
        if (st != TB_OK)
            goto out;
    }
    if (c.predict && (st = tb_train_write_predictions(&c, results, n_results)) != TB_OK)
        goto out;
    rc = 0;
    goto out;
rollback:
    tb_store_rollback(store);
out:
    if (rc)
        fail(st);
    for (size_t t = 0; t < 2; t++) {
        tb_task_result_clear(&results[t]);
        tb_task_result_clear(&single[t]);
    }
    tb_recommend_result_clear(&rec);
    free(weights);
    free(split.train);
    free(split.test);
    free(split.group);
    tb_store_close(store);
    tb_dataset_free(ds);
    tb_dataset_free(ts);
    return rc;
}
