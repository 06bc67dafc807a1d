/* Random forest: known splits, accuracy on separable data, determinism across thread counts,
 * bit-identical round trips through the blob, and hostile blobs refused without crashing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blob_checks.h"
#include "check.h"
#include "model.h"
#include "model_checks.h"
#include "predictor.h"
#include "rng.h"

enum { N = 600, D = 3, K = 3 };

static void make_data(double *X, int32_t *y, double *target, uint64_t seed) {
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    for (size_t i = 0; i < N; i++) {
        int32_t c = (int32_t)(i % K);
        y[i] = c;
        X[i * D + 0] = c * 3.0 + tb_rng_uniform(&rng);         /* separates the classes */
        X[i * D + 1] = tb_rng_uniform(&rng);                   /* noise */
        X[i * D + 2] = (double)(tb_rng_below(&rng, 4));        /* few distinct values */
        target[i] = 2.0 * X[i * D + 0] + X[i * D + 2];
    }
}

static tb_model *train(const double *X, const int32_t *y, const double *target, tb_task task, int threads,
                       uint64_t seed, size_t trees) {
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_trees = trees;
    p.threads = threads;
    p.seed = seed;
    tb_train_data d = {.X = X, .n = N, .d = D, .task = task, .y = y, .n_classes = K, .target = target};
    tb_model *m = NULL;
    tb_status st = tb_model_train("rf", &d, &p, &m);
    if (st != TB_OK)
        fprintf(stderr, "train: %s\n", tb_error_message());
    return m;
}

static tb_predictor *wrap(tb_model *m, int classify) {
    char *names[D] = {"a", "b", "c"};
    static double X0[D] = {0, 0, 0};
    const size_t row0 = 0;
    tb_pipeline *pl = NULL;
    tb_pipeline_fit(X0, D, names, &row0, 1, &pl); /* mean 0, scale 1: identity */
    char *classes[K] = {"jazz", "pop", "rock"};
    tb_predictor *p = NULL;
    CHECK(tb_predictor_new(pl, m, classes, classify ? K : 0, &p) == TB_OK);
    return p;
}

static int blobs_equal(const tb_predictor *a, const tb_predictor *b) {
    void *x, *y;
    size_t nx, ny;
    tb_predictor_save(a, &x, &nx);
    tb_predictor_save(b, &y, &ny);
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return eq;
}

/* More raw inputs than a predictor takes (servers size buffers by the limit): refused even when
 * PCA narrows them to what the model sees. */
static void test_too_many_inputs(const double *X, const int32_t *y, const double *target) {
    enum { WIDE = TB_PREDICTOR_MAX_INPUTS + 1, ROWS = 8 };
    double *Xw = malloc(sizeof(double) * WIDE * ROWS);
    char **names = malloc(sizeof *names * WIDE);
    size_t rows[ROWS];
    for (size_t i = 0; i < ROWS; i++)
        rows[i] = i;
    for (size_t j = 0; j < WIDE; j++) {
        names[j] = malloc(16);
        snprintf(names[j], 16, "f%zu", j);
        for (size_t i = 0; i < ROWS; i++)
            Xw[i * WIDE + j] = (double)((i * 7 + j * 3) % 11);
    }
    tb_pipeline *pl = NULL;
    CHECK(tb_pipeline_fit(Xw, WIDE, names, rows, ROWS, &pl) == TB_OK);
    CHECK(pl && tb_pipeline_fit_pca(pl, Xw, rows, ROWS, 3) == TB_OK && pl->n_outputs == D);
    tb_model *m = train(X, y, target, TB_TASK_CLASSIFY, 1, 42, 2);
    char *classes[K] = {"jazz", "pop", "rock"};
    tb_predictor *p = NULL;
    CHECK_ERR(tb_predictor_new(pl, m, classes, K, &p), TB_INVALID, "1025 inputs: a model takes at most 1024");
    tb_pipeline_free(pl);
    tb_model_free(m);
    for (size_t j = 0; j < WIDE; j++)
        free(names[j]);
    free(names);
    free(Xw);
}

static double X[N * D], target[N], proba[N * K], proba2[N * K];
static int32_t y[N];

/* A single unbootstrapped stump finds the midpoint between the classes. */
static void stump_cuts_at_the_midpoint(void) {
    const double Xs[6] = {1, 2, 3, 10, 11, 12};
    const int32_t ys[6] = {0, 0, 0, 1, 1, 1};
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_trees = 1;
    p.bootstrap = 0;
    p.max_features = 1.0;
    tb_train_data d = {.X = Xs, .n = 6, .d = 1, .task = TB_TASK_CLASSIFY, .y = ys, .n_classes = 2};
    tb_model *m = NULL;
    CHECK(tb_model_train("rf", &d, &p, &m) == TB_OK);
    double out[2], x = 6.5;
    tb_model_predict(m, &x, out);
    CHECK(out[0] == 1.0 && out[1] == 0.0); /* x <= 6.5 goes left */
    x = 6.5000001;
    tb_model_predict(m, &x, out);
    CHECK(out[1] == 1.0);
    tb_model_free(m);
}

/* Separable classes: near-perfect, probabilities sum to 1; batch and single-row prediction agree
 * bit for bit; the same seed on other thread counts gives the same forest byte for byte; save →
 * load gives identical predictions; hostile blobs are refused (wrong magic, newer major version,
 * every truncation, random corruption). */
static void classifier_exact_and_reproducible(void) {
    tb_model *m1 = train(X, y, target, TB_TASK_CLASSIFY, 1, 42, 25);
    CHECK(m1 != NULL);
    if (!m1)
        return;
    tb_model_predict_batch(m1, X, N, 2, proba);
    int32_t pred[N];
    size_t correct = 0;
    int sums_ok = 1;
    for (size_t i = 0; i < N; i++) {
        size_t best = 0;
        double s = 0;
        for (size_t c = 0; c < K; c++) {
            s += proba[i * K + c];
            if (proba[i * K + c] > proba[i * K + best])
                best = c;
        }
        pred[i] = (int32_t)best;
        correct += pred[i] == y[i];
        sums_ok &= fabs(s - 1.0) < 1e-9;
    }
    CHECK(correct >= N - 2);
    CHECK(sums_ok);
    int same = 1;
    for (size_t i = 0; i < N; i++) {
        double out[K];
        tb_model_predict(m1, X + i * D, out);
        same &= memcmp(out, proba + i * K, sizeof out) == 0;
    }
    CHECK(same);

    tb_model *m2 = train(X, y, target, TB_TASK_CLASSIFY, 2, 42, 25);
    tb_model *m3 = train(X, y, target, TB_TASK_CLASSIFY, 2, 43, 25);
    tb_predictor *p1 = wrap(m1, 1), *p2 = wrap(m2, 1), *p3 = wrap(m3, 1);
    CHECK(blobs_equal(p1, p2));
    CHECK(!blobs_equal(p1, p3));

    void *blob;
    size_t len;
    CHECK(tb_predictor_save(p1, &blob, &len) == TB_OK);
    tb_predictor *back = NULL;
    CHECK(tb_predictor_load(blob, len, &back) == TB_OK);
    if (back) {
        CHECK_STR(back->class_names[2], "rock");
        for (size_t i = 0; i < N; i++)
            tb_predictor_predict(back, X + i * D, proba2 + i * K);
        CHECK(memcmp(proba, proba2, sizeof proba) == 0);
    }
    tb_predictor_free(back);

    unsigned char *bad = malloc(len);
    memcpy(bad, blob, len);
    bad[0] = 'X';
    CHECK_ERR(tb_predictor_load(bad, len, &back), TB_CORRUPT, "wrong magic");
    memcpy(bad, blob, len);
    bad[4] = 2;
    CHECK_ERR(tb_predictor_load(bad, len, &back), TB_VERSION, "format 2.2; this binary reads format 1");
    check_hostile_blobs(blob, len, 997, 300, 4, X, N, D, 9);
    free(bad);
    free(blob);
    tb_predictor_free(p1);
    tb_predictor_free(p2);
    tb_predictor_free(p3);

}

/* Regression: a smooth target is learned; the round trip is exact. */
static void regression_learns_and_round_trips(void) {
    void *blob;
    size_t len;
    tb_predictor *back = NULL;
    tb_model *r = train(X, y, target, TB_TASK_REGRESS, 2, 42, 30);
    CHECK(r != NULL);
    if (r) {
        double sse = 0, sst = 0, mean = 0;
        for (size_t i = 0; i < N; i++)
            mean += target[i] / N;
        for (size_t i = 0; i < N; i++) {
            double out;
            tb_model_predict(r, X + i * D, &out);
            sse += (out - target[i]) * (out - target[i]);
            sst += (target[i] - mean) * (target[i] - mean);
        }
        CHECK(1.0 - sse / sst > 0.95);
        tb_predictor *pr = wrap(r, 0);
        CHECK(tb_predictor_save(pr, &blob, &len) == TB_OK);
        CHECK(tb_predictor_load(blob, len, &back) == TB_OK);
        int exact = 1;
        for (size_t i = 0; i < N; i++) {
            double a, b;
            tb_predictor_predict(pr, X + i * D, &a);
            tb_predictor_predict(back, X + i * D, &b);
            exact &= a == b;
        }
        CHECK(exact);
        tb_predictor_free(back);
        tb_predictor_free(pr);
        free(blob);
    }

}

/* TreeSHAP in probability space (value space to regress) for rf and extra trees: base + Σ phi
 * equals the prediction within 1e-9 on 1,000 rows of noisy data (deep trees), and a blob round
 * trip explains bit-identically. */
static void explanations_add_up(const char *kind, tb_task task) {
    enum { NE = 1000 };
    static double Xe[NE * D], te[NE];
    static int32_t ye[NE];
    tb_rng rng;
    tb_rng_seed(&rng, 9);
    for (size_t i = 0; i < NE; i++) {
        for (size_t j = 0; j < D; j++)
            Xe[i * D + j] = tb_rng_uniform(&rng);
        ye[i] = (int32_t)((Xe[i * D] + 0.5 * tb_rng_uniform(&rng)) * 2) % K;
        te[i] = Xe[i * D] + Xe[i * D + 1] * Xe[i * D + 2] + 0.3 * tb_rng_uniform(&rng);
    }
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_trees = 12;
    tb_train_data d = {.X = Xe, .n = NE, .d = D, .task = task, .y = ye, .n_classes = K, .target = te};
    tb_model *m = NULL, *back = NULL;
    CHECK(tb_model_train(kind, &d, &p, &m) == TB_OK);
    back = model_reloaded(m);
    size_t k = task == TB_TASK_CLASSIFY ? K : 1, outputs[K] = {0, 1, 2};
    double worst = 0;
    int same = 1;
    for (size_t i = 0; m && back && i < NE; i++) {
        double phi[D * K], base[K], value[K], phi2[D * K], base2[K], value2[K], out[K];
        CHECK(m->ops->explain(m->impl, Xe + i * D, outputs, k, phi, base, value) == TB_OK);
        CHECK(back->ops->explain(back->impl, Xe + i * D, outputs, k, phi2, base2, value2) == TB_OK);
        same &= !memcmp(phi, phi2, sizeof phi[0] * D * k) && !memcmp(base, base2, sizeof base[0] * k);
        tb_model_predict(m, Xe + i * D, out);
        for (size_t c = 0; c < k; c++) {
            double sum = base[c];
            for (size_t j = 0; j < D; j++)
                sum += phi[j * k + c];
            worst = fmax(worst, fmax(fabs(sum - value[c]), fabs(value[c] - out[c])));
        }
    }
    fprintf(stderr, "%s explain (%s): additivity and prediction %.3g\n", kind,
            task == TB_TASK_CLASSIFY ? "classify" : "regress", worst);
    CHECK(m && back && worst < 1e-9 && same && !strcmp(m->ops->explain_space, "probability"));
    tb_model_free(m);
    tb_model_free(back);
}

static void bad_parameters_are_errors(void) {
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_trees = 0;
    tb_train_data d = {.X = X, .n = N, .d = D, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = K};
    tb_model *m = NULL;
    CHECK_ERR(tb_model_train("rf", &d, &p, &m), TB_INVALID, "0 trees");
    CHECK_ERR(tb_model_train("nope", &d, &p, &m), TB_INVALID, "unknown model 'nope'");
    d.n_classes = 1;
    tb_train_params_default(&p);
    CHECK_ERR(tb_model_train("rf", &d, &p, &m), TB_INVALID, "1 classes");
}

int main(void) {
    make_data(X, y, target, 1);
    test_too_many_inputs(X, y, target);
    stump_cuts_at_the_midpoint();
    classifier_exact_and_reproducible();
    regression_learns_and_round_trips();
    explanations_add_up("rf", TB_TASK_CLASSIFY);
    explanations_add_up("extra", TB_TASK_CLASSIFY);
    explanations_add_up("rf", TB_TASK_REGRESS);
    bad_parameters_are_errors();
    return tb_test_done();
}
