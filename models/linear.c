/* Linear models: multinomial logistic regression for genre ("logistic") and ridge regression for
 * popularity (the same kind, "logistic" for classes and ridge for a target would be confusing, so
 * both register as "linear"). Inputs are the pipeline's standardized features plus an intercept.
 * Logistic: mean cross-entropy + l2/(2n)·‖W‖² (scikit-learn's LogisticRegression(C=1) objective
 * scaled by 1/n), minimized by full-batch Adam with a decaying step; the products are OpenBLAS
 * sgemm calls. Ridge: the normal equations (XᵀX + l2·I) w = Xᵀy, solved by Cholesky. Lasso
 * (l1 > 0): 1/(2n)·‖y − Xw − b‖² + l1·‖w‖₁ by cyclic coordinate descent on centred columns, as
 * scikit-learn's Lasso. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "model.h"

#define LINEAR_FORMAT 1
#define LINEAR_MAX_OUTPUTS 65535
#define LINEAR_ITERATIONS 400

typedef struct linear {
    tb_task task;
    size_t d, k;   /* inputs; outputs (classes, or 1) */
    double *w;     /* (d + 1) × k: weights, then the intercept row */
} linear;

static void linear_free(void *impl) {
    linear *m = impl;
    if (m)
        free(m->w);
    free(m);
}

static void linear_predict(const void *impl, const double *x, double *out) {
    const linear *m = impl;
    size_t d = m->d, k = m->k;
    for (size_t c = 0; c < k; c++)
        out[c] = m->w[d * k + c];
    for (size_t j = 0; j < d; j++)
        for (size_t c = 0; c < k; c++)
            out[c] += x[j] * m->w[j * k + c];
    if (m->task == TB_TASK_CLASSIFY)
        tb_softmax(out, k);
}

/* Exact for a linear score: each input's weight times its value, the training mean of a
 * standardized input being 0 (and an imputed one sitting there); base = the intercept. Margin
 * space for classes (before the softmax), the value to regress. */
static tb_status linear_explain(const void *impl, const double *x, const size_t *outputs, size_t n_out, double *phi,
                                double *base, double *value) {
    const linear *m = impl;
    size_t d = m->d, k = m->k;
    for (size_t o = 0; o < n_out; o++) {
        size_t c = outputs[o];
        base[o] = value[o] = m->w[d * k + c];
        for (size_t j = 0; j < d; j++) {
            phi[j * n_out + o] = x[j] * m->w[j * k + c];
            value[o] += phi[j * n_out + o];
        }
    }
    return TB_OK;
}

static double linear_explain_cost(const void *impl) { return (double)((const linear *)impl)->d; }

/* Solves A x = b in place (A: n × n symmetric positive definite, overwritten by its Cholesky
 * factor). Returns -1 when A is not positive definite. */
static int cholesky_solve(double *a, double *b, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double s = a[j * n + j];
        for (size_t p = 0; p < j; p++)
            s -= a[j * n + p] * a[j * n + p];
        if (!(s > 0.0))
            return -1;
        a[j * n + j] = sqrt(s);
        for (size_t i = j + 1; i < n; i++) {
            double t = a[i * n + j];
            for (size_t p = 0; p < j; p++)
                t -= a[i * n + p] * a[j * n + p];
            a[i * n + j] = t / a[j * n + j];
        }
    }
    for (size_t i = 0; i < n; i++) { /* L y = b */
        for (size_t p = 0; p < i; p++)
            b[i] -= a[i * n + p] * b[p];
        b[i] /= a[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { /* Lᵀ x = y */
        for (size_t p = i + 1; p < n; p++)
            b[i] -= a[p * n + i] * b[p];
        b[i] /= a[i * n + i];
    }
    return 0;
}

static tb_status ridge(const tb_train_data *data, double l2, double *w) {
    size_t d = data->d, e = d + 1, n = data->n;
    double *a = tb_calloc_n(e * e, sizeof *a);
    if (!a)
        return tb_error(TB_NOMEM, "out of memory");
    memset(w, 0, e * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        const double *x = data->X + i * d;
        for (size_t p = 0; p < e; p++) {
            double xp = p < d ? x[p] : 1.0;
            for (size_t q = 0; q <= p; q++)
                a[p * e + q] += xp * (q < d ? x[q] : 1.0);
            w[p] += xp * data->target[i];
        }
    }
    for (size_t p = 0; p < e; p++) {
        for (size_t q = 0; q < p; q++)
            a[q * e + p] = a[p * e + q];
        if (p < d)
            a[p * e + p] += l2; /* the intercept is not penalized */
    }
    int bad = cholesky_solve(a, w, e);
    free(a);
    return bad ? tb_error(TB_INVALID, "ridge regression: the inputs are collinear; raise --l2") : TB_OK;
}

#define LASSO_MAX_SWEEPS 10000

static tb_status lasso(const tb_train_data *data, double l1, double *w) {
    size_t d = data->d, n = data->n;
    double *xc = tb_malloc_n(n * d, sizeof *xc), *mean = tb_calloc_n(d, sizeof *mean);
    double *sq = tb_calloc_n(d, sizeof *sq), *r = tb_malloc_n(n, sizeof *r);
    if (!xc || !mean || !sq || !r) {
        free(xc);
        free(mean);
        free(sq);
        free(r);
        return tb_error(TB_NOMEM, "out of memory");
    }
    double ymean = 0.0;
    for (size_t i = 0; i < n; i++) {
        ymean += data->target[i];
        for (size_t j = 0; j < d; j++)
            mean[j] += data->X[i * d + j];
    }
    ymean /= (double)n;
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    /* Column-major centred copy: each coordinate step reads one contiguous column. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = data->X[i * d + j] - mean[j];
            xc[j * n + i] = v;
            sq[j] += v * v;
        }
    for (size_t i = 0; i < n; i++)
        r[i] = data->target[i] - ymean; /* residual with w = 0 */
    memset(w, 0, (d + 1) * sizeof *w);
    const double thresh = l1 * (double)n;
    for (int sweep = 0; sweep < LASSO_MAX_SWEEPS; sweep++) {
        double max_step = 0.0, max_w = 0.0;
        for (size_t j = 0; j < d; j++) {
            if (sq[j] == 0.0)
                continue;
            const double *x = xc + j * n;
            double rho = 0.0;
            for (size_t i = 0; i < n; i++)
                rho += x[i] * r[i];
            rho += sq[j] * w[j];
            double next = rho > thresh ? (rho - thresh) / sq[j] : rho < -thresh ? (rho + thresh) / sq[j] : 0.0;
            double step = next - w[j];
            if (step != 0.0) {
                for (size_t i = 0; i < n; i++)
                    r[i] -= step * x[i];
                w[j] = next;
            }
            max_step = fabs(step) > max_step ? fabs(step) : max_step;
            max_w = fabs(next) > max_w ? fabs(next) : max_w;
        }
        if (max_step <= 1e-12 * (max_w > 1.0 ? max_w : 1.0))
            break;
    }
    double b = ymean;
    for (size_t j = 0; j < d; j++)
        b -= mean[j] * w[j];
    w[d] = b;
    free(xc);
    free(mean);
    free(sq);
    free(r);
    return TB_OK;
}

static tb_status logistic(const tb_train_data *data, double l2, double *w) {
    size_t d = data->d, e = d + 1, n = data->n, k = data->n_classes;
    float *x = tb_malloc_n(n * e, sizeof *x), *wf = tb_malloc_n(e * k, sizeof *wf);
    float *z = tb_malloc_n(n * k, sizeof *z), *g = tb_malloc_n(e * k, sizeof *g);
    double *mo = tb_calloc_n(e * k, sizeof *mo), *ve = tb_calloc_n(e * k, sizeof *ve);
    tb_status st = TB_OK;
    if (!x || !wf || !z || !g || !mo || !ve) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x[i * e + j] = (float)data->X[i * d + j];
        x[i * e + d] = 1.0f;
    }
    memset(w, 0, e * k * sizeof *w);
    const double b1 = 0.9, b2 = 0.999;
    for (int it = 1; it <= LINEAR_ITERATIONS; it++) {
        for (size_t q = 0; q < e * k; q++)
            wf[q] = (float)w[q];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)e, 1.0f, x, (int)e, wf, (int)k,
                    0.0f, z, (int)k);
        for (size_t i = 0; i < n; i++) { /* z ← (softmax − onehot) / n */
            float *r = z + i * k, mx = r[0], sum = 0.0f;
            for (size_t c = 1; c < k; c++)
                mx = r[c] > mx ? r[c] : mx;
            for (size_t c = 0; c < k; c++)
                sum += r[c] = expf(r[c] - mx);
            for (size_t c = 0; c < k; c++)
                r[c] = (r[c] / sum - (data->y[i] == (int32_t)c ? 1.0f : 0.0f)) / (float)n;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)e, (int)k, (int)n, 1.0f, x, (int)e, z, (int)k, 0.0f,
                    g, (int)k);
        double lr = 0.1 / sqrt((double)it / 50.0 + 1.0);
        for (size_t q = 0; q < e * k; q++) {
            double grad = (double)g[q] + (q < d * k ? l2 / (double)n * w[q] : 0.0);
            mo[q] = b1 * mo[q] + (1 - b1) * grad;
            ve[q] = b2 * ve[q] + (1 - b2) * grad * grad;
            double mh = mo[q] / (1 - pow(b1, it)), vh = ve[q] / (1 - pow(b2, it));
            w[q] -= lr * mh / (sqrt(vh) + 1e-8);
        }
    }
out:
    free(x);
    free(wf);
    free(z);
    free(g);
    free(mo);
    free(ve);
    return st;
}

static void linear_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task, (void)n_outputs;
    if (p->l2 == 0.0)
        p->l2 = 1.0;
}

static tb_status linear_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    double l2 = p->l2;
    if (!(l2 > 0.0) || !isfinite(l2))
        return tb_error_with_field(TB_INVALID, "l2", "the l2 penalty must be a finite number > 0");
    linear *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    m->task = data->task;
    m->d = data->d;
    m->k = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1;
    if (!(m->w = tb_calloc_n((m->d + 1) * m->k, sizeof *m->w))) {
        linear_free(m);
        return tb_error(TB_NOMEM, "out of memory");
    }
    if (p->l1 < 0.0 || !isfinite(p->l1)) {
        linear_free(m);
        return tb_error_with_field(TB_INVALID, "l1", "the l1 penalty must be a finite number >= 0");
    }
    tb_status st = data->task == TB_TASK_CLASSIFY ? logistic(data, l2, m->w)
                   : p->l1 > 0.0                ? lasso(data, p->l1, m->w)
                                                : ridge(data, l2, m->w);
    if (st != TB_OK) {
        linear_free(m);
        return st;
    }
    *ret_impl = m;
    return TB_OK;
}

static void linear_save(const void *impl, tb_writer *w) {
    const linear *m = impl;
    tb_write_f64s(w, m->w, (m->d + 1) * m->k);
}

static tb_status linear_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    if (n_outputs == 0 || n_outputs > LINEAR_MAX_OUTPUTS || (task == TB_TASK_REGRESS && n_outputs != 1))
        return tb_error(TB_CORRUPT, "linear model: %zu outputs do not fit", n_outputs);
    linear *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    *m = (linear){.task = task, .d = n_features, .k = n_outputs};
    tb_status st = tb_read_f64s(r, &m->w, (n_features + 1) * n_outputs, "linear weights");
    for (size_t q = 0; st == TB_OK && q < (n_features + 1) * n_outputs; q++)
        if (!isfinite(m->w[q]))
            st = tb_error(TB_CORRUPT, "linear model: a weight is not finite");
    if (st != TB_OK) {
        linear_free(m);
        return st;
    }
    *ret_impl = m;
    return TB_OK;
}

static const tb_opt linear_params[] = {
    TB_PARAM("l2", "X", TB_OPT_DOUBLE, l2, 0, 1e12, TB_OPT_MIN_OPEN, "l2",
             "L2 penalty (1; scikit-learn's 1/C for logistic, alpha\nfor ridge)"),
    TB_PARAM("l1", "X", TB_OPT_DOUBLE, l1, 0, 1e12, TB_OPT_MIN_OPEN, "l1",
             "popularity becomes the lasso, scikit-learn's\nLasso(alpha=X); the genre model keeps its L2 penalty"),
};

const tb_model_ops tb_linear_ops = {
    .kind = "linear",
    .params_title = "linear (logistic and ridge regression):",
    .params = linear_params,
    .n_params = sizeof linear_params / sizeof linear_params[0],
    .format_version = LINEAR_FORMAT,
    .resolve = linear_resolve,
    .train = linear_train,
    .predict = linear_predict,
    .explain = linear_explain,
    .explain_cost = linear_explain_cost,
    .explain_space = "margin",
    .save = linear_save,
    .load = linear_load,
    .free = linear_free,
};
