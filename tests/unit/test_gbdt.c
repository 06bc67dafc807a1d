/* Gradient boosting and extra trees: XOR and a step function learned exactly, training loss
 * falling every round, thread-count invariance, bit-identical round trips, hostile blobs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blob_checks.h"
#include "check.h"
#include "model.h"
#include "model_checks.h"
#include "predictor.h"
#include "rng.h"

static tb_model *fit(const char *kind, tb_train_data *d, tb_train_params *p) {
    tb_model *m = NULL;
    if (tb_model_train(kind, d, p, &m) != TB_OK)
        fprintf(stderr, "%s: %s\n", kind, tb_error_message());
    return m;
}

static size_t errors(const tb_model *m, const double *X, const int32_t *y, size_t n, size_t d) {
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        double out[8];
        tb_model_predict(m, X + i * d, out);
        size_t best = 0;
        for (size_t c = 1; c < m->n_outputs; c++)
            if (out[c] > out[best])
                best = c;
        wrong += (int32_t)best != y[i];
    }
    return wrong;
}

static tb_predictor *wrap(tb_model *m, size_t d, size_t k) {
    char *names[4] = {"a", "b", "c", "d"};
    char *classes[4] = {"w", "x", "y", "z"};
    double zero[4] = {0, 0, 0, 0};
    const size_t row0 = 0;
    tb_pipeline *pl = NULL;
    tb_pipeline_fit(zero, d, names, &row0, 1, &pl);
    tb_predictor *p = NULL;
    CHECK(tb_predictor_new(pl, m, classes, k, &p) == TB_OK);
    return p;
}

/* One stream of draws for every case, taken in this file's order. */
static tb_rng rng;

/* XOR of two signs: boosting learns it exactly; so does a single unbootstrapped CART tree
 * (extra trees: random cuts). */
static void xor_is_learned_exactly(void) {
    enum { NX = 400 };
    static double X[NX * 2];
    static int32_t y[NX];
    /* Quadrant sizes differ a little so the first greedy cut has some gain. */
    for (size_t i = 0; i < NX; i++) {
        double a = tb_rng_uniform(&rng) * 2 - 1, b = tb_rng_uniform(&rng) * 2 - 1;
        if (i % 7 == 0 && a < 0 && b < 0)
            a = -a;
        X[i * 2] = a;
        X[i * 2 + 1] = b;
        y[i] = (a > 0) != (b > 0);
    }
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_rounds = 60;
    p.max_leaves = 4;
    p.early_stopping = 0;
    p.learning_rate = 0.3;
    p.threads = 1;
    tb_train_data d = {.X = X, .n = NX, .d = 2, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 2};
    tb_model *xor_gbdt = fit("gbdt", &d, &p);
    CHECK(xor_gbdt && errors(xor_gbdt, X, y, NX, 2) == 0);
    tb_train_params one;
    tb_train_params_default(&one);
    one.n_trees = 1;
    one.bootstrap = 0;
    one.max_features = 1.0;
    tb_model *xor_tree = fit("rf", &d, &one);
    CHECK(xor_tree && errors(xor_tree, X, y, NX, 2) == 0);
    tb_model *xor_extra = fit("extra", &d, &one);
    CHECK(xor_extra && errors(xor_extra, X, y, NX, 2) == 0);
    tb_model_free(xor_tree);
    tb_model_free(xor_extra);
    tb_model_free(xor_gbdt);
}

/* A step function: one round with three leaves, no shrinkage or penalty, is exact. */
static void one_round_fits_a_step_exactly(void) {
    enum { NS = 300 };
    static double xs[NS], ys[NS];
    for (size_t i = 0; i < NS; i++) {
        xs[i] = (double)i / NS;
        ys[i] = xs[i] < 0.3 ? 1.0 : xs[i] < 0.7 ? 5.0 : 2.0;
    }
    tb_train_params sp;
    tb_train_params_default(&sp);
    sp.n_rounds = 1;
    sp.max_leaves = 3;
    sp.learning_rate = 1.0;
    sp.lambda = 0.0;
    sp.early_stopping = 0;
    tb_train_data sd = {.X = xs, .n = NS, .d = 1, .task = TB_TASK_REGRESS, .target = ys};
    tb_model *step = fit("gbdt", &sd, &sp);
    double worst = 0;
    for (size_t i = 0; step && i < NS; i++) {
        double out;
        tb_model_predict(step, &xs[i], &out);
        worst = fmax(worst, fabs(out - ys[i]));
    }
    CHECK(step && worst < 1e-6); /* leaf values are stored as float */
    double probe = 0.298, out_probe = 0; /* the cut sits midway between 89/300 and 90/300 */
    if (step)
        tb_model_predict(step, &probe, &out_probe);
    CHECK_NEAR(out_probe, 1.0, 1e-6);
    tb_model_free(step);
}

/* 4 classes, 3 features: the data of the cases below. */
enum { N = 800, D = 3, K = 4 };
static double X3[N * D];
static int32_t y3[N];
static tb_train_data d3 = {.X = X3, .n = N, .d = D, .task = TB_TASK_CLASSIFY, .y = y3, .n_classes = K};

static void make_four_classes(void) {
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            X3[i * D + j] = tb_rng_uniform(&rng);
        y3[i] = (int32_t)((X3[i * D] > 0.5) * 2 + (X3[i * D + 1] + 0.3 * tb_rng_uniform(&rng) > 0.6));
    }
}

/* Training loss falls every round; the same model from 1 thread as from 2; a sketch of 2 of the
 * 4 classes still learns; save → load gives identical probabilities; batched prediction the same
 * bits as row by row; corrupt blobs are refused or harmless. */
static void loss_falls_threads_agree_round_trip_exact(void) {
    double trace[40];
    tb_train_params lp;
    tb_train_params_default(&lp);
    lp.n_rounds = 40;
    lp.early_stopping = 0;
    lp.loss_trace = trace;
    lp.threads = 2;
    tb_model *m1 = fit("gbdt", &d3, &lp);
    int falling = m1 != NULL;
    for (int r = 1; r < 40; r++)
        falling &= trace[r] < trace[r - 1];
    CHECK(falling);
    CHECK(trace[39] < 0.5 * trace[0]);
    lp.threads = 1;
    lp.loss_trace = NULL;
    tb_model *m2 = fit("gbdt", &d3, &lp);
    tb_predictor *p1 = wrap(m1, D, K), *p2 = wrap(m2, D, K);
    void *b1, *b2;
    size_t l1, l2;
    CHECK(tb_predictor_save(p1, &b1, &l1) == TB_OK && tb_predictor_save(p2, &b2, &l2) == TB_OK);
    CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
    free(b2);
    lp.sketch = 2;
    tb_model *ms = fit("gbdt", &d3, &lp);
    CHECK(ms && errors(ms, X3, y3, N, D) < N / 5);
    tb_model_free(ms);
    tb_predictor *back = NULL;
    CHECK(tb_predictor_load(b1, l1, &back) == TB_OK);
    int same = back != NULL;
    for (size_t i = 0; same && i < N; i++) {
        double a[K], b[K];
        tb_predictor_predict(p1, X3 + i * D, a);
        tb_predictor_predict(back, X3 + i * D, b);
        same &= memcmp(a, b, sizeof a) == 0;
    }
    CHECK(same);
    /* Batched prediction (tree-major blocks) gives the same bits as row by row. */
    static double batch[N * K];
    tb_model_predict_batch(m1, X3, N, 2, batch);
    int batch_same = 1;
    for (size_t i = 0; i < N; i++) {
        double a[K];
        tb_model_predict(m1, X3 + i * D, a);
        batch_same &= memcmp(a, batch + i * K, sizeof a) == 0;
    }
    CHECK(batch_same);
    tb_predictor_free(back);
    check_hostile_blobs(b1, l1, 500, 300, 3, X3, N, D, 11);
    free(b1);
    tb_predictor_free(p1);
    tb_predictor_free(p2);

}

/* Early stopping keeps fewer trees than the cap on noisy labels. */
static void early_stopping_keeps_fewer_trees(void) {
    tb_train_params ep;
    tb_train_params_default(&ep);
    ep.n_rounds = 400;
    ep.early_stopping = 5;
    ep.learning_rate = 0.5;
    tb_model *me = fit("gbdt", &d3, &ep);
    CHECK(me && tb_model_steps(me) < 400);
    tb_model_free(me);

}

/* The blend (forest + boosting, weight chosen on a hold-out) round-trips exactly too. */
static void blend_round_trips_exactly(void) {
    tb_train_params bpp;
    tb_train_params_default(&bpp);
    bpp.n_rounds = 30;
    bpp.n_trees = 20;
    tb_model *bl = fit("blend", &d3, &bpp);
    CHECK(bl && errors(bl, X3, y3, N, D) < N / 5);
    tb_predictor *pb = bl ? wrap(bl, D, K) : NULL;
    void *blob = NULL;
    size_t len = 0;
    tb_predictor *bb = NULL;
    CHECK(pb && tb_predictor_save(pb, &blob, &len) == TB_OK && tb_predictor_load(blob, len, &bb) == TB_OK);
    static double bl_batch[N * K];
    if (bb) {
        tb_model_predict_batch(bb->model, X3, N, 2, bl_batch);
        int same_bl = 1;
        for (size_t i = 0; i < N; i++) {
            double a[K];
            tb_predictor_predict(pb, X3 + i * D, a);
            same_bl &= memcmp(a, bl_batch + i * K, sizeof a) == 0;
        }
        CHECK(same_bl);
    }
    free(blob);
    tb_predictor_free(bb);
    tb_predictor_free(pb);
}

/* Missing values get their own bin and a learned direction: here NaN marks class 1 in a feature
 * whose observed values separate class 0 from class 2. */
static void missing_values_learn_a_direction(void) {
    static double Xm[N];
    static int32_t ym[N];
    for (size_t i = 0; i < N; i++) {
        if (i % 3 == 1) {
            Xm[i] = NAN;
            ym[i] = 1;
        } else {
            ym[i] = i % 3 == 0 ? 0 : 2; /* observed values: class 0 below 0.4, class 2 above 0.6 */
            /* two decimals: few enough distinct values for exact bins */
            Xm[i] = round(100.0 * ((ym[i] == 0 ? 0.0 : 0.6) + 0.4 * tb_rng_uniform(&rng))) / 100.0;
        }
    }
    tb_train_params mp;
    tb_train_params_default(&mp);
    mp.n_rounds = 30;
    mp.early_stopping = 0;
    tb_train_data dm = {.X = Xm, .n = N, .d = 1, .task = TB_TASK_CLASSIFY, .y = ym, .n_classes = 3};
    tb_model *mm = fit("gbdt", &dm, &mp);
    CHECK(mm && errors(mm, Xm, ym, N, 1) == 0);
    if (mm) {
        double nan_in = NAN, o[3];
        tb_model_predict(mm, &nan_in, o);
        CHECK(o[1] > 0.9);
    }
    tb_model_free(mm);

}

/* TreeSHAP in margin space on boosting with k classes (k ≥ 16: the walk's binary16 leaf values)
 * and missing inputs: base + Σ phi = the margin within 1e-9 on 1,000 rows; the softmax of that
 * margin is the prediction (which sums in float); a blob round trip explains bit-identically. */
static void explanations_add_up(size_t k) {
    enum { NE = 1000, DE = 4 };
    static double Xe[NE * DE];
    static int32_t ye[NE];
    for (size_t i = 0; i < NE; i++) {
        for (size_t j = 0; j < DE; j++)
            Xe[i * DE + j] = tb_rng_uniform(&rng) < 0.1 ? NAN : tb_rng_uniform(&rng);
        double a = isnan(Xe[i * DE]) ? 0.5 : Xe[i * DE], b = isnan(Xe[i * DE + 1]) ? 0.2 : Xe[i * DE + 1];
        ye[i] = (int32_t)((size_t)(a * (double)k * 0.7 + b * (double)k * 0.3 + tb_rng_below(&rng, 2)) % k);
    }
    tb_train_params ep;
    tb_train_params_default(&ep);
    ep.n_rounds = 25;
    ep.early_stopping = 0;
    tb_train_data de = {.X = Xe, .n = NE, .d = DE, .task = TB_TASK_CLASSIFY, .y = ye, .n_classes = k};
    tb_model *m = fit("gbdt", &de, &ep);
    tb_model *back = NULL;
    back = model_reloaded(m);
    CHECK(m && back && m->ops->explain && !strcmp(m->ops->explain_space, "margin"));
    size_t outputs[32];
    for (size_t c = 0; c < k; c++)
        outputs[c] = c;
    double worst_sum = 0, worst_prob = 0;
    int same = 1;
    for (size_t i = 0; m && back && i < NE; i++) {
        const double *x = Xe + i * DE;
        double phi[DE * 32], base[32], value[32], phi2[DE * 32], base2[32], value2[32], prob[32];
        CHECK(m->ops->explain(m->impl, x, outputs, k, phi, base, value) == TB_OK);
        CHECK(back->ops->explain(back->impl, x, outputs, k, phi2, base2, value2) == TB_OK);
        same &= !memcmp(phi, phi2, DE * k * sizeof *phi) && !memcmp(base, base2, k * sizeof *base);
        tb_model_predict(m, x, prob);
        double max = -INFINITY, z = 0;
        for (size_t c = 0; c < k; c++) {
            double sum = base[c];
            for (size_t j = 0; j < DE; j++)
                sum += phi[j * k + c];
            worst_sum = fmax(worst_sum, fabs(sum - value[c]));
            max = fmax(max, value[c]);
        }
        for (size_t c = 0; c < k; c++)
            z += exp(value[c] - max);
        for (size_t c = 0; c < k; c++)
            worst_prob = fmax(worst_prob, fabs(exp(value[c] - max) / z - prob[c]));
    }
    fprintf(stderr, "gbdt explain, %zu classes: additivity %.3g, softmax against prediction %.3g\n", k, worst_sum,
            worst_prob);
    CHECK(worst_sum < 1e-9 && worst_prob < 1e-5 && same);
    tb_model_free(m);
    tb_model_free(back);
}

static void bad_parameters_are_refused(void) {
    tb_train_params bp;
    tb_train_params_default(&bp);
    tb_model *m = NULL;
    bp.learning_rate = -0.1;
    CHECK_ERR(tb_model_train("gbdt", &d3, &bp, &m), TB_INVALID, "learning rate");
    tb_train_params_default(&bp);
    bp.max_leaves = 1;
    CHECK_ERR(tb_model_train("gbdt", &d3, &bp, &m), TB_INVALID, "max_leaves");
    tb_train_params_default(&bp);
    bp.subsample = 0;
    CHECK_ERR(tb_model_train("gbdt", &d3, &bp, &m), TB_INVALID, "subsample");
}

int main(void) {
    tb_rng_seed(&rng, 5);
    xor_is_learned_exactly();
    one_round_fits_a_step_exactly();
    make_four_classes();
    loss_falls_threads_agree_round_trip_exact();
    early_stopping_keeps_fewer_trees();
    blend_round_trips_exactly();
    missing_values_learn_a_direction();
    explanations_add_up(3);
    explanations_add_up(20);
    bad_parameters_are_refused();
    return tb_test_done();
}
