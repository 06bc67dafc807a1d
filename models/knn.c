/* k-nearest neighbours ("knn"): the training rows, as the feature pipeline standardized them, and
 * their labels (or targets); a prediction is the share of each genre among the k rows nearest in
 * Euclidean distance (or their mean popularity). Exact: every training row is compared, by a
 * dot product (2 v·x − ‖v‖² ranks rows as −‖v − x‖² does), blocks of rows offered to the exact
 * index's bounded top-k (models/index.c), without allocating, so predictions run on many threads
 * at once. Ties go to the earlier row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "index.h"
#include "model.h"

#define KNN_FORMAT 1
#define KNN_MAX_K 1000
#define KNN_MAX_ROWS 50000000u

typedef struct knn {
    tb_task task;
    size_t n, d, outputs, k;
    float *rows;      /* n × d */
    float *norm2;     /* n: ‖row‖² */
    int32_t *y;       /* classify: class per row */
    float *target;    /* regress: value per row */
} knn;

static void knn_free(void *impl) {
    knn *m = impl;
    if (!m)
        return;
    free(m->rows);
    free(m->norm2);
    free(m->y);
    free(m->target);
    free(m);
}

#define KNN_BLOCK 256 /* rows scored at a time, on the stack */

static void knn_predict(const void *impl, const double *x, double *out) {
    const knn *m = impl;
    tb_hit heap[KNN_MAX_K];
    float xf[1024], scores[KNN_BLOCK]; /* 1024: MODEL_MAX_FEATURES */
    size_t n_heap = 0, d = m->d, k = m->k < m->n ? m->k : m->n;
    for (size_t j = 0; j < d; j++)
        xf[j] = (float)x[j];
    for (size_t r0 = 0; r0 < m->n; r0 += KNN_BLOCK) {
        size_t count = m->n - r0 < KNN_BLOCK ? m->n - r0 : KNN_BLOCK;
        for (size_t i = 0; i < count; i++) {
            const float *v = m->rows + (r0 + i) * d;
            float dot = 0.0f;
            for (size_t j = 0; j < d; j++)
                dot += v[j] * xf[j];
            scores[i] = 2.0f * dot - m->norm2[r0 + i]; /* higher is nearer */
        }
        tb_index_offer(scores, count, r0, k, NULL, NULL, heap, &n_heap);
    }
    memset(out, 0, m->outputs * sizeof *out);
    for (size_t h = 0; h < n_heap; h++) {
        if (m->task == TB_TASK_CLASSIFY)
            out[m->y[heap[h].row]] += 1.0 / (double)n_heap;
        else
            out[0] += (double)m->target[heap[h].row] / (double)n_heap;
    }
}

static void knn_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task, (void)n_outputs;
    if (p->n_neighbors == 0)
        p->n_neighbors = 15;
}

static tb_status knn_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    size_t k = p->n_neighbors;
    if (k > KNN_MAX_K)
        return tb_error_with_field(TB_INVALID, "neighbors", "%zu neighbours: choose 1 to %d", k, KNN_MAX_K);
    if (data->n == 0 || data->n > KNN_MAX_ROWS)
        return tb_error(TB_INVALID, "k-nearest neighbours need 1 to %u training rows", KNN_MAX_ROWS);
    knn *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    *m = (knn){.task = data->task, .n = data->n, .d = data->d, .k = k,
               .outputs = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1};
    m->rows = tb_malloc_n(m->n * m->d, sizeof *m->rows);
    m->norm2 = tb_malloc_n(m->n, sizeof *m->norm2);
    if (data->task == TB_TASK_CLASSIFY)
        m->y = tb_malloc_n(m->n, sizeof *m->y);
    else
        m->target = tb_malloc_n(m->n, sizeof *m->target);
    if (!m->rows || !m->norm2 || (!m->y && !m->target)) {
        knn_free(m);
        return tb_error(TB_NOMEM, "out of memory for %zu neighbour rows", data->n);
    }
    for (size_t i = 0; i < m->n; i++) {
        float s = 0.0f;
        for (size_t j = 0; j < m->d; j++) {
            float v = (float)data->X[i * m->d + j];
            m->rows[i * m->d + j] = v;
            s += v * v;
        }
        m->norm2[i] = s;
        if (m->y)
            m->y[i] = data->y[i];
        else
            m->target[i] = (float)data->target[i];
    }
    *ret_impl = m;
    return TB_OK;
}

static void knn_save(const void *impl, tb_writer *w) {
    const knn *m = impl;
    tb_write_u32(w, (uint32_t)m->n);
    tb_write_u32(w, (uint32_t)m->k);
    tb_write_f32s(w, m->rows, m->n * m->d);
    if (m->y)
        tb_write_i32s(w, m->y, m->n);
    else
        tb_write_f32s(w, m->target, m->n);
}

static tb_status knn_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    uint32_t n, k;
    tb_status st;
    if ((st = tb_read_u32(r, &n, "neighbour rows")) != TB_OK || (st = tb_read_u32(r, &k, "neighbours")) != TB_OK)
        return st;
    if (n == 0 || n > KNN_MAX_ROWS || k == 0 || k > KNN_MAX_K || n_features == 0 ||
        (task == TB_TASK_REGRESS && n_outputs != 1))
        return tb_error(TB_CORRUPT, "k-nearest neighbours: %u rows, %u neighbours do not fit", n, k);
    knn *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    *m = (knn){.task = task, .n = n, .d = n_features, .k = k, .outputs = n_outputs};
    if ((st = tb_read_f32s(r, &m->rows, (size_t)n * n_features, "neighbour rows")) == TB_OK)
        st = task == TB_TASK_CLASSIFY ? tb_read_i32s(r, &m->y, n, "neighbour labels")
                                      : tb_read_f32s(r, &m->target, n, "neighbour targets");
    if (st == TB_OK && !(m->norm2 = tb_malloc_n(n, sizeof *m->norm2)))
        st = tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; st == TB_OK && i < n; i++) {
        float s = 0.0f;
        for (size_t j = 0; j < m->d; j++) {
            float v = m->rows[i * m->d + j];
            if (!isfinite(v))
                st = tb_error(TB_CORRUPT, "k-nearest neighbours: a stored row holds a non-finite value");
            s += v * v;
        }
        m->norm2[i] = s;
        if (m->y && (m->y[i] < 0 || (size_t)m->y[i] >= n_outputs))
            st = tb_error(TB_CORRUPT, "k-nearest neighbours: label %d out of range", m->y[i]);
        if (m->target && !isfinite(m->target[i]))
            st = tb_error(TB_CORRUPT, "k-nearest neighbours: a stored target is not finite");
    }
    if (st != TB_OK) {
        knn_free(m);
        return st;
    }
    *ret_impl = m;
    return TB_OK;
}

static const tb_opt knn_params[] = {
    TB_PARAM("neighbors", "N", TB_OPT_SIZE, n_neighbors, 1, KNN_MAX_K, 0, "neighbors", "neighbours that vote (15)"),
};

const tb_model_ops tb_knn_ops = {
    .kind = "knn",
    .params_title = "knn (k nearest neighbours):",
    .params = knn_params,
    .n_params = sizeof knn_params / sizeof knn_params[0],
    .format_version = KNN_FORMAT,
    .resolve = knn_resolve,
    .train = knn_train,
    .predict = knn_predict,
    .save = knn_save,
    .load = knn_load,
    .free = knn_free,
};
