/* Global importances for the report: each feature's mean |contribution| (models/model.h's explain)
 * over evenly spaced test rows, to the predicted genre (its margin or probability) or to the
 * popularity. Families without an exact explanation get none. */
#ifndef TB_TRAINER_IMPORTANCE_H
#define TB_TRAINER_IMPORTANCE_H

#include "predictor.h"
#include "status.h"

#define TB_IMPORTANCE_ROWS 500 /* rows explained at most (evenly spaced through the test rows) */

/* raw: the dataset's raw matrix (rows × the predictor's inputs); pred: the test rows' outputs
 * (n × outputs), whose argmax is the genre explained. *ret (n_features values, caller frees) is
 * NULL, with TB_OK, when the family cannot explain. Parallel over rows on `threads` threads. */
tb_status tb_trainer_importances(const tb_predictor *p, const double *raw, const size_t *rows, size_t n,
                                 const double *pred, int threads, double **ret, size_t *ret_rows);

#endif
