/* timbre-train's command line: usage, parsing and validation of every flag. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "train_cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: timbre-train --data TRAIN.csv[.gz] [options]\n"
            "\n"
            "  --data FILE            training table (.csv or .csv.gz)\n"
            "  --test FILE            test table; without it 20%% of --data is held out\n"
            "                         (stratified by label, grouped by id)\n"
            "  --db FILE              model database (default timbre.db)\n"
            "  --snapshots DIR        where each publish writes an immutable snapshot of what is\n"
            "                         served and moves the pointer DIR/CURRENT (default: the\n"
            "                         database's path without .db, plus .snapshots); serve it\n"
            "                         with timbre-serve --db DIR\n"
            "  --task T               genre | popularity | recommend | all (default all)\n"
            "  --model M              model family: %s (default: gbdt for genre,\n"
            "                         rf for popularity; chosen by measurement); all: train every\n"
            "                         family on the same rows, print a comparison table and\n"
            "                         publish the best on a validation share\n"
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
            "  --learning-rate X      gbdt: shrinkage (0.1); mlp: AdamW step (0.001)\n"
            "  --max-leaves N         gbdt: leaves per tree, grown best-first\n"
            "                         (default 31 up to 16 genres, 127 above)\n"
            "  --min-child-weight X   gbdt: least hessian sum in a child (1)\n"
            "  --lambda X             gbdt: L2 penalty on leaf values (1)\n"
            "  --subsample X          gbdt: share of rows per round (1)\n"
            "  --colsample X          gbdt: share of features per tree (1)\n"
            "  --early-stopping N     gbdt: stop after N rounds without validation gain (20); mlp: after\n"
            "                         N epochs (10); 0 = off\n"
            "  --validation-fraction X  gbdt: training share held out for early stopping (0.1)\n"
            "  --sketch N             gbdt: classes that steer split search (all up to 16, else 16)\n"
            "  --blend-with KIND      blend: the family mixed with boosting: rf (default), extra,\n"
            "                         knn, linear or mlp\n"
            "  --neighbors N          knn: neighbours that vote (15)\n"
            "  --l1 X                 linear: popularity becomes the lasso, scikit-learn's\n"
            "                         Lasso(alpha=X); the genre model keeps its L2 penalty\n"
            "  --l2 X                 linear: L2 penalty (1; scikit-learn's 1/C for logistic, alpha\n"
            "                         for ridge)\n"
            "  --hidden N,N,...       mlp: hidden layer widths (256,128)\n"
            "  --dropout X            mlp: share of hidden units dropped while training (0.1)\n"
            "  --batch-size N         mlp: rows per mini-batch (256)\n"
            "  --epochs N             mlp: passes over the data, an upper bound (200); early\n"
            "                         stopping (--early-stopping N epochs) keeps the best\n"
            "  --weight-decay X       mlp: AdamW decoupled weight decay (0.0001)\n"
            "  --numeric-bins N       mlp: each numeric input also enters as a piecewise-linear\n"
            "                         code over N training-quantile bins; 0 = raw values only (16)\n"
            "  --multitask W          mlp: one trunk, a genre and a popularity head trained together;\n"
            "                         W weighs the other head's loss (popularity is then not an input)\n"
            "  --multilabel           genre: learn the set of genres of each distinct track (one\n"
            "                         sigmoid per genre; mlp), published as task multilabel\n"
            "  --pca X                genre, popularity: project the standardized inputs on the\n"
            "                         leading principal components: X >= 1 keeps X of them, X in\n"
            "                         (0, 1) the fewest that keep that share of the variance\n"
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
            "  --no-twins             genre: do not answer rows equal to training rows (every\n"
            "                         input the same) with those rows' genres\n"
            "  --twins-prior X        genre: weight of the model's probabilities beside the\n"
            "                         twins' genre counts (0.1; 0 = the counts alone)\n"
            "  --label COL --id COL --popularity COL --artists COL --track-name COL\n"
            "                         column roles (default: detected by name)\n"
            "  --features a,b,c       exactly these input columns (default: the audio columns\n"
            "                         present, plus popularity for the genre task)\n"
            "  --embedding KIND       recommend: how tracks become vectors: standardized (the\n"
            "                         standardized audio features; default) or mlp (the last\n"
            "                         hidden layer of a genre network; --hidden etc. apply)\n"
            "  --feature-weights a=w,b=w  recommend: weight of named features in the\n"
            "                         embedding (default 1 each; 0 drops a feature)\n"
            "  --report FILE          write the evaluation as JSON\n"
            "  --predict FILE --out FILE\n"
            "                         label an unlabelled table: writes track_id,genre[,popularity]\n"
            "                         with the models just trained; without --data, with the\n"
            "                         versions --db (a database or a snapshot directory) serves,\n"
            "                         pinned else published, reading and writing in chunks\n"
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
int tb_train_parse_args(int argc, char **argv, cli *c) {
    enum {
        O_DATA = 256, O_TEST, O_DB, O_TASK, O_MODEL, O_NAME, O_TREES, O_MAX_DEPTH, O_MSL, O_MAX_FEATURES, O_NO_CW,
        O_NO_POP, O_SEED, O_THREADS, O_CV, O_TEST_FRACTION, O_LABEL, O_ID, O_POPULARITY, O_ARTISTS, O_TRACK_NAME,
        O_FEATURES, O_REPORT, O_PREDICT, O_OUT, O_PROBA, O_LOG_LEVEL, O_NO_YEAR, O_CW, O_BOOT, O_NO_BOOT,
        O_ROUNDS, O_LR, O_LEAVES, O_MCW, O_LAMBDA, O_SUBSAMPLE, O_COLSAMPLE, O_ES, O_VALFRAC, O_SKETCH,
        O_EMBEDDING, O_WEIGHTS, O_CALFRAC, O_RAPS_LAMBDA, O_RAPS_KREG, O_NEIGHBORS, O_L2,
        O_HIDDEN, O_DROPOUT, O_BATCH, O_EPOCHS, O_WD, O_MULTITASK, O_BINS, O_MULTILABEL, O_L1, O_PCA,
        O_NO_TWINS, O_TWINS_PRIOR, O_BLEND_WITH, O_SNAPSHOTS,
    };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA}, {"test", required_argument, 0, O_TEST},
        {"db", required_argument, 0, O_DB}, {"task", required_argument, 0, O_TASK},
        {"snapshots", required_argument, 0, O_SNAPSHOTS},
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
        {"calibration-fraction", required_argument, 0, O_CALFRAC}, {"neighbors", required_argument, 0, O_NEIGHBORS},
        {"l2", required_argument, 0, O_L2}, {"hidden", required_argument, 0, O_HIDDEN},
        {"dropout", required_argument, 0, O_DROPOUT}, {"batch-size", required_argument, 0, O_BATCH},
        {"epochs", required_argument, 0, O_EPOCHS}, {"weight-decay", required_argument, 0, O_WD},
        {"multitask", required_argument, 0, O_MULTITASK}, {"numeric-bins", required_argument, 0, O_BINS},
        {"multilabel", no_argument, 0, O_MULTILABEL}, {"l1", required_argument, 0, O_L1},
        {"pca", required_argument, 0, O_PCA}, {"no-twins", no_argument, 0, O_NO_TWINS},
        {"twins-prior", required_argument, 0, O_TWINS_PRIOR}, {"blend-with", required_argument, 0, O_BLEND_WITH},
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
        case O_SNAPSHOTS: c->snapshots = optarg; break;
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
            if (!(c->opt.params.learning_rate > 0.0 && c->opt.params.learning_rate <= 1.0)) {
                tb_log(TB_LOG_ERROR, "--learning-rate must be in (0, 1]");
                return -1;
            }
            break;
        case O_HIDDEN: {
            tb_train_params *p = &c->opt.params;
            p->n_hidden = 0;
            for (const char *s = optarg; *s;) {
                char *end;
                errno = 0;
                long long w = strtoll(s, &end, 10);
                if (errno || end == s || w < 1 || w > 2048 || (*end && *end != ',') ||
                    p->n_hidden == TB_MLP_MAX_LAYERS) {
                    tb_log(TB_LOG_ERROR, "--hidden: '%s' is not 1 to %d widths from 1 to 2048, comma-separated",
                           optarg, TB_MLP_MAX_LAYERS);
                    return -1;
                }
                p->hidden[p->n_hidden++] = (size_t)w;
                s = *end ? end + 1 : end;
            }
            if (p->n_hidden == 0) {
                tb_log(TB_LOG_ERROR, "--hidden: give at least one width");
                return -1;
            }
            break;
        }
        case O_DROPOUT:
            if (parse_double("--dropout", optarg, &c->opt.params.dropout))
                return -1;
            if (!(c->opt.params.dropout >= 0.0 && c->opt.params.dropout < 1.0)) {
                tb_log(TB_LOG_ERROR, "--dropout must be in [0, 1)");
                return -1;
            }
            break;
        case O_BATCH:
            if (parse_size("--batch-size", optarg, &c->opt.params.batch_size))
                return -1;
            if (c->opt.params.batch_size == 0 || c->opt.params.batch_size > 65536) {
                tb_log(TB_LOG_ERROR, "--batch-size must be from 1 to 65536");
                return -1;
            }
            break;
        case O_EPOCHS:
            if (parse_size("--epochs", optarg, &c->opt.params.epochs))
                return -1;
            if (c->opt.params.epochs == 0 || c->opt.params.epochs > 10000) {
                tb_log(TB_LOG_ERROR, "--epochs must be from 1 to 10000");
                return -1;
            }
            break;
        case O_WD:
            if (parse_double("--weight-decay", optarg, &c->opt.params.weight_decay))
                return -1;
            if (!(c->opt.params.weight_decay >= 0.0 && c->opt.params.weight_decay < 1.0)) {
                tb_log(TB_LOG_ERROR, "--weight-decay must be in [0, 1)");
                return -1;
            }
            break;
        case O_MULTILABEL: c->multilabel = 1; break;
        case O_PCA:
            if (parse_double("--pca", optarg, &c->opt.pca))
                return -1;
            if (!(c->opt.pca > 0.0) || (c->opt.pca >= 1.0 && c->opt.pca != floor(c->opt.pca))) {
                tb_log(TB_LOG_ERROR, "--pca must be a whole number of components or a variance share in (0, 1)");
                return -1;
            }
            break;
        case O_L1:
            if (parse_double("--l1", optarg, &c->opt.params.l1))
                return -1;
            if (!(c->opt.params.l1 > 0.0)) {
                tb_log(TB_LOG_ERROR, "--l1 must be a positive number");
                return -1;
            }
            break;
        case O_BINS:
            if (parse_size("--numeric-bins", optarg, &v))
                return -1;
            if (v > 256) {
                tb_log(TB_LOG_ERROR, "--numeric-bins must be from 0 to 256");
                return -1;
            }
            c->opt.params.numeric_bins = (int)v;
            break;
        case O_MULTITASK:
            if (parse_double("--multitask", optarg, &c->opt.params.aux_weight))
                return -1;
            if (!(c->opt.params.aux_weight > 0.0)) {
                tb_log(TB_LOG_ERROR, "--multitask must be a positive loss weight");
                return -1;
            }
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
        case O_L2:
            if (parse_double("--l2", optarg, &c->opt.params.l2))
                return -1;
            if (!(c->opt.params.l2 > 0.0) || !isfinite(c->opt.params.l2)) {
                tb_log(TB_LOG_ERROR, "--l2 must be a positive number");
                return -1;
            }
            break;
        case O_NEIGHBORS:
            if (parse_size("--neighbors", optarg, &c->opt.params.n_neighbors))
                return -1;
            if (c->opt.params.n_neighbors == 0 || c->opt.params.n_neighbors > 1000) {
                tb_log(TB_LOG_ERROR, "--neighbors must be from 1 to 1000");
                return -1;
            }
            break;
        case O_NO_TWINS: c->opt.twins = 0; break;
        case O_BLEND_WITH:
            if (!tb_model_ops_find(optarg) || strcmp(optarg, "gbdt") == 0 || strcmp(optarg, "blend") == 0) {
                tb_log(TB_LOG_ERROR, "--blend-with: '%s' is not rf, extra, knn, linear or mlp", optarg);
                return -1;
            }
            c->opt.params.blend_with = optarg;
            break;
        case O_TWINS_PRIOR:
            if (parse_double("--twins-prior", optarg, &c->opt.twins_prior))
                return -1;
            if (!(c->opt.twins_prior >= 0.0) || !isfinite(c->opt.twins_prior)) {
                tb_log(TB_LOG_ERROR, "--twins-prior must be a finite number >= 0");
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
    if (!c->data && !c->predict) {
        tb_log(TB_LOG_ERROR, "--data is required (see --help), or --predict FILE --out FILE to label with the "
                             "models --db serves");
        return -1;
    }
    if (strcmp(c->task, "genre") && strcmp(c->task, "popularity") && strcmp(c->task, "recommend") &&
        strcmp(c->task, "all")) {
        tb_log(TB_LOG_ERROR, "--task '%s': choose genre, popularity, recommend or all", c->task);
        return -1;
    }
    if (c->embedding && strcmp(c->embedding, "standardized") != 0 && strcmp(c->embedding, "mlp") != 0) {
        tb_log(TB_LOG_ERROR, "--embedding '%s': known embeddings are standardized and mlp", c->embedding);
        return -1;
    }
    if (c->embedding && strcmp(c->embedding, "mlp") == 0 && c->feature_weights) {
        tb_log(TB_LOG_ERROR, "--feature-weights weighs the standardized embedding, not --embedding mlp");
        return -1;
    }
    if (c->opt.model_kind && strcmp(c->opt.model_kind, "all") != 0 && !tb_model_ops_find(c->opt.model_kind)) {
        tb_log(TB_LOG_ERROR, "--model '%s': known models are %s, or all", c->opt.model_kind, tb_model_kinds());
        return -1;
    }
    if (c->opt.params.aux_weight > 0.0) {
        if (!c->opt.model_kind || strcmp(c->opt.model_kind, "mlp") != 0) {
            tb_log(TB_LOG_ERROR, "--multitask trains the neural network: add --model mlp");
            return -1;
        }
        c->opt.popularity_feature = 0; /* the popularity head's target cannot be an input */
    }
    if (c->multilabel) {
        if (c->opt.model_kind && strcmp(c->opt.model_kind, "mlp") != 0) {
            tb_log(TB_LOG_ERROR, "--multilabel learns genre sets with the neural network: --model mlp (or no --model)");
            return -1;
        }
        if (c->predict || c->opt.params.aux_weight > 0.0 || c->opt.cv_folds) {
            tb_log(TB_LOG_ERROR, "--multilabel does not combine with --predict, --multitask or --cv");
            return -1;
        }
        if (strcmp(c->task, "genre") != 0 && strcmp(c->task, "all") != 0) {
            tb_log(TB_LOG_ERROR, "--multilabel is a genre task: --task genre or all");
            return -1;
        }
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

/* Per-feature weights from "name=w,name=w" (unnamed features keep 1). */
tb_status tb_train_parse_weights(const char *spec, char *const *names, size_t d, double *w) {
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
