/* k-nearest neighbours: hand-computed votes and means, tie order, the blob round trip and refusals. */
#include "check.h"
#include "model.h"
#include "model_checks.h"

int main(void) {
    /* Six rows on a line; classes 0 0 0 1 1 1; targets 1..6. */
    double X[6] = {0, 1, 2, 10, 11, 12};
    int32_t y[6] = {0, 0, 0, 1, 1, 1};
    double target[6] = {1, 2, 3, 4, 5, 6};
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_neighbors = 3;
    tb_train_data cls = {.X = X, .n = 6, .d = 1, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 2};
    tb_model *m = NULL;
    CHECK(tb_model_train("knn", &cls, &p, &m) == TB_OK);
    double out[2], x;
    x = 1.2; /* nearest 1, 2, 0: all class 0 */
    tb_model_predict(m, &x, out);
    CHECK_NEAR(out[0], 1.0, 1e-12);
    CHECK_NEAR(out[1], 0.0, 1e-12);
    x = 5.0; /* distances 5, 4, 3 | 5, 6, 7: rows 2, 1 and a tie at 5 between rows 0 and 3 → row 0 */
    tb_model_predict(m, &x, out);
    CHECK_NEAR(out[0], 1.0, 1e-12);
    x = 7.0; /* 5 (row 2), 3 (row 3), 4 (row 4): two of class 1 */
    tb_model_predict(m, &x, out);
    CHECK_NEAR(out[0], 1.0 / 3.0, 1e-12);
    CHECK_NEAR(out[1], 2.0 / 3.0, 1e-12);
    check_model_round_trip(m, &x); /* same votes after a round trip; truncations refused */
    tb_model_free(m);

    tb_train_data reg = {.X = X, .n = 6, .d = 1, .task = TB_TASK_REGRESS, .target = target};
    p.n_neighbors = 2;
    CHECK(tb_model_train("knn", &reg, &p, &m) == TB_OK);
    x = 10.4; /* rows 3 and 4: (4 + 5) / 2 */
    tb_model_predict(m, &x, out);
    CHECK_NEAR(out[0], 4.5, 1e-6);
    tb_model_free(m);
    p.n_neighbors = 100; /* more neighbours than rows: all rows vote */
    CHECK(tb_model_train("knn", &cls, &p, &m) == TB_OK);
    tb_model_predict(m, &x, out);
    CHECK_NEAR(out[0], 0.5, 1e-12);
    tb_model_free(m);
    p.n_neighbors = 5000;
    m = NULL;
    CHECK_ERR(tb_model_train("knn", &cls, &p, &m), TB_INVALID, "neighbours");
    return tb_test_done();
}
