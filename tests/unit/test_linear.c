/* Linear models: ridge recovers an exact linear relation and matches the hand-solved penalized
 * answer; logistic regression separates two classes with calibrated-looking probabilities and
 * its gradient vanishes at the end; round trip and refusals. */
#include "check.h"
#include "model.h"
#include "model_checks.h"
#include "rng.h"

int main(void) {
    /* y = 2·x0 − 3·x1 + 5 on 200 random points: ridge with a tiny penalty recovers it. */
    enum { N = 200 };
    double X[N * 2], t[N];
    int32_t y[N];
    tb_rng rng;
    tb_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        X[2 * i] = tb_rng_uniform(&rng) * 2 - 1;
        X[2 * i + 1] = tb_rng_uniform(&rng) * 2 - 1;
        t[i] = 2 * X[2 * i] - 3 * X[2 * i + 1] + 5;
        y[i] = X[2 * i] + X[2 * i + 1] > 0;
    }
    tb_train_params p;
    tb_train_params_default(&p);
    p.l2 = 1e-9;
    tb_train_data reg = {.X = X, .n = N, .d = 2, .task = TB_TASK_REGRESS, .target = t};
    tb_model *m = NULL;
    CHECK(tb_model_train("linear", &reg, &p, &m) == TB_OK);
    double out[2], q[2] = {0.5, -0.25};
    tb_model_predict(m, q, out);
    CHECK_NEAR(out[0], 2 * 0.5 - 3 * -0.25 + 5, 1e-6);
    tb_model_free(m);
    /* Lasso: scikit-learn's Lasso(alpha=0.3) on 8 rows × 3 features (values printed by it). */
    double XL[24] = {1, 2, 0.5, 2, 0, 1.5, 3, 1, -1, 4, 3, 0, 5, -1, 2, 6, 2, 1, 7, 0, -0.5, 8, 1, 0.25};
    double tl[8] = {3.1, 2.0, 6.9, 7.2, 6.1, 11.8, 12.2, 13.9};
    tb_train_data las = {.X = XL, .n = 8, .d = 3, .task = TB_TASK_REGRESS, .target = tl};
    tb_train_params lp;
    tb_train_params_default(&lp);
    lp.l1 = 0.3;
    CHECK(tb_model_train("linear", &las, &lp, &m) == TB_OK);
    if (m) {
        double zero[3] = {0, 0, 0}, e0[3] = {1, 0, 0}, e2[3] = {0, 0, 1}, b0, b1, b2;
        tb_model_predict(m, zero, &b0);
        tb_model_predict(m, e0, &b1);
        tb_model_predict(m, e2, &b2);
        CHECK_NEAR(b0, 0.367648226573726, 1e-9);
        CHECK_NEAR(b1 - b0, 1.630490118228511, 1e-9);
        CHECK_NEAR(b2 - b0, -0.5128992412209028, 1e-9);
    }
    tb_model_free(m);
    /* A penalty above max |Xᵀy|/n zeroes every weight: the prediction is the mean. */
    lp.l1 = 100.0;
    CHECK(tb_model_train("linear", &las, &lp, &m) == TB_OK);
    if (m) {
        double q2[3] = {9, 9, 9}, o2;
        tb_model_predict(m, q2, &o2);
        CHECK_NEAR(o2, (3.1 + 2.0 + 6.9 + 7.2 + 6.1 + 11.8 + 12.2 + 13.9) / 8, 1e-12);
    }
    tb_model_free(m);
    lp.l1 = -1.0;
    m = NULL;
    CHECK(tb_model_train("linear", &las, &lp, &m) == TB_INVALID && !m);
    /* One input, penalty 1: w = Σxy / (Σx² + 1) when x and y are centred. x = ±1, y = 2x. */
    double x1[4] = {-1, 1, -1, 1}, t1[4] = {-2, 2, -2, 2};
    tb_train_data one = {.X = x1, .n = 4, .d = 1, .task = TB_TASK_REGRESS, .target = t1};
    p.l2 = 1.0;
    CHECK(tb_model_train("linear", &one, &p, &m) == TB_OK);
    double xq = 1.0;
    tb_model_predict(m, &xq, out);
    CHECK_NEAR(out[0], 8.0 / 5.0, 1e-9); /* Σxy = 8, Σx² = 4 */
    tb_model_free(m);
    /* Logistic: the diagonal splits the classes. */
    tb_train_data cls = {.X = X, .n = N, .d = 2, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 2};
    CHECK(tb_model_train("linear", &cls, &p, &m) == TB_OK);
    double far1[2] = {0.9, 0.9}, far0[2] = {-0.9, -0.9}, mid[2] = {0.5, -0.5};
    tb_model_predict(m, far1, out);
    CHECK(out[1] > 0.9 && fabs(out[0] + out[1] - 1.0) < 1e-12);
    tb_model_predict(m, far0, out);
    CHECK(out[0] > 0.9);
    tb_model_predict(m, mid, out);
    CHECK(out[0] > 0.3 && out[0] < 0.7);
    int correct = 0;
    for (int i = 0; i < N; i++) {
        tb_model_predict(m, X + 2 * i, out);
        correct += (out[1] > 0.5) == y[i];
    }
    CHECK(correct >= N - 6);
    check_model_round_trip(m, mid);
    /* Explanations: weight × input per feature, the intercept as base; base + Σ = the margin,
     * whose softmax is the prediction, on every training row. */
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        size_t outputs[2] = {0, 1};
        double phi[4], base[2], value[2];
        CHECK(m->ops->explain(m->impl, X + 2 * i, outputs, 2, phi, base, value) == TB_OK);
        tb_model_predict(m, X + 2 * i, out);
        for (int c = 0; c < 2; c++)
            worst = fmax(worst, fabs(base[c] + phi[c] + phi[2 + c] - value[c]));
        worst = fmax(worst, fabs(1.0 / (1.0 + exp(value[0] - value[1])) - out[1]));
    }
    CHECK(worst < 1e-12 && !strcmp(m->ops->explain_space, "margin"));
    tb_model_free(m);
    /* Two identical columns: the penalty splits the slope evenly. With x = y = 1..4 and an
     * unpenalized intercept, u = w1 + w2 minimizes 5(1 − u)² + u²/2, so u = 10/11 and the
     * prediction at x = 4 is 2.5 + 1.5 u. */
    double dup[8] = {1, 1, 2, 2, 3, 3, 4, 4}, td[4] = {1, 2, 3, 4}, q4[2] = {4, 4};
    tb_train_data col = {.X = dup, .n = 4, .d = 2, .task = TB_TASK_REGRESS, .target = td};
    p.l2 = 1.0;
    CHECK(tb_model_train("linear", &col, &p, &m) == TB_OK);
    tb_model_predict(m, q4, out);
    CHECK_NEAR(out[0], 2.5 + 1.5 * 10.0 / 11.0, 1e-9);
    tb_model_free(m);
    return tb_test_done();
}
