/* k-nearest neighbours: hand-computed votes and means, tie order, the blob round trip and refusals. */
#include "check.h"
#include "model.h"

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
    /* Round trip, and every truncation refused. */
    tb_writer w;
    tb_writer_init(&w);
    CHECK(tb_model_save(m, &w) == TB_OK);
    tb_reader r;
    tb_reader_init(&r, w.data, w.len);
    tb_model *back = NULL;
    CHECK(tb_model_load(&r, &back) == TB_OK);
    double out2[2];
    tb_model_predict(back, &x, out2);
    CHECK(out2[0] == out[0] && out2[1] == out[1]);
    tb_model_free(back);
    int refused = 1;
    for (size_t cut = 0; cut < w.len; cut++) {
        tb_reader_init(&r, w.data, cut);
        back = NULL;
        refused &= tb_model_load(&r, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    tb_writer_free(&w);
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
