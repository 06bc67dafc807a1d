/* The one interface every model family implements (train / predict / save / load), and the
 * registry that finds a family by its kind name. A trained tb_model is immutable: predict never
 * allocates and may run on many threads at once over one shared model. */
#ifndef TB_MODEL_H
#define TB_MODEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "opt_table.h"
#include "progress.h"
#include "status.h"

typedef enum tb_task {
    TB_TASK_CLASSIFY = 1, /* outputs: one probability per class */
    TB_TASK_REGRESS = 2,  /* outputs: one value */
    TB_TASK_MULTILABEL = 3, /* outputs: one independent probability per class (a track may carry several) */
} tb_task;

/* Training inputs: X is n × d row-major, already transformed by the feature pipeline. */
typedef struct tb_train_data {
    const double *X;
    size_t n, d;
    tb_task task;
    const int32_t *y;      /* classify: class index per row */
    size_t n_classes;      /* classify, multilabel */
    const uint8_t *labels; /* multilabel: n × n_classes, 1 where the row carries the class */
    const double *target;  /* regress: value per row */
    const size_t *group;   /* optional: group (track) of each row, so internal hold-outs keep
                              a track's rows together; NULL = every row its own group */
    const size_t *val_rows; /* optional: rows to hold out for early stopping instead of drawing
                              them (families with early_stops; the other rows train) */
    size_t n_val;
    char *const *names;    /* optional: the d input names (mlp: key, mode, time_signature and
                              explicit become learned embeddings) */
} tb_train_data;

/* Multi-task (mlp with params.aux_weight > 0): a classify run also sets `target`, a regress run
 * also sets `y` and n_classes; the network learns both heads on one trunk and predicts the
 * primary one (data->task). */

/* Hyper-parameters; tb_train_params_default gives the documented defaults. */
typedef struct tb_train_params {
    /* forests (rf, extra) */
    size_t n_trees;          /* 100 */
    size_t max_depth;        /* 0 = unlimited (all families) */
    size_t min_samples_leaf; /* 1 */
    double max_features;     /* 0 = family default (sqrt(d) to classify, d/3 to regress);
                                in (0, 1]: a fraction of d; > 1: a count */
    int class_weight_balanced; /* 1: weight classes by n / (k * n_c); -1 = family default
                                  (forests: balanced; gbdt: none) */
    int bootstrap;           /* 1/0; -1 = family default (rf: 1, extra: 0) */
    /* gradient boosting (gbdt) */
    size_t n_rounds;         /* 500: an upper bound when early stopping is on */
    double learning_rate;    /* 0 = family default: gbdt 0.1 (shrinkage), mlp 0.001 (AdamW step) */
    size_t max_leaves;       /* 0 = by outputs: 31 up to 16 classes, 127 above (one tree serves
                                every class, so more classes need more leaves); best-first growth */
    double min_child_weight; /* 1: minimum hessian sum in a child */
    double lambda;           /* 1: L2 penalty on leaf values */
    double subsample;        /* 1: share of rows each round */
    double colsample;        /* 1: share of features each tree */
#define TB_EARLY_STOPPING_AUTO SIZE_MAX
    size_t early_stopping;   /* stop after this many rounds (epochs) without validation gain; 0 = off;
                                TB_EARLY_STOPPING_AUTO = family default: gbdt 20 rounds, mlp 10 epochs */
    double validation_fraction; /* 0.1: rows held out of training for early stopping */
    size_t sketch;           /* classes used to search splits; 0 = all up to 16, else 16 */
    double *loss_trace;      /* optional, n_rounds entries: training loss after each round */
    /* blend */
    const char *blend_with;  /* NULL = "rf": the family mixed with boosting (rf, extra, knn, linear, mlp) */
    /* k-nearest neighbours (knn) */
    size_t n_neighbors;      /* 0 = 15 */
    /* linear models (linear) */
    double l2;               /* 0 = 1: L2 penalty (logistic: scikit-learn's 1/C; ridge: alpha) */
    double l1;               /* > 0: regression is the lasso, scikit-learn's Lasso(alpha = l1) */
    /* neural network (mlp) */
#define TB_MLP_MAX_LAYERS 4
    tb_size_list hidden;     /* widths of the hidden layers (at most TB_MLP_MAX_LAYERS); none = 256, 128 */
    double dropout;          /* 0.1: share of hidden units dropped while training */
    size_t batch_size;       /* 0 = 256 */
    size_t epochs;           /* 0 = 200: an upper bound when early stopping is on */
    double weight_decay;     /* 1e-4: AdamW's decoupled weight decay */
    double aux_weight;       /* 0 = single task; > 0: multi-task, the other head's loss weight */
    int numeric_bins;        /* -1 = 16: piecewise-linear encoding of each numeric input over this
                                many training quantile bins, next to its value; 0 = the value only */
    int stop_on_log_loss;    /* genre: early stopping scores validation log-loss instead of macro-F1
                                (the blend asks it of an mlp partner: its probabilities are mixed) */
    /* all */
    uint64_t seed;           /* 42 */
    int threads;             /* 0 = all cores */
    tb_progress_fn progress; /* optional; called as trees (or rounds) finish */
    void *progress_ctx;
} tb_train_params;

void tb_train_params_default(tb_train_params *p);

/* A row of a family's parameter table (see tb_model_ops.params). */
#define TB_PARAM(flag, arg, type, field, min, max, open, key, help) \
    {flag, arg, type, offsetof(tb_train_params, field), min, max, help, NULL, open, key}
/* Rows several families share, word for word. */
#define TB_PARAM_MAX_DEPTH TB_PARAM("max-depth", "N", TB_OPT_SIZE, max_depth, 0, 10000, 0, "max_depth", \
                                    "deepest split of a tree; 0 = unlimited (default 0)")
#define TB_PARAM_CLASS_WEIGHT                                                                               \
    TB_PARAM("class-weight", NULL, TB_OPT_ON, class_weight_balanced, 0, 0, 0, "class_weight_balanced",     \
             "genre: weigh classes by n / (genres x n_genre) (forests do by\ndefault, boosting does not)"), \
        TB_PARAM("no-class-weight", NULL, TB_OPT_OFF, class_weight_balanced, 0, 0, 0, NULL, "do not")

typedef struct tb_model_ops tb_model_ops;
struct tb_model_ops {
    const char *kind;         /* "rf" */
    uint16_t format_version;  /* of this family's section of the blob */
    int handles_missing;      /* 1: takes NaN inputs and routes them itself (no imputation) */
    int multilabel;           /* 1: trains and loads TB_TASK_MULTILABEL models */
    int early_stops;          /* 1: takes tb_train_data.val_rows as its early-stopping hold-out */
    int multitask;            /* 1: with params.aux_weight > 0 it learns a second head on one trunk */
    /* The parameters it reads, as rows into tb_train_params: timbre-train's flags, their ranges
     * and help, and the names the report gives them (families may share one table: rf, extra). */
    const char *params_title; /* heading of those flags in --help */
    const tb_opt *params;
    size_t n_params;
    const struct tb_model_ops *also; /* a family whose parameters it takes too (blend: gbdt's) */
    /* Optional: the family a model trained with p mixes in (blend: its partner), whose parameters
     * the report shows beside. */
    const struct tb_model_ops *(*partner)(const tb_train_params *p);
    /* What training counts, for the progress bar and the report: "trees", "rounds" or "epochs"
     * (NULL: nothing); the count is bounded by the size_t parameter at steps_bound. */
    const char *steps;
    size_t steps_bound;
    /* Optional: replaces the "family default" markers of p (0, -1, TB_EARLY_STOPPING_AUTO) with
     * the values this family trains with, so the defaults live in one place; train then gets
     * resolved parameters (tb_model_train calls it). */
    void (*resolve)(tb_train_params *p, tb_task task, size_t n_outputs);
    tb_status (*train)(const tb_train_data *data, const tb_train_params *params, void **ret_impl);
    /* x: n_features transformed values; out: n_outputs values. No allocation, thread-safe. */
    void (*predict)(const void *impl, const double *x, double *out);
    /* Optional: n rows at once (x: n × n_features, out: n × n_outputs), bit-identical to calling
     * predict row by row, but free to reorder the work for cache locality. */
    void (*predict_block)(const void *impl, const double *x, size_t n, double *out);
    /* Steps the trained model kept: trees of a forest, rounds after early stopping, epochs run. */
    size_t (*n_steps)(const void *impl);
    /* Optional: exact per-feature contributions (TreeSHAP for trees) to outputs[0 .. n_out) for
     * the row x: phi gets n_features × n_out values (phi[j * n_out + o]), base and value n_out
     * each: base + Σ phi = value, the output in the family's explain_space (below) computed in
     * double precision (prediction may sum in float). TB_INVALID when this model cannot (a
     * boosted model saved before covers were kept). */
    tb_status (*explain)(const void *impl, const double *x, const size_t *outputs, size_t n_out, double *phi,
                         double *base, double *value);
    /* Optional, with explain: its cost for one row in TreeSHAP path steps (tb_shap_tree_cost summed;
     * a linear model: its inputs), so callers can bound how many rows they explain. */
    double (*explain_cost)(const void *impl);
    /* What explain's sums equal: "margin" (boosting's raw scores, before the softmax),
     * "probability" or "value". */
    const char *explain_space;
    /* Optional, multilabel: the probability from which a label joins the predicted set (0.5). */
    double (*threshold)(const void *impl);
    void (*save)(const void *impl, tb_writer *w);
    /* Must validate every count and index against the reader before trusting it. */
    tb_status (*load)(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl);
    void (*free)(void *impl);
};

/* Owned by whoever trained or loaded it; tb_model_free releases it. */
typedef struct tb_model {
    const tb_model_ops *ops;
    void *impl;
    tb_task task;
    size_t n_features;
    size_t n_outputs;
} tb_model;

/* The family registered under `kind`, or NULL. */
const tb_model_ops *tb_model_ops_find(const char *kind);
/* The i-th registered family (registry order), or NULL past the last. */
const tb_model_ops *tb_model_ops_at(size_t i);
/* Comma-separated list of registered kinds, for help and error messages. */
const char *tb_model_kinds(void);

tb_status tb_model_train(const char *kind, const tb_train_data *data, const tb_train_params *params,
                         tb_model **ret_model);
/* The parameters family `ops` trains with for this task and output count (what reports print). */
void tb_model_resolve_params(const tb_model_ops *ops, tb_task task, size_t n_outputs, tb_train_params *p);
tb_model *tb_model_free(tb_model *m);

static inline void tb_model_predict(const tb_model *m, const double *x, double *out) {
    m->ops->predict(m->impl, x, out);
}
/* The bound of what family ops counts (its steps_bound parameter in p), 0 when it counts none. */
static inline size_t tb_model_steps_bound(const tb_model_ops *ops, const tb_train_params *p) {
    return ops->steps ? *(const size_t *)((const char *)p + ops->steps_bound) : 0;
}
/* Steps the model kept (0 for a family that counts none) and its multilabel threshold (0.5). */
size_t tb_model_steps(const tb_model *m);
double tb_model_threshold(const tb_model *m);
/* Predicts n rows of X (n × n_features) into out (n × n_outputs), in parallel over rows. */
void tb_model_predict_batch(const tb_model *m, const double *X, size_t n, int threads, double *out);

/* Raw scores → probabilities in place: exp(v − max) / Σ, the form every classifier here shares. */
static inline void tb_softmax(double *v, size_t k) {
    double mx = v[0], sum = 0.0;
    for (size_t c = 1; c < k; c++)
        mx = v[c] > mx ? v[c] : mx;
    for (size_t c = 0; c < k; c++)
        sum += v[c] = exp(v[c] - mx);
    for (size_t c = 0; c < k; c++)
        v[c] /= sum;
}

/* Section: kind, family format version, task, n_features, n_outputs, then the family's bytes. */
tb_status tb_model_save(const tb_model *m, tb_writer *w);
/* Refuses an unknown kind or a family format version other than this binary's, naming both. */
tb_status tb_model_load(tb_reader *r, tb_model **ret_model);

#endif
