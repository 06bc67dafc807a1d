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
    free(p);
    return NULL;
}

static tb_pipeline *pipeline_alloc(size_t d) {
    tb_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_features = d;
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

void tb_pipeline_transform(const tb_pipeline *p, const double *raw, double *out) {
    for (size_t j = 0; j < p->n_features; j++) {
        double v = isnan(raw[j]) && p->impute ? p->mean[j] : raw[j];
        out[j] = (v - p->mean[j]) / p->scale[j]; /* NaN stays NaN when not imputing */
    }
}

tb_status tb_pipeline_transform_rows(const tb_pipeline *p, const double *X, const size_t *rows, size_t n_rows,
                                     double **ret_out) {
    size_t d = p->n_features;
    double *out = tb_malloc_n(n_rows * d, sizeof *out);
    if (!out)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n_rows; i++)
        tb_pipeline_transform(p, X + rows[i] * d, out + i * d);
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
    if (st != TB_OK) {
        tb_pipeline_free(p);
        return st;
    }
    *ret_pipeline = p;
    return TB_OK;
}
