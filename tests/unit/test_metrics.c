/* Metrics against scikit-learn 1.2.1 / SciPy on the same vectors (values printed by them). */
#include "check.h"
#include "metrics.h"

int main(void) {
    const int32_t yt[10] = {0, 1, 2, 2, 1, 0, 2, 1, 0, 0};
    const double P[30] = {.7, .2, .1, .1, .3, .6, .2, .2, .6, .1, .1, .8, .3, .5, .2,
                          .5, .25, .25, .2, .5, .3, .1, .6, .3, .4, .45, .15, .9, .05, .05};
    int32_t yp[10];
    tb_argmax_rows(P, 10, 3, yp);
    const int32_t expected_pred[10] = {0, 2, 2, 2, 1, 0, 1, 1, 1, 0};
    CHECK(memcmp(yp, expected_pred, sizeof yp) == 0);
    uint64_t cm[9];
    tb_confusion_matrix(yt, yp, 10, 3, cm);
    const uint64_t expected_cm[9] = {3, 1, 0, 0, 2, 1, 0, 1, 2};
    CHECK(memcmp(cm, expected_cm, sizeof cm) == 0);
    CHECK_NEAR(tb_accuracy(yt, yp, 10), 0.7, 1e-15);
    CHECK_NEAR(tb_micro_f1(cm, 3), 0.7, 1e-15);
    CHECK_NEAR(tb_macro_f1(cm, 3), 0.6984126984126985, 1e-15);
    CHECK_NEAR(tb_top_k_accuracy(yt, P, 10, 3, 2), 1.0, 0);
    CHECK_NEAR(tb_log_loss(yt, P, 10, 3), 0.6417360960088667, 1e-14);
    tb_class_metrics m;
    CHECK(tb_class_metrics_compute(yt, P, 10, 3, &m) == TB_OK);
    CHECK_NEAR(m.accuracy, 0.7, 1e-15);
    CHECK_NEAR(m.macro_f1, 0.6984126984126985, 1e-15);
    CHECK_NEAR(m.log_loss, 0.6417360960088667, 1e-14);

    /* Genre sets, against scikit-learn's f1_score (micro, macro), jaccard_score(average="samples"),
     * hamming_loss on the same 0/1 matrices (threshold 0.5). */
    const uint8_t T[20] = {1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0};
    const double PL[20] = {.9, .1, .6, .2, .3, .4, .1, .2, .7, .8, .2, .1, .1, .2, .3, .35, .2, .1, .55, .7};
    tb_multilabel_metrics ml;
    tb_multilabel_metrics_compute(T, PL, 5, 4, 0.5, &ml);
    CHECK_NEAR(ml.micro_f1, 0.7692307692307692, 1e-15);
    CHECK_NEAR(ml.macro_f1, 0.6666666666666666, 1e-15);
    CHECK_NEAR(ml.jaccard, 0.5, 1e-15);
    CHECK_NEAR(ml.hamming_loss, 0.15, 1e-15);
    CHECK_NEAR(ml.any_accuracy, 0.8, 1e-15);
    CHECK_NEAR(ml.mean_set_size, 1.2, 1e-15);

    /* Ties rank the higher class first, as sklearn's top_k_accuracy_score: both rows miss at k=1. */
    const int32_t yt2[2] = {0, 1};
    const double P2[6] = {.4, .4, .2, .3, .3, .4};
    CHECK_NEAR(tb_top_k_accuracy(yt2, P2, 2, 3, 1), 0.0, 0);
    CHECK_NEAR(tb_top_k_accuracy(yt2, P2, 2, 3, 2), 1.0, 0);

    /* Macro-F1 counts a label that is only predicted (sklearn: 0.5555...). */
    const int32_t a[3] = {0, 0, 1}, b[3] = {0, 2, 1};
    tb_confusion_matrix(a, b, 3, 3, cm);
    CHECK_NEAR(tb_macro_f1(cm, 3), 0.5555555555555555, 1e-15);
    /* A label absent from both is not averaged in. */
    uint64_t cm4[16];
    tb_confusion_matrix(a, b, 3, 4, cm4);
    CHECK_NEAR(tb_macro_f1(cm4, 4), 0.5555555555555555, 1e-15);

    /* Log-loss clips zero probabilities to 1e-15 (sklearn 1.2). */
    const double P3[2] = {0.0, 1.0};
    const int32_t y3[1] = {0};
    CHECK_NEAR(tb_log_loss(y3, P3, 1, 2), -log(1e-15), 1e-9);

    const double y[6] = {3, -0.5, 2, 7, 4.2, 4.2}, p[6] = {2.5, 0.0, 2, 8, 4.0, 5.1};
    tb_reg_metrics r;
    CHECK(tb_reg_metrics_compute(y, p, 6, &r) == TB_OK);
    CHECK_NEAR(r.mse, 0.39166666666666655, 1e-14);
    CHECK_NEAR(r.rmse, sqrt(0.39166666666666655), 1e-14);
    CHECK_NEAR(r.mae, 0.5166666666666666, 1e-14);
    CHECK_NEAR(r.r2, 0.9254638684780885, 1e-14);
    CHECK_NEAR(r.spearman, 0.9856107606091624, 1e-14);
    /* Constant truth: R² is 1 for a perfect prediction, 0 otherwise; Spearman undefined. */
    const double c[3] = {1, 1, 1}, q[3] = {1, 2, 3};
    CHECK_NEAR(tb_r2(c, c, 3), 1.0, 0);
    CHECK_NEAR(tb_r2(c, q, 3), 0.0, 0);
    double s;
    CHECK(tb_spearman(c, q, 3, &s) == TB_OK && isnan(s));
    return tb_test_done();
}
