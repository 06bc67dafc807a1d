/* A listener's taste: ridge regression of their ratings on the catalog's track embeddings (the
 * recommendation index's unit vectors), fitted per request. The penalty is chosen by exact
 * leave-one-out error over a small grid, and that leave-one-out error is reported as a
 * cross-validated R², so the listener can see how far to trust the fit. The predicted rating of
 * any track is intercept + w · vector, so the best tracks are an inner-product search with w. */
#ifndef TB_TASTE_H
#define TB_TASTE_H

#include <stddef.h>

#include "status.h"

#define TB_TASTE_MIN_RATINGS 5
#define TB_TASTE_MAX_DIM 1024

typedef struct tb_taste {
    size_t dim;
    double *w;        /* dim weights */
    double intercept;
    double lambda;    /* the chosen penalty */
    double cv_r2;     /* 1 − Σ(leave-one-out error)² / Σ(rating − mean)²; may be negative */
    double mean;      /* of the ratings */
} tb_taste;

/* X: n × dim (row-major floats), ratings: n finite values, n >= TB_TASTE_MIN_RATINGS. When
 * every rating is equal the fit is the constant and cv_r2 is 0. */
tb_status tb_taste_fit(const float *X, const double *ratings, size_t n, size_t dim, tb_taste *ret);
void tb_taste_clear(tb_taste *t);

#endif
