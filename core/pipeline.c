/* Mean imputation + standardization. */
#include "alloc.h"
#include "pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PIPELINE_MAX_FEATURES 4096
#define PIPELINE_MAX_NAME 256

tb_pipeline *tb_pipeline_free(tb_pipeline *p) {
    if (!p)
        return NULL;
    if (p->names)
        for (size_t i = 0; i < p->n_features; i++)
            free(p->names[i]);
    free(p->names);
    free(p->mean);
    free(p->scale);
    free(p->components);
    free(p);
    return NULL;
}

static tb_pipeline *pipeline_alloc(size_t d) {
    tb_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_features = d;
    p->n_outputs = d;
    p->impute = 1;
    p->names = calloc(d ? d : 1, sizeof *p->names);
    p->mean = calloc(d ? d : 1, sizeof *p->mean);
    p->scale = calloc(d ? d : 1, sizeof *p->scale);
    if (!p->names || !p->mean || !p->scale)
        return tb_pipeline_free(p);
    return p;
}

tb_status tb_pipeline_fit(const double *X, size_t d, char *const *names, const size_t *rows, size_t n_rows,
                          tb_pipeline **ret_pipeline) {
    tb_pipeline *p = pipeline_alloc(d);
    if (!p)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t j = 0; j < d; j++) {
        if (!(p->names[j] = strdup(names[j]))) {
            tb_pipeline_free(p);
            return tb_error(TB_NOMEM, "out of memory");
        }
        /* Two passes (mean, then squared deviations) for accuracy on large-magnitude columns
         * such as duration_ms. */
        double sum = 0.0;
        size_t count = 0;
        for (size_t i = 0; i < n_rows; i++) {
            double v = X[rows[i] * d + j];
            if (!isnan(v)) {
                sum += v;
                count++;
            }
        }
        double mean = count ? sum / (double)count : 0.0;
        double ss = 0.0;
        for (size_t i = 0; i < n_rows; i++) {
            double v = X[rows[i] * d + j];
            if (!isnan(v))
                ss += (v - mean) * (v - mean);
        }
        double sd = count ? sqrt(ss / (double)count) : 0.0;
        p->mean[j] = mean;
        p->scale[j] = sd > 0.0 ? sd : 1.0;
    }
    *ret_pipeline = p;
    return TB_OK;
}

static void standardize(const tb_pipeline *p, const double *raw, double *out) {
    for (size_t j = 0; j < p->n_features; j++) {
        double v = isnan(raw[j]) && p->impute ? p->mean[j] : raw[j];
        out[j] = (v - p->mean[j]) / p->scale[j]; /* NaN stays NaN when not imputing */
    }
}

void tb_pipeline_transform(const tb_pipeline *p, const double *raw, double *out) {
    if (!p->components) {
        standardize(p, raw, out);
        return;
    }
    double z[PIPELINE_MAX_FEATURES];
    size_t d = p->n_features;
    standardize(p, raw, z);
    for (size_t c = 0; c < p->n_outputs; c++) {
        const double *v = p->components + c * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += v[j] * z[j];
        out[c] = s;
    }
}

/* LAPACK (OpenBLAS exports it; the trailing arguments are the Fortran hidden string lengths). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

tb_status tb_pipeline_fit_pca(tb_pipeline *p, const double *X, const size_t *rows, size_t n_rows, double spec) {
    size_t d = p->n_features;
    if (!(spec > 0.0) || !isfinite(spec) || (spec >= 1.0 && (spec != floor(spec) || spec > (double)d)))
        return tb_error_with_field(TB_INVALID, "pca", "--pca %g: give a component count from 1 to %zu or a variance "
                                                      "share in (0, 1)", spec, d);
    if (n_rows < 2)
        return tb_error(TB_INVALID, "PCA needs at least 2 rows");
    p->impute = 1;
    double *cov = tb_calloc_n(d * d, sizeof *cov), *z = tb_malloc_n(d, sizeof *z), *eig = tb_malloc_n(d, sizeof *eig);
    double *work = NULL;
    tb_status st = TB_OK;
    if (!cov || !z || !eig) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    /* The standardized columns have mean 0 (imputed values sit at the mean), so the covariance
     * is Σ z zᵀ / n (ddof 0: the eigenvalues are then scikit-learn's explained_variance_ × (n−1)/n,
     * the same shares). */
    for (size_t i = 0; i < n_rows; i++) {
        standardize(p, X + rows[i] * d, z);
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b <= a; b++)
                cov[a * d + b] += z[a] * z[b];
    }
    for (size_t a = 0; a < d; a++)
        for (size_t b = 0; b <= a; b++)
            cov[b * d + a] = cov[a * d + b] /= (double)n_rows;
    int n = (int)d, lwork = -1, info = 0;
    double query;
    dsyev_("V", "U", &n, cov, &n, eig, &query, &lwork, &info, 1, 1);
    lwork = info == 0 ? (int)query : 3 * n;
    if (!(work = tb_malloc_n((size_t)lwork, sizeof *work))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    dsyev_("V", "U", &n, cov, &n, eig, work, &lwork, &info, 1, 1);
    if (info != 0) {
        st = tb_error(TB_INVALID, "PCA: the eigen decomposition failed (LAPACK info %d)", info);
        goto out;
    }
    /* Ascending eigenvalues; eigenvector i is column i (column-major), i.e. row i of cov here. */
    double total = 0.0;
    for (size_t i = 0; i < d; i++)
        total += eig[i] > 0.0 ? eig[i] : 0.0;
    size_t keep = 0;
    double kept = 0.0;
    if (spec >= 1.0) {
        keep = (size_t)spec;
        for (size_t c = 0; c < keep; c++)
            kept += fmax(eig[d - 1 - c], 0.0);
    } else {
        while (keep < d && (total <= 0.0 || kept / total < spec - 1e-12))
            kept += fmax(eig[d - 1 - keep++], 0.0);
    }
    if (!(p->components = tb_malloc_n(keep * d, sizeof *p->components))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < keep; c++) {
        const double *v = cov + (d - 1 - c) * d;
        size_t big = 0;
        for (size_t j = 1; j < d; j++)
            big = fabs(v[j]) > fabs(v[big]) ? j : big;
        double sign = v[big] < 0.0 ? -1.0 : 1.0;
        for (size_t j = 0; j < d; j++)
            p->components[c * d + j] = sign * v[j];
    }
    p->n_outputs = keep;
    p->explained = total > 0.0 ? kept / total : 1.0;
out:
    free(cov);
    free(z);
    free(eig);
    free(work);
    return st;
}

tb_status tb_pipeline_transform_rows(const tb_pipeline *p, const double *X, const size_t *rows, size_t n_rows,
                                     double **ret_out) {
    size_t d = p->n_features, k = p->n_outputs;
    double *out = tb_malloc_n(n_rows * k, sizeof *out);
    if (!out)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n_rows; i++)
        tb_pipeline_transform(p, X + rows[i] * d, out + i * k);
    *ret_out = out;
    return TB_OK;
}

long tb_pipeline_find(const tb_pipeline *p, const char *name) {
    for (size_t j = 0; j < p->n_features; j++)
        if (strcmp(p->names[j], name) == 0)
            return (long)j;
    return -1;
}

void tb_pipeline_save(const tb_pipeline *p, tb_writer *w) {
    tb_write_u32(w, (uint32_t)p->n_features);
    tb_write_u8(w, (uint8_t)(p->impute ? 1 : 0));
    for (size_t j = 0; j < p->n_features; j++)
        tb_write_str(w, p->names[j]);
    tb_write_f64s(w, p->mean, p->n_features);
    tb_write_f64s(w, p->scale, p->n_features);
    if (p->components) { /* optional trailing block: older pipelines end before it */
        tb_write_u32(w, (uint32_t)p->n_outputs);
        tb_write_f64(w, p->explained);
        tb_write_f64s(w, p->components, p->n_outputs * p->n_features);
    }
}

tb_status tb_pipeline_load(tb_reader *r, tb_pipeline **ret_pipeline) {
    uint32_t d;
    tb_status st = tb_read_u32(r, &d, "pipeline feature count");
    if (st != TB_OK)
        return st;
    if (d == 0 || d > PIPELINE_MAX_FEATURES)
        return tb_error(TB_CORRUPT, "pipeline: feature count %u outside 1..%d", d, PIPELINE_MAX_FEATURES);
    /* Each feature needs at least a 4-byte name length and two doubles. */
    if ((st = tb_reader_expect(r, d, 20, "pipeline features")) != TB_OK)
        return st;
    uint8_t flags;
    if ((st = tb_read_u8(r, &flags, "pipeline flags")) != TB_OK)
        return st;
    if (flags > 1)
        return tb_error(TB_CORRUPT, "pipeline: unknown flags %u", flags);
    tb_pipeline *p = pipeline_alloc(d);
    if (!p)
        return tb_error(TB_NOMEM, "out of memory");
    p->impute = flags & 1;
    for (size_t j = 0; j < d && st == TB_OK; j++)
        st = tb_read_str(r, &p->names[j], PIPELINE_MAX_NAME, "pipeline feature name");
    for (size_t j = 0; j < d && st == TB_OK; j++)
        st = tb_read_f64(r, &p->mean[j], "pipeline mean");
    for (size_t j = 0; j < d && st == TB_OK; j++) {
        st = tb_read_f64(r, &p->scale[j], "pipeline scale");
        if (st == TB_OK && (!isfinite(p->mean[j]) || !isfinite(p->scale[j]) || p->scale[j] <= 0.0))
            st = tb_error(TB_CORRUPT, "pipeline: feature %zu has a non-finite mean or non-positive scale", j);
    }
    if (st == TB_OK && tb_reader_left(r) > 0) {
        uint32_t k;
        if ((st = tb_read_u32(r, &k, "pipeline components")) == TB_OK &&
            (st = tb_read_f64(r, &p->explained, "pipeline explained variance")) == TB_OK) {
            if (k == 0 || k > d || !(p->explained >= 0.0 && p->explained <= 1.0 + 1e-9))
                st = tb_error(TB_CORRUPT, "pipeline: %u components of %u features", k, d);
            else if ((st = tb_read_f64s(r, &p->components, (size_t)k * d, "pipeline components")) == TB_OK)
                p->n_outputs = k;
            for (size_t q = 0; st == TB_OK && q < (size_t)k * d; q++)
                if (!isfinite(p->components[q]))
                    st = tb_error(TB_CORRUPT, "pipeline: a component is not finite");
        }
        if (st == TB_OK && !p->impute)
            st = tb_error(TB_CORRUPT, "pipeline: a projection needs imputed values");
    }
    if (st != TB_OK) {
        tb_pipeline_free(p);
        return st;
    }
    *ret_pipeline = p;
    return TB_OK;
}
