/* timbre-train's command line: its own option table, the families' parameter tables, and the
 * checks of flags that only make sense together. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedding.h"
#include "log.h"
#include "opt_table.h"
#include "train_cli.h"

#define C(field) offsetof(cli, field)
#define ROW(flag, arg, type, field, min, max, open, help) {flag, arg, type, C(field), min, max, help, NULL, open, NULL}

static tb_status parse_pca(void *base, const char *arg) {
    static const tb_opt range = ROW("pca", "X", TB_OPT_DOUBLE, opt.pca, 0, 1e6, TB_OPT_MIN_OPEN, "");
    cli *c = base;
    if (tb_opt_set(&range, c, arg) != TB_OK || (c->opt.pca >= 1.0 && c->opt.pca != floor(c->opt.pca)))
        return tb_error(TB_INVALID, "--pca: '%s' is not a whole number of components or a variance share in (0, 1)",
                        arg);
    return TB_OK;
}

static tb_status parse_model(void *base, const char *arg) {
    cli *c = base;
    c->compare = strcmp(arg, "all") == 0;
    if (!c->compare && !tb_model_ops_find(arg))
        return tb_error(TB_INVALID, "--model '%s': known models are %s, or all", arg, tb_model_kinds());
    c->opt.model_kind = c->compare ? NULL : arg;
    return TB_OK;
}

static tb_status parse_index(void *base, const char *arg) {
    cli *c = base;
    static const char *const kinds[] = {"auto", "exact", "hnsw"}; /* tb_index_kind order */
    for (int k = 0; k < 3; k++)
        if (strcmp(arg, kinds[k]) == 0) {
            c->index_kind = (tb_index_kind)k;
            return TB_OK;
        }
    return tb_error(TB_INVALID, "--index '%s': choose auto, exact or hnsw", arg);
}

/* The trainer's own flags; each model family's come from its parameter table (tb_model_ops). */
static const tb_opt cli_rows[] = {
    ROW("data", "FILE", TB_OPT_STRING, data, 0, 0, 0, "training table (.csv or .csv.gz)"),
    ROW("test", "FILE", TB_OPT_STRING, test, 0, 0, 0,
        "test table; without it 20% of --data is held out\n(stratified by label, grouped by id)"),
    ROW("db", "FILE", TB_OPT_STRING, db, 0, 0, 0, "model database (default timbre.db)"),
    ROW("snapshots", "DIR", TB_OPT_STRING, snapshots, 0, 0, 0,
        "where each publish writes an immutable snapshot of what is\nserved and moves the pointer DIR/CURRENT (default: "
        "the\ndatabase's path without .db, plus .snapshots); serve it\nwith timbre-serve --db DIR"),
    ROW("task", "T", TB_OPT_STRING, task, 0, 0, 0, "genre | popularity | recommend | all (default all)"),
    {"model", "M", TB_OPT_STRING, C(opt.model_kind), 0, 0,
     "model family (below; default: gbdt for genre, rf for\npopularity, chosen by measurement); all: train every "
     "family\non the same rows, print a comparison table and publish\nthe best on a validation share",
     parse_model, 0, NULL},
    ROW("name", "NAME", TB_OPT_STRING, name, 0, 0, 0, "model name prefix (default: TASK-MODEL, e.g. genre-rf)"),
    ROW("multilabel", NULL, TB_OPT_ON, multilabel, 0, 0, 0,
        "genre: learn the set of genres of each distinct track (one\nsigmoid per genre; mlp), published as task "
        "multilabel"),
    {"pca", "X", TB_OPT_DOUBLE, C(opt.pca), 0, 0,
     "genre, popularity: project the standardized inputs on the\nleading principal components: X >= 1 keeps X of them, "
     "X in\n(0, 1) the fewest that keep that share of the variance",
     parse_pca, 0, NULL},
    ROW("no-popularity-feature", NULL, TB_OPT_OFF, opt.popularity_feature, 0, 0, 0,
        "do not use popularity as a genre input"),
    ROW("no-year", NULL, TB_OPT_OFF, ds_opt.derive_year, 0, 0, 0, "do not derive a year feature from a release-date column"),
    ROW("seed", "N", TB_OPT_U64, opt.params.seed, 0, 18446744073709551615.0, 0, "(default 42)"),
    ROW("threads", "N", TB_OPT_INT, opt.threads, 0, 1024, 0, "0 = all cores (default 0)"),
    ROW("cv", "K", TB_OPT_SIZE, opt.cv_folds, 2, 100, 0, "also report stratified K-fold mean and std on the training rows"),
    ROW("test-fraction", "F", TB_OPT_DOUBLE, opt.test_fraction, 0, 1, TB_OPT_MIN_OPEN | TB_OPT_MAX_OPEN,
        "held-out share without --test (default 0.2)"),
    ROW("calibration-fraction", "F", TB_OPT_DOUBLE, opt.calibration_fraction, 0, 0.9, TB_OPT_MAX_OPEN,
        "training share held out (grouped, stratified) to\ncalibrate conformal sets and intervals; 0 = none (0.1)"),
    ROW("raps-lambda", "X", TB_OPT_DOUBLE, opt.raps_lambda, 0, 1e9, 0, "RAPS penalty per rank beyond k-reg (0.01)"),
    ROW("raps-k-reg", "N", TB_OPT_SIZE, opt.raps_k_reg, 0, 65535, 0, "RAPS ranks free of penalty (2 up to 16 genres, else 5)"),
    ROW("no-twins", NULL, TB_OPT_OFF, opt.twins, 0, 0, 0,
        "genre: do not answer rows equal to training rows (every\ninput the same) with those rows' genres"),
    ROW("twins-prior", "X", TB_OPT_DOUBLE, opt.twins_prior, 0, 1e9, 0,
        "genre: weight of the model's probabilities beside the\ntwins' genre counts (0.1; 0 = the counts alone)"),
    ROW("label", "COL", TB_OPT_STRING, ds_opt.label, 0, 0, 0, "the genre column (default: detected by name)"),
    ROW("id", "COL", TB_OPT_STRING, ds_opt.id, 0, 0, 0, "the track id column"),
    ROW("popularity", "COL", TB_OPT_STRING, ds_opt.popularity, 0, 0, 0, "the popularity column"),
    ROW("artists", "COL", TB_OPT_STRING, ds_opt.artists, 0, 0, 0, "the artists column"),
    ROW("track-name", "COL", TB_OPT_STRING, ds_opt.name, 0, 0, 0, "the track name column"),
    ROW("features", "a,b,c", TB_OPT_STRING, ds_opt.features, 0, 0, 0,
        "exactly these input columns (default: the audio columns\npresent, plus popularity for the genre task)"),
    ROW("embedding", "KIND", TB_OPT_STRING, embedding, 0, 0, 0,
        "recommend: how tracks become vectors: genre (default when\nthe table has genres: a classifier's genre probabilities\n"
        "beside the standardized features, catalog tracks by their\nknown genres; --model picks the classifier, default gbdt),\n"
        "standardized (the standardized audio features; the default\nwithout genres or with --feature-weights) or mlp (the\n"
        "last hidden layer of a genre network; --hidden etc. apply)"),
    {"index", "KIND", TB_OPT_CUSTOM, 0, 0, 0,
     "recommend: auto (default: hnsw from 500,000 tracks on, else\nexact), exact (every query scans every track) or hnsw (also\n"
     "an approximate HNSW graph, hnswlib, stored with the index;\nthe report gives its recall against exact search)",
     parse_index, 0, NULL},
    ROW("genre-weight", "W", TB_OPT_DOUBLE, genre_weight, 0, 1, TB_OPT_MIN_OPEN | TB_OPT_MAX_OPEN,
        "--embedding genre: the genres' share of the cosine (0.5)"),
    ROW("feature-weights", "a=w,b=w", TB_OPT_STRING, feature_weights, 0, 0, 0,
        "recommend: weight of named features in the\nembedding (default 1 each; 0 drops a feature)"),
    ROW("report", "FILE", TB_OPT_STRING, report, 0, 0, 0, "write the evaluation as JSON"),
    ROW("predict", "FILE", TB_OPT_STRING, predict, 0, 0, 0,
        "label an unlabelled table (with --out FILE): writes\ntrack_id,genre[,popularity] with the models just trained;\n"
        "without --data, with the versions --db (a database or a\nsnapshot directory) serves, pinned else published, "
        "reading\nand writing in chunks"),
    ROW("out", "FILE", TB_OPT_STRING, out, 0, 0, 0, "where --predict writes"),
    ROW("proba", NULL, TB_OPT_ON, proba, 0, 0, 0, "with --predict: add one p_GENRE column per genre"),
    ROW("explain", NULL, TB_OPT_ON, explain, 0, 0, 0,
        "with --predict: add TASK_base and one why_TASK_FEATURE\ncolumn per input: each feature's exact contribution to the\n"
        "predicted genre's score or to the popularity (tree and\nlinear models; see /v1/genre/explain)"),
    {"log-level", "L", TB_OPT_CUSTOM, 0, 0, 0, "debug | info | warn | error (default info)", tb_log_level_option, 0, NULL},
};

#define MAX_GROUPS 16

/* The trainer's group, then one per parameter table (families sharing a table share a group). */
static size_t option_groups(cli *c, tb_opt_group *g) {
    size_t n = 0;
    g[n++] = (tb_opt_group){NULL, cli_rows, sizeof cli_rows / sizeof cli_rows[0], c};
    for (size_t i = 0; tb_model_ops_at(i) && n < MAX_GROUPS; i++) {
        const tb_model_ops *ops = tb_model_ops_at(i);
        int seen = 0;
        for (size_t j = 1; j < n; j++)
            seen |= g[j].rows == ops->params;
        if (ops->n_params && !seen)
            g[n++] = (tb_opt_group){ops->params_title, ops->params, ops->n_params, &c->opt.params};
    }
    return n;
}

static void usage(FILE *f, const tb_opt_group *g, size_t n) {
    fprintf(f, "usage: timbre-train --data TRAIN.csv[.gz] [options]\n"
               "       timbre-train --predict FILE --out FILE --db DB\n"
               "       timbre-train models list|pin|unpin|rm|prune ...\n\n");
    tb_opt_usage(f, &g[0]);
    fprintf(f, "\nModel families (--model): %s. Their options (a flag listed under\n"
               "several families sets each of them):\n", tb_model_kinds());
    for (size_t i = 1; i < n; i++)
        tb_opt_usage(f, &g[i]);
}

/* "mlp" or "mlp, x": the families with a capability, for messages. */
static void families_with(int (*has)(const tb_model_ops *), char *out, size_t len) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; tb_model_ops_at(i) && used < len; i++)
        if (has(tb_model_ops_at(i)))
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "", tb_model_ops_at(i)->kind);
}

static int learns_two_heads(const tb_model_ops *ops) { return ops->multitask; }
static int learns_sets(const tb_model_ops *ops) { return ops->multilabel; }

/* A family flag needs a family that has it: --model names one, or (want_default) the default may. */
static int check_family(const cli *c, const char *flag, int (*has)(const tb_model_ops *), int default_ok) {
    const tb_model_ops *ops = c->opt.model_kind ? tb_model_ops_find(c->opt.model_kind) : NULL;
    if (ops ? has(ops) : default_ok)
        return 0;
    char names[128];
    families_with(has, names, sizeof names);
    tb_log(TB_LOG_ERROR, "%s needs a family that supports it: --model %s", flag, names);
    return -1;
}

static int check_combinations(cli *c) {
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
    const tb_embedder_ops *embedder = c->embedding ? tb_embedder_ops_find(c->embedding) : NULL;
    if (c->embedding && !embedder) {
        tb_log(TB_LOG_ERROR, "--embedding '%s': known embeddings are %s", c->embedding, tb_embedder_kinds());
        return -1;
    }
    if (embedder && !embedder->weighted && c->feature_weights) {
        tb_log(TB_LOG_ERROR, "--feature-weights weighs the standardized embedding, not --embedding %s", c->embedding);
        return -1;
    }
    if (c->opt.params.aux_weight > 0.0) {
        if (check_family(c, "--multitask", learns_two_heads, 0))
            return -1;
        c->opt.popularity_feature = 0; /* the popularity head's target cannot be an input */
    }
    if (c->multilabel) {
        if (check_family(c, "--multilabel", learns_sets, 1))
            return -1;
        if (c->predict || c->opt.params.aux_weight > 0.0 || c->opt.cv_folds || c->compare) {
            tb_log(TB_LOG_ERROR, "--multilabel does not combine with --predict, --multitask, --cv or --model all");
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

/* Returns 0 to go on, 1 to exit 0 (help), -1 to exit 2. */
int tb_train_parse_args(int argc, char **argv, cli *c) {
    tb_opt_group groups[MAX_GROUPS];
    size_t n = option_groups(c, groups);
    int help;
    if (tb_opt_parse(argc, argv, groups, n, &help) != TB_OK) {
        tb_log(TB_LOG_ERROR, "%s", tb_error_message());
        return -1;
    }
    if (help) {
        usage(stdout, groups, n);
        return 1;
    }
    return check_combinations(c);
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
