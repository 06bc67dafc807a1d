/* Classification and regression metrics, defined as scikit-learn defines them so numbers can be
 * compared side by side. Pure functions; caller owns every buffer. */
#ifndef TB_METRICS_H
#define TB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct tb_class_metrics {
    double accuracy;
    double micro_f1;   /* equals accuracy for single-label multi-class */
    double macro_f1;   /* unweighted mean over labels present in y_true or y_pred */
    double top3_accuracy;
    double log_loss;   /* probabilities clipped to [1e-15, 1 - 1e-15] */
} tb_class_metrics;

typedef struct tb_reg_metrics {
    double mse, rmse, mae, r2, spearman;
} tb_reg_metrics;

double tb_accuracy(const int32_t *y_true, const int32_t *y_pred, size_t n);
/* cm[t * k + p] counts rows with true class t predicted as p; cm has k*k entries. */
void tb_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k, uint64_t *cm);
double tb_macro_f1(const uint64_t *cm, size_t k);
double tb_micro_f1(const uint64_t *cm, size_t k);
/* proba is n × k row-major. Ties rank the higher class index first, as scikit-learn does. */
double tb_top_k_accuracy(const int32_t *y_true, const double *proba, size_t n, size_t k, size_t top);
double tb_log_loss(const int32_t *y_true, const double *proba, size_t n, size_t k);
/* argmax per row (lowest index wins ties, as numpy.argmax). */
void tb_argmax_rows(const double *proba, size_t n, size_t k, int32_t *out);
/* All of the above at once (needs a k*k scratch allocation). */
tb_status tb_class_metrics_compute(const int32_t *y_true, const double *proba, size_t n, size_t k,
                                   tb_class_metrics *ret);

/* Metrics of predicted genre sets (scikit-learn's definitions): truth is n × k 0/1, proba n × k;
 * a genre is predicted when its probability is >= threshold. micro/macro F1 over the k genres
 * (macro: genres present in truth or prediction), Jaccard averaged over rows (a row with both sets
 * empty counts 1), Hamming loss (share of wrong row × genre cells), any-genre accuracy (the most
 * probable genre is one of the row's), mean predicted set size. */
typedef struct tb_multilabel_metrics {
    double micro_f1, macro_f1, jaccard, hamming_loss, any_accuracy, mean_set_size;
} tb_multilabel_metrics;
void tb_multilabel_metrics_compute(const uint8_t *truth, const double *proba, size_t n, size_t k, double threshold,
                                   tb_multilabel_metrics *ret);

double tb_mse(const double *y, const double *p, size_t n);
double tb_mae(const double *y, const double *p, size_t n);
/* 1 - SS_res/SS_tot; when y is constant: 1 for a perfect prediction, else 0 (scikit-learn). */
double tb_r2(const double *y, const double *p, size_t n);
/* Pearson correlation of average ranks (ties share their mean rank); NaN if either is constant. */
tb_status tb_spearman(const double *a, const double *b, size_t n, double *ret);
tb_status tb_reg_metrics_compute(const double *y, const double *p, size_t n, tb_reg_metrics *ret);

#endif
