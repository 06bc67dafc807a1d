/* Blend: gradient boosting and a second family (a random forest unless `blend_with` names
 * another) trained on the same rows, their predictions mixed as w·partner + (1−w)·boosting. They
 * err differently (averaged deep trees, or a network's smooth surface, against additive shallow
 * trees), so the mix beats both where each alone plateaus. w is chosen on a held-out share
 * (grouped by track, stratified by genre) that also serves boosting's early stopping; a partner
 * that early-stops (mlp) stops on it too and trains on every row, any other trains on the rest.
 * The partner is saved with its kind, so blobs say what they hold. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "forest.h"
#include "log.h"
#include "model.h"
#include "split.h"

#define BLEND_FORMAT 1
#define BLEND_STEPS 20 /* w is searched on a grid of 1/20 */

typedef struct blend {
    tb_task task;
    size_t k;
    double w;          /* weight of the partner */
    tb_model *forest;  /* the partner: kind "rf" unless params.blend_with said otherwise */
    int is_forest;     /* partner is rf or extra: added straight into the output */
    tb_model *boost;   /* kind "gbdt" */
} blend;

static void blend_free(void *impl) {
    blend *b = impl;
    if (!b)
        return;
    tb_model_free(b->forest);
    tb_model_free(b->boost);
    free(b);
}

/* o (boosting's outputs for x) becomes the mix. */
static void mix_partner(const blend *b, const double *x, double *o) {
    for (size_t c = 0; c < b->k; c++)
        o[c] *= 1.0 - b->w;
    if (b->is_forest) {
        tb_forest_accumulate(b->forest->impl, x, b->w, o);
        return;
    }
    double partner[1024]; /* boosting refuses more outputs */
    tb_model_predict(b->forest, x, partner);
    for (size_t c = 0; c < b->k; c++)
        o[c] += b->w * partner[c];
}

static void blend_predict(const void *impl, const double *x, double *out) {
    const blend *b = impl;
    tb_model_predict(b->boost, x, out);
    mix_partner(b, x, out);
}

static void blend_predict_block(const void *impl, const double *x, size_t n, double *out) {
    const blend *b = impl;
    b->boost->ops->predict_block(b->boost->impl, x, n, out);
    size_t d = b->boost->n_features;
    for (size_t i = 0; i < n; i++)
        mix_partner(b, x + i * d, out + i * b->k);
}

extern const tb_model_ops tb_gbdt_ops;

static int forest_kind(const char *kind) { return strcmp(kind, "rf") == 0 || strcmp(kind, "extra") == 0; }

/* A family that can stand beside boosting: registered, neither boosting itself nor a blend. */
static tb_status check_partner(const char *kind) {
    if (!tb_model_ops_find(kind) || strcmp(kind, "gbdt") == 0 || strcmp(kind, "blend") == 0)
        return tb_error(TB_INVALID, "blend: '%s' cannot be mixed with boosting (rf, extra, knn, linear, mlp can)", kind);
    return TB_OK;
}

/* Rounds boosting kept (the partner counts its own steps). */
static size_t blend_rounds(const void *impl) {
    const blend *b = impl;
    return tb_model_steps(b->boost);
}

static tb_status parse_partner(void *base, const char *arg) {
    tb_status st = check_partner(arg);
    if (st != TB_OK)
        return tb_error_with_field(st, "blend-with", "--blend-with: %s", tb_error_message());
    ((tb_train_params *)base)->blend_with = arg;
    return TB_OK;
}

static const tb_model_ops *blend_partner(const tb_train_params *p) {
    return tb_model_ops_find(p->blend_with ? p->blend_with : "rf");
}

static const tb_opt blend_params[] = {
    {"blend-with", "KIND", TB_OPT_STRING, offsetof(tb_train_params, blend_with), 0, 0,
     "the family mixed with boosting: rf (default), extra, knn,\nlinear or mlp (its own options apply; boosting takes\n"
     "gbdt's)",
     parse_partner, 0, "blend_with"},
};

/* Loss of the mix on the validation rows. Genres beside a partner that votes (forest, knn):
 * errors first (its near-0/1 vote shares make log-loss shun it even where it votes better),
 * log-loss to break ties; beside a smooth partner (linear, mlp): log-loss, which is what
 * conformal sets and top-k lists rank by. Popularity: squared error. */
static double mix_loss(const tb_train_data *data, const size_t *val, size_t n_val, size_t k, const double *pf,
                       const double *pb, double w, int by_errors) {
    double loss = 0.0;
    for (size_t i = 0; i < n_val; i++) {
        if (data->task == TB_TASK_CLASSIFY) {
            size_t c = (size_t)data->y[val[i]], best = 0;
            double pbest = -1.0;
            for (size_t j = 0; j < k; j++) {
                double pj = w * pf[i * k + j] + (1.0 - w) * pb[i * k + j];
                if (pj > pbest) {
                    pbest = pj;
                    best = j;
                }
            }
            double p = w * pf[i * k + c] + (1.0 - w) * pb[i * k + c];
            loss += (by_errors ? (double)(best != c) : 0.0) - (by_errors ? 1e-6 : 1.0) * log(fmax(p, 1e-15)) / (double)n_val;
        } else {
            double e = w * pf[i] + (1.0 - w) * pb[i] - data->target[val[i]];
            loss += e * e;
        }
    }
    return loss;
}

/* Boosting's defaults, except class weights: each member keeps its own (forest balanced,
 * boosting none) when none is asked for. */
static void blend_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    int class_weight = p->class_weight_balanced;
    tb_model_resolve_params(&tb_gbdt_ops, task, n_outputs, p);
    p->class_weight_balanced = class_weight;
    if (!p->blend_with)
        p->blend_with = "rf";
}

static tb_status blend_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    const char *partner = p->blend_with ? p->blend_with : "rf";
    tb_status st = check_partner(partner);
    int early_stops = tb_model_ops_find(partner)->early_stops;
    if (st != TB_OK)
        return st;
    size_t n = data->n, d = data->d, k = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1;
    double fraction = p->validation_fraction > 0.0 ? p->validation_fraction : 0.1;
    size_t *group = tb_malloc_n(n, sizeof *group), *fit = NULL, *val = NULL, n_fit = 0, n_val = 0;
    if (!group)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        group[i] = data->group ? data->group[i] : i;
    st = tb_split_train_test(data->task == TB_TASK_CLASSIFY ? data->y : NULL, group, n, fraction,
                                       p->seed ^ 0xb1e2dULL, &fit, &n_fit, &val, &n_val);
    free(group);
    if (st != TB_OK)
        return st;
    blend *b = calloc(1, sizeof *b);
    double *Xf = tb_malloc_n(n_fit * d, sizeof *Xf), *tf = NULL, *Xv = tb_malloc_n(n_val * d, sizeof *Xv);
    double *pf = tb_malloc_n(n_val * k, sizeof *pf), *pb = tb_malloc_n(n_val * k, sizeof *pb);
    int32_t *yf = NULL;
    size_t *gf = data->group ? tb_malloc_n(n_fit, sizeof *gf) : NULL;
    if (data->task == TB_TASK_CLASSIFY)
        yf = tb_malloc_n(n_fit, sizeof *yf);
    else
        tf = tb_malloc_n(n_fit, sizeof *tf);
    if (!b || !Xf || !Xv || !pf || !pb || (!yf && !tf) || (data->group && !gf)) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    b->task = data->task;
    b->k = k;
    /* Boosting sees every row, with the validation rows named as its early-stopping hold-out. */
    tb_train_data boost_data = *data;
    boost_data.val_rows = val;
    boost_data.n_val = n_val;
    if ((st = tb_model_train("gbdt", &boost_data, p, &b->boost)) != TB_OK)
        goto out;
    /* Any other partner trains on the same non-validation rows (copied: a forest wants them
     * contiguous). */
    for (size_t i = 0; !early_stops && i < n_fit; i++) {
        memcpy(Xf + i * d, data->X + fit[i] * d, d * sizeof *Xf);
        if (yf)
            yf[i] = data->y[fit[i]];
        else
            tf[i] = data->target[fit[i]];
        if (gf)
            gf[i] = data->group[fit[i]];
    }
    tb_train_data forest_data = {.X = Xf, .n = n_fit, .d = d, .task = data->task, .y = yf,
                                 .n_classes = data->n_classes, .target = tf, .group = gf, .names = data->names};
    if (early_stops) /* like boosting: every row, stopping on the validation rows */
        forest_data = boost_data;
    tb_train_params fp = *p;
    fp.progress = NULL;
    if (!forest_kind(partner)) { /* boosting's step and patience are not the partner's */
        fp.learning_rate = 0.0;
        fp.early_stopping = TB_EARLY_STOPPING_AUTO;
        fp.stop_on_log_loss = 1;
    }
    if ((st = tb_model_train(partner, &forest_data, &fp, &b->forest)) != TB_OK)
        goto out;
    b->is_forest = forest_kind(partner);
    for (size_t i = 0; i < n_val; i++)
        memcpy(Xv + i * d, data->X + val[i] * d, d * sizeof *Xv);
    tb_model_predict_batch(b->forest, Xv, n_val, p->threads, pf);
    tb_model_predict_batch(b->boost, Xv, n_val, p->threads, pb);
    double best = INFINITY;
    for (int step = 0; step <= BLEND_STEPS; step++) {
        double w = (double)step / BLEND_STEPS;
        double loss = mix_loss(data, val, n_val, k, pf, pb, w, b->is_forest || strcmp(partner, "knn") == 0);
        if (loss < best) {
            best = loss;
            b->w = w;
        }
    }
    tb_log(TB_LOG_INFO, "blend: %s weighs %.2f, boosting %.2f (chosen on %zu held-out rows)", partner, b->w, 1.0 - b->w,
           n_val);
out:
    free(fit);
    free(val);
    free(Xf);
    free(Xv);
    free(pf);
    free(pb);
    free(yf);
    free(tf);
    free(gf);
    if (st != TB_OK) {
        blend_free(b);
        return st;
    }
    *ret_impl = b;
    return TB_OK;
}

static void blend_save(const void *impl, tb_writer *w) {
    const blend *b = impl;
    tb_write_f64(w, b->w);
    tb_model_save(b->forest, w);
    tb_model_save(b->boost, w);
}

static tb_status blend_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    blend *b = calloc(1, sizeof *b);
    if (!b)
        return tb_error(TB_NOMEM, "out of memory");
    b->task = task;
    b->k = n_outputs;
    tb_status st = tb_read_f64(r, &b->w, "blend weight");
    if (st == TB_OK && !(b->w >= 0.0 && b->w <= 1.0))
        st = tb_error(TB_CORRUPT, "blend: weight %g outside [0, 1]", b->w);
    if (st == TB_OK)
        st = tb_model_load(r, &b->forest);
    if (st == TB_OK)
        st = tb_model_load(r, &b->boost);
    if (st == TB_OK && check_partner(b->forest->ops->kind) != TB_OK)
        st = tb_error(TB_CORRUPT, "blend: a %s cannot be a partner", b->forest->ops->kind);
    if (st == TB_OK &&
        (strcmp(b->boost->ops->kind, "gbdt") != 0 ||
         b->forest->task != task || b->boost->task != task || b->forest->n_features != n_features ||
         b->boost->n_features != n_features || b->forest->n_outputs != n_outputs || b->boost->n_outputs != n_outputs))
        st = tb_error(TB_CORRUPT, "blend: members do not match the blend's task, features or outputs");
    if (st == TB_OK)
        b->is_forest = forest_kind(b->forest->ops->kind);
    if (st != TB_OK) {
        blend_free(b);
        return st;
    }
    *ret_impl = b;
    return TB_OK;
}

const tb_model_ops tb_blend_ops = {
    .kind = "blend",
    .format_version = BLEND_FORMAT,
    .params_title = "blend (boosting mixed with another family):",
    .params = blend_params,
    .n_params = sizeof blend_params / sizeof blend_params[0],
    .also = &tb_gbdt_ops,
    .partner = blend_partner,
    .steps = "rounds",
    .steps_bound = offsetof(tb_train_params, n_rounds),
    .resolve = blend_resolve,
    .train = blend_train,
    .predict = blend_predict,
    .predict_block = blend_predict_block,
    .n_steps = blend_rounds,
    .save = blend_save,
    .load = blend_load,
    .free = blend_free,
};
