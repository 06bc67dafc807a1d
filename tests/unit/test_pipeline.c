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
    /* PCA against scikit-learn (StandardScaler, then PCA(n_components=2)): the same components up
     * to sign (ours: largest coefficient positive), the same variance shares and projections. */
    const double Y[18] = {1, 2, 3, 2, 1, 5, 3, 4, 4, 4, 3, 8, 5, 6, 7, 6, 5, 9};
    const double sk_comp[2][3] = {{-0.6261919528041436, -0.5398475244445469, -0.5625373663983819},
                                  {-0.06213818735882363, 0.7537683727516644, -0.6541957550390158}};
    const double sk_row0[2] = {2.172017274296996, 0.33742001220686846};
    char *pnames[3] = {"a", "b", "c"};
    const size_t all6[6] = {0, 1, 2, 3, 4, 5};
    tb_pipeline *pc = NULL;
    CHECK(tb_pipeline_fit(Y, 3, pnames, all6, 6, &pc) == TB_OK);
    pc->impute = 0;
    CHECK(tb_pipeline_fit_pca(pc, Y, all6, 6, 2) == TB_OK);
    CHECK(pc->n_outputs == 2 && pc->impute == 1);
    CHECK_NEAR(pc->explained, 0.841994820960321 + 0.15373415221219716, 1e-12);
    double proj[2];
    tb_pipeline_transform(pc, Y, proj);
    for (int c = 0; c < 2; c++) {
        double sign = pc->components[c * 3] * sk_comp[c][0] < 0 ? -1.0 : 1.0;
        for (int j = 0; j < 3; j++)
            CHECK_NEAR(pc->components[c * 3 + j], sign * sk_comp[c][j], 1e-9);
        CHECK_NEAR(proj[c], sign * sk_row0[c], 1e-9);
    }
    /* A variance share: the first component holds 84%, so 0.8 keeps one and 0.9 keeps two. */
    tb_pipeline *one = NULL;
    CHECK(tb_pipeline_fit(Y, 3, pnames, all6, 6, &one) == TB_OK && tb_pipeline_fit_pca(one, Y, all6, 6, 0.8) == TB_OK);
    CHECK(one->n_outputs == 1);
    CHECK_NEAR(one->explained, 0.841994820960321, 1e-12);
    tb_pipeline_free(one);
    CHECK(tb_pipeline_fit(Y, 3, pnames, all6, 6, &one) == TB_OK && tb_pipeline_fit_pca(one, Y, all6, 6, 0.9) == TB_OK);
    CHECK(one->n_outputs == 2);
    CHECK(tb_pipeline_fit_pca(one, Y, all6, 6, 4) == TB_INVALID); /* more components than features */
    CHECK(tb_pipeline_fit_pca(one, Y, all6, 6, 1.5) == TB_INVALID);
    tb_pipeline_free(one);
    /* Round trip keeps the projection; every truncation is refused. */
    tb_writer pw;
    tb_writer_init(&pw);
    tb_pipeline_save(pc, &pw);
    tb_reader pr;
    tb_reader_init(&pr, pw.data, pw.len);
    tb_pipeline *back = NULL;
    CHECK(tb_pipeline_load(&pr, &back) == TB_OK);
    if (back) {
        double proj2[2];
        tb_pipeline_transform(back, Y, proj2);
        CHECK(back->n_outputs == 2 && memcmp(proj, proj2, sizeof proj) == 0);
    }
    tb_pipeline_free(back);
    tb_writer_free(&pw);
    tb_pipeline_free(pc);
    return tb_test_done();
}
