/* The trainer's conformal step: calibrate a fitted model on its held-out calibration rows, and
 * measure the sets and intervals on the test rows (coverage, size, empty sets, worst genre). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conformal.h"
#include "rng.h"
#include "trainer.h"

const double tb_conformal_alphas[TB_CONFORMAL_N_ALPHAS] = {0.01, 0.05, 0.1, 0.2};

static size_t raps_k_reg(const tb_trainer_options *opt, size_t k) {
    return opt->raps_k_reg ? opt->raps_k_reg : k <= 16 ? 2 : 5;
}

/* Difficulty model for normalized intervals: a forest predicting |y - ŷ| from the inputs, fitted
 * on the calibration rows whose track falls in one half (by a hash of the track's group). */
static tb_status fit_difficulty(const tb_predictor *p, const double *raw, const size_t *cal, size_t n_cal,
                                const double *resid, const uint8_t *half, const tb_trainer_options *opt,
                                tb_model **ret) {
    size_t d_in = p->pipeline->n_features, d = p->pipeline->n_outputs, n_fit = 0;
    for (size_t i = 0; i < n_cal; i++)
        n_fit += half[i];
    double *X = tb_malloc_n(n_fit * d + 1, sizeof *X), *t = tb_malloc_n(n_fit + 1, sizeof *t);
    tb_pipeline imputing = *p->pipeline;
    imputing.impute = 1; /* the forest needs values: impute even when the model routes NaN itself */
    if (!X || !t) {
        free(X);
        free(t);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t i = 0, j = 0; i < n_cal; i++)
        if (half[i]) {
            tb_pipeline_transform(&imputing, raw + cal[i] * d_in, X + j * d);
            t[j++] = resid[i];
        }
    tb_train_params params = {0};
    tb_train_params_default(&params);
    params.n_trees = 50;
    params.min_samples_leaf = 20;
    params.seed = opt->params.seed ^ 0xd1ffULL;
    params.threads = opt->threads;
    tb_train_data data = {.X = X, .n = n_fit, .d = d, .task = TB_TASK_REGRESS, .target = t};
    tb_status st = tb_model_train("rf", &data, &params, ret);
    free(X);
    free(t);
    return st;
}


tb_status tb_trainer_calibrate(tb_predictor *p, const tb_dataset *ds, const size_t *ds_group, const double *raw,
                               const size_t *cal, size_t n_cal, const double *pred, tb_target target,
                               const tb_trainer_options *opt) {
    tb_status st;
    tb_calibration *c = NULL;
    if (target == TB_TARGET_GENRE) {
        int32_t *y = tb_malloc_n(n_cal + 1, sizeof *y);
        if (!y)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n_cal; i++)
            y[i] = ds->y[cal[i]];
        size_t k = p->n_classes;
        st = tb_calibration_genre_new(pred, y, n_cal, k, opt->raps_lambda, raps_k_reg(opt, k),
                                      opt->params.seed ^ 0xca1ULL, &c);
        free(y);
    } else {
        double *y = tb_calloc_n(n_cal + 1, sizeof *y), *resid = tb_calloc_n(n_cal + 1, sizeof *resid),
               *sigma = tb_calloc_n(n_cal + 1, sizeof *sigma);
        uint8_t *half = tb_calloc_n(n_cal + 1, 1);
        tb_model *difficulty = NULL;
        if (!y || !resid || !sigma || !half) {
            st = tb_error(TB_NOMEM, "out of memory");
        } else {
            double mean = 0.0;
            for (size_t i = 0; i < n_cal; i++) {
                y[i] = ds->popularity[cal[i]];
                resid[i] = fabs(y[i] - pred[i]);
                mean += resid[i] / (double)n_cal;
                uint64_t h = (uint64_t)ds_group[cal[i]] * 0x9E3779B97F4A7C15ULL;
                half[i] = (uint8_t)(h >> 63);
            }
            st = fit_difficulty(p, raw, cal, n_cal, resid, half, opt, &difficulty);
            if (st == TB_OK) {
                double floor = fmax(0.05 * mean, 1e-6);
                for (size_t i = 0; i < n_cal; i++)
                    sigma[i] = tb_difficulty_sigma(p->pipeline, difficulty, floor, raw + cal[i] * p->pipeline->n_features);
                st = tb_calibration_popularity_new(pred, y, n_cal, difficulty, sigma, half, floor, &c);
                difficulty = NULL; /* owned by c, or freed on failure */
            }
        }
        tb_model_free(difficulty);
        free(y);
        free(resid);
        free(sigma);
        free(half);
    }
    if (st != TB_OK)
        return st;
    return tb_predictor_set_calibration(p, c);
}

static tb_conformal_row *next_row(tb_task_result *res) {
    return res->n_conformal < TB_CONFORMAL_MAX_ROWS ? &res->conformal[res->n_conformal++] : NULL;
}

tb_status tb_trainer_conformal_eval(const tb_predictor *p, const tb_dataset *ts, const double *raw_test,
                                    const size_t *test, size_t n_test, const double *pred, tb_target target,
                                    tb_task_result *res) {
    const tb_calibration *c = p->calibration;
    res->n_conformal = 0;
    if (!c || n_test == 0)
        return TB_OK;
    if (target == TB_TARGET_POPULARITY) {
        size_t d = p->pipeline->n_features;
        double *sigma = tb_malloc_n(n_test, sizeof *sigma);
        if (!sigma)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n_test; i++)
            sigma[i] = tb_predictor_sigma(p, raw_test + test[i] * d);
        for (int m = 0; m < TB_INTERVAL_METHODS; m++)
            for (size_t a = 0; a < TB_CONFORMAL_N_ALPHAS; a++) {
                double alpha = tb_conformal_alphas[a], covered = 0.0, width = 0.0;
                int too_small = 0;
                for (size_t i = 0; i < n_test; i++) {
                    double lo, hi, q, y = ts->popularity[test[i]];
                    too_small |= tb_popularity_interval(c, (tb_interval_method)m, alpha, pred[i], sigma[i], 0.0, 100.0,
                                                        &lo, &hi, &q);
                    covered += y >= lo && y <= hi;
                    width += hi - lo;
                }
                tb_conformal_row *r = next_row(res);
                if (r)
                    *r = (tb_conformal_row){alpha, tb_interval_method_name((tb_interval_method)m), 0,
                                            covered / (double)n_test, width / (double)n_test, 0.0, NAN, too_small};
            }
        free(sigma);
        return TB_OK;
    }
    /* Genre: each row's scores once per method; thresholds once per (method, alpha, class). */
    size_t k = c->k, n_cfg = (size_t)TB_SET_METHODS * TB_CONFORMAL_N_ALPHAS * 2;
    double *scores = tb_malloc_n(k, sizeof *scores), *qhat = tb_malloc_n(n_cfg * k, sizeof *qhat);
    double *hits = tb_calloc_n(n_cfg * k, sizeof *hits), *size = tb_calloc_n(n_cfg, sizeof *size);
    double *empty = tb_calloc_n(n_cfg, sizeof *empty), *class_n = tb_calloc_n(k, sizeof *class_n);
    int *small = tb_calloc_n(n_cfg, sizeof *small);
    if (!scores || !qhat || !hits || !size || !empty || !class_n || !small) {
        free(scores), free(qhat), free(hits), free(size), free(empty), free(class_n), free(small);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t cfg = 0; cfg < n_cfg; cfg++) {
        size_t m = cfg / (TB_CONFORMAL_N_ALPHAS * 2), a = cfg / 2 % TB_CONFORMAL_N_ALPHAS;
        int mondrian = (int)(cfg % 2);
        double alpha = tb_conformal_alphas[a], q = INFINITY;
        if (!mondrian)
            small[cfg] = tb_conformal_quantile(c->scores[m], c->n, alpha, &q);
        for (size_t j = 0; j < k; j++) {
            if (mondrian)
                small[cfg] |= tb_conformal_quantile(c->class_scores[m] + c->class_start[j],
                                                    c->class_start[j + 1] - c->class_start[j], alpha, &q);
            qhat[cfg * k + j] = q;
        }
    }
    tb_rng rng;
    tb_rng_seed(&rng, 0x5e7ULL);
    for (size_t i = 0; i < n_test; i++) {
        size_t y = (size_t)ts->y[test[i]];
        double u = tb_rng_uniform(&rng);
        class_n[y] += 1.0;
        for (size_t m = 0; m < TB_SET_METHODS; m++) {
            tb_genre_scores((tb_set_method)m, pred + i * k, k, c->raps_lambda, c->raps_k_reg, u, scores);
            for (size_t a = 0; a < TB_CONFORMAL_N_ALPHAS * 2; a++) {
                size_t cfg = m * TB_CONFORMAL_N_ALPHAS * 2 + a, n_in = 0;
                const double *q = qhat + cfg * k;
                for (size_t j = 0; j < k; j++)
                    n_in += scores[j] <= q[j];
                size[cfg] += (double)n_in;
                empty[cfg] += n_in == 0;
                hits[cfg * k + y] += scores[y] <= q[y];
            }
        }
    }
    for (size_t cfg = 0; cfg < n_cfg; cfg++) {
        size_t m = cfg / (TB_CONFORMAL_N_ALPHAS * 2), a = cfg / 2 % TB_CONFORMAL_N_ALPHAS;
        double covered = 0.0, worst = INFINITY;
        for (size_t j = 0; j < k; j++) {
            covered += hits[cfg * k + j];
            if (class_n[j] > 0)
                worst = fmin(worst, hits[cfg * k + j] / class_n[j]);
        }
        tb_conformal_row *r = next_row(res);
        if (r)
            *r = (tb_conformal_row){tb_conformal_alphas[a],
                                    m == TB_SET_APS_RANDOMIZED ? "aps-randomized" : tb_set_method_name((tb_set_method)m),
                                    (int)(cfg % 2), covered / (double)n_test, size[cfg] / (double)n_test,
                                    empty[cfg] / (double)n_test, worst, small[cfg]};
    }
    free(scores), free(qhat), free(hits), free(size), free(empty), free(class_n), free(small);
    return TB_OK;
}
