/* Global importances for the report: each feature's mean |contribution| (models/model.h's explain)
 * over evenly spaced test rows, to the predicted genre (its margin or probability) or to the
 * popularity. Families without an exact explanation get none, nor models too costly to explain
 * TB_IMPORTANCE_MIN_ROWS rows within TB_IMPORTANCE_STEPS. */
#ifndef TB_TRAINER_IMPORTANCE_H
#define TB_TRAINER_IMPORTANCE_H

#include "predictor.h"
#include "status.h"

#define TB_IMPORTANCE_ROWS 500 /* rows explained at most (evenly spaced through the test rows) */
/* TreeSHAP path steps the rows may cost in all (model.h's explain_cost): 1.2-3.4 ns a step
 * measured, so a few tenths of a second; a deep forest gets fewer rows, and none under
 * TB_IMPORTANCE_MIN_ROWS (music_genre_50k's default rf: 3.5e8 steps a row, 0.41 s). */
#define TB_IMPORTANCE_STEPS 1e8
#define TB_IMPORTANCE_MIN_ROWS 10

/* raw: the dataset's raw matrix (rows × the predictor's inputs); pred: the test rows' outputs
 * (n × outputs), whose argmax is the genre explained. *ret (n_features values, caller frees) is
 * NULL, with TB_OK, when the family cannot explain. Parallel over rows on `threads` threads. */
tb_status tb_trainer_importances(const tb_predictor *p, const double *raw, const size_t *rows, size_t n,
                                 const double *pred, int threads, double **ret, size_t *ret_rows);

#endif
