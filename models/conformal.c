/* Split-conformal calibration and prediction sets / intervals. */
#include "conformal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rng.h"

#define CONFORMAL_FORMAT 1
#define CONFORMAL_MAX_ROWS 100000000u

const char *tb_set_method_name(tb_set_method m) {
    static const char *const names[TB_SET_METHODS] = {"lac", "aps", "aps", "raps"};
    return m < TB_SET_METHODS ? names[m] : "?";
}

const char *tb_interval_method_name(tb_interval_method m) {
    return m == TB_INTERVAL_ABSOLUTE ? "absolute" : "normalized";
}

tb_calibration *tb_calibration_free(tb_calibration *c) {
    if (!c)
        return NULL;
    for (int m = 0; m < TB_SET_METHODS; m++) {
        free(c->scores[m]);
        free(c->class_scores[m]);
    }
    free(c->class_start);
    free(c->residuals);
    free(c->normalized);
    tb_model_free(c->difficulty);
    free(c);
    return NULL;
}

int tb_conformal_quantile(const double *sorted, size_t n, double alpha, double *ret_qhat) {
    /* The small slack keeps (n+1)(1-alpha) = 9.000000000000002 at rank 9. */
    double r = ceil((double)(n + 1) * (1.0 - alpha) - 1e-9);
    if (r < 1.0)
        r = 1.0;
    if (n == 0 || r > (double)n) {
        *ret_qhat = INFINITY;
        return 1;
    }
    *ret_qhat = sorted[(size_t)r - 1];
    return 0;
}

/* ---------- genre ---------- */

typedef struct ranked {
    double p;
    size_t c;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

void tb_genre_scores(tb_set_method method, const double *p, size_t k, double lambda, size_t k_reg, double u,
                     double *scores) {
    if (method == TB_SET_LAC) {
        for (size_t c = 0; c < k; c++)
            scores[c] = 1.0 - p[c];
        return;
    }
    ranked small[128], *order = k <= 128 ? small : tb_malloc_n(k, sizeof *order);
    if (!order) { /* only for > 128 classes; every class then scores 0, the set is everything */
        memset(scores, 0, k * sizeof *scores);
        return;
    }
    for (size_t c = 0; c < k; c++)
        order[c] = (ranked){p[c], c};
    qsort(order, k, sizeof *order, cmp_ranked);
    double before = 0.0;
    for (size_t r = 0; r < k; r++) {
        size_t c = order[r].c;
        double s = before + (method == TB_SET_APS_RANDOMIZED ? u : 1.0) * p[c];
        if (method == TB_SET_RAPS && r + 1 > k_reg)
            s += lambda * (double)(r + 1 - k_reg);
        scores[c] = s;
        before += p[c];
    }
    if (order != small)
        free(order);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

tb_status tb_calibration_genre_new(const double *proba, const int32_t *y, size_t n, size_t k, double lambda,
                                   size_t k_reg, uint64_t seed, tb_calibration **ret) {
    if (n == 0 || k == 0)
        return tb_error(TB_INVALID, "calibration needs rows and classes");
    if (!(lambda >= 0.0) || !isfinite(lambda))
        return tb_error_with_field(TB_INVALID, "raps_lambda", "RAPS lambda must be finite and >= 0");
    tb_calibration *c = calloc(1, sizeof *c);
    double *all = tb_malloc_n(k, sizeof *all);
    size_t *fill = tb_calloc_n(k, sizeof *fill);
    if (!c || !all || !fill)
        goto nomem;
    c->task = TB_TASK_CLASSIFY;
    c->n = n;
    c->k = k;
    c->raps_lambda = lambda;
    c->raps_k_reg = k_reg;
    if (!(c->class_start = tb_calloc_n(k + 1, sizeof *c->class_start)))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        c->class_start[y[i] + 1]++;
    for (size_t j = 0; j < k; j++)
        c->class_start[j + 1] += c->class_start[j];
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    for (int m = 0; m < TB_SET_METHODS; m++)
        if (!(c->scores[m] = tb_malloc_n(n, sizeof(double))) || !(c->class_scores[m] = tb_malloc_n(n, sizeof(double))))
            goto nomem;
    for (size_t i = 0; i < n; i++) {
        double u = tb_rng_uniform(&rng);
        size_t at = c->class_start[y[i]] + fill[y[i]]++;
        for (int m = 0; m < TB_SET_METHODS; m++) {
            tb_genre_scores((tb_set_method)m, proba + i * k, k, lambda, k_reg, u, all);
            c->scores[m][i] = all[y[i]];
            c->class_scores[m][at] = all[y[i]];
        }
    }
    for (int m = 0; m < TB_SET_METHODS; m++) {
        qsort(c->scores[m], n, sizeof(double), cmp_double);
        for (size_t j = 0; j < k; j++)
            qsort(c->class_scores[m] + c->class_start[j], c->class_start[j + 1] - c->class_start[j], sizeof(double),
                  cmp_double);
    }
    free(all);
    free(fill);
    *ret = c;
    return TB_OK;
nomem:
    free(all);
    free(fill);
    tb_calibration_free(c);
    return tb_error(TB_NOMEM, "out of memory calibrating");
}

size_t tb_genre_set(const tb_calibration *c, tb_set_method method, int mondrian, double alpha, const double *p, double u,
                    int *in_set, double *ret_qhat, double *class_qhat, int *ret_too_small) {
    size_t k = c->k, size = 0;
    double small[128], *s = k <= 128 ? small : tb_malloc_n(k, sizeof *s);
    int too_small = 0;
    double qhat = INFINITY;
    if (!mondrian)
        too_small = tb_conformal_quantile(c->scores[method], c->n, alpha, &qhat);
    if (s)
        tb_genre_scores(method, p, k, c->raps_lambda, c->raps_k_reg, u, s);
    for (size_t j = 0; j < k; j++) {
        double q = qhat;
        if (mondrian)
            too_small |= tb_conformal_quantile(c->class_scores[method] + c->class_start[j],
                                               c->class_start[j + 1] - c->class_start[j], alpha, &q);
        if (class_qhat)
            class_qhat[j] = q;
        in_set[j] = !s || s[j] <= q;
        size += (size_t)in_set[j];
    }
    if (s != small)
        free(s);
    *ret_qhat = mondrian ? NAN : qhat;
    *ret_too_small = too_small;
    return size;
}

/* ---------- popularity ---------- */

tb_status tb_calibration_popularity_new(const double *pred, const double *y, size_t n, tb_model *difficulty,
                                        const double *sigma, const uint8_t *fit_half, double sigma_floor,
                                        tb_calibration **ret) {
    tb_calibration *c = calloc(1, sizeof *c);
    if (!c || !(c->residuals = tb_malloc_n(n ? n : 1, sizeof *c->residuals)) ||
        (difficulty && !(c->normalized = tb_malloc_n(n ? n : 1, sizeof *c->normalized)))) {
        tb_calibration_free(c);
        tb_model_free(difficulty);
        return tb_error(TB_NOMEM, "out of memory calibrating");
    }
    c->task = TB_TASK_REGRESS;
    c->n = n;
    c->difficulty = difficulty;
    c->sigma_floor = sigma_floor;
    for (size_t i = 0; i < n; i++) {
        double r = fabs(y[i] - pred[i]);
        c->residuals[i] = r;
        if (difficulty && !fit_half[i])
            c->normalized[c->n_normalized++] = r / fmax(sigma[i], sigma_floor);
    }
    qsort(c->residuals, n, sizeof(double), cmp_double);
    if (difficulty)
        qsort(c->normalized, c->n_normalized, sizeof(double), cmp_double);
    *ret = c;
    return TB_OK;
}

double tb_difficulty_sigma(const tb_pipeline *pl, const tb_model *difficulty, double floor, const double *raw_row) {
    double x[1024], s; /* MODEL_MAX_FEATURES */
    tb_pipeline imputing = *pl;
    imputing.impute = 1;
    tb_pipeline_transform(&imputing, raw_row, x);
    tb_model_predict(difficulty, x, &s);
    return fmax(s, floor);
}

int tb_popularity_interval(const tb_calibration *c, tb_interval_method method, double alpha, double yhat, double sigma,
                           double lo, double hi, double *ret_lower, double *ret_upper, double *ret_qhat) {
    int normalized = method == TB_INTERVAL_NORMALIZED && c->difficulty;
    double q;
    int too_small = normalized ? tb_conformal_quantile(c->normalized, c->n_normalized, alpha, &q)
                               : tb_conformal_quantile(c->residuals, c->n, alpha, &q);
    double half = normalized ? q * sigma : q;
    *ret_lower = too_small ? lo : fmax(lo, yhat - half);
    *ret_upper = too_small ? hi : fmin(hi, yhat + half);
    *ret_qhat = q;
    return too_small;
}

/* ---------- blob section ---------- */

static int ascending(const double *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || (i && v[i] < v[i - 1]))
            return 0;
    return 1;
}

void tb_calibration_save(const tb_calibration *c, tb_writer *w) {
    tb_write_u16(w, CONFORMAL_FORMAT);
    tb_write_u8(w, (uint8_t)c->task);
    tb_write_u32(w, (uint32_t)c->n);
    if (c->task == TB_TASK_CLASSIFY) {
        tb_write_u32(w, (uint32_t)c->k);
        tb_write_f64(w, c->raps_lambda);
        tb_write_u32(w, (uint32_t)c->raps_k_reg);
        for (size_t j = 0; j <= c->k; j++)
            tb_write_u32(w, (uint32_t)c->class_start[j]);
        for (int m = 0; m < TB_SET_METHODS; m++) {
            tb_write_f64s(w, c->scores[m], c->n);
            tb_write_f64s(w, c->class_scores[m], c->n);
        }
    } else {
        tb_write_f64s(w, c->residuals, c->n);
        tb_write_u8(w, c->difficulty != NULL);
        if (c->difficulty) {
            tb_write_f64(w, c->sigma_floor);
            tb_write_u32(w, (uint32_t)c->n_normalized);
            tb_write_f64s(w, c->normalized, c->n_normalized);
            tb_model_save(c->difficulty, w);
        }
    }
}

static tb_status corrupt(tb_calibration *c, const char *what) {
    tb_calibration_free(c);
    return tb_error(TB_CORRUPT, "calibration section: %s", what);
}

tb_status tb_calibration_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, tb_calibration **ret) {
    uint16_t format;
    uint8_t t;
    uint32_t n;
    tb_status st;
    if ((st = tb_read_u16(r, &format, "calibration format")) != TB_OK)
        return st;
    if (format != CONFORMAL_FORMAT)
        return tb_error(TB_VERSION, "calibration format %u; this binary reads %d", format, CONFORMAL_FORMAT);
    if ((st = tb_read_u8(r, &t, "calibration task")) != TB_OK || (st = tb_read_u32(r, &n, "calibration rows")) != TB_OK)
        return st;
    if (t != task || n > CONFORMAL_MAX_ROWS)
        return tb_error(TB_CORRUPT, "calibration section: task %u or %u rows do not fit the model", t, n);
    tb_calibration *c = calloc(1, sizeof *c);
    if (!c)
        return tb_error(TB_NOMEM, "out of memory");
    c->task = task;
    c->n = n;
    if (task == TB_TASK_CLASSIFY) {
        uint32_t k, k_reg;
        if ((st = tb_read_u32(r, &k, "calibration classes")) != TB_OK || (st = tb_read_f64(r, &c->raps_lambda, "lambda")) ||
            (st = tb_read_u32(r, &k_reg, "k_reg")) != TB_OK) {
            tb_calibration_free(c);
            return st;
        }
        if (k != n_outputs || !(c->raps_lambda >= 0.0) || !isfinite(c->raps_lambda))
            return corrupt(c, "class count or RAPS lambda does not fit the model");
        c->k = k;
        c->raps_k_reg = k_reg;
        if ((st = tb_reader_expect(r, (size_t)k + 1, 4, "class offsets")) != TB_OK ||
            !(c->class_start = tb_malloc_n((size_t)k + 1, sizeof *c->class_start))) {
            tb_calibration_free(c);
            return st != TB_OK ? st : tb_error(TB_NOMEM, "out of memory");
        }
        for (size_t j = 0; j <= k; j++) {
            uint32_t v;
            tb_read_u32(r, &v, "class offset");
            c->class_start[j] = v;
            if ((j == 0 && v != 0) || (j && v < c->class_start[j - 1]) || v > n || (j == k && v != n))
                return corrupt(c, "class offsets out of order");
        }
        for (int m = 0; m < TB_SET_METHODS; m++) {
            if ((st = tb_read_f64s(r, &c->scores[m], n, "calibration scores")) != TB_OK ||
                (st = tb_read_f64s(r, &c->class_scores[m], n, "class calibration scores")) != TB_OK) {
                tb_calibration_free(c);
                return st;
            }
            if (!ascending(c->scores[m], n))
                return corrupt(c, "scores are not ascending");
            for (size_t j = 0; j < k; j++)
                if (!ascending(c->class_scores[m] + c->class_start[j], c->class_start[j + 1] - c->class_start[j]))
                    return corrupt(c, "class scores are not ascending");
        }
    } else {
        uint8_t has;
        uint32_t nn;
        if ((st = tb_read_f64s(r, &c->residuals, n, "residuals")) != TB_OK ||
            (st = tb_read_u8(r, &has, "difficulty flag")) != TB_OK) {
            tb_calibration_free(c);
            return st;
        }
        if (!ascending(c->residuals, n) || has > 1)
            return corrupt(c, "residuals are not ascending");
        if (has) {
            if ((st = tb_read_f64(r, &c->sigma_floor, "sigma floor")) != TB_OK ||
                (st = tb_read_u32(r, &nn, "normalized count")) != TB_OK) {
                tb_calibration_free(c);
                return st;
            }
            if (nn > n || !(c->sigma_floor > 0.0) || !isfinite(c->sigma_floor))
                return corrupt(c, "normalized scores do not fit");
            c->n_normalized = nn;
            if ((st = tb_read_f64s(r, &c->normalized, nn, "normalized scores")) != TB_OK ||
                (st = tb_model_load(r, &c->difficulty)) != TB_OK) {
                tb_calibration_free(c);
                return st;
            }
            if (!ascending(c->normalized, nn))
                return corrupt(c, "normalized scores are not ascending");
            if (c->difficulty->task != TB_TASK_REGRESS || c->difficulty->n_features != n_features ||
                c->difficulty->n_outputs != 1)
                return corrupt(c, "difficulty model does not fit the inputs");
        }
    }
    *ret = c;
    return TB_OK;
}
