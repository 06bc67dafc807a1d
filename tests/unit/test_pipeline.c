/* Imputation + standardization, fitted on training rows only, and its round trip. */
#include <stdlib.h>

#include "check.h"
#include "pipeline.h"

int main(void) {
    /* Column 0: 1, 2, 3, NaN (training rows 0..2) and 100 (a test row, not fitted).
     * Column 1: constant 5 → scale 1. */
    const double X[10] = {1, 5, 2, 5, 3, 5, NAN, 5, 100, 5};
    char *names[2] = {"tempo", "mode"};
    const size_t rows[4] = {0, 1, 2, 3};
    tb_pipeline *p = NULL;
    CHECK(tb_pipeline_fit(X, 2, names, rows, 4, &p) == TB_OK);
    CHECK_NEAR(p->mean[0], 2.0, 1e-15);
    CHECK_NEAR(p->scale[0], sqrt(2.0 / 3.0), 1e-15); /* ddof 0, NaN ignored */
    CHECK_NEAR(p->mean[1], 5.0, 0);
    CHECK_NEAR(p->scale[1], 1.0, 0);
    double out[2];
    tb_pipeline_transform(p, X + 6, out); /* NaN → mean → 0 */
    CHECK_NEAR(out[0], 0.0, 0);
    tb_pipeline_transform(p, X + 4, out);
    CHECK_NEAR(out[0], 1.0 / sqrt(2.0 / 3.0), 1e-12);
    CHECK(tb_pipeline_find(p, "mode") == 1 && tb_pipeline_find(p, "x") == -1);

    /* Without imputation NaN passes through for models that route missing values themselves. */
    p->impute = 0;
    tb_pipeline_transform(p, X + 6, out);
    CHECK(isnan(out[0]) && out[1] == 0.0);

    tb_writer w;
    tb_writer_init(&w);
    tb_pipeline_save(p, &w);
    tb_reader r;
    tb_reader_init(&r, w.data, w.len);
    tb_pipeline *q = NULL;
    CHECK(tb_pipeline_load(&r, &q) == TB_OK);
    if (q) {
        CHECK_STR(q->names[0], "tempo");
        CHECK(q->impute == 0);
        CHECK(q->mean[0] == p->mean[0] && q->scale[0] == p->scale[0]);
    }
    tb_pipeline_free(q);
    /* Any truncation is refused. */
    int all_refused = 1;
    for (size_t cut = 0; cut < w.len; cut++) {
        tb_reader_init(&r, w.data, cut);
        q = NULL;
        all_refused &= tb_pipeline_load(&r, &q) != TB_OK && q == NULL;
    }
    CHECK(all_refused);
    tb_writer_free(&w);
    tb_pipeline_free(p);
    return tb_test_done();
}
