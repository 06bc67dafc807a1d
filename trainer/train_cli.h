/* timbre-train's command line (train_args.c) and its outputs: published models, the JSON report,
 * log lines and prediction files (train_output.c). main() is in train_main.c. */
#ifndef TB_TRAIN_CLI_H
#define TB_TRAIN_CLI_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "recommend.h"
#include "store.h"
#include "trainer.h"

typedef struct cli {
    const char *data, *test, *db, *task, *report, *predict, *out, *name;
    const char *snapshots;                   /* snapshot directory; NULL: tb_snapshot_default_dir(db) */
    const char *embedding, *feature_weights; /* recommend */
    double genre_weight;                     /* --embedding genre; 0: its default */
    tb_index_kind index_kind;                /* --index */
    int proba;
    int explain;                             /* --explain: contribution columns with --predict */
    int multilabel;                          /* --multilabel: the genre task learns genre sets */
    int compare;                             /* --model all: every family, the best published */
    tb_dataset_options ds_opt;
    tb_trainer_options opt;
} cli;

/* timbre-train models list|pin|unpin|rm|prune ...: the exit code (train_versions.c). */
int tb_train_versions_main(int argc, char **argv);
/* Writes a snapshot of what the database serves and moves the directory's pointer to it, then logs
 * it; dir NULL: the default beside the database. */
tb_status tb_train_snapshot(tb_store *store, const char *db, const char *dir);

/* Writes one CSV field, quoted as RFC 4180 asks when it holds a comma, quote or line break. */
void tb_train_put_csv_field(FILE *f, const char *s);
/* --explain: a predictor's columns TASK_base and why_TASK_FEATURE per input, and one row's values
 * (the contributions to out's most probable genre, or to the popularity). TB_INVALID, before any
 * column, when the model has no exact explanation (tb_train_explainable). */
tb_status tb_train_explainable(const tb_predictor *p, const char *task);
void tb_train_put_explain_header(FILE *f, const tb_predictor *p, const char *task);
tb_status tb_train_put_explain_row(FILE *f, const tb_predictor *p, const double *raw, const double *out);
/* --predict without --data: labels with what --db serves, streaming (train_label.c). */
tb_status tb_train_label_stream(const cli *c);

/* 0: run; 1: help was printed (exit 0); -1: bad arguments, logged (exit 2). */
int tb_train_parse_args(int argc, char **argv, cli *c);
/* Per-feature weights from "name=w,name=w" (unnamed features keep 1). */
tb_status tb_train_parse_weights(const char *spec, char *const *names, size_t d, double *w);

const char *tb_train_target_name(tb_target t);
/* Publishes one trained task / the recommendation index; fills model id and version. */
tb_status tb_train_publish(tb_store *store, const cli *c, const tb_task_result *r, int64_t *ret_id, int *ret_version);
tb_status tb_train_publish_recommend(tb_store *store, const cli *c, const tb_recommend_result *r,
                                     const double *weights, int64_t *ret_id, int *ret_version);
cJSON *tb_train_report_json(const tb_task_result *r, int64_t id, int version);
cJSON *tb_train_recommend_report(const tb_recommend_result *r, int64_t id, int version);
void tb_train_log_result(const tb_task_result *r);
/* --multitask: the multi-task network's test metrics beside the single-task network's. */
void tb_train_log_multitask(const tb_task_result *multi, const tb_task_result *single);
/* The single-task network's test metrics and training time. */
cJSON *tb_train_single_task_json(const tb_task_result *single);
/* --model all: the comparison table on stdout, and as JSON for the report. */
void tb_train_print_comparison(tb_target target, const tb_compare_row *rows, size_t n);
cJSON *tb_train_comparison_json(tb_target target, const tb_compare_row *rows, size_t n);
void tb_train_log_conformal(const tb_task_result *r);
tb_status tb_train_write_report(const char *path, cJSON *report);
/* --predict/--out: labels the unlabelled table with the trained models. */
tb_status tb_train_write_predictions(const cli *c, tb_task_result *results, size_t n_results);

#endif
