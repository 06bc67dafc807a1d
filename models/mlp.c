/* Tabular neural network ("mlp"): the pipeline's standardized numeric inputs concatenated with
 * learned embeddings of the categorical columns (key, mode, time_signature, explicit; a value not
 * seen in training maps to a reserved row), hidden blocks Linear → ReLU → Dropout, then a softmax
 * genre head and/or a popularity head. Trained by AdamW on shuffled mini-batches; forward and
 * backward passes are OpenBLAS sgemm calls. Early stopping on a grouped validation hold-out
 * (macro-F1 for genre, or log-loss when asked; MSE for popularity) restores the best epoch's
 * weights. Deterministic for a seed (single-threaded BLAS in the inner loop keeps sums in one order).
 *
 * Every weight lives in one float array (embedding tables, then each layer's W and b, then the
 * heads), so the optimizer, the best-epoch copy and the blob each treat it as one vector. */
#include "mlp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "metrics.h"
#include "rng.h"
#include "split.h"

#define MLP_FORMAT 1
#define MLP_MAX_WIDTH 2048     /* bounds the stack buffers of one-row prediction */
#define MLP_MAX_CATEGORIES 64  /* a column with more distinct values stays numeric */
#define MLP_MAX_CAT_DIM 8
#define MLP_MAX_BINS 256
#define MLP_DEFAULT_BINS 16
#define MLP_UNSEEN_RATE 0.02   /* training rows whose category is hidden, to learn the reserved row */
#define MLP_MAX_EPOCHS 10000
#define MLP_MAX_OUTPUTS 65535

static const char *const categorical_names[] = {"key", "mode", "time_signature", "explicit"};

typedef struct mlp_cat {
    size_t col;      /* input column */
    size_t n_values; /* distinct values seen in training; row 0 of the table is "unseen" */
    double *values;  /* sorted ascending */
    size_t dim;      /* embedding width */
    size_t offset;   /* of the (n_values + 1) × dim table in params */
} mlp_cat;

typedef struct mlp {
    tb_task task;           /* the head predict answers from */
    size_t d;               /* input columns */
    size_t n_num;           /* numeric columns ... */
    size_t *num_cols;       /* ... and their indices */
    size_t n_bins;          /* piecewise-linear encoding of each numeric input (0: none) ... */
    double *edges;          /* ... over n_num × (n_bins + 1) ascending training quantiles */
    size_t num_width;       /* n_num × (1 + n_bins): where the embeddings start in the input */
    size_t n_cat;
    mlp_cat *cats;
    size_t n_layers;        /* hidden layers */
    size_t width[TB_MLP_MAX_LAYERS + 1]; /* width[0]: the input vector; then each hidden layer */
    size_t w_off[TB_MLP_MAX_LAYERS], b_off[TB_MLP_MAX_LAYERS];
    size_t k;               /* genre head outputs (0: none) */
    size_t cls_w, cls_b;    /* offsets of the genre head */
    int has_reg;            /* popularity head present */
    size_t reg_w, reg_b;
    double target_mean, target_scale; /* the popularity head predicts (target - mean) / scale */
    size_t n_params;
    float *params;
    size_t epochs_run;      /* reported as the model's "trees" (not saved) */
    double threshold;       /* multilabel: a genre is in the predicted set from this probability */
} mlp;

static void mlp_free(void *impl) {
    mlp *m = impl;
    if (!m)
        return;
    for (size_t c = 0; c < m->n_cat; c++)
        free(m->cats[c].values);
    free(m->cats);
    free(m->num_cols);
    free(m->edges);
    free(m->params);
    free(m);
}

/* Lays out the parameter vector from the shapes already in m; -1 when a width is out of range. */
static int layout(mlp *m) {
    size_t off = 0;
    m->num_width = m->n_num * (1 + m->n_bins);
    m->width[0] = m->num_width;
    for (size_t c = 0; c < m->n_cat; c++) {
        m->cats[c].offset = off;
        off += (m->cats[c].n_values + 1) * m->cats[c].dim;
        m->width[0] += m->cats[c].dim;
    }
    if (m->width[0] == 0 || m->width[0] > MLP_MAX_WIDTH || m->n_layers == 0 || m->n_layers > TB_MLP_MAX_LAYERS)
        return -1;
    for (size_t l = 0; l < m->n_layers; l++) {
        if (m->width[l + 1] == 0 || m->width[l + 1] > MLP_MAX_WIDTH)
            return -1;
        m->w_off[l] = off;
        off += m->width[l] * m->width[l + 1];
        m->b_off[l] = off;
        off += m->width[l + 1];
    }
    size_t last = m->width[m->n_layers];
    m->cls_w = off;
    off += last * m->k;
    m->cls_b = off;
    off += m->k;
    m->reg_w = off;
    off += m->has_reg ? last : 0;
    m->reg_b = off;
    off += m->has_reg ? 1 : 0;
    m->n_params = off;
    return 0;
}

/* Row of category table c for value v (0: unseen). */
static size_t category_row(const mlp_cat *c, double v) {
    size_t lo = 0, hi = c->n_values;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->values[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_values && c->values[lo] == v ? lo + 1 : 0;
}

/* The input vector of one row: numeric columns, then each categorical column's embedding. */
static void input_row(const mlp *m, const double *x, float *a, const size_t *cat_rows) {
    size_t j = 0;
    for (size_t c = 0; c < m->n_num; c++) {
        double v = x[m->num_cols[c]];
        v = isfinite(v) ? v : 0.0; /* the pipeline imputes; guard anyway */
        a[j++] = (float)v;
        /* Bin t reads 0 below its range, 1 above it, and rises linearly inside it: a ramp the
         * first layer can bend anywhere, where one raw value only gives it a straight line. */
        const double *e = m->edges + c * (m->n_bins + 1);
        for (size_t t = 0; t < m->n_bins; t++) {
            double lo = e[t], hi = e[t + 1];
            a[j++] = v >= hi ? 1.0f : v <= lo ? 0.0f : (float)((v - lo) / (hi - lo));
        }
    }
    for (size_t c = 0; c < m->n_cat; c++) {
        const mlp_cat *cat = &m->cats[c];
        size_t row = cat_rows ? cat_rows[c] : category_row(cat, x[cat->col]);
        memcpy(a + j, m->params + cat->offset + row * cat->dim, cat->dim * sizeof *a);
        j += cat->dim;
    }
}

/* One row through the hidden layers; returns the buffer holding the last hidden activations. */
static const float *forward_row(const mlp *m, const double *x, float *a, float *b) {
    input_row(m, x, a, NULL);
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t in = m->width[l], out = m->width[l + 1];
        const float *W = m->params + m->w_off[l];
        memcpy(b, m->params + m->b_off[l], out * sizeof *b);
        for (size_t i = 0; i < in; i++) {
            float ai = a[i];
            if (ai == 0.0f)
                continue;
            const float *wr = W + i * out;
            for (size_t o = 0; o < out; o++)
                b[o] += ai * wr[o];
        }
        for (size_t o = 0; o < out; o++)
            b[o] = b[o] > 0.0f ? b[o] : 0.0f;
        float *t = a;
        a = b;
        b = t;
    }
    return a;
}

static void head_row(const mlp *m, const float *h, tb_task task, double *out) {
    size_t last = m->width[m->n_layers];
    if (task == TB_TASK_REGRESS) {
        double s = m->params[m->reg_b];
        for (size_t i = 0; i < last; i++)
            s += (double)h[i] * m->params[m->reg_w + i];
        out[0] = m->target_mean + m->target_scale * s;
        return;
    }
    const float *W = m->params + m->cls_w;
    for (size_t c = 0; c < m->k; c++)
        out[c] = m->params[m->cls_b + c];
    for (size_t i = 0; i < last; i++)
        for (size_t c = 0; c < m->k; c++)
            out[c] += (double)h[i] * W[i * m->k + c];
    if (task == TB_TASK_MULTILABEL)
        for (size_t c = 0; c < m->k; c++)
            out[c] = 1.0 / (1.0 + exp(-out[c]));
    else
        tb_softmax(out, m->k);
}

static void mlp_predict(const void *impl, const double *x, double *out) {
    const mlp *m = impl;
    float a[MLP_MAX_WIDTH], b[MLP_MAX_WIDTH];
    head_row(m, forward_row(m, x, a, b), m->task, out);
}

/* ---- training ---- */

/* A batch is cut into this many shards, each forwarded and back-propagated on its own thread
 * with single-threaded BLAS; their gradients are summed in shard order, so the result does not
 * depend on the thread count. */
#define MLP_SHARDS 2

typedef struct shard {
    float *act[TB_MLP_MAX_LAYERS + 1]; /* rows × width[l]: inputs, then post-dropout activations */
    float *grad_a, *grad_b;            /* rows × max width */
    float *grad;                       /* n_params */
    float *logits;                     /* rows × k */
    float *reg_out;                    /* rows */
    size_t *cat_rows;                  /* rows × n_cat */
    tb_rng rng;                        /* categories hidden as unseen */
    uint64_t mask_bits;                /* state of the dropout mask generator */
} shard;

typedef struct trainer {
    mlp *m;
    const tb_train_data *data;
    size_t batch;                      /* rows per batch; a shard holds up to batch / MLP_SHARDS + 1 */
    double *class_weight;              /* k, or NULL */
    shard sh[MLP_SHARDS];
} trainer;

/* xorshift64*: dropout draws one 16-bit number per unit, four per call, far cheaper than the
 * seeded generator and still reproducible from it. */
static inline uint64_t mask_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Forward pass of rows[0..n) into sh->act; dropout > 0 masks hidden units (training). */
static void forward_batch(const trainer *t, shard *sh, const size_t *rows, size_t n, double dropout) {
    const mlp *m = t->m;
    const double *X = t->data->X;
    size_t w0 = m->width[0];
    for (size_t i = 0; i < n; i++) {
        size_t *cr = sh->cat_rows + i * m->n_cat;
        for (size_t c = 0; c < m->n_cat; c++) {
            cr[c] = category_row(&m->cats[c], X[rows[i] * m->d + m->cats[c].col]);
            if (dropout > 0.0 && tb_rng_uniform(&sh->rng) < MLP_UNSEEN_RATE)
                cr[c] = 0;
        }
        input_row(m, X + rows[i] * m->d, sh->act[0] + i * w0, cr);
    }
    float keep_scale = dropout > 0.0 ? (float)(1.0 / (1.0 - dropout)) : 1.0f;
    uint32_t drop_below = (uint32_t)(dropout * 65536.0);
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t in = m->width[l], out = m->width[l + 1];
        float *z = sh->act[l + 1];
        const float *bias = m->params + m->b_off[l];
        for (size_t i = 0; i < n; i++)
            memcpy(z + i * out, bias, out * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)out, (int)in, 1.0f, sh->act[l], (int)in,
                    m->params + m->w_off[l], (int)out, 1.0f, z, (int)out);
        size_t total = n * out;
        for (size_t q = 0; q < total; q++)
            z[q] = z[q] > 0.0f ? z[q] * keep_scale : 0.0f;
        if (dropout > 0.0)
            for (size_t q = 0; q < total; q += 4) {
                uint64_t bits = mask_next(&sh->mask_bits);
                for (size_t u = 0; u < 4 && q + u < total; u++, bits >>= 16)
                    if ((uint32_t)(bits & 0xffff) < drop_below)
                        z[q + u] = 0.0f;
            }
    }
    size_t last = m->width[m->n_layers];
    if (m->k) {
        for (size_t i = 0; i < n; i++)
            memcpy(sh->logits + i * m->k, m->params + m->cls_b, m->k * sizeof *sh->logits);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)m->k, (int)last, 1.0f,
                    sh->act[m->n_layers], (int)last, m->params + m->cls_w, (int)m->k, 1.0f, sh->logits, (int)m->k);
        for (size_t i = 0; i < n && m->task == TB_TASK_MULTILABEL; i++)
            for (size_t c = 0; c < m->k; c++) /* independent sigmoids */
                sh->logits[i * m->k + c] = 1.0f / (1.0f + expf(-sh->logits[i * m->k + c]));
        for (size_t i = 0; i < n && m->task != TB_TASK_MULTILABEL; i++) {
            float *r = sh->logits + i * m->k, mx = r[0], sum = 0.0f;
            for (size_t c = 1; c < m->k; c++)
                mx = r[c] > mx ? r[c] : mx;
            for (size_t c = 0; c < m->k; c++)
                sum += r[c] = expf(r[c] - mx);
            for (size_t c = 0; c < m->k; c++)
                r[c] /= sum;
        }
    }
    if (m->has_reg)
        for (size_t i = 0; i < n; i++) {
            const float *h = sh->act[m->n_layers] + i * last;
            float s = m->params[m->reg_b];
            for (size_t j = 0; j < last; j++)
                s += h[j] * m->params[m->reg_w + j];
            sh->reg_out[i] = s;
        }
}

/* Gradient of this shard's part of the batch loss (a mean over batch_n rows) into sh->grad,
 * after forward_batch with the same dropout. */
static void backward_batch(const trainer *t, shard *sh, const size_t *rows, size_t n, size_t batch_n, double dropout,
                           double cls_weight, double reg_weight) {
    const mlp *m = t->m;
    const tb_train_data *data = t->data;
    size_t last = m->width[m->n_layers];
    memset(sh->grad, 0, m->n_params * sizeof *sh->grad);
    float *ga = sh->grad_a;
    memset(ga, 0, n * last * sizeof *ga);
    if (m->k && cls_weight > 0.0 && m->task == TB_TASK_MULTILABEL) { /* binary cross-entropy per genre */
        float s = (float)(cls_weight / (double)batch_n);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *lab = data->labels + rows[i] * m->k;
            float *r = sh->logits + i * m->k;
            for (size_t c = 0; c < m->k; c++)
                r[c] = (r[c] - (lab[c] ? 1.0f : 0.0f)) * s;
        }
    } else if (m->k && cls_weight > 0.0) { /* softmax cross-entropy: (p − onehot) · w / n */
        for (size_t i = 0; i < n; i++) {
            int32_t y = data->y[rows[i]];
            float s = (float)(cls_weight * (t->class_weight ? t->class_weight[y] : 1.0) / (double)batch_n);
            float *r = sh->logits + i * m->k;
            r[y] -= 1.0f;
            for (size_t c = 0; c < m->k; c++)
                r[c] *= s;
        }
    }
    if (m->k && cls_weight > 0.0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)last, (int)m->k, (int)n, 1.0f, sh->act[m->n_layers],
                    (int)last, sh->logits, (int)m->k, 0.0f, sh->grad + m->cls_w, (int)m->k);
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < m->k; c++)
                sh->grad[m->cls_b + c] += sh->logits[i * m->k + c];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)last, (int)m->k, 1.0f, sh->logits, (int)m->k,
                    m->params + m->cls_w, (int)m->k, 0.0f, ga, (int)last);
    }
    if (m->has_reg && reg_weight > 0.0) { /* squared error on the standardized target, halved */
        for (size_t i = 0; i < n; i++) {
            double target = (data->target[rows[i]] - m->target_mean) / m->target_scale;
            float g = (float)(reg_weight * ((double)sh->reg_out[i] - target) / (double)batch_n);
            const float *h = sh->act[m->n_layers] + i * last;
            for (size_t j = 0; j < last; j++) {
                sh->grad[m->reg_w + j] += g * h[j];
                ga[i * last + j] += g * m->params[m->reg_w + j];
            }
            sh->grad[m->reg_b] += g;
        }
    }
    float keep_scale = dropout > 0.0 ? (float)(1.0 / (1.0 - dropout)) : 1.0f;
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t in = m->width[l], out = m->width[l + 1];
        const float *a = sh->act[l + 1];
        for (size_t q = 0; q < n * out; q++) /* through dropout and ReLU: zero where the unit was off */
            ga[q] = a[q] > 0.0f ? ga[q] * keep_scale : 0.0f;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)in, (int)out, (int)n, 1.0f, sh->act[l], (int)in, ga,
                    (int)out, 0.0f, sh->grad + m->w_off[l], (int)out);
        float *gb = sh->grad + m->b_off[l];
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < out; o++)
                gb[o] += ga[i * out + o];
        if (l == 0 && m->n_cat == 0)
            break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)in, (int)out, 1.0f, ga, (int)out,
                    m->params + m->w_off[l], (int)out, 0.0f, sh->grad_b, (int)in);
        float *swap = ga;
        ga = sh->grad_b;
        sh->grad_b = swap;
    }
    if (m->n_cat) { /* ga now holds the input gradient: scatter the embedding columns */
        size_t w0 = m->width[0];
        for (size_t i = 0; i < n; i++) {
            size_t j = m->num_width;
            for (size_t c = 0; c < m->n_cat; c++) {
                const mlp_cat *cat = &m->cats[c];
                float *g = sh->grad + cat->offset + sh->cat_rows[i * m->n_cat + c] * cat->dim;
                for (size_t e = 0; e < cat->dim; e++)
                    g[e] += ga[i * w0 + j + e];
                j += cat->dim;
            }
        }
    }
    sh->grad_a = ga;
}

#define MLP_THRESHOLDS 19 /* multilabel: 0.05, 0.10, … 0.95 */

/* Validation score, higher is better: macro-F1 of the primary genre head (or −log-loss when
 * asked), −MSE, or (multilabel) micro-F1 at the best threshold of the grid, written to *threshold. */
static double validation_score(trainer *t, const size_t *rows, size_t n, int32_t *pred, uint64_t *cm,
                               double *threshold, int log_loss) {
    const mlp *m = t->m;
    shard *sh = &t->sh[0];
    size_t step = t->batch / MLP_SHARDS + 1;
    double sse = 0.0;
    uint64_t tp[MLP_THRESHOLDS] = {0}, fp[MLP_THRESHOLDS] = {0}, fn[MLP_THRESHOLDS] = {0};
    for (size_t s = 0; s < n; s += step) {
        size_t b = n - s < step ? n - s : step;
        forward_batch(t, sh, rows + s, b, 0.0);
        for (size_t i = 0; i < b; i++) {
            if (m->task == TB_TASK_MULTILABEL) {
                const float *r = sh->logits + i * m->k;
                const uint8_t *lab = t->data->labels + rows[s + i] * m->k;
                for (size_t c = 0; c < m->k; c++)
                    for (int j = 0; j < MLP_THRESHOLDS; j++) {
                        int yes = r[c] >= (float)((double)(j + 1) / 20.0);
                        tp[j] += yes && lab[c];
                        fp[j] += yes && !lab[c];
                        fn[j] += !yes && lab[c];
                    }
            } else if (m->task == TB_TASK_CLASSIFY) {
                const float *r = sh->logits + i * m->k;
                size_t best = 0;
                for (size_t c = 1; c < m->k; c++)
                    best = r[c] > r[best] ? c : best;
                pred[s + i] = (int32_t)best;
                sse -= log(fmax((double)r[t->data->y[rows[s + i]]], 1e-15)); /* log-loss, summed */
            } else {
                double e = m->target_mean + m->target_scale * sh->reg_out[i] - t->data->target[rows[s + i]];
                sse += e * e;
            }
        }
    }
    if (m->task == TB_TASK_MULTILABEL) {
        double best = -1.0;
        for (int j = 0; j < MLP_THRESHOLDS; j++) {
            double f1 = tp[j] ? 2.0 * (double)tp[j] / (double)(2 * tp[j] + fp[j] + fn[j]) : 0.0;
            if (f1 > best) {
                best = f1;
                *threshold = 0.05 * (j + 1);
            }
        }
        return best;
    }
    if (m->task != TB_TASK_CLASSIFY || log_loss)
        return -sse / (double)n;
    int32_t *truth = pred + n;
    for (size_t i = 0; i < n; i++)
        truth[i] = t->data->y[rows[i]];
    memset(cm, 0, m->k * m->k * sizeof *cm);
    tb_confusion_matrix(truth, pred, n, m->k, cm);
    return tb_macro_f1(cm, m->k);
}

static void shard_free(shard *sh) {
    for (size_t l = 0; l <= TB_MLP_MAX_LAYERS; l++)
        free(sh->act[l]);
    free(sh->grad_a);
    free(sh->grad_b);
    free(sh->grad);
    free(sh->logits);
    free(sh->reg_out);
    free(sh->cat_rows);
}

/* Returns -1 when out of memory. */
static int shard_alloc(shard *sh, const mlp *m, size_t rows) {
    size_t maxw = m->width[0];
    for (size_t l = 1; l <= m->n_layers; l++)
        maxw = m->width[l] > maxw ? m->width[l] : maxw;
    int bad = 0;
    for (size_t l = 0; l <= m->n_layers; l++)
        bad |= !(sh->act[l] = tb_malloc_n(rows * m->width[l], sizeof(float)));
    bad |= !(sh->grad_a = tb_malloc_n(rows * maxw, sizeof(float)));
    bad |= !(sh->grad_b = tb_malloc_n(rows * maxw, sizeof(float)));
    bad |= !(sh->grad = tb_malloc_n(m->n_params, sizeof(float)));
    bad |= !(sh->logits = tb_malloc_n(rows * (m->k ? m->k : 1), sizeof(float)));
    bad |= !(sh->reg_out = tb_malloc_n(rows, sizeof(float)));
    bad |= !(sh->cat_rows = tb_malloc_n(rows * (m->n_cat ? m->n_cat : 1), sizeof(size_t)));
    return bad ? -1 : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Categorical columns by name, with their distinct training values. */
static tb_status find_categories(mlp *m, const tb_train_data *data) {
    m->cats = tb_calloc_n(m->d, sizeof *m->cats);
    m->num_cols = tb_malloc_n(m->d, sizeof *m->num_cols);
    double *vals = tb_malloc_n(MLP_MAX_CATEGORIES + 1, sizeof *vals);
    if (!m->cats || !m->num_cols || !vals) {
        free(vals);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t j = 0; j < m->d; j++) {
        int named = 0;
        for (size_t q = 0; data->names && q < sizeof categorical_names / sizeof *categorical_names; q++)
            named |= strcmp(data->names[j], categorical_names[q]) == 0;
        size_t nv = 0;
        for (size_t i = 0; named && i < data->n && nv <= MLP_MAX_CATEGORIES; i++) {
            double v = data->X[i * m->d + j];
            size_t at = 0;
            while (at < nv && vals[at] < v)
                at++;
            if (!isfinite(v) || (at < nv && vals[at] == v))
                continue;
            memmove(vals + at + 1, vals + at, (nv - at) * sizeof *vals);
            vals[at] = v;
            nv++;
        }
        if (!named || nv == 0 || nv > MLP_MAX_CATEGORIES) {
            m->num_cols[m->n_num++] = j;
            continue;
        }
        mlp_cat *c = &m->cats[m->n_cat++];
        c->col = j;
        c->n_values = nv;
        c->dim = (nv + 2) / 2 < MLP_MAX_CAT_DIM ? (nv + 2) / 2 : MLP_MAX_CAT_DIM;
        if (!(c->values = tb_malloc_n(nv, sizeof *c->values))) {
            free(vals);
            return tb_error(TB_NOMEM, "out of memory");
        }
        memcpy(c->values, vals, nv * sizeof *vals);
    }
    free(vals);
    return TB_OK;
}

/* Quantile edges of each numeric input over the training rows. */
static tb_status fit_bins(mlp *m, const tb_train_data *data, size_t n_bins) {
    m->n_bins = n_bins;
    if (n_bins == 0 || m->n_num == 0)
        return TB_OK;
    double *v = tb_malloc_n(data->n, sizeof *v);
    m->edges = tb_malloc_n(m->n_num * (n_bins + 1), sizeof *m->edges);
    if (!v || !m->edges) {
        free(v);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < m->n_num; c++) {
        size_t n = 0;
        for (size_t i = 0; i < data->n; i++) {
            double x = data->X[i * m->d + m->num_cols[c]];
            if (isfinite(x))
                v[n++] = x;
        }
        qsort(v, n, sizeof *v, cmp_double);
        double *e = m->edges + c * (n_bins + 1);
        for (size_t t = 0; t <= n_bins; t++)
            e[t] = n ? v[(n - 1) * t / n_bins] : 0.0;
    }
    free(v);
    return TB_OK;
}

/* Glorot-uniform weights (as scikit-learn), zero biases, small random embeddings with a zero
 * "unseen" row. */
static void init_params(mlp *m, tb_rng *rng) {
    memset(m->params, 0, m->n_params * sizeof *m->params);
    for (size_t c = 0; c < m->n_cat; c++) {
        const mlp_cat *cat = &m->cats[c];
        for (size_t q = cat->dim; q < (cat->n_values + 1) * cat->dim; q++)
            m->params[cat->offset + q] = (float)((tb_rng_uniform(rng) * 2.0 - 1.0) * 0.5);
    }
    size_t last = m->width[m->n_layers];
    for (size_t l = 0; l <= m->n_layers; l++) {
        size_t in = l < m->n_layers ? m->width[l] : last;
        size_t outs[2] = {l < m->n_layers ? m->width[l + 1] : m->k, l < m->n_layers ? 0 : (size_t)m->has_reg};
        size_t offs[2] = {l < m->n_layers ? m->w_off[l] : m->cls_w, m->reg_w};
        for (size_t h = 0; h < 2; h++) {
            double bound = sqrt(6.0 / (double)(in + outs[h]));
            for (size_t q = 0; q < in * outs[h]; q++)
                m->params[offs[h] + q] = (float)((tb_rng_uniform(rng) * 2.0 - 1.0) * bound);
        }
    }
}

/* The defaults: 256-128, batches of 256, AdamW step 0.001, 200 epochs at most, early stopping
 * after 10 epochs without gain, 16 quantile bins. */
static void mlp_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task, (void)n_outputs;
    if (p->hidden.n == 0) {
        p->hidden.v[0] = 256;
        p->hidden.v[1] = 128;
        p->hidden.n = 2;
    }
    if (p->batch_size == 0)
        p->batch_size = 256;
    if (p->learning_rate == 0.0)
        p->learning_rate = 1e-3;
    if (p->epochs == 0)
        p->epochs = 200;
    if (p->early_stopping == TB_EARLY_STOPPING_AUTO)
        p->early_stopping = 10;
    if (p->numeric_bins < 0)
        p->numeric_bins = MLP_DEFAULT_BINS;
}

static tb_status check_params(const tb_train_data *data, const tb_train_params *p) {
    if (p->hidden.n == 0 || p->hidden.n > TB_MLP_MAX_LAYERS)
        return tb_error_with_field(TB_INVALID, "hidden", "%zu hidden layers: choose 1 to %d", p->hidden.n,
                                   TB_MLP_MAX_LAYERS);
    for (size_t l = 0; l < p->hidden.n; l++)
        if (p->hidden.v[l] == 0 || p->hidden.v[l] > MLP_MAX_WIDTH)
            return tb_error_with_field(TB_INVALID, "hidden", "a hidden layer of %zu units: choose 1 to %d",
                                       p->hidden.v[l], MLP_MAX_WIDTH);
    if (!(p->dropout >= 0.0 && p->dropout < 1.0))
        return tb_error_with_field(TB_INVALID, "dropout", "dropout %g is not in [0, 1)", p->dropout);
    if (!(p->learning_rate > 0.0 && p->learning_rate <= 1.0))
        return tb_error_with_field(TB_INVALID, "learning_rate", "learning rate %g is not in (0, 1]", p->learning_rate);
    if (!(p->weight_decay >= 0.0 && p->weight_decay < 1.0))
        return tb_error_with_field(TB_INVALID, "weight_decay", "weight decay %g is not in [0, 1)", p->weight_decay);
    if (!(p->aux_weight >= 0.0) || !isfinite(p->aux_weight))
        return tb_error_with_field(TB_INVALID, "aux_weight", "the multi-task weight must be finite and >= 0");
    if (p->numeric_bins < 0 || p->numeric_bins > MLP_MAX_BINS)
        return tb_error_with_field(TB_INVALID, "numeric_bins", "%d bins: choose 0 to %d", p->numeric_bins,
                                   MLP_MAX_BINS);
    if (p->epochs == 0 || p->epochs > MLP_MAX_EPOCHS || p->batch_size == 0 || p->batch_size > 65536)
        return tb_error_with_field(TB_INVALID, "epochs", "at most %d epochs and batches of 65536 rows",
                                   MLP_MAX_EPOCHS);
    if (p->aux_weight > 0.0 && (!data->target || !data->y || data->n_classes < 2 || data->task == TB_TASK_MULTILABEL))
        return tb_error_with_field(TB_INVALID, "aux_weight",
                                   "multi-task training needs both genre labels and popularity");
    if (data->d == 0 || data->n == 0)
        return tb_error(TB_INVALID, "neural network: no rows or no inputs");
    return TB_OK;
}

/* Standardizes the regression target so one learning rate suits both heads. */
static void standardize_target(mlp *m, const tb_train_data *data) {
    double s = 0.0, s2 = 0.0;
    for (size_t i = 0; i < data->n; i++)
        s += data->target[i];
    m->target_mean = s / (double)data->n;
    for (size_t i = 0; i < data->n; i++)
        s2 += (data->target[i] - m->target_mean) * (data->target[i] - m->target_mean);
    m->target_scale = s2 > 0.0 ? sqrt(s2 / (double)data->n) : 1.0;
}

/* The rows that train and, with early stopping, the ones that score each epoch. */
static tb_status hold_out(const tb_train_data *data, const tb_train_params *p, size_t **fit, size_t *n_fit,
                          size_t **val, size_t *n_val) {
    size_t patience = p->early_stopping;
    tb_status st = TB_OK;
    *n_fit = data->n;
    *n_val = 0;
    if (patience > 0 && data->val_rows && data->n_val > 0 && data->n_val < data->n) {
        /* The caller chose the hold-out (the blend reuses it to weigh its members). */
        st = tb_split_named(data->n, data->val_rows, data->n_val, fit, n_fit, val, n_val);
    } else if (patience > 0 && p->validation_fraction > 0.0 && data->n >= 20) {
        size_t *group = tb_malloc_n(data->n, sizeof *group);
        if (!group)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < data->n; i++)
            group[i] = data->group ? data->group[i] : i;
        st = tb_split_train_test(data->task == TB_TASK_CLASSIFY ? data->y : NULL, group, data->n, p->validation_fraction,
                                 p->seed ^ 0x5eedULL, fit, n_fit, val, n_val);
        free(group);
    } else {
        if (!(*fit = tb_malloc_n(data->n, sizeof **fit)))
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < data->n; i++)
            (*fit)[i] = i;
    }
    if (st == TB_OK && (*n_fit == 0 || (patience > 0 && *n_val == 0)))
        st = tb_error(TB_INVALID, "neural network: %zu rows are too few to hold out a validation share for early "
                                  "stopping (train with --early-stopping 0)", data->n);
    return st;
}

/* AdamW's moments and bias corrections. */
typedef struct adamw {
    float *mom, *vel;
    double b1t, b2t;
} adamw;

/* One pass over the shuffled training rows: each mini-batch's gradient, summed over the shards
 * in shard order (the result does not depend on the thread count), then one AdamW step. */
static void train_epoch(trainer *t, const tb_train_params *p, const size_t *fit, size_t n_fit, int threads,
                        double cls_w, double reg_w, adamw *a) {
    mlp *m = t->m;
    const double b1 = 0.9, b2 = 0.999, lr = p->learning_rate, wd = p->weight_decay;
    for (size_t s = 0; s < n_fit; s += t->batch) {
        size_t b = n_fit - s < t->batch ? n_fit - s : t->batch;
        size_t per = (b + MLP_SHARDS - 1) / MLP_SHARDS;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
        for (int h = 0; h < MLP_SHARDS; h++) {
            size_t from = (size_t)h * per < b ? (size_t)h * per : b, to = from + per < b ? from + per : b;
            if (to > from) {
                forward_batch(t, &t->sh[h], fit + s + from, to - from, p->dropout);
                backward_batch(t, &t->sh[h], fit + s + from, to - from, b, p->dropout, cls_w, reg_w);
            } else {
                memset(t->sh[h].grad, 0, m->n_params * sizeof *t->sh[h].grad);
            }
        }
        float *grad = t->sh[0].grad;
        for (size_t h = 1; h < MLP_SHARDS; h++)
            for (size_t q = 0; q < m->n_params; q++)
                grad[q] += t->sh[h].grad[q];
        a->b1t *= b1;
        a->b2t *= b2;
        float step = (float)(lr / (1.0 - a->b1t)), c2 = (float)(1.0 / (1.0 - a->b2t));
        float decay = (float)(1.0 - lr * wd), fb1 = (float)b1, fb2 = (float)b2;
        for (size_t q = 0; q < m->n_params; q++) {
            float g = grad[q];
            a->mom[q] = fb1 * a->mom[q] + (1.0f - fb1) * g;
            a->vel[q] = fb2 * a->vel[q] + (1.0f - fb2) * g * g;
            m->params[q] = m->params[q] * decay - step * a->mom[q] / (sqrtf(a->vel[q] * c2) + 1e-8f);
        }
    }
}

static tb_status mlp_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    tb_status st = check_params(data, p);
    if (st != TB_OK)
        return st;
    mlp *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    int classify = data->task != TB_TASK_REGRESS, multi = p->aux_weight > 0.0;
    m->task = data->task;
    m->d = data->d;
    m->n_layers = p->hidden.n;
    memcpy(m->width + 1, p->hidden.v, p->hidden.n * sizeof *p->hidden.v);
    m->k = classify || multi ? data->n_classes : 0;
    m->threshold = 0.5;
    m->has_reg = !classify || multi;
    m->target_mean = 0.0;
    m->target_scale = 1.0;
    if (m->has_reg)
        standardize_target(m, data);
    trainer t = {.m = m, .data = data};
    size_t *fit = NULL, *val = NULL, n_fit = data->n, n_val = 0;
    adamw adam = {.b1t = 1.0, .b2t = 1.0};
    float *best = NULL;
    int32_t *pred = NULL;
    uint64_t *cm = NULL;
    if ((st = find_categories(m, data)) != TB_OK ||
        (st = fit_bins(m, data, (size_t)p->numeric_bins)) != TB_OK)
        goto fail;
    if (layout(m) != 0) {
        st = tb_error_with_field(TB_INVALID, "hidden", "the input is wider than %d values", MLP_MAX_WIDTH);
        goto fail;
    }
    size_t patience = p->early_stopping;
    if ((st = hold_out(data, p, &fit, &n_fit, &val, &n_val)) != TB_OK)
        goto fail;
    t.batch = p->batch_size;
    int fail_alloc = !(m->params = tb_malloc_n(m->n_params, sizeof *m->params));
    for (size_t h = 0; h < MLP_SHARDS && !fail_alloc; h++)
        fail_alloc |= shard_alloc(&t.sh[h], m, t.batch / MLP_SHARDS + 1);
    fail_alloc |= !(adam.mom = tb_calloc_n(m->n_params, sizeof *adam.mom)) ||
                  !(adam.vel = tb_calloc_n(m->n_params, sizeof *adam.vel));
    fail_alloc |= !(best = tb_malloc_n(m->n_params, sizeof *best));
    fail_alloc |= !(pred = tb_malloc_n(2 * (n_val ? n_val : 1), sizeof *pred));
    fail_alloc |= !(cm = tb_malloc_n(m->k ? m->k * m->k : 1, sizeof *cm));
    if (m->k && data->task == TB_TASK_CLASSIFY && p->class_weight_balanced == 1 && !fail_alloc) {
        fail_alloc |= !(t.class_weight = tb_calloc_n(m->k, sizeof *t.class_weight));
        for (size_t i = 0; !fail_alloc && i < n_fit; i++)
            t.class_weight[data->y[fit[i]]] += 1.0;
        for (size_t c = 0; !fail_alloc && c < m->k; c++)
            t.class_weight[c] = t.class_weight[c] > 0.0 ? (double)n_fit / ((double)m->k * t.class_weight[c]) : 0.0;
    }
    if (fail_alloc) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    tb_rng rng;
    tb_rng_seed(&rng, p->seed);
    init_params(m, &rng);
    for (size_t h = 0; h < MLP_SHARDS; h++) {
        tb_rng_derive(&t.sh[h].rng, p->seed, h + 1);
        t.sh[h].mask_bits = tb_rng_next(&t.sh[h].rng) | 1u;
    }
    int threads = p->threads > 0 ? p->threads : omp_get_num_procs();
    threads = threads < MLP_SHARDS ? threads : MLP_SHARDS;
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    memcpy(best, m->params, m->n_params * sizeof *best);
    double cls_w = classify ? 1.0 : p->aux_weight, reg_w = classify ? p->aux_weight : 1.0;
    double best_score = -INFINITY;
    size_t epochs = p->epochs, since_best = 0;
    for (size_t epoch = 0; epoch < epochs; epoch++) {
        tb_rng_shuffle(&rng, fit, n_fit);
        train_epoch(&t, p, fit, n_fit, threads, cls_w, reg_w, &adam);
        m->epochs_run = epoch + 1;
        if (p->progress)
            p->progress(p->progress_ctx, epoch + 1, epochs);
        if (patience == 0)
            continue;
        double threshold = 0.5;
        double score = validation_score(&t, val, n_val, pred, cm, &threshold, p->stop_on_log_loss);
        if (score > best_score) {
            best_score = score;
            m->threshold = threshold;
            since_best = 0;
            memcpy(best, m->params, m->n_params * sizeof *best);
        } else if (++since_best >= patience) {
            break;
        }
    }
    openblas_set_num_threads(blas_threads);
    if (p->progress) /* early stopping ends the bar */
        p->progress(p->progress_ctx, epochs, epochs);
    if (patience > 0)
        memcpy(m->params, best, m->n_params * sizeof *best);
    for (size_t q = 0; q < m->n_params; q++)
        if (!isfinite(m->params[q])) {
            st = tb_error(TB_INVALID, "neural network: training diverged; lower --learning-rate");
            goto fail;
        }
    goto done;
fail:
    mlp_free(m);
    m = NULL;
done:
    for (size_t h = 0; h < MLP_SHARDS; h++)
        shard_free(&t.sh[h]);
    free(t.class_weight);
    free(adam.mom);
    free(adam.vel);
    free(best);
    free(pred);
    free(cm);
    free(fit);
    free(val);
    if (m)
        *ret_impl = m;
    return st;
}

/* ---- blob ---- */

static void mlp_save(const void *impl, tb_writer *w) {
    const mlp *m = impl;
    tb_write_u8(w, (uint8_t)m->n_layers);
    for (size_t l = 1; l <= m->n_layers; l++)
        tb_write_u32(w, (uint32_t)m->width[l]);
    tb_write_u32(w, (uint32_t)m->k);
    tb_write_u8(w, (uint8_t)m->has_reg);
    tb_write_f64(w, m->target_mean);
    tb_write_f64(w, m->target_scale);
    tb_write_u32(w, (uint32_t)m->n_num);
    for (size_t j = 0; j < m->n_num; j++)
        tb_write_u32(w, (uint32_t)m->num_cols[j]);
    tb_write_u32(w, (uint32_t)m->n_bins);
    if (m->n_bins)
        tb_write_f64s(w, m->edges, m->n_num * (m->n_bins + 1));
    tb_write_u32(w, (uint32_t)m->n_cat);
    for (size_t c = 0; c < m->n_cat; c++) {
        tb_write_u32(w, (uint32_t)m->cats[c].col);
        tb_write_u32(w, (uint32_t)m->cats[c].dim);
        tb_write_u32(w, (uint32_t)m->cats[c].n_values);
        tb_write_f64s(w, m->cats[c].values, m->cats[c].n_values);
    }
    tb_write_u64(w, m->n_params);
    tb_write_f32s(w, m->params, m->n_params);
    if (m->task == TB_TASK_MULTILABEL)
        tb_write_f64(w, m->threshold);
}

static tb_status read_size(tb_reader *r, size_t *v, size_t max, const char *what) {
    uint32_t u;
    tb_status st = tb_read_u32(r, &u, what);
    if (st != TB_OK)
        return st;
    if (u > max)
        return tb_error(TB_CORRUPT, "neural network: %s %u is out of range", what, u);
    *v = u;
    return TB_OK;
}

static tb_status load_shape(tb_reader *r, mlp *m) {
    uint8_t layers, reg;
    tb_status st = tb_read_u8(r, &layers, "mlp layers");
    if (st != TB_OK)
        return st;
    if (layers == 0 || layers > TB_MLP_MAX_LAYERS)
        return tb_error(TB_CORRUPT, "neural network: %u hidden layers", layers);
    m->n_layers = layers;
    for (size_t l = 1; l <= m->n_layers; l++)
        if ((st = read_size(r, &m->width[l], MLP_MAX_WIDTH, "layer width")) != TB_OK)
            return st;
    if ((st = read_size(r, &m->k, MLP_MAX_OUTPUTS, "genre outputs")) != TB_OK ||
        (st = tb_read_u8(r, &reg, "mlp popularity head")) != TB_OK ||
        (st = tb_read_f64(r, &m->target_mean, "target mean")) != TB_OK ||
        (st = tb_read_f64(r, &m->target_scale, "target scale")) != TB_OK ||
        (st = read_size(r, &m->n_num, m->d, "numeric inputs")) != TB_OK)
        return st;
    m->has_reg = reg != 0;
    if (reg > 1 || !isfinite(m->target_mean) || !isfinite(m->target_scale) || !(m->target_scale > 0.0))
        return tb_error(TB_CORRUPT, "neural network: a bad popularity head");
    unsigned char *used = calloc(m->d ? m->d : 1, 1);
    if (!used || !(m->num_cols = tb_malloc_n(m->d, sizeof *m->num_cols)) ||
        !(m->cats = tb_calloc_n(m->d, sizeof *m->cats))) {
        free(used);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t j = 0; st == TB_OK && j < m->n_num; j++)
        if ((st = read_size(r, &m->num_cols[j], m->d - 1, "input column")) == TB_OK && used[m->num_cols[j]]++)
            st = tb_error(TB_CORRUPT, "neural network: input column %zu is used twice", m->num_cols[j]);
    if (st == TB_OK && (st = read_size(r, &m->n_bins, MLP_MAX_BINS, "numeric bins")) == TB_OK && m->n_bins &&
        (st = tb_read_f64s(r, &m->edges, m->n_num * (m->n_bins + 1), "bin edges")) == TB_OK)
        for (size_t c = 0; st == TB_OK && c < m->n_num; c++)
            for (size_t t = 0; t <= m->n_bins; t++) {
                const double *e = m->edges + c * (m->n_bins + 1);
                if (!isfinite(e[t]) || (t > 0 && e[t] < e[t - 1])) {
                    st = tb_error(TB_CORRUPT, "neural network: bin edges are not finite and ascending");
                    break;
                }
            }
    if (st == TB_OK)
        st = read_size(r, &m->n_cat, m->d - m->n_num, "categorical inputs");
    for (size_t c = 0; st == TB_OK && c < m->n_cat; c++) {
        mlp_cat *cat = &m->cats[c];
        if ((st = read_size(r, &cat->col, m->d - 1, "input column")) != TB_OK ||
            (st = read_size(r, &cat->dim, MLP_MAX_CAT_DIM, "embedding width")) != TB_OK ||
            (st = read_size(r, &cat->n_values, MLP_MAX_CATEGORIES, "categories")) != TB_OK)
            break;
        if (used[cat->col]++ || cat->dim == 0 || cat->n_values == 0) {
            st = tb_error(TB_CORRUPT, "neural network: a bad categorical input");
            break;
        }
        if ((st = tb_read_f64s(r, &cat->values, cat->n_values, "categories")) != TB_OK)
            break;
        for (size_t v = 0; v < cat->n_values; v++)
            if (!isfinite(cat->values[v]) || (v > 0 && !(cat->values[v - 1] < cat->values[v])))
                st = tb_error(TB_CORRUPT, "neural network: categories are not finite and ascending");
    }
    free(used);
    return st;
}

static tb_status mlp_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    mlp *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    m->task = task;
    m->d = n_features;
    uint64_t n_params = 0;
    tb_status st = load_shape(r, m);
    if (st == TB_OK && (layout(m) != 0 || (task != TB_TASK_REGRESS ? m->k != n_outputs || m->k < 2
                                                                    : !m->has_reg || n_outputs != 1)))
        st = tb_error(TB_CORRUPT, "neural network: the layer shapes do not fit the model");
    if (st == TB_OK && (st = tb_read_u64(r, &n_params, "parameter count")) == TB_OK && n_params != m->n_params)
        st = tb_error(TB_CORRUPT, "neural network: %llu parameters where the shapes need %zu",
                      (unsigned long long)n_params, m->n_params);
    if (st == TB_OK)
        st = tb_read_f32s(r, &m->params, m->n_params, "mlp parameters");
    for (size_t q = 0; st == TB_OK && q < m->n_params; q++)
        if (!isfinite(m->params[q]))
            st = tb_error(TB_CORRUPT, "neural network: a weight is not finite");
    if (st == TB_OK && task == TB_TASK_MULTILABEL && (st = tb_read_f64(r, &m->threshold, "threshold")) == TB_OK &&
        !(m->threshold > 0.0 && m->threshold < 1.0))
        st = tb_error(TB_CORRUPT, "neural network: threshold %g is not in (0, 1)", m->threshold);
    if (st != TB_OK) {
        mlp_free(m);
        return st;
    }
    *ret_impl = m;
    return TB_OK;
}

static size_t mlp_epochs(const void *impl) { return ((const mlp *)impl)->epochs_run; }

static const tb_opt mlp_params[] = {
    TB_PARAM("hidden", "N,N,...", TB_OPT_SIZE_LIST, hidden, 1, MLP_MAX_WIDTH, 0, "hidden",
             "hidden layer widths, 1 to 4 layers (256,128)"),
    TB_PARAM("dropout", "X", TB_OPT_DOUBLE, dropout, 0, 1, TB_OPT_MAX_OPEN, "dropout",
             "share of hidden units dropped while training (0.1)"),
    TB_PARAM("batch-size", "N", TB_OPT_SIZE, batch_size, 1, 65536, 0, "batch_size", "rows per mini-batch (256)"),
    TB_PARAM("learning-rate", "X", TB_OPT_DOUBLE, learning_rate, 0, 1, TB_OPT_MIN_OPEN, "learning_rate",
             "AdamW step (0.001)"),
    TB_PARAM("weight-decay", "X", TB_OPT_DOUBLE, weight_decay, 0, 1, TB_OPT_MAX_OPEN, "weight_decay",
             "AdamW decoupled weight decay (0.0001)"),
    TB_PARAM("epochs", "N", TB_OPT_SIZE, epochs, 1, MLP_MAX_EPOCHS, 0, "epochs_max",
             "passes over the data, an upper bound (200); early\nstopping keeps the best"),
    TB_PARAM("early-stopping", "N", TB_OPT_SIZE, early_stopping, 0, 100000, 0, "early_stopping",
             "stop after N epochs without validation gain (10); 0 = off"),
    TB_PARAM("numeric-bins", "N", TB_OPT_INT, numeric_bins, 0, MLP_MAX_BINS, 0, "numeric_bins",
             "each numeric input also enters as a piecewise-linear\ncode over N training-quantile bins; 0 = raw values only (16)"),
    TB_PARAM("multitask", "W", TB_OPT_DOUBLE, aux_weight, 0, 1e6, TB_OPT_MIN_OPEN, "multitask_weight",
             "one trunk, a genre and a popularity head trained together;\nW weighs the other head's loss (popularity is "
             "then not an\ninput)"),
};

static double mlp_threshold(const void *impl) { return ((const mlp *)impl)->threshold; }

const tb_model_ops tb_mlp_ops = {
    .kind = "mlp",
    .early_stops = 1,
    .multitask = 1,
    .params_title = "mlp (neural network with categorical embeddings):",
    .params = mlp_params,
    .n_params = sizeof mlp_params / sizeof mlp_params[0],
    .steps = "epochs",
    .steps_bound = offsetof(tb_train_params, epochs),
    .threshold = mlp_threshold,
    .format_version = MLP_FORMAT,
    .multilabel = 1,
    .resolve = mlp_resolve,
    .train = mlp_train,
    .predict = mlp_predict,
    .n_steps = mlp_epochs,
    .save = mlp_save,
    .load = mlp_load,
    .free = mlp_free,
};

size_t tb_mlp_embedding_dim(const tb_model *m) {
    return m->ops == &tb_mlp_ops ? ((const mlp *)m->impl)->width[((const mlp *)m->impl)->n_layers] : 0;
}

void tb_mlp_embed(const tb_model *model, const double *x, double *out) {
    const mlp *m = model->impl;
    float a[MLP_MAX_WIDTH], b[MLP_MAX_WIDTH];
    const float *h = forward_row(m, x, a, b);
    for (size_t i = 0; i < m->width[m->n_layers]; i++)
        out[i] = h[i];
}
