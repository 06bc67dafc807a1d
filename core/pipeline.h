/* Feature pipeline: mean imputation of missing values (unless the model handles them itself),
 * then standardization, then optionally a projection on the leading principal components (PCA),
 * fitted on training rows only and stored with each model so serving transforms exactly as
 * training did. */
#ifndef TB_PIPELINE_H
#define TB_PIPELINE_H

#include <stddef.h>

#include "codec.h"
#include "status.h"

/* Owned by its creator; immutable after fit/load, so many threads may transform with one. */
typedef struct tb_pipeline {
    size_t n_features;
    int impute;     /* 1: NaN becomes the mean; 0: NaN passes through to the model */
    char **names;   /* feature names, in model input order */
    double *mean;   /* training mean of observed values (0 when none were observed) */
    double *scale;  /* training standard deviation (ddof 0, as scikit-learn), 1 when 0 */
    size_t n_outputs;    /* values out of transform: n_features, or the components kept */
    double *components;  /* PCA: n_outputs × n_features unit rows, largest variance first; NULL = none */
    double explained;    /* PCA: share of the standardized variance the components keep */
} tb_pipeline;

/* Fits on rows `rows[0..n_rows)` of the n × d raw matrix X (NaN = missing), imputing by default;
 * set ->impute = 0 afterwards for a model that routes missing values itself. */
tb_status tb_pipeline_fit(const double *X, size_t d, char *const *names, const size_t *rows, size_t n_rows,
                          tb_pipeline **ret_pipeline);
tb_pipeline *tb_pipeline_free(tb_pipeline *p);

/* Adds PCA on the standardized (imputed) rows: spec >= 1 keeps that many components, a spec in
 * (0, 1) the fewest whose share of variance reaches it. Sets impute (the projection needs values).
 * Eigenvectors by LAPACK's dsyev; each component's sign makes its largest coefficient positive. */
tb_status tb_pipeline_fit_pca(tb_pipeline *p, const double *X, const size_t *rows, size_t n_rows, double spec);

/* raw (n_features values, NaN = missing) → out (n_outputs values): impute (or keep NaN), then
 * (x - mean) / scale, then the projection when there is one. */
void tb_pipeline_transform(const tb_pipeline *p, const double *raw, double *out);
/* Transforms the listed rows of X into a new n_rows × n_outputs matrix (caller frees). */
tb_status tb_pipeline_transform_rows(const tb_pipeline *p, const double *X, const size_t *rows, size_t n_rows,
                                     double **ret_out);
/* Index of the feature called `name`, or -1. */
long tb_pipeline_find(const tb_pipeline *p, const char *name);

void tb_pipeline_save(const tb_pipeline *p, tb_writer *w);
tb_status tb_pipeline_load(tb_reader *r, tb_pipeline **ret_pipeline);

#endif
