/* The trainer's steps, callable from the CLI and from tests: train one task on a split, evaluate
 * it, publish it, store the catalog, predict an unlabelled file. */
#ifndef TB_TRAINER_H
#define TB_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "metrics.h"
#include "model.h"
#include "predictor.h"
#include "status.h"
#include "store.h"

typedef enum tb_target { TB_TARGET_GENRE, TB_TARGET_POPULARITY, TB_TARGET_MULTILABEL } tb_target;

typedef struct tb_trainer_options {
    const char *model_kind;      /* "rf", "extra", "gbdt"; NULL = the per-task default */
    tb_train_params params;
    int popularity_feature;      /* genre task: add popularity as an input (default 1) */
    size_t cv_folds;             /* 0 = no cross-validation */
    double test_fraction;        /* 0.2 when no test file */
    int threads;                 /* 0 = all cores */
    double calibration_fraction; /* training share held out to calibrate conformal sets (0 = none) */
    double raps_lambda;          /* RAPS penalty (0.01) */
    size_t raps_k_reg;           /* RAPS free ranks; 0 = 2 up to 16 genres, else 5 */
    double pca;                  /* 0 = none; >= 1: principal components kept; in (0, 1): variance share */
    int twins;                   /* genre: the training rows' genres answer rows with the same inputs */
    double twins_prior;          /* weight of the model's probabilities beside the twins' counts */
} tb_trainer_options;

/* One line of the conformal table: genre sets (method lac, aps, aps-randomized, raps; marginal or
 * Mondrian) or popularity intervals (absolute, normalized; size = mean width). */
typedef struct tb_conformal_row {
    double alpha;
    const char *method;
    int mondrian;
    double coverage, size, empty_rate;
    double worst_class_coverage; /* genre: lowest coverage of a genre present in the test rows */
    int alpha_too_small;         /* some threshold was infinite (sets: everything) */
} tb_conformal_row;

#define TB_CONFORMAL_N_ALPHAS 4
#define TB_CONFORMAL_MAX_ROWS 32
extern const double tb_conformal_alphas[TB_CONFORMAL_N_ALPHAS]; /* 0.01, 0.05, 0.1, 0.2 */

/* Row indices of the training and test rows. When `test` is a second dataset, test rows index it. */
typedef struct tb_split_rows {
    const tb_dataset *train_ds, *test_ds;
    size_t *train, *test;
    size_t n_train, n_test;
    size_t *group;        /* group (track) of every train_ds row, from tb_dataset_groups */
} tb_split_rows;

/* The outcome of training one task; owns everything in it. */
typedef struct tb_task_result {
    tb_target target;
    const char *kind;            /* model family trained (static string) */
    tb_predictor *predictor;
    char **features;             /* names, in model order */
    size_t n_features;
    size_t n_train, n_test;
    double train_seconds, predict_seconds;
    size_t n_steps;              /* what the family counts (ops->steps): trees, rounds kept, epochs run */
    size_t model_bytes;          /* size of the saved blob */
    tb_class_metrics cls;        /* genre */
    tb_reg_metrics reg;          /* popularity */
    tb_multilabel_metrics ml;    /* multilabel: on the test tracks */
    double threshold;            /* multilabel: predicted-set threshold */
    size_t n_calibration;        /* rows held out of n_train's pool to calibrate (0: none) */
    double twin_rate;            /* genre with twins: share of the test rows that have a twin */
    size_t twin_rows, twin_agree; /* genre: training rows with a twin under another track, and those
                                     whose genre a twin carries (twins are kept when ≥ half) */
    tb_conformal_row conformal[TB_CONFORMAL_MAX_ROWS];
    size_t n_conformal;
    double *importance;          /* n_features: mean |contribution| on importance_rows test rows
                                    (importance.h); NULL when the family cannot explain */
    size_t importance_rows;
    double importance_seconds;
    struct cJSON *evaluation;    /* card.h's numbers from the test rows; NULL when none */
    size_t cv_folds;             /* 0 when not run */
    double cv_mean[5], cv_std[5];/* genre: accuracy, micro_f1, macro_f1, top3, log_loss;
                                    popularity: mse, rmse, mae, r2, spearman */
} tb_task_result;

void tb_task_result_clear(tb_task_result *r);

/* The model family trained for a target: opt->model_kind, or by default (chosen by measurement,
 * see README) gbdt for genre and rf for popularity. */
const char *tb_trainer_kind(const tb_trainer_options *opt, tb_target target);

/* Input names for a target: the dataset's features, plus popularity for the genre task when asked
 * and available; never popularity for the popularity task. Caller frees each name and the array. */
tb_status tb_trainer_feature_names(const tb_dataset *ds, tb_target target, int popularity_feature, char ***ret_names,
                                   size_t *ret_n);

/* Trains, evaluates on the test rows and (optionally) cross-validates on the training rows. */
tb_status tb_trainer_run_task(const tb_split_rows *split, tb_target target, const tb_trainer_options *opt,
                              tb_task_result *ret);

/* --model all: every family trained on the same rows (the training rows less a grouped,
 * stratified 10% validation share), scored on that share (genre: accuracy; popularity: R²) and
 * on the test rows. One row per family; the family with the best validation score stays in
 * *ret_best (its metrics are the test metrics), the others are freed. */
typedef struct tb_compare_row {
    const char *kind;
    double validation;          /* accuracy or R² on the validation share */
    tb_class_metrics cls;       /* test */
    tb_reg_metrics reg;         /* test */
    double train_seconds;
    double predict_us_per_row;  /* batch prediction of the test rows */
    size_t model_bytes;
    int published;              /* 1: the best on validation, the one published */
} tb_compare_row;
#define TB_COMPARE_MAX_ROWS 16
tb_status tb_trainer_compare(const tb_split_rows *split, tb_target target, const tb_trainer_options *opt,
                             tb_compare_row *rows, size_t *ret_n_rows, tb_task_result *ret_best);

/* --multilabel (multilabel.c): one row per distinct track (its first row's features), labelled
 * with every genre the track is listed under on its side of the split; a network with one
 * sigmoid per genre (opt->model_kind, default mlp); set metrics on the test tracks. */
tb_status tb_trainer_run_multilabel(const tb_split_rows *split, const tb_trainer_options *opt, tb_task_result *ret);

/* Predicts every row of `ds` with `p`; out has ds->n_rows × n_outputs values (caller frees).
 * Inputs the table lacks count as missing in every row; *ret_absent says how many (may be NULL). */
/* Predicts n rows of raw inputs (pipeline order, n × n_features) into out (n × n_outputs), twins
 * applied: what the server would answer for each. */
tb_status tb_trainer_predict_raw(const tb_predictor *p, const double *raw, size_t n, int threads, double *out);
tb_status tb_trainer_predict_dataset(const tb_predictor *p, const tb_dataset *ds, int threads, double **ret_out,
                                     size_t *ret_absent);

/* Every row of the datasets, sorted by track id (then dataset, then row), so the rows of one
 * track sit together: rows[i .. tb_track_rows_next(i)). */
typedef struct tb_track_row {
    const tb_dataset *ds;
    size_t set;        /* index of ds in the caller's list */
    size_t row;
    const char *id;
} tb_track_row;

typedef struct tb_track_rows {
    tb_track_row *rows;
    size_t n;
    char (*id_buf)[32]; /* backs ids of tables without an id column */
} tb_track_rows;

tb_status tb_trainer_track_rows(const tb_dataset *const *sets, size_t n_sets, tb_track_rows *ret);
/* The first row after i that belongs to another track (or n). */
size_t tb_track_rows_next(const tb_track_rows *t, size_t i);
void tb_track_rows_clear(tb_track_rows *t);

/* calibrate.c: attach a calibration fitted on the rows `cal` of ds (pred: the model's outputs on
 * them), and evaluate sets / intervals on test rows into res->conformal. */
tb_status tb_trainer_calibrate(tb_predictor *p, const tb_dataset *ds, const size_t *ds_group, const double *raw,
                               const size_t *cal, size_t n_cal, const double *pred, tb_target target,
                               const tb_trainer_options *opt);
tb_status tb_trainer_conformal_eval(const tb_predictor *p, const tb_dataset *ts, const double *raw_test,
                                    const size_t *test, size_t n_test, const double *pred, tb_target target,
                                    tb_task_result *res);

/* Stores the tracks of the datasets (unique ids, every genre kept) in one transaction. */
tb_status tb_trainer_store_catalog(tb_store *store, const tb_dataset *const *sets, size_t n_sets);

#endif
