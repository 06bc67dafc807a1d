/* Mean |contribution| per feature (see importance.h). */
#include "importance.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "alloc.h"
#include "log.h"
#include "metrics.h"

tb_status tb_trainer_importances(const tb_predictor *p, const double *raw, const size_t *rows, size_t n,
                                 const double *pred, int threads, double **ret, size_t *ret_rows) {
    *ret = NULL;
    *ret_rows = 0;
    if (!p->model->ops->explain || p->pipeline->components || n == 0)
        return TB_OK;
    size_t d = p->pipeline->n_features, k = p->model->n_outputs, m = n < TB_IMPORTANCE_ROWS ? n : TB_IMPORTANCE_ROWS;
    double cost = p->model->ops->explain_cost ? p->model->ops->explain_cost(p->model->impl) : 0.0;
    if (cost > 0.0 && (double)m * cost > TB_IMPORTANCE_STEPS)
        m = (size_t)(TB_IMPORTANCE_STEPS / cost);
    if (m < TB_IMPORTANCE_MIN_ROWS && m < n) {
        tb_log(TB_LOG_INFO, "importances: not computed (explaining one row costs %.3g TreeSHAP steps; %d rows "
                            "would pass the budget of %.3g)", cost, TB_IMPORTANCE_MIN_ROWS, TB_IMPORTANCE_STEPS);
        return TB_OK;
    }
    double *phi = tb_calloc_n(m * d, sizeof *phi), *sum = tb_calloc_n(d, sizeof *sum);
    if (!phi || !sum) {
        free(phi);
        free(sum);
        return tb_error(TB_NOMEM, "out of memory");
    }
    tb_status failed = TB_OK;
    long m_l = (long)m;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (long i = 0; i < m_l; i++) {
        size_t at = (size_t)i * n / m; /* the test row, and the output explained: its argmax */
        int32_t best;
        tb_argmax_rows(pred + at * k, 1, k, &best);
        size_t out = (size_t)best;
        double base, value;
        if (tb_predictor_explain(p, raw + rows[at] * d, &out, 1, phi + (size_t)i * d, &base, &value) != TB_OK) {
#pragma omp critical
            failed = TB_INVALID;
        }
    }
    if (failed != TB_OK) { /* e.g. a model loaded without covers: no importances, not an error */
        free(phi);
        free(sum);
        return TB_OK;
    }
    for (size_t i = 0; i < m; i++) /* in row order: the sums do not depend on the thread count */
        for (size_t j = 0; j < d; j++)
            sum[j] += fabs(phi[i * d + j]);
    for (size_t j = 0; j < d; j++)
        sum[j] /= (double)m;
    free(phi);
    *ret = sum;
    *ret_rows = m;
    return TB_OK;
}
