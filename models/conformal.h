/* Split-conformal calibration: genre prediction sets and popularity intervals that hold the truth
 * with probability >= 1 - alpha for any alpha, from nonconformity scores of a calibration split
 * held out of the training rows (never used to fit the model). The sorted scores are kept with
 * the model, so a request at any alpha is a quantile look-up, no refit.
 *
 * Genre scores for class c given probabilities p (classes ranked by p, ties to the lower index):
 *   LAC   1 - p_c
 *   APS   mass of the classes ranked before c, plus p_c (randomized: plus u·p_c, u ~ U(0,1))
 *   RAPS  APS + lambda · max(0, rank(c) - k_reg), rank 1-based
 * The set is {c : score(c) <= qhat}, qhat the ceil((n+1)(1-alpha))-th smallest calibration score
 * (Mondrian: of the calibration rows of class c only). When that rank exceeds n, no finite qhat
 * gives the guarantee: the set is every genre (the interval infinite), and it is flagged.
 *
 * Popularity: |y - ŷ| ("absolute"), or |y - ŷ| / σ(x) ("normalized"), σ a difficulty model
 * (a forest predicting |y - ŷ|) fitted on one half of the calibration rows and calibrated on the
 * other, so the interval ŷ ± qhat·σ(x) widens for tracks that are hard to predict. */
#ifndef TB_CONFORMAL_H
#define TB_CONFORMAL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "model.h"
#include "pipeline.h"
#include "status.h"

typedef enum tb_set_method {
    TB_SET_LAC,
    TB_SET_APS,
    TB_SET_APS_RANDOMIZED,
    TB_SET_RAPS,
    TB_SET_METHODS
} tb_set_method;

typedef enum tb_interval_method { TB_INTERVAL_ABSOLUTE, TB_INTERVAL_NORMALIZED, TB_INTERVAL_METHODS } tb_interval_method;

const char *tb_set_method_name(tb_set_method m);      /* "lac", "aps", "aps" (randomized), "raps" */
const char *tb_interval_method_name(tb_interval_method m);

/* Immutable once built or loaded. */
typedef struct tb_calibration {
    tb_task task;
    size_t n;                         /* calibration rows */
    /* genre */
    size_t k;
    double raps_lambda;
    size_t raps_k_reg;
    double *scores[TB_SET_METHODS];   /* n ascending */
    size_t *class_start;              /* k + 1 offsets into class_scores */
    double *class_scores[TB_SET_METHODS]; /* grouped by true class, each group ascending */
    /* popularity */
    double *residuals;                /* n ascending: |y - ŷ| */
    size_t n_normalized;
    double *normalized;               /* n_normalized ascending: |y - ŷ| / σ(x) */
    tb_model *difficulty;             /* σ(x) on the pipeline's output; NULL without */
    double sigma_floor;               /* σ never below this (a share of the mean residual) */
} tb_calibration;

tb_calibration *tb_calibration_free(tb_calibration *c);

/* qhat: the ceil((n+1)(1-alpha))-th smallest of sorted[0..n). Returns 1 (qhat = +inf) when that
 * rank exceeds n, else 0. alpha in (0, 1). */
int tb_conformal_quantile(const double *sorted, size_t n, double alpha, double *ret_qhat);

/* Every class's score under `method` (u: the randomization, used by APS_RANDOMIZED only). */
void tb_genre_scores(tb_set_method method, const double *p, size_t k, double lambda, size_t k_reg, double u,
                     double *scores);

/* From calibration probabilities (n × k) and true classes. u gets one uniform per row for the
 * randomized APS scores (deterministic: drawn from seed). */
tb_status tb_calibration_genre_new(const double *proba, const int32_t *y, size_t n, size_t k, double lambda,
                                   size_t k_reg, uint64_t seed, tb_calibration **ret);
/* in_set: k flags. Returns the set size. qhat: the threshold (marginal), *ret_too_small: 1 when
 * some threshold was infinite (alpha below what n calibration rows support). Mondrian: per class;
 * class_qhat (k values, may be NULL) gets each class's threshold. */
size_t tb_genre_set(const tb_calibration *c, tb_set_method method, int mondrian, double alpha, const double *p, double u,
                    int *in_set, double *ret_qhat, double *class_qhat, int *ret_too_small);

/* Takes ownership of difficulty (may be NULL: then no normalized scores). sigma: σ(x) of each
 * calibration row for the normalized scores, from the rows fit_half[i] == 0; rows with
 * fit_half[i] == 1 trained the difficulty model and are left out of those scores. */
tb_status tb_calibration_popularity_new(const double *pred, const double *y, size_t n, tb_model *difficulty,
                                        const double *sigma, const uint8_t *fit_half, double sigma_floor,
                                        tb_calibration **ret);
/* σ of one raw row: the pipeline's transform with imputation (the difficulty forest needs values,
 * even when the model itself routes missing ones), the difficulty model, floored. */
double tb_difficulty_sigma(const tb_pipeline *pl, const tb_model *difficulty, double floor, const double *raw_row);
/* Interval around yhat (sigma ignored for absolute), clipped to [lo, hi]. Returns 1 when alpha is
 * too small (the interval is then [lo, hi] and *ret_qhat infinite). */
int tb_popularity_interval(const tb_calibration *c, tb_interval_method method, double alpha, double yhat, double sigma,
                           double lo, double hi, double *ret_lower, double *ret_upper, double *ret_qhat);

void tb_calibration_save(const tb_calibration *c, tb_writer *w);
tb_status tb_calibration_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, tb_calibration **ret);

#endif
