/* timbre-train: reads a CSV, trains the genre and/or popularity models, evaluates them, publishes
 * them into the SQLite database with the track catalog, and optionally labels an unlabelled file. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "recommend.h"
#include "split.h"
#include "trainer.h"

typedef struct cli {
    const char *data, *test, *db, *task, *report, *predict, *out, *name;
    const char *embedding, *feature_weights; /* recommend */
    int proba;
    tb_dataset_options ds_opt;
    tb_trainer_options opt;
} cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: timbre-train --data TRAIN.csv[.gz] [options]\n"
            "\n"
            "  --data FILE            training table (.csv or .csv.gz)\n"
            "  --test FILE            test table; without it 20%% of --data is held out\n"
            "                         (stratified by label, grouped by id)\n"
            "  --db FILE              model database (default timbre.db)\n"
            "  --task T               genre | popularity | recommend | all (default all)\n"
            "  --model M              model family: %s (default: gbdt for genre,\n"
            "                         rf for popularity; chosen by measurement)\n"
            "  --name NAME            model name prefix (default: TASK-MODEL, e.g. genre-rf)\n"
            "  --trees N              trees in a forest (rf, extra; default 100)\n"
            "  --max-depth N          0 = unlimited (default 0)\n"
            "  --min-samples-leaf N   forests (default 1)\n"
            "  --max-features X       features tried per split: a fraction in (0,1] or a count;\n"
            "                         default sqrt(d) for genre, d/3 for popularity\n"
            "  --no-class-weight      do not balance class weights (forests balance by default)\n"
            "  --class-weight         balance class weights (gbdt does not by default)\n"
            "  --bootstrap / --no-bootstrap  forests: sample rows (default: rf yes, extra no)\n"
            "  --rounds N             gbdt: boosting rounds, an upper bound with early stopping (500)\n"
            "  --learning-rate X      gbdt: shrinkage (0.1)\n"
            "  --max-leaves N         gbdt: leaves per tree, grown best-first\n"
            "                         (default 31 up to 16 genres, 127 above)\n"
            "  --min-child-weight X   gbdt: least hessian sum in a child (1)\n"
            "  --lambda X             gbdt: L2 penalty on leaf values (1)\n"
            "  --subsample X          gbdt: share of rows per round (1)\n"
            "  --colsample X          gbdt: share of features per tree (1)\n"
            "  --early-stopping N     gbdt: stop after N rounds without validation gain; 0 = off (20)\n"
            "  --validation-fraction X  gbdt: training share held out for early stopping (0.1)\n"
            "  --sketch N             gbdt: classes that steer split search (all up to 16, else 16)\n"
            "  --no-popularity-feature  do not use popularity as a genre input\n"
            "  --no-year              do not derive a year feature from a release-date column\n"
            "  --seed N               (default 42)\n"
            "  --threads N            0 = all cores (default 0)\n"
            "  --cv K                 also report stratified K-fold mean and std on the training rows\n"
            "  --test-fraction F      held-out share without --test (default 0.2)\n"
            "  --calibration-fraction F  training share held out (grouped, stratified) to\n"
            "                         calibrate conformal sets and intervals; 0 = none (0.1)\n"
            "  --raps-lambda X        RAPS penalty per rank beyond k-reg (0.01)\n"
            "  --raps-k-reg N         RAPS ranks free of penalty (2 up to 16 genres, else 5)\n"
            "  --label COL --id COL --popularity COL --artists COL --track-name COL\n"
            "                         column roles (default: detected by name)\n"
            "  --features a,b,c       exactly these input columns (default: the audio columns\n"
            "                         present, plus popularity for the genre task)\n"
            "  --embedding KIND       recommend: how tracks become vectors (standardized: the\n"
            "                         standardized audio features; the only kind so far)\n"
            "  --feature-weights a=w,b=w  recommend: weight of named features in the\n"
            "                         embedding (default 1 each; 0 drops a feature)\n"
            "  --report FILE          write the evaluation as JSON\n"
            "  --predict FILE --out FILE\n"
            "                         label an unlabelled table: writes track_id,genre[,popularity]\n"
            "  --proba                with --predict: add one p_GENRE column per genre\n"
            "  --log-level L          debug | info | warn | error (default info)\n"
            "  -h, --help\n",
            tb_model_kinds());
}

static int parse_size(const char *flag, const char *s, size_t *ret) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        tb_log(TB_LOG_ERROR, "%s: '%s' is not a non-negative integer", flag, s);
        return -1;
    }
    *ret = (size_t)v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double *ret) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        tb_log(TB_LOG_ERROR, "%s: '%s' is not a number", flag, s);
        return -1;
    }
    *ret = v;
    return 0;
}

/* Returns 0 to go on, 1 to exit 0 (help), -1 to exit 2. */
static int parse_args(int argc, char **argv, cli *c) {
    enum {
        O_DATA = 256, O_TEST, O_DB, O_TASK, O_MODEL, O_NAME, O_TREES, O_MAX_DEPTH, O_MSL, O_MAX_FEATURES, O_NO_CW,
        O_NO_POP, O_SEED, O_THREADS, O_CV, O_TEST_FRACTION, O_LABEL, O_ID, O_POPULARITY, O_ARTISTS, O_TRACK_NAME,
        O_FEATURES, O_REPORT, O_PREDICT, O_OUT, O_PROBA, O_LOG_LEVEL, O_NO_YEAR, O_CW, O_BOOT, O_NO_BOOT,
        O_ROUNDS, O_LR, O_LEAVES, O_MCW, O_LAMBDA, O_SUBSAMPLE, O_COLSAMPLE, O_ES, O_VALFRAC, O_SKETCH,
        O_EMBEDDING, O_WEIGHTS, O_CALFRAC, O_RAPS_LAMBDA, O_RAPS_KREG,
    };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA}, {"test", required_argument, 0, O_TEST},
        {"db", required_argument, 0, O_DB}, {"task", required_argument, 0, O_TASK},
        {"model", required_argument, 0, O_MODEL}, {"name", required_argument, 0, O_NAME},
        {"trees", required_argument, 0, O_TREES}, {"max-depth", required_argument, 0, O_MAX_DEPTH},
        {"min-samples-leaf", required_argument, 0, O_MSL}, {"max-features", required_argument, 0, O_MAX_FEATURES},
        {"no-class-weight", no_argument, 0, O_NO_CW}, {"no-popularity-feature", no_argument, 0, O_NO_POP},
        {"no-year", no_argument, 0, O_NO_YEAR}, {"class-weight", no_argument, 0, O_CW},
        {"bootstrap", no_argument, 0, O_BOOT}, {"no-bootstrap", no_argument, 0, O_NO_BOOT},
        {"rounds", required_argument, 0, O_ROUNDS}, {"learning-rate", required_argument, 0, O_LR},
        {"max-leaves", required_argument, 0, O_LEAVES}, {"min-child-weight", required_argument, 0, O_MCW},
        {"lambda", required_argument, 0, O_LAMBDA}, {"subsample", required_argument, 0, O_SUBSAMPLE},
        {"colsample", required_argument, 0, O_COLSAMPLE}, {"early-stopping", required_argument, 0, O_ES},
        {"validation-fraction", required_argument, 0, O_VALFRAC}, {"sketch", required_argument, 0, O_SKETCH},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"cv", required_argument, 0, O_CV}, {"test-fraction", required_argument, 0, O_TEST_FRACTION},
        {"label", required_argument, 0, O_LABEL}, {"id", required_argument, 0, O_ID},
        {"popularity", required_argument, 0, O_POPULARITY}, {"artists", required_argument, 0, O_ARTISTS},
        {"track-name", required_argument, 0, O_TRACK_NAME}, {"features", required_argument, 0, O_FEATURES},
        {"report", required_argument, 0, O_REPORT}, {"predict", required_argument, 0, O_PREDICT},
        {"out", required_argument, 0, O_OUT}, {"proba", no_argument, 0, O_PROBA},
        {"calibration-fraction", required_argument, 0, O_CALFRAC},
        {"raps-lambda", required_argument, 0, O_RAPS_LAMBDA}, {"raps-k-reg", required_argument, 0, O_RAPS_KREG},
        {"embedding", required_argument, 0, O_EMBEDDING}, {"feature-weights", required_argument, 0, O_WEIGHTS},
        {"log-level", required_argument, 0, O_LOG_LEVEL}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    size_t v;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_DATA: c->data = optarg; break;
        case O_TEST: c->test = optarg; break;
        case O_DB: c->db = optarg; break;
        case O_TASK: c->task = optarg; break;
        case O_MODEL: c->opt.model_kind = optarg; break;
        case O_NAME: c->name = optarg; break;
        case O_TREES:
            if (parse_size("--trees", optarg, &c->opt.params.n_trees))
                return -1;
            break;
        case O_MAX_DEPTH:
            if (parse_size("--max-depth", optarg, &c->opt.params.max_depth))
                return -1;
            break;
        case O_MSL:
            if (parse_size("--min-samples-leaf", optarg, &c->opt.params.min_samples_leaf))
                return -1;
            break;
        case O_MAX_FEATURES:
            if (parse_double("--max-features", optarg, &c->opt.params.max_features))
                return -1;
            if (c->opt.params.max_features <= 0.0) {
                tb_log(TB_LOG_ERROR, "--max-features must be positive");
                return -1;
            }
            break;
        case O_NO_CW: c->opt.params.class_weight_balanced = 0; break;
        case O_NO_POP: c->opt.popularity_feature = 0; break;
        case O_NO_YEAR: c->ds_opt.derive_year = 0; break;
        case O_CW: c->opt.params.class_weight_balanced = 1; break;
        case O_BOOT: c->opt.params.bootstrap = 1; break;
        case O_NO_BOOT: c->opt.params.bootstrap = 0; break;
        case O_ROUNDS:
            if (parse_size("--rounds", optarg, &c->opt.params.n_rounds))
                return -1;
            break;
        case O_LR:
            if (parse_double("--learning-rate", optarg, &c->opt.params.learning_rate))
                return -1;
            break;
        case O_LEAVES:
            if (parse_size("--max-leaves", optarg, &c->opt.params.max_leaves))
                return -1;
            break;
        case O_MCW:
            if (parse_double("--min-child-weight", optarg, &c->opt.params.min_child_weight))
                return -1;
            break;
        case O_LAMBDA:
            if (parse_double("--lambda", optarg, &c->opt.params.lambda))
                return -1;
            break;
        case O_SUBSAMPLE:
            if (parse_double("--subsample", optarg, &c->opt.params.subsample))
                return -1;
            break;
        case O_COLSAMPLE:
            if (parse_double("--colsample", optarg, &c->opt.params.colsample))
                return -1;
            break;
        case O_ES:
            if (parse_size("--early-stopping", optarg, &c->opt.params.early_stopping))
                return -1;
            break;
        case O_VALFRAC:
            if (parse_double("--validation-fraction", optarg, &c->opt.params.validation_fraction))
                return -1;
            if (!(c->opt.params.validation_fraction >= 0.0 && c->opt.params.validation_fraction < 1.0)) {
                tb_log(TB_LOG_ERROR, "--validation-fraction must be in [0, 1)");
                return -1;
            }
            break;
        case O_SKETCH:
            if (parse_size("--sketch", optarg, &c->opt.params.sketch))
                return -1;
            break;
        case O_SEED:
            if (parse_size("--seed", optarg, &v))
                return -1;
            c->opt.params.seed = v;
            break;
        case O_THREADS:
            if (parse_size("--threads", optarg, &v))
                return -1;
            if (v > 1024) {
                tb_log(TB_LOG_ERROR, "--threads %zu: at most 1024", v);
                return -1;
            }
            c->opt.threads = (int)v;
            break;
        case O_CV:
            if (parse_size("--cv", optarg, &c->opt.cv_folds))
                return -1;
            if (c->opt.cv_folds == 1 || c->opt.cv_folds > 100) {
                tb_log(TB_LOG_ERROR, "--cv %zu: choose 2 to 100 folds", c->opt.cv_folds);
                return -1;
            }
            break;
        case O_TEST_FRACTION:
            if (parse_double("--test-fraction", optarg, &c->opt.test_fraction))
                return -1;
            if (!(c->opt.test_fraction > 0.0 && c->opt.test_fraction < 1.0)) {
                tb_log(TB_LOG_ERROR, "--test-fraction must be in (0, 1)");
                return -1;
            }
            break;
        case O_LABEL: c->ds_opt.label = optarg; break;
        case O_ID: c->ds_opt.id = optarg; break;
        case O_POPULARITY: c->ds_opt.popularity = optarg; break;
        case O_ARTISTS: c->ds_opt.artists = optarg; break;
        case O_TRACK_NAME: c->ds_opt.name = optarg; break;
        case O_FEATURES: c->ds_opt.features = optarg; break;
        case O_REPORT: c->report = optarg; break;
        case O_PREDICT: c->predict = optarg; break;
        case O_OUT: c->out = optarg; break;
        case O_PROBA: c->proba = 1; break;
        case O_EMBEDDING: c->embedding = optarg; break;
        case O_CALFRAC:
            if (parse_double("--calibration-fraction", optarg, &c->opt.calibration_fraction))
                return -1;
            if (!(c->opt.calibration_fraction >= 0.0 && c->opt.calibration_fraction < 0.9)) {
                tb_log(TB_LOG_ERROR, "--calibration-fraction must be in [0, 0.9)");
                return -1;
            }
            break;
        case O_RAPS_LAMBDA:
            if (parse_double("--raps-lambda", optarg, &c->opt.raps_lambda))
                return -1;
            if (!(c->opt.raps_lambda >= 0.0) || !isfinite(c->opt.raps_lambda)) {
                tb_log(TB_LOG_ERROR, "--raps-lambda must be a finite number >= 0");
                return -1;
            }
            break;
        case O_RAPS_KREG:
            if (parse_size("--raps-k-reg", optarg, &c->opt.raps_k_reg))
                return -1;
            break;
        case O_WEIGHTS: c->feature_weights = optarg; break;
        case O_LOG_LEVEL: {
            tb_log_level level;
            if (tb_log_parse_level(optarg, &level)) {
                tb_log(TB_LOG_ERROR, "--log-level: '%s' is not debug, info, warn or error", optarg);
                return -1;
            }
            tb_log_set_level(level);
            break;
        }
        case 'h': usage(stdout); return 1;
        default:
            tb_log(TB_LOG_ERROR, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        tb_log(TB_LOG_ERROR, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (!c->data) {
        tb_log(TB_LOG_ERROR, "--data is required (see --help)");
        return -1;
    }
    if (strcmp(c->task, "genre") && strcmp(c->task, "popularity") && strcmp(c->task, "recommend") &&
        strcmp(c->task, "all")) {
        tb_log(TB_LOG_ERROR, "--task '%s': choose genre, popularity, recommend or all", c->task);
        return -1;
    }
    if (c->embedding && strcmp(c->embedding, "standardized") != 0) {
        tb_log(TB_LOG_ERROR, "--embedding '%s': known embeddings are standardized", c->embedding);
        return -1;
    }
    if (c->opt.model_kind && !tb_model_ops_find(c->opt.model_kind)) {
        tb_log(TB_LOG_ERROR, "--model '%s': known models are %s", c->opt.model_kind, tb_model_kinds());
        return -1;
    }
    if (c->predict && strcmp(c->task, "recommend") == 0) {
        tb_log(TB_LOG_ERROR, "--predict labels with the genre and popularity models: not with --task recommend");
        return -1;
    }
    if (!!c->predict != !!c->out) {
        tb_log(TB_LOG_ERROR, "--predict and --out go together");
        return -1;
    }
    return 0;
}

static const char *target_name(tb_target t) { return t == TB_TARGET_GENRE ? "genre" : "popularity"; }

static const char *const genre_metric_names[5] = {"accuracy", "micro_f1", "macro_f1", "top3_accuracy", "log_loss"};
static const char *const pop_metric_names[5] = {"mse", "rmse", "mae", "r2", "spearman"};

static cJSON *metrics_json(const tb_task_result *r) {
    cJSON *m = cJSON_CreateObject();
    if (r->target == TB_TARGET_GENRE) {
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

static cJSON *params_json(const cli *c, const tb_task_result *r) {
    const tb_train_params *p = &c->opt.params;
    int gbdt = strcmp(r->kind, "gbdt") == 0 || strcmp(r->kind, "blend") == 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->kind);
    cJSON_AddNumberToObject(o, "max_depth", (double)p->max_depth);
    if (gbdt) {
        cJSON_AddNumberToObject(o, "rounds", (double)p->n_rounds);
        cJSON_AddNumberToObject(o, "trees_kept", (double)r->n_trees);
        cJSON_AddNumberToObject(o, "learning_rate", p->learning_rate);
        if (p->max_leaves)
            cJSON_AddNumberToObject(o, "max_leaves", (double)p->max_leaves);
        else
            cJSON_AddStringToObject(o, "max_leaves", "auto");
        cJSON_AddNumberToObject(o, "min_child_weight", p->min_child_weight);
        cJSON_AddNumberToObject(o, "lambda", p->lambda);
        cJSON_AddNumberToObject(o, "subsample", p->subsample);
        cJSON_AddNumberToObject(o, "colsample", p->colsample);
        cJSON_AddNumberToObject(o, "early_stopping", (double)p->early_stopping);
        cJSON_AddNumberToObject(o, "validation_fraction", p->validation_fraction);
        if (strcmp(r->kind, "blend") == 0)
            cJSON_AddNumberToObject(o, "forest_trees", (double)p->n_trees);
    } else {
        cJSON_AddNumberToObject(o, "trees", (double)p->n_trees);
        cJSON_AddNumberToObject(o, "min_samples_leaf", (double)p->min_samples_leaf);
        if (p->max_features > 0)
            cJSON_AddNumberToObject(o, "max_features", p->max_features);
        else
            cJSON_AddStringToObject(o, "max_features", r->target == TB_TARGET_GENRE ? "sqrt" : "third");
        cJSON_AddBoolToObject(o, "bootstrap", p->bootstrap >= 0 ? p->bootstrap : strcmp(r->kind, "rf") == 0);
    }
    if (r->target == TB_TARGET_GENRE)
        cJSON_AddStringToObject(o, "class_weight",
                                p->class_weight_balanced > 0 || (p->class_weight_balanced < 0 && !gbdt) ? "balanced"
                                                                                                       : "none");
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
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

static void log_conformal(const tb_task_result *r) {
    if (!r->n_conformal)
        return;
    int genre = r->target == TB_TARGET_GENRE;
    fprintf(stderr, "%s: conformal %s on %zu test rows, calibrated on %zu held-out rows\n", target_name(r->target),
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

/* Publishes one trained task; fills model id and version. */
static tb_status publish(tb_store *store, const cli *c, const tb_task_result *r, int64_t *ret_id, int *ret_version) {
    char name[128];
    if (c->name)
        snprintf(name, sizeof name, "%s-%s", c->name, target_name(r->target));
    else
        snprintf(name, sizeof name, "%s-%s", target_name(r->target), r->kind);
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
    cJSON *schema = string_array(r->features, r->n_features);
    cJSON *classes = r->target == TB_TARGET_GENRE ? string_array(r->predictor->class_names, r->predictor->n_classes)
                                                  : NULL;
    tb_model_record rec = {
        .task = (char *)target_name(r->target),
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
        tb_log(TB_LOG_INFO, "%s: published %s version %d (%zu bytes)", target_name(r->target), name, *ret_version,
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

/* Per-feature weights from "name=w,name=w" (unnamed features keep 1). */
static tb_status parse_weights(const char *spec, char *const *names, size_t d, double *w) {
    for (size_t j = 0; j < d; j++)
        w[j] = 1.0;
    if (!spec)
        return TB_OK;
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        return tb_error(TB_NOMEM, "out of memory");
    tb_status st = TB_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok && st == TB_OK; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        if (!eq) {
            st = tb_error(TB_INVALID, "--feature-weights: '%s' is not name=weight", tok);
            break;
        }
        *eq = '\0';
        double v = strtod(eq + 1, &end);
        size_t j = 0;
        while (j < d && strcmp(names[j], tok) != 0)
            j++;
        if (j == d)
            st = tb_error(TB_INVALID, "--feature-weights: '%s' is not an embedding input", tok);
        else if (end == eq + 1 || *end || !(v >= 0.0) || !isfinite(v))
            st = tb_error(TB_INVALID, "--feature-weights: weight of '%s' must be a number >= 0", tok);
        else
            w[j] = v;
    }
    free(copy);
    return st;
}

static cJSON *recommend_metrics(const tb_recommend_result *r) {
    cJSON *m = cJSON_CreateObject();
    if (r->n_queries) {
        char key[32];
        snprintf(key, sizeof key, "genre_hit_at_%zu", r->eval_k);
        cJSON_AddNumberToObject(m, key, r->genre_hit);
        cJSON_AddNumberToObject(m, "n_queries", (double)r->n_queries);
        cJSON_AddNumberToObject(m, "n_pool", (double)r->n_pool);
        cJSON_AddNumberToObject(m, "eval_search_seconds", r->eval_seconds);
    }
    cJSON_AddNumberToObject(m, "n_tracks", (double)r->index->n);
    cJSON_AddNumberToObject(m, "dim", (double)r->index->dim);
    cJSON_AddNumberToObject(m, "build_seconds", r->build_seconds);
    return m;
}

static tb_status publish_recommend(tb_store *store, const cli *c, const tb_recommend_result *r,
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
    cJSON *wj = cJSON_AddObjectToObject(params, "feature_weights");
    for (size_t j = 0; j < r->n_features; j++)
        cJSON_AddNumberToObject(wj, r->features[j], weights[j]);
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

static cJSON *recommend_report(const tb_recommend_result *r, int64_t id, int version) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", "recommend");
    cJSON_AddStringToObject(o, "embedding", r->embedder->ops->kind);
    cJSON_AddItemToObject(o, "features", string_array(r->features, r->n_features));
    cJSON_AddItemToObject(o, "metrics", recommend_metrics(r));
    cJSON_AddNumberToObject(o, "model_id", (double)id);
    cJSON_AddNumberToObject(o, "version", version);
    return o;
}

static cJSON *report_json(const tb_task_result *r, int64_t id, int version) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", target_name(r->target));
    cJSON_AddStringToObject(o, "model", r->kind);
    cJSON_AddNumberToObject(o, "n_train", (double)r->n_train);
    cJSON_AddNumberToObject(o, "n_test", (double)r->n_test);
    cJSON_AddNumberToObject(o, "n_features", (double)r->n_features);
    cJSON_AddItemToObject(o, "features", string_array(r->features, r->n_features));
    cJSON_AddNumberToObject(o, "train_seconds", r->train_seconds);
    cJSON_AddNumberToObject(o, "trees", (double)r->n_trees);
    cJSON_AddNumberToObject(o, "model_bytes", (double)r->model_bytes);
    cJSON_AddNumberToObject(o, "predict_seconds", r->predict_seconds);
    cJSON_AddItemToObject(o, "metrics", metrics_json(r));
    cJSON_AddItemToObject(o, "cv", cv_json(r));
    if (r->n_calibration)
        cJSON_AddItemToObject(o, "conformal", conformal_json(r));
    cJSON_AddNumberToObject(o, "model_id", (double)id);
    cJSON_AddNumberToObject(o, "version", version);
    return o;
}

static void log_result(const tb_task_result *r) {
    if (r->target == TB_TARGET_GENRE)
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
    if (r->cv_folds) {
        const char *const *names = r->target == TB_TARGET_GENRE ? genre_metric_names : pop_metric_names;
        int main_metric = r->target == TB_TARGET_GENRE ? 1 : 3;
        tb_log(TB_LOG_INFO, "%s: %zu-fold cv %s %.4f ± %.4f", target_name(r->target), r->cv_folds, names[main_metric],
               r->cv_mean[main_metric], r->cv_std[main_metric]);
    }
}

static tb_status write_report(const char *path, cJSON *report) {
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

/* CSV field with RFC 4180 quoting when needed. */
static void put_csv_field(FILE *f, const char *s) {
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

static tb_status write_predictions(const cli *c, tb_task_result *results, size_t n_results) {
    tb_dataset_options o = c->ds_opt;
    o.require_label = 0;
    tb_dataset *ds = NULL;
    tb_status st = tb_dataset_load(c->predict, &o, &ds);
    if (st != TB_OK)
        return st;
    double *pred[2] = {NULL, NULL};
    const tb_predictor *genre = NULL;
    for (size_t i = 0; i < n_results && st == TB_OK; i++) {
        if (results[i].target == TB_TARGET_GENRE)
            genre = results[i].predictor;
        size_t absent = 0;
        st = tb_trainer_predict_dataset(results[i].predictor, ds, c->opt.threads, &pred[i], &absent);
        if (st == TB_OK && absent)
            tb_log(TB_LOG_WARN, "%s: %zu of the %s model's inputs are not columns of this file; they count as missing",
                   c->predict, absent, target_name(results[i].target));
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
                put_csv_field(f, col);
            }
        fputc('\n', f);
        for (size_t r = 0; r < ds->n_rows; r++) {
            char buf[32];
            put_csv_field(f, tb_dataset_id(ds, r, buf));
            const double *gp = NULL;
            for (size_t i = 0; i < n_results; i++) {
                if (results[i].target == TB_TARGET_GENRE) {
                    size_t k = results[i].predictor->n_classes;
                    gp = pred[i] + r * k;
                    int32_t best;
                    tb_argmax_rows(gp, 1, k, &best);
                    fputc(',', f);
                    put_csv_field(f, results[i].predictor->class_names[best]);
                } else {
                    fprintf(f, ",%.17g", pred[i][r]);
                }
            }
            if (c->proba && gp)
                for (size_t k = 0; k < genre->n_classes; k++)
                    fprintf(f, ",%.17g", gp[k]);
            fputc('\n', f);
        }
        if (fclose(f) != 0)
            st = tb_error(TB_IO, "%s: write failed", c->out);
        else
            tb_log(TB_LOG_INFO, "wrote %zu predictions to %s", ds->n_rows, c->out);
    }
    free(pred[0]);
    free(pred[1]);
    tb_dataset_free(ds);
    return st;
}

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
    cli c = {.db = "timbre.db", .task = "all"};
    c.opt.popularity_feature = 1;
    c.opt.test_fraction = 0.2;
    c.opt.calibration_fraction = 0.1;
    c.opt.raps_lambda = 0.01;
    tb_train_params_default(&c.opt.params);
    c.ds_opt.derive_year = 1;
    int pr = parse_args(argc, argv, &c);
    if (pr)
        return pr > 0 ? 0 : 2;
    if (c.ds_opt.features)
        c.opt.popularity_feature = 0; /* an explicit list is the whole list */

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
        targets[n_targets++] = TB_TARGET_GENRE;
    if (want_pop)
        targets[n_targets++] = TB_TARGET_POPULARITY;
    int64_t ids[2] = {0, 0};
    int versions[2] = {0, 0};
    for (size_t t = 0; t < n_targets; t++) {
        if ((st = tb_trainer_run_task(&split, targets[t], &c.opt, &results[t])) != TB_OK)
            goto out;
        n_results = t + 1;
        log_result(&results[t]);
        log_conformal(&results[t]);
    }
    int64_t rec_id = 0;
    int rec_version = 0;
    if (want_rec) {
        tb_recommend_options ropt = {.eval_k = 10, .threads = c.opt.threads};
        char **names = NULL;
        size_t n_names = 0;
        if ((st = tb_trainer_feature_names(ds, TB_TARGET_POPULARITY, 0, &names, &n_names)) != TB_OK)
            goto out;
        ropt.features = names;
        ropt.n_features = n_names;
        if (!(weights = tb_malloc_n(n_names ? n_names : 1, sizeof *weights)))
            st = tb_error(TB_NOMEM, "out of memory");
        else if ((st = parse_weights(c.feature_weights, names, n_names, weights)) == TB_OK)
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
    /* Publish only once every task trained, so a failure leaves the database as it was. */
    for (size_t t = 0; t < n_results; t++)
        if ((st = publish(store, &c, &results[t], &ids[t], &versions[t])) != TB_OK)
            goto out;
    if (want_rec && (st = publish_recommend(store, &c, &rec, weights, &rec_id, &rec_version)) != TB_OK)
        goto out;
    const tb_dataset *sets[2] = {ds, ts};
    if ((st = tb_trainer_store_catalog(store, sets, ts ? 2 : 1)) != TB_OK)
        goto out;
    int64_t n_tracks = 0;
    tb_store_count_tracks(store, &n_tracks);
    tb_log(TB_LOG_INFO, "catalog: %lld tracks in %s", (long long)n_tracks, c.db);
    if (c.report) {
        cJSON *report;
        if (n_results + (size_t)want_rec == 1) {
            report = n_results ? report_json(&results[0], ids[0], versions[0]) : recommend_report(&rec, rec_id, rec_version);
        } else {
            report = cJSON_CreateObject();
            for (size_t t = 0; t < n_results; t++)
                cJSON_AddItemToObject(report, target_name(results[t].target),
                                      report_json(&results[t], ids[t], versions[t]));
            if (want_rec)
                cJSON_AddItemToObject(report, "recommend", recommend_report(&rec, rec_id, rec_version));
        }
        st = write_report(c.report, report);
        cJSON_Delete(report);
        if (st != TB_OK)
            goto out;
    }
    if (c.predict && (st = write_predictions(&c, results, n_results)) != TB_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fail(st);
    for (size_t t = 0; t < 2; t++)
        tb_task_result_clear(&results[t]);
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
