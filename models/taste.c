/* Per-listener ridge regression with exact leave-one-out model selection (see taste.h). The
 * normal equations are factored by LAPACK's Cholesky (dpotrf/dpotrs, shipped in OpenBLAS). */
#include "taste.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* LAPACK (Fortran interface; OpenBLAS exports it, the trailing length is the hidden string
 * length of the Fortran calling convention). */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
                    const int *ldb, int *info, size_t uplo_len);

static const double lambdas[] = {0.01, 0.1, 1.0, 10.0, 100.0};

void tb_taste_clear(tb_taste *t) {
    free(t->w);
    memset(t, 0, sizeof *t);
}

/* For penalty lam: coefficients into beta (e values, intercept last) and the sum of squared
 * leave-one-out errors; returns INFINITY when some row's leverage is 1 (its error is undefined).
 * G: ZᵀZ (e × e), zy: Zᵀy, Zt: Zᵀ (e × n); a, u: scratch of e × e and e × n. */
static double fit_one(double lam, const double *G, const double *zy, const double *Zt, const double *y, size_t n,
                      size_t e, double *beta, double *a, double *u) {
    memcpy(a, G, e * e * sizeof *a);
    for (size_t j = 0; j + 1 < e; j++) /* the intercept is not penalized */
        a[j * e + j] += lam;
    int ne = (int)e, nn = (int)n, one = 1, info = 0;
    dpotrf_("L", &ne, a, &ne, &info, 1);
    if (info != 0)
        return INFINITY;
    memcpy(beta, zy, e * sizeof *beta);
    dpotrs_("L", &ne, &one, a, &ne, beta, &ne, &info, 1);
    /* Leverages h_i = z_iᵀ A⁻¹ z_i: solve A U = [z_1 … z_n]; Zt's rows are those columns in
     * LAPACK's column-major layout (leading dimension e). */
    memcpy(u, Zt, e * n * sizeof *u);
    dpotrs_("L", &ne, &nn, a, &ne, u, &ne, &info, 1);
    if (info != 0)
        return INFINITY;
    double sse = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *z = Zt + i * e, *ui = u + i * e;
        double pred = 0.0, h = 0.0;
        for (size_t j = 0; j < e; j++) {
            pred += z[j] * beta[j];
            h += z[j] * ui[j];
        }
        if (!(h < 1.0 - 1e-9))
            return INFINITY;
        double r = (y[i] - pred) / (1.0 - h);
        sse += r * r;
    }
    return sse;
}

tb_status tb_taste_fit(const float *X, const double *ratings, size_t n, size_t dim, tb_taste *ret) {
    memset(ret, 0, sizeof *ret);
    if (n < TB_TASTE_MIN_RATINGS)
        return tb_error(TB_INVALID, "%zu ratings: a taste needs at least %d", n, TB_TASTE_MIN_RATINGS);
    if (dim == 0 || dim > TB_TASTE_MAX_DIM)
        return tb_error(TB_INVALID, "an embedding of %zu values: a taste takes 1 to %d", dim, TB_TASTE_MAX_DIM);
    size_t e = dim + 1;
    double mean = 0.0, sst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ratings[i]))
            return tb_error(TB_INVALID, "rating %zu is not a finite number", i);
        mean += ratings[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        sst += (ratings[i] - mean) * (ratings[i] - mean);
    ret->dim = dim;
    ret->mean = mean;
    if (!(ret->w = tb_calloc_n(dim, sizeof *ret->w)))
        return tb_error(TB_NOMEM, "out of memory");
    ret->intercept = mean;
    if (sst == 0.0) /* one rating everywhere: nothing to learn beyond it */
        return TB_OK;
    /* Zt holds each row z_i = (x_i, 1) contiguously (n × e row-major). */
    double *Zt = tb_malloc_n(n * e, sizeof *Zt), *G = tb_malloc_n(e * e, sizeof *G), *zy = tb_calloc_n(e, sizeof *zy);
    double *a = tb_malloc_n(e * e, sizeof *a), *u = tb_malloc_n(n * e, sizeof *u);
    double *beta = tb_malloc_n(e, sizeof *beta), *best = tb_malloc_n(e, sizeof *best);
    tb_status st = TB_OK;
    if (!Zt || !G || !zy || !a || !u || !beta || !best) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++)
            Zt[i * e + j] = X[i * dim + j];
        Zt[i * e + dim] = 1.0;
        for (size_t j = 0; j < e; j++)
            zy[j] += Zt[i * e + j] * ratings[i];
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)e, (int)e, (int)n, 1.0, Zt, (int)e, Zt, (int)e, 0.0, G,
                (int)e);
    double best_sse = INFINITY;
    for (size_t l = 0; l < sizeof lambdas / sizeof *lambdas; l++) {
        double sse = fit_one(lambdas[l], G, zy, Zt, ratings, n, e, beta, a, u);
        if (sse < best_sse) {
            best_sse = sse;
            ret->lambda = lambdas[l];
            memcpy(best, beta, e * sizeof *best);
        }
    }
    if (!isfinite(best_sse)) {
        st = tb_error(TB_INVALID, "the ratings cannot be fitted (every leave-one-out fit is degenerate)");
        goto out;
    }
    for (size_t j = 0; j < dim; j++)
        ret->w[j] = best[j];
    ret->intercept = best[dim];
    ret->cv_r2 = 1.0 - best_sse / sst;
out:
    free(Zt);
    free(G);
    free(zy);
    free(a);
    free(u);
    free(beta);
    free(best);
    if (st != TB_OK)
        tb_taste_clear(ret);
    return st;
}
