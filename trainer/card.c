/* Model-card numbers from the test rows (see card.h). */
#include "card.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "alloc.h"

static cJSON *genre_card(const tb_dataset *ds, const size_t *rows, size_t n, const double *pred, size_t k,
                         char *const *names) {
    uint64_t *cm = tb_calloc_n(k * k, sizeof *cm);
    double rel_rows[TB_CARD_BINS] = {0}, rel_conf[TB_CARD_BINS] = {0}, rel_hit[TB_CARD_BINS] = {0};
    if (!cm)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const double *p = pred + i * k;
        size_t best = 0, truth = (size_t)ds->y[rows[i]];
        for (size_t c = 1; c < k; c++)
            best = p[c] > p[best] ? c : best;
        cm[truth * k + best]++;
        size_t bin = (size_t)(p[best] * TB_CARD_BINS);
        bin = bin < TB_CARD_BINS ? bin : TB_CARD_BINS - 1;
        rel_rows[bin] += 1;
        rel_conf[bin] += p[best];
        rel_hit[bin] += best == truth;
    }
    cJSON *o = cJSON_CreateObject(), *per = cJSON_AddArrayToObject(o, "per_genre");
    for (size_t c = 0; c < k; c++) {
        uint64_t tp = cm[c * k + c], row = 0, col = 0;
        for (size_t j = 0; j < k; j++) {
            row += cm[c * k + j];
            col += cm[j * k + c];
        }
        double precision = col ? (double)tp / (double)col : 0.0, recall = row ? (double)tp / (double)row : 0.0;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "genre", names[c]);
        cJSON_AddNumberToObject(e, "precision", precision);
        cJSON_AddNumberToObject(e, "recall", recall);
        cJSON_AddNumberToObject(e, "f1", precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0);
        cJSON_AddNumberToObject(e, "support", (double)row);
        cJSON_AddItemToArray(per, e);
    }
    /* The largest off-diagonal counts, by repeated selection (k² cells, TB_CARD_CONFUSED picks). */
    cJSON *confused = cJSON_AddArrayToObject(o, "confused");
    for (int pick = 0; pick < TB_CARD_CONFUSED; pick++) {
        size_t best = k * k;
        for (size_t cell = 0; cell < k * k; cell++)
            if (cell / k != cell % k && cm[cell] && (best == k * k || cm[cell] > cm[best]))
                best = cell;
        if (best == k * k)
            break;
        uint64_t support = 0;
        for (size_t j = 0; j < k; j++)
            support += cm[(best / k) * k + j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "true", names[best / k]);
        cJSON_AddStringToObject(e, "predicted", names[best % k]);
        cJSON_AddNumberToObject(e, "rows", (double)cm[best]);
        cJSON_AddNumberToObject(e, "share", (double)cm[best] / (double)support);
        cJSON_AddItemToArray(confused, e);
        cm[best] = 0; /* taken */
    }
    cJSON *rel = cJSON_AddArrayToObject(o, "reliability");
    for (size_t b = 0; b < TB_CARD_BINS; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "lo", (double)b / TB_CARD_BINS);
        cJSON_AddNumberToObject(e, "hi", (double)(b + 1) / TB_CARD_BINS);
        cJSON_AddNumberToObject(e, "rows", rel_rows[b]);
        cJSON_AddNumberToObject(e, "confidence", rel_rows[b] ? rel_conf[b] / rel_rows[b] : 0.0);
        cJSON_AddNumberToObject(e, "accuracy", rel_rows[b] ? rel_hit[b] / rel_rows[b] : 0.0);
        cJSON_AddItemToArray(rel, e);
    }
    free(cm);
    return o;
}

static cJSON *popularity_card(const tb_dataset *ds, const size_t *rows, size_t n, const double *pred) {
    double cnt[TB_CARD_BINS] = {0}, sum_t[TB_CARD_BINS] = {0}, sum_p[TB_CARD_BINS] = {0}, abs_e[TB_CARD_BINS] = {0};
    for (size_t i = 0; i < n; i++) {
        double t = ds->popularity[rows[i]];
        size_t b = t >= 100 ? TB_CARD_BINS - 1 : t <= 0 ? 0 : (size_t)(t / (100.0 / TB_CARD_BINS));
        cnt[b] += 1;
        sum_t[b] += t;
        sum_p[b] += pred[i];
        abs_e[b] += fabs(pred[i] - t);
    }
    cJSON *o = cJSON_CreateObject(), *bins = cJSON_AddArrayToObject(o, "bins");
    for (size_t b = 0; b < TB_CARD_BINS; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "lo", 100.0 * (double)b / TB_CARD_BINS);
        cJSON_AddNumberToObject(e, "hi", 100.0 * (double)(b + 1) / TB_CARD_BINS);
        cJSON_AddNumberToObject(e, "rows", cnt[b]);
        cJSON_AddNumberToObject(e, "mean_true", cnt[b] ? sum_t[b] / cnt[b] : 0.0);
        cJSON_AddNumberToObject(e, "mean_predicted", cnt[b] ? sum_p[b] / cnt[b] : 0.0);
        cJSON_AddNumberToObject(e, "mae", cnt[b] ? abs_e[b] / cnt[b] : 0.0);
        cJSON_AddItemToArray(bins, e);
    }
    cJSON *sample = cJSON_AddArrayToObject(o, "sample"); /* [true, predicted], evenly spaced rows */
    size_t m = n < TB_CARD_SAMPLE ? n : TB_CARD_SAMPLE;
    for (size_t i = 0; i < m; i++) {
        size_t at = i * n / m;
        double pair[2] = {ds->popularity[rows[at]], pred[at]};
        cJSON_AddItemToArray(sample, cJSON_CreateDoubleArray(pair, 2));
    }
    return o;
}

cJSON *tb_card_evaluation(const tb_dataset *ds, tb_target target, const size_t *rows, size_t n, const double *pred,
                          size_t k, char *const *class_names) {
    if (n == 0)
        return NULL;
    if (target == TB_TARGET_GENRE)
        return genre_card(ds, rows, n, pred, k, class_names);
    return target == TB_TARGET_POPULARITY ? popularity_card(ds, rows, n, pred) : NULL;
}
