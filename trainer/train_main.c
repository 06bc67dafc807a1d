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

/* One training run: its tables, the split, what each task trained, and what was published. */
typedef struct run {
    cli c;
    int want_genre, want_pop, want_rec;
    tb_dataset *ds, *ts;
    tb_store *store;
    tb_split_rows split;
    tb_task_result results[2];
    tb_task_result single[2]; /* --multitask: the single-task networks, for the comparison */
    size_t n_results;
    tb_compare_row cmp[2][TB_COMPARE_MAX_ROWS];
    size_t n_cmp[2];
    tb_recommend_result rec;
    double *weights;          /* of the recommendation embedding's features */
    int64_t ids[2], rec_id;
    int versions[2], rec_version;
} run;

static tb_status load_tables(run *r) {
    cli *c = &r->c;
    tb_status st;
    c->ds_opt.require_label = r->want_genre;
    if ((st = tb_dataset_load(c->data, &c->ds_opt, &r->ds)) != TB_OK)
        return st;
    tb_log(TB_LOG_INFO, "%s: %zu rows (%zu blank skipped), %zu features, %zu genres", c->data, r->ds->n_rows,
           r->ds->table->n_blank_rows, r->ds->n_features, r->ds->n_classes);
    if (c->test && (st = tb_dataset_load(c->test, &c->ds_opt, &r->ts)) != TB_OK)
        return st;
    if (r->ts && (st = align_test(r->ds, r->ts)) != TB_OK)
        return st;
    if (r->want_pop && !r->ds->popularity) {
        if (strcmp(c->task, "all") != 0)
            return tb_error(TB_INVALID, "%s: no popularity column for --task popularity", c->data);
        tb_log(TB_LOG_WARN, "%s: no popularity column; training the genre model only", c->data);
        r->want_pop = 0;
    }
    /* Open (and migrate) the database before the long training, so a bad path fails fast. */
    if ((st = tb_store_open(c->db, TB_STORE_READ_WRITE, &r->store)) != TB_OK)
        return st;
    return make_split(c, r->ds, r->ts, &r->split);
}

static tb_status train_tasks(run *r) {
    const cli *c = &r->c;
    tb_target targets[2];
    size_t n_targets = 0;
    tb_status st;
    if (r->want_genre)
        targets[n_targets++] = c->multilabel ? TB_TARGET_MULTILABEL : TB_TARGET_GENRE;
    if (r->want_pop)
        targets[n_targets++] = TB_TARGET_POPULARITY;
    for (size_t t = 0; t < n_targets; t++) {
        tb_task_result *res = &r->results[t];
        if (targets[t] == TB_TARGET_MULTILABEL) {
            if ((st = tb_trainer_run_multilabel(&r->split, &c->opt, res)) != TB_OK)
                return st;
        } else if (c->compare) {
            if ((st = tb_trainer_compare(&r->split, targets[t], &c->opt, r->cmp[t], &r->n_cmp[t], res)) != TB_OK)
                return st;
            tb_train_print_comparison(targets[t], r->cmp[t], r->n_cmp[t]);
        } else if ((st = tb_trainer_run_task(&r->split, targets[t], &c->opt, res)) != TB_OK) {
            return st;
        } else if (c->opt.params.aux_weight > 0.0) {
            /* The same network without the other head, on the same rows, for the comparison. */
            tb_trainer_options alone_opt = c->opt;
            alone_opt.params.aux_weight = 0.0;
            if ((st = tb_trainer_run_task(&r->split, targets[t], &alone_opt, &r->single[t])) != TB_OK)
                return st;
            tb_train_log_multitask(res, &r->single[t]);
        }
        r->n_results = t + 1;
        tb_train_log_result(res);
        tb_train_log_conformal(res);
    }
    return TB_OK;
}

static tb_status build_recommend(run *r) {
    const cli *c = &r->c;
    /* Feature weights weigh the standardized embedding: asking for them picks it. */
    const char *embedding = c->embedding ? c->embedding : c->feature_weights ? "standardized" : NULL;
    tb_recommend_options ropt = {.eval_k = 10, .threads = c->opt.threads, .embedding = embedding,
                                 .params = &c->opt.params, .classifier = c->opt.model_kind,
                                 .genre_weight = c->genre_weight, .index_kind = c->index_kind};
    char **names = NULL;
    size_t n_names = 0;
    tb_status st = tb_trainer_feature_names(r->ds, TB_TARGET_POPULARITY, 0, &names, &n_names);
    if (st != TB_OK)
        return st;
    ropt.features = names;
    ropt.n_features = n_names;
    if (!(r->weights = tb_malloc_n(n_names ? n_names : 1, sizeof *r->weights)))
        st = tb_error(TB_NOMEM, "out of memory");
    else if ((st = tb_train_parse_weights(c->feature_weights, names, n_names, r->weights)) == TB_OK)
        ropt.weights = r->weights;
    if (st == TB_OK)
        st = tb_recommend_build(&r->split, &ropt, &r->rec);
    for (size_t j = 0; j < n_names; j++)
        free(names[j]);
    free(names);
    if (st != TB_OK)
        return st;
    const tb_recommend_result *rec = &r->rec;
    if (rec->n_queries)
        tb_log(TB_LOG_INFO, "recommend: Genre-Hit@%zu %.4f, %.4f with the query's artists excluded; coverage "
               "%.4f, distinct artists %.4f a list (%zu test tracks querying %zu training tracks, search %.2fs); "
               "index of %zu tracks built in %.2fs", rec->eval_k, rec->genre_hit, rec->genre_hit_other_artists,
               rec->coverage, rec->artist_share, rec->n_queries, rec->n_pool, rec->eval_seconds, rec->index->n,
               rec->build_seconds);
    else
        tb_log(TB_LOG_INFO, "recommend: index of %zu tracks built in %.2fs (no labelled test tracks to judge it)",
               rec->index->n, rec->build_seconds);
    if (rec->embedder->ann_len)
        tb_log(TB_LOG_INFO, "recommend: HNSW graph built in %.2fs, %.1f MB in memory: recall@%zu %.4f against exact "
               "search (%zu published tracks as queries)", rec->ann_seconds, (double)rec->ann_bytes / 1e6, rec->eval_k,
               rec->ann_recall, rec->ann_probes);
    return TB_OK;
}

/* Publish only once every task trained, and every task with the catalog in one transaction: a
 * failure, or a kill -9, leaves the database as it was. Then the snapshot, whose pointer moves in
 * one rename: replicas see all of this run or none of it. */
static tb_status publish(run *r) {
    tb_status st = tb_store_begin(r->store);
    if (st != TB_OK)
        return st;
    for (size_t t = 0; t < r->n_results && st == TB_OK; t++)
        st = tb_train_publish(r->store, &r->c, &r->results[t], &r->ids[t], &r->versions[t]);
    if (st == TB_OK && r->want_rec)
        st = tb_train_publish_recommend(r->store, &r->c, &r->rec, r->weights, &r->rec_id, &r->rec_version);
    const tb_dataset *sets[2] = {r->ds, r->ts};
    if (st == TB_OK)
        st = tb_trainer_store_catalog(r->store, sets, r->ts ? 2 : 1);
    if (st != TB_OK) {
        tb_store_rollback(r->store);
        return st;
    }
    if ((st = tb_store_commit(r->store)) != TB_OK || (st = tb_train_snapshot(r->store, r->c.db, r->c.snapshots)) != TB_OK)
        return st;
    int64_t n_tracks = 0;
    tb_store_count_tracks(r->store, &n_tracks);
    tb_log(TB_LOG_INFO, "catalog: %lld tracks in %s", (long long)n_tracks, r->c.db);
    return TB_OK;
}

static tb_status write_report(run *r) {
    cJSON *tasks[2] = {NULL, NULL}, *report;
    for (size_t t = 0; t < r->n_results; t++) {
        tasks[t] = tb_train_report_json(&r->results[t], r->ids[t], r->versions[t]);
        if (r->single[t].predictor)
            cJSON_AddItemToObject(tasks[t], "single_task", tb_train_single_task_json(&r->single[t]));
        if (r->c.compare)
            cJSON_AddItemToObject(tasks[t], "comparison",
                                  tb_train_comparison_json(r->results[t].target, r->cmp[t], r->n_cmp[t]));
    }
    if (r->n_results + (size_t)r->want_rec == 1) {
        report = r->n_results ? tasks[0] : tb_train_recommend_report(&r->rec, r->rec_id, r->rec_version);
    } else {
        report = cJSON_CreateObject();
        for (size_t t = 0; t < r->n_results; t++)
            cJSON_AddItemToObject(report, tb_train_target_name(r->results[t].target), tasks[t]);
        if (r->want_rec)
            cJSON_AddItemToObject(report, "recommend", tb_train_recommend_report(&r->rec, r->rec_id, r->rec_version));
    }
    tb_status st = tb_train_write_report(r->c.report, report);
    cJSON_Delete(report);
    return st;
}

static void run_free(run *r) {
    for (size_t t = 0; t < 2; t++) {
        tb_task_result_clear(&r->results[t]);
        tb_task_result_clear(&r->single[t]);
    }
    tb_recommend_result_clear(&r->rec);
    free(r->weights);
    free(r->split.train);
    free(r->split.test);
    free(r->split.group);
    tb_store_close(r->store);
    tb_dataset_free(r->ds);
    tb_dataset_free(r->ts);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "models") == 0)
        return tb_train_versions_main(argc - 1, argv + 1);
    static run r; /* large (the comparison rows); zeroed */
    cli *c = &r.c;
    *c = (cli){.db = "timbre.db", .task = "all"};
    c->opt.popularity_feature = 1;
    c->opt.test_fraction = 0.2;
    c->opt.calibration_fraction = 0.1;
    c->opt.raps_lambda = 0.01;
    c->opt.twins = 1;
    c->opt.twins_prior = 0.1;
    tb_train_params_default(&c->opt.params);
    c->ds_opt.derive_year = 1;
    int pr = tb_train_parse_args(argc, argv, c);
    if (pr)
        return pr > 0 ? 0 : 2;
    if (c->ds_opt.features)
        c->opt.popularity_feature = 0; /* an explicit list is the whole list */
    if (!c->data) { /* --predict alone: no training */
        tb_status st = tb_train_label_stream(c);
        return st == TB_OK ? 0 : fail(st);
    }
    int all = strcmp(c->task, "all") == 0;
    r.want_genre = all || strcmp(c->task, "genre") == 0;
    r.want_pop = all || strcmp(c->task, "popularity") == 0;
    r.want_rec = all || strcmp(c->task, "recommend") == 0;
    tb_status st = load_tables(&r);
    if (st == TB_OK)
        st = train_tasks(&r);
    if (st == TB_OK && r.want_rec)
        st = build_recommend(&r);
    if (st == TB_OK)
        st = publish(&r);
    if (st == TB_OK && c->report)
        st = write_report(&r);
    if (st == TB_OK && c->predict)
        st = tb_train_write_predictions(c, r.results, r.n_results);
    int rc = st == TB_OK ? 0 : fail(st); /* before run_free: the message is the failure's */
    run_free(&r);
    return rc;
}
