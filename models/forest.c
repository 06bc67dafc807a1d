/* Random forest (Breiman: bootstrap rows, sqrt(d) features a node, fully grown CART trees) and
 * extra trees (Geurts et al.: all rows, one random cut per tried feature), balanced class weights
 * by default; predictions average the trees' leaf distributions or values. Trees grow
 * in parallel, each from its own RNG stream derived from (seed, tree index), so the forest is the
 * same for any thread count. */
#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "model.h"
#include "forest.h"
#include "tree.h"
#include "treeshap.h"

#define FOREST_FORMAT 1
#define FOREST_MAX_TREES 100000

typedef struct forest {
    tb_task task;
    size_t n_features;
    size_t n_classes; /* outputs: classes, or 1 */
    size_t n_trees;
    tb_tree *trees;
    size_t max_depth; /* of the deepest tree (TreeSHAP's scratch); set once trained or loaded */
    double shap_cost; /* TreeSHAP path steps a row (treeshap.h) */
} forest;

static void forest_free(void *impl) {
    forest *f = impl;
    if (!f)
        return;
    for (size_t t = 0; t < f->n_trees; t++)
        tb_tree_clear(&f->trees[t]);
    free(f->trees);
    free(f);
}

static void set_shap_sizes(forest *f) {
    f->max_depth = 0;
    f->shap_cost = 0.0;
    for (size_t t = 0; t < f->n_trees; t++) {
        tb_shap_tree st = {f->trees[t].nodes, f->trees[t].n_nodes, NULL, INT32_MAX, 0};
        long depth = tb_shap_tree_depth(&st);
        f->shap_cost += tb_shap_tree_cost(&st);
        f->max_depth = depth > (long)f->max_depth ? (size_t)depth : f->max_depth;
    }
}

static size_t resolve_mtry(const tb_train_params *p, tb_task task, size_t d) {
    double m;
    if (p->max_features <= 0.0)
        m = task == TB_TASK_CLASSIFY ? floor(sqrt((double)d)) : floor((double)d / 3.0);
    else if (p->max_features <= 1.0)
        m = floor(p->max_features * (double)d);
    else
        m = floor(p->max_features);
    if (m < 1.0)
        m = 1.0;
    return m > (double)d ? d : (size_t)m;
}

static tb_status forest_train_kind(const tb_train_data *data, const tb_train_params *p, int extra, void **ret_impl) {
    size_t n = data->n, k = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1;
    if (p->n_trees == 0 || p->n_trees > FOREST_MAX_TREES)
        return tb_error_with_field(TB_INVALID, "trees", "%zu trees: choose 1 to %d", p->n_trees, FOREST_MAX_TREES);
    if (p->min_samples_leaf == 0)
        return tb_error_with_field(TB_INVALID, "min_samples_leaf", "min_samples_leaf must be at least 1");
    if (n > UINT32_MAX)
        return tb_error(TB_LIMIT, "%zu rows: a forest takes at most %u", n, UINT32_MAX);
    tb_bins *bins = NULL;
    tb_status st = tb_bins_build(data->X, n, data->d, &bins);
    if (st != TB_OK)
        return st;
    double *class_weight = tb_malloc_n(k, sizeof *class_weight);
    forest *f = calloc(1, sizeof *f);
    if (!class_weight || !f || !(f->trees = tb_calloc_n(p->n_trees, sizeof *f->trees))) {
        free(class_weight);
        forest_free(f);
        tb_bins_free(bins);
        return tb_error(TB_NOMEM, "out of memory");
    }
    f->task = data->task;
    f->n_features = data->d;
    f->n_classes = k;
    f->n_trees = p->n_trees;
    for (size_t c = 0; c < k; c++)
        class_weight[c] = 1.0;
    int bootstrap = p->bootstrap;
    if (data->task == TB_TASK_CLASSIFY && p->class_weight_balanced) {
        size_t *count = tb_calloc_n(k, sizeof *count);
        if (!count) {
            free(class_weight);
            forest_free(f);
            tb_bins_free(bins);
            return tb_error(TB_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            count[data->y[i]]++;
        for (size_t c = 0; c < k; c++)
            class_weight[c] = count[c] ? (double)n / ((double)k * (double)count[c]) : 0.0;
        free(count);
    }
    tb_tree_spec spec = {
        .task = data->task,
        .y = data->y,
        .n_classes = k,
        .target = data->target,
        .max_depth = p->max_depth,
        .min_samples_leaf = p->min_samples_leaf,
        .mtry = resolve_mtry(p, data->task, data->d),
        .random_splits = extra,
    };
    int threads = p->threads > 0 ? p->threads : omp_get_max_threads();
    long n_trees = (long)p->n_trees;
    size_t done = 0;
    tb_status failed = TB_OK;
    char failure[256] = "";
#pragma omp parallel num_threads(threads)
    {
        tb_tree_work *work = tb_tree_work_new(bins, k);
        double *weight = tb_malloc_n(n, sizeof *weight);
#pragma omp for schedule(dynamic, 1)
        for (long t = 0; t < n_trees; t++) {
            tb_status tst = TB_OK;
            if (!work || !weight) {
                tst = tb_error(TB_NOMEM, "out of memory for tree workspace");
            } else {
                tb_rng rng;
                tb_rng_derive(&rng, p->seed, (uint64_t)t);
                if (bootstrap) {
                    memset(weight, 0, n * sizeof *weight);
                    for (size_t i = 0; i < n; i++)
                        weight[tb_rng_below(&rng, n)] += 1.0;
                } else {
                    for (size_t i = 0; i < n; i++)
                        weight[i] = 1.0;
                }
                if (data->task == TB_TASK_CLASSIFY)
                    for (size_t i = 0; i < n; i++)
                        weight[i] *= class_weight[data->y[i]];
                tst = tb_tree_grow(work, &spec, weight, &rng, &f->trees[t]);
            }
#pragma omp critical(forest_progress)
            {
                if (tst != TB_OK && failed == TB_OK) {
                    failed = tst;
                    snprintf(failure, sizeof failure, "%s", tb_error_message());
                }
                done++;
                if (p->progress)
                    p->progress(p->progress_ctx, done, p->n_trees);
            }
        }
        tb_tree_work_free(work);
        free(weight);
    }
    free(class_weight);
    tb_bins_free(bins);
    if (failed != TB_OK) {
        forest_free(f);
        return tb_error(failed, "%s", failure);
    }
    set_shap_sizes(f);
    *ret_impl = f;
    return TB_OK;
}

/* Adds tree `t`'s output for x into out (classes or the single value). */
static inline void add_tree(const forest *f, const tb_tree *tree, const double *x, double *out) {
    uint32_t leaf = tb_tree_leaf(tree, x);
    if (f->task == TB_TASK_CLASSIFY) {
        for (uint32_t e = tree->leaf_start[leaf]; e < tree->leaf_start[leaf + 1]; e++)
            out[tree->leaf_class[e]] += (double)tree->leaf_prob[e];
    } else {
        out[0] += tree->leaf_value[leaf];
    }
}

static tb_status forest_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    return forest_train_kind(data, p, 0, ret_impl);
}

static tb_status extra_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    return forest_train_kind(data, p, 1, ret_impl);
}

void tb_forest_accumulate(const void *impl, const double *x, double scale, double *out) {
    const forest *f = impl;
    double w = scale / (double)f->n_trees;
    for (size_t t = 0; t < f->n_trees; t++) {
        const tb_tree *tree = &f->trees[t];
        uint32_t leaf = tb_tree_leaf(tree, x);
        if (f->task == TB_TASK_CLASSIFY) {
            for (uint32_t e = tree->leaf_start[leaf]; e < tree->leaf_start[leaf + 1]; e++)
                out[tree->leaf_class[e]] += w * (double)tree->leaf_prob[e];
        } else {
            out[0] += w * tree->leaf_value[leaf];
        }
    }
}

static void forest_predict(const void *impl, const double *x, double *out) {
    const forest *f = impl;
    size_t k = f->n_classes;
    for (size_t c = 0; c < k; c++)
        out[c] = 0.0;
    for (size_t t = 0; t < f->n_trees; t++)
        add_tree(f, &f->trees[t], x, out);
    double inv = 1.0 / (double)f->n_trees;
    for (size_t c = 0; c < k; c++)
        out[c] *= inv;
}

/* Tree-major over a block of rows: each tree is walked by every row while it is in cache. The
 * per-row summation order (tree 0, 1, ...) is that of forest_predict, so results are identical. */
static void forest_predict_block(const void *impl, const double *x, size_t n, double *out) {
    const forest *f = impl;
    size_t k = f->n_classes, d = f->n_features;
    for (size_t i = 0; i < n * k; i++)
        out[i] = 0.0;
    for (size_t t = 0; t < f->n_trees; t++)
        for (size_t i = 0; i < n; i++)
            add_tree(f, &f->trees[t], x + i * d, out + i * k);
    double inv = 1.0 / (double)f->n_trees;
    for (size_t i = 0; i < n * k; i++)
        out[i] *= inv;
}

static size_t forest_n_trees(const void *impl) { return ((const forest *)impl)->n_trees; }

static void forest_save(const void *impl, tb_writer *w) {
    const forest *f = impl;
    tb_write_u32(w, (uint32_t)f->n_trees);
    for (size_t t = 0; t < f->n_trees; t++)
        tb_tree_save(&f->trees[t], f->task, w);
    tb_tree_covers_write(w, f->trees, f->n_trees);
}

static tb_status forest_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    uint32_t n_trees;
    tb_status st = tb_read_u32(r, &n_trees, "forest tree count");
    if (st != TB_OK)
        return st;
    if (n_trees == 0 || n_trees > FOREST_MAX_TREES)
        return tb_error(TB_CORRUPT, "forest: %u trees, expected 1 to %d", n_trees, FOREST_MAX_TREES);
    /* Every tree needs at least its three counts and one node (12 + 16 bytes). */
    if ((st = tb_reader_expect(r, n_trees, 28, "forest trees")) != TB_OK)
        return st;
    forest *f = calloc(1, sizeof *f);
    if (!f || !(f->trees = tb_calloc_n(n_trees, sizeof *f->trees))) {
        free(f);
        return tb_error(TB_NOMEM, "out of memory");
    }
    f->task = task;
    f->n_features = n_features;
    f->n_classes = n_outputs;
    for (uint32_t t = 0; t < n_trees; t++) {
        if ((st = tb_tree_load(r, task, n_features, n_outputs, &f->trees[t])) != TB_OK) {
            f->n_trees = t;
            forest_free(f);
            return tb_error_prefix(st, "forest tree %u", t);
        }
    }
    f->n_trees = n_trees;
    if ((st = tb_tree_covers_read(r, f->trees, n_trees)) != TB_OK) {
        forest_free(f);
        return st;
    }
    set_shap_sizes(f);
    *ret_impl = f;
    return TB_OK;
}

/* ---------- explanation ---------- */

typedef struct explained {
    const forest *f;
    const size_t *outputs;
} explained;

static void explained_tree(const void *ctx, size_t t, tb_shap_tree *out) {
    const tb_tree *tr = &((const explained *)ctx)->f->trees[t];
    *out = (tb_shap_tree){tr->nodes, tr->n_nodes, tr->cover, INT32_MAX, 0};
}

/* A leaf's share of the forest's output: its probabilities of the outputs asked (or its value),
 * divided by the tree count. */
static void explained_value(const void *ctx, size_t t, uint32_t leaf, size_t n_out, double *out) {
    const explained *e = ctx;
    const tb_tree *tr = &e->f->trees[t];
    double scale = 1.0 / (double)e->f->n_trees;
    if (e->f->task != TB_TASK_CLASSIFY) {
        out[0] = scale * tr->leaf_value[leaf];
        return;
    }
    for (size_t o = 0; o < n_out; o++)
        out[o] = 0.0;
    for (uint32_t i = tr->leaf_start[leaf]; i < tr->leaf_start[leaf + 1]; i++)
        for (size_t o = 0; o < n_out; o++)
            if (tr->leaf_class[i] == e->outputs[o])
                out[o] = scale * (double)tr->leaf_prob[i];
}

static double forest_explain_cost(const void *impl) { return ((const forest *)impl)->shap_cost; }

/* TreeSHAP in probability space (the value's space to regress): base + Σ phi = the prediction. */
static tb_status forest_explain(const void *impl, const double *x, const size_t *outputs, size_t n_out, double *phi,
                                double *base, double *value) {
    const forest *f = impl;
    explained e = {f, outputs};
    tb_shap_ensemble ens = {f->n_trees, f->n_features, f->max_depth, NULL, explained_tree, explained_value, &e};
    return tb_treeshap_ensemble(&ens, x, n_out, phi, base, value);
}

/* Forests balance class weights unless told not to; rf bootstraps, extra trees do not. */
static void forest_resolve(tb_train_params *p, int extra) {
    if (p->class_weight_balanced < 0)
        p->class_weight_balanced = 1;
    if (p->bootstrap < 0)
        p->bootstrap = !extra;
}

static void rf_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task, (void)n_outputs;
    forest_resolve(p, 0);
}

static void extra_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task, (void)n_outputs;
    forest_resolve(p, 1);
}

static const tb_opt forest_params[] = {
    TB_PARAM("trees", "N", TB_OPT_SIZE, n_trees, 1, FOREST_MAX_TREES, 0, "trees", "trees in the forest (default 100)"),
    TB_PARAM_MAX_DEPTH,
    TB_PARAM("min-samples-leaf", "N", TB_OPT_SIZE, min_samples_leaf, 1, 1e9, 0, "min_samples_leaf",
             "fewest training rows in a leaf (default 1)"),
    TB_PARAM("max-features", "X", TB_OPT_DOUBLE, max_features, 0, 1e6, TB_OPT_MIN_OPEN, "max_features",
             "features tried per split: a fraction in (0,1] or a count\n(default sqrt(d) for genre, d/3 for popularity; 0 in\n"
             "the report)"),
    TB_PARAM_CLASS_WEIGHT,
    TB_PARAM("bootstrap", NULL, TB_OPT_ON, bootstrap, 0, 0, 0, "bootstrap",
             "sample rows with replacement for each tree (rf does by\ndefault, extra does not)"),
    TB_PARAM("no-bootstrap", NULL, TB_OPT_OFF, bootstrap, 0, 0, 0, NULL, "do not"),
};

#define FOREST_PARAMS                                                                    \
    .params_title = "rf, extra (random forest, extremely randomized trees):", .params = forest_params, \
    .n_params = sizeof forest_params / sizeof forest_params[0], .steps = "trees",                       \
    .steps_bound = offsetof(tb_train_params, n_trees)

const tb_model_ops tb_forest_ops = {
    .kind = "rf",
    .format_version = FOREST_FORMAT,
    FOREST_PARAMS,
    .resolve = rf_resolve,
    .train = forest_train,
    .predict = forest_predict,
    .predict_block = forest_predict_block,
    .n_steps = forest_n_trees,
    .explain = forest_explain,
    .explain_cost = forest_explain_cost,
    .explain_space = "probability",
    .save = forest_save,
    .load = forest_load,
    .free = forest_free,
};

const tb_model_ops tb_extra_ops = {
    .kind = "extra",
    .format_version = FOREST_FORMAT,
    FOREST_PARAMS,
    .resolve = extra_resolve,
    .train = extra_train,
    .predict = forest_predict,
    .predict_block = forest_predict_block,
    .n_steps = forest_n_trees,
    .explain = forest_explain,
    .explain_cost = forest_explain_cost,
    .explain_space = "probability",
    .save = forest_save,
    .load = forest_load,
    .free = forest_free,
};
