/* Metric implementations. */
#include "alloc.h"
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double tb_accuracy(const int32_t *y_true, const int32_t *y_pred, size_t n) {
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        hit += y_true[i] == y_pred[i];
    return n ? (double)hit / (double)n : 0.0;
}

void tb_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k, uint64_t *cm) {
    for (size_t i = 0; i < k * k; i++)
        cm[i] = 0;
    for (size_t i = 0; i < n; i++)
        cm[(size_t)y_true[i] * k + (size_t)y_pred[i]]++;
}

double tb_macro_f1(const uint64_t *cm, size_t k) {
    double sum = 0.0;
    size_t labels = 0;
    for (size_t c = 0; c < k; c++) {
        uint64_t tp = cm[c * k + c], row = 0, col = 0;
        for (size_t j = 0; j < k; j++) {
            row += cm[c * k + j];
            col += cm[j * k + c];
        }
        if (row == 0 && col == 0)
            continue; /* label absent from both y_true and y_pred */
        labels++;
        if (row + col > 0)
            sum += 2.0 * (double)tp / (double)(row + col);
    }
    return labels ? sum / (double)labels : 0.0;
}

double tb_micro_f1(const uint64_t *cm, size_t k) {
    uint64_t tp = 0, total = 0;
    for (size_t c = 0; c < k; c++) {
        tp += cm[c * k + c];
        for (size_t j = 0; j < k; j++)
            total += cm[c * k + j];
    }
    /* micro precision = micro recall = tp / total when every row has exactly one prediction */
    return total ? (double)tp / (double)total : 0.0;
}

double tb_top_k_accuracy(const int32_t *y_true, const double *proba, size_t n, size_t k, size_t top) {
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) {
        const double *p = proba + i * k;
        size_t t = (size_t)y_true[i], ahead = 0;
        for (size_t c = 0; c < k; c++)
            ahead += p[c] > p[t] || (p[c] == p[t] && c > t);
        hit += ahead < top;
    }
    return n ? (double)hit / (double)n : 0.0;
}

double tb_log_loss(const int32_t *y_true, const double *proba, size_t n, size_t k) {
    const double eps = 1e-15;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double total = 0.0;
        for (size_t c = 0; c < k; c++)
            total += fmin(fmax(proba[i * k + c], eps), 1.0 - eps);
        double p = fmin(fmax(proba[i * k + (size_t)y_true[i]], eps), 1.0 - eps);
        sum -= log(p / total);
    }
    return n ? sum / (double)n : 0.0;
}

void tb_argmax_rows(const double *proba, size_t n, size_t k, int32_t *out) {
    for (size_t i = 0; i < n; i++) {
        const double *p = proba + i * k;
        size_t best = 0;
        for (size_t c = 1; c < k; c++)
            if (p[c] > p[best])
                best = c;
        out[i] = (int32_t)best;
    }
}

tb_status tb_class_metrics_compute(const int32_t *y_true, const double *proba, size_t n, size_t k,
                                   tb_class_metrics *ret) {
    int32_t *pred = malloc((n ? n : 1) * sizeof *pred);
    uint64_t *cm = tb_malloc_n(k * k, sizeof *cm);
    if (!pred || !cm) {
        free(pred);
        free(cm);
        return tb_error(TB_NOMEM, "out of memory");
    }
    tb_argmax_rows(proba, n, k, pred);
    tb_confusion_matrix(y_true, pred, n, k, cm);
    ret->accuracy = tb_accuracy(y_true, pred, n);
    ret->micro_f1 = tb_micro_f1(cm, k);
    ret->macro_f1 = tb_macro_f1(cm, k);
    ret->top3_accuracy = tb_top_k_accuracy(y_true, proba, n, k, 3);
    ret->log_loss = tb_log_loss(y_true, proba, n, k);
    free(pred);
    free(cm);
    return TB_OK;
}

void tb_multilabel_metrics_compute(const uint8_t *truth, const double *proba, size_t n, size_t k, double threshold,
                                   tb_multilabel_metrics *ret) {
    memset(ret, 0, sizeof *ret);
    uint64_t tp = 0, fp = 0, fn = 0, wrong = 0, sizes = 0;
    double jaccard = 0.0, macro = 0.0;
    size_t any = 0, labels_seen = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *t = truth + i * k;
        const double *p = proba + i * k;
        size_t inter = 0, uni = 0, top = 0;
        for (size_t c = 0; c < k; c++) {
            int yes = p[c] >= threshold;
            inter += yes && t[c];
            uni += yes || t[c];
            wrong += yes != (t[c] != 0);
            sizes += (uint64_t)yes;
            top = p[c] > p[top] ? c : top;
        }
        jaccard += uni ? (double)inter / (double)uni : 1.0;
        any += t[top] != 0;
    }
    for (size_t c = 0; c < k; c++) {
        uint64_t ctp = 0, cfp = 0, cfn = 0;
        for (size_t i = 0; i < n; i++) {
            int yes = proba[i * k + c] >= threshold, t = truth[i * k + c] != 0;
            ctp += yes && t;
            cfp += yes && !t;
            cfn += !yes && t;
        }
        tp += ctp;
        fp += cfp;
        fn += cfn;
        if (ctp + cfp + cfn) {
            labels_seen++;
            macro += 2.0 * (double)ctp / (double)(2 * ctp + cfp + cfn);
        }
    }
    if (n == 0 || k == 0)
        return;
    ret->micro_f1 = tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    ret->macro_f1 = labels_seen ? macro / (double)labels_seen : 0.0;
    ret->jaccard = jaccard / (double)n;
    ret->hamming_loss = (double)wrong / ((double)n * (double)k);
    ret->any_accuracy = (double)any / (double)n;
    ret->mean_set_size = (double)sizes / (double)n;
}

double tb_mse(const double *y, const double *p, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (y[i] - p[i]) * (y[i] - p[i]);
    return n ? s / (double)n : 0.0;
}

double tb_mae(const double *y, const double *p, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs(y[i] - p[i]);
    return n ? s / (double)n : 0.0;
}

double tb_r2(const double *y, const double *p, size_t n) {
    double mean = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += y[i];
    mean = n ? mean / (double)n : 0.0;
    double ss_res = 0.0, ss_tot = 0.0;
    for (size_t i = 0; i < n; i++) {
        ss_res += (y[i] - p[i]) * (y[i] - p[i]);
        ss_tot += (y[i] - mean) * (y[i] - mean);
    }
    if (ss_tot == 0.0)
        return ss_res == 0.0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
}

typedef struct ranked {
    double v;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static tb_status average_ranks(const double *v, size_t n, double *rank) {
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){v[i], i};
    qsort(r, n, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && r[j + 1].v == r[i].v)
            j++;
        double avg = ((double)i + (double)j) / 2.0 + 1.0;
        for (size_t t = i; t <= j; t++)
            rank[r[t].i] = avg;
        i = j + 1;
    }
    free(r);
    return TB_OK;
}

static double pearson(const double *a, const double *b, size_t n) {
    double ma = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (saa == 0.0 || sbb == 0.0)
        return NAN;
    return sab / sqrt(saa * sbb);
}

tb_status tb_spearman(const double *a, const double *b, size_t n, double *ret) {
    if (n < 2) {
        *ret = NAN;
        return TB_OK;
    }
    double *ra = malloc(n * sizeof *ra), *rb = malloc(n * sizeof *rb);
    tb_status st = (!ra || !rb) ? tb_error(TB_NOMEM, "out of memory") : TB_OK;
    if (st == TB_OK && (st = average_ranks(a, n, ra)) == TB_OK && (st = average_ranks(b, n, rb)) == TB_OK)
        *ret = pearson(ra, rb, n);
    free(ra);
    free(rb);
    return st;
}

tb_status tb_reg_metrics_compute(const double *y, const double *p, size_t n, tb_reg_metrics *ret) {
    ret->mse = tb_mse(y, p, n);
    ret->rmse = sqrt(ret->mse);
    ret->mae = tb_mae(y, p, n);
    ret->r2 = tb_r2(y, p, n);
    return tb_spearman(y, p, n, &ret->spearman);
}
