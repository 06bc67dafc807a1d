/* Shared check for model families: save → load gives the same outputs on a row, and every
 * truncation of the saved section is refused. */
#ifndef TB_TEST_MODEL_CHECKS_H
#define TB_TEST_MODEL_CHECKS_H

#include "check.h"
#include "model.h"

/* m saved and loaded back; NULL when either fails. */
static inline tb_model *model_reloaded(const tb_model *m) {
    tb_writer w;
    tb_writer_init(&w);
    tb_model *back = NULL;
    if (m && tb_model_save(m, &w) == TB_OK) {
        tb_reader r;
        tb_reader_init(&r, w.data, w.len);
        if (tb_model_load(&r, &back) != TB_OK)
            back = NULL;
    }
    tb_writer_free(&w);
    return back;
}

static inline void check_model_round_trip(const tb_model *m, const double *x) {
    tb_writer w;
    tb_writer_init(&w);
    CHECK(tb_model_save(m, &w) == TB_OK);
    tb_reader r;
    tb_reader_init(&r, w.data, w.len);
    tb_model *back = NULL;
    CHECK(tb_model_load(&r, &back) == TB_OK);
    double a[64], b[64];
    if (back && m->n_outputs <= 64) {
        tb_model_predict(m, x, a);
        tb_model_predict(back, x, b);
        CHECK(memcmp(a, b, m->n_outputs * sizeof *a) == 0);
    }
    tb_model_free(back);
    int refused = 1;
    for (size_t cut = 0; cut < w.len; cut++) {
        tb_reader_init(&r, w.data, cut);
        back = NULL;
        refused &= tb_model_load(&r, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    tb_writer_free(&w);
}

#endif
