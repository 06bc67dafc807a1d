/* Grouped, stratified splitting: groups (not rows) are shuffled within their class and dealt out. */
#include "split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rng.h"

typedef struct keyed {
    const char *key;
    size_t row;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

tb_status tb_groups_from_keys(const char *const *keys, size_t n, size_t *group, size_t *ret_n_groups) {
    keyed *k = malloc((n ? n : 1) * sizeof *k);
    size_t *first_group = malloc((n ? n : 1) * sizeof *first_group);
    if (!k || !first_group) {
        free(k);
        free(first_group);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (keyed){keys[i], i};
    qsort(k, n, sizeof *k, cmp_keyed);
    /* Each run of equal keys takes the group of its first row, then groups are renumbered in
     * order of first appearance so the numbering does not depend on the key text. */
    for (size_t i = 0; i < n; i++)
        group[k[i].row] = (i > 0 && strcmp(k[i].key, k[i - 1].key) == 0) ? group[k[i - 1].row] : k[i].row;
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++)
        first_group[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t leader = group[i];
        if (first_group[leader] == SIZE_MAX)
            first_group[leader] = n_groups++;
        group[i] = first_group[leader];
    }
    free(k);
    free(first_group);
    *ret_n_groups = n_groups;
    return TB_OK;
}

/* Groups bucketed by the class of their first row: order[] lists group ids class by class, each
 * class's run shuffled; start[c]..start[c+1] delimits class c. */
typedef struct strata {
    size_t n_groups;  /* bound on group ids (arrays indexed by id) */
    size_t n_present; /* groups that have rows */
    size_t n_strata;
    size_t *order, *start;
} strata;

static void strata_free(strata *s) {
    free(s->order);
    free(s->start);
}

static tb_status strata_build(const int32_t *y, const size_t *group, size_t n, uint64_t seed, strata *s) {
    memset(s, 0, sizeof *s);
    size_t n_groups = 0;
    int32_t max_y = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] + 1 > n_groups)
            n_groups = group[i] + 1;
        if (y && y[i] > max_y)
            max_y = y[i];
    }
    size_t n_strata = (size_t)max_y + 1;
    int32_t *glabel = malloc((n_groups ? n_groups : 1) * sizeof *glabel);
    s->order = malloc((n_groups ? n_groups : 1) * sizeof *s->order);
    s->start = calloc(n_strata + 1, sizeof *s->start);
    if (!glabel || !s->order || !s->start) {
        free(glabel);
        strata_free(s);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t g = 0; g < n_groups; g++)
        glabel[g] = -1;
    for (size_t i = 0; i < n; i++)
        if (glabel[group[i]] < 0)
            glabel[group[i]] = y ? y[i] : 0;
    size_t n_present = 0; /* group ids may be sparse: a subset of rows keeps its global ids */
    for (size_t g = 0; g < n_groups; g++) {
        if (glabel[g] >= 0) {
            s->start[glabel[g] + 1]++;
            n_present++;
        }
    }
    for (size_t c = 0; c < n_strata; c++)
        s->start[c + 1] += s->start[c];
    size_t *fill = malloc((n_strata ? n_strata : 1) * sizeof *fill);
    if (!fill) {
        free(glabel);
        strata_free(s);
        return tb_error(TB_NOMEM, "out of memory");
    }
    memcpy(fill, s->start, n_strata * sizeof *fill);
    for (size_t g = 0; g < n_groups; g++)
        if (glabel[g] >= 0)
            s->order[fill[glabel[g]]++] = g;
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    for (size_t c = 0; c < n_strata; c++)
        tb_rng_shuffle(&rng, s->order + s->start[c], s->start[c + 1] - s->start[c]);
    free(fill);
    free(glabel);
    s->n_groups = n_groups;
    s->n_present = n_present;
    s->n_strata = n_strata;
    return TB_OK;
}

tb_status tb_split_train_test(const int32_t *y, const size_t *group, size_t n, double test_fraction,
                              uint64_t seed, size_t **ret_train, size_t *ret_n_train, size_t **ret_test,
                              size_t *ret_n_test) {
    if (!(test_fraction > 0.0 && test_fraction < 1.0))
        return tb_error(TB_INVALID, "test fraction %g is not in (0, 1)", test_fraction);
    strata s;
    tb_status st = strata_build(y, group, n, seed, &s);
    if (st != TB_OK)
        return st;
    unsigned char *in_test = calloc(s.n_groups ? s.n_groups : 1, 1);
    size_t *train = malloc((n ? n : 1) * sizeof *train), *test = malloc((n ? n : 1) * sizeof *test);
    if (!in_test || !train || !test) {
        free(in_test);
        free(train);
        free(test);
        strata_free(&s);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < s.n_strata; c++) {
        size_t count = s.start[c + 1] - s.start[c];
        size_t take = (size_t)floor(test_fraction * (double)count + 0.5);
        if (take >= count && count > 1)
            take = count - 1; /* keep every class in training */
        for (size_t i = 0; i < take; i++)
            in_test[s.order[s.start[c] + i]] = 1;
    }
    size_t n_train = 0, n_test = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_test[group[i]])
            test[n_test++] = i;
        else
            train[n_train++] = i;
    }
    free(in_test);
    strata_free(&s);
    *ret_train = train;
    *ret_n_train = n_train;
    *ret_test = test;
    *ret_n_test = n_test;
    return TB_OK;
}

tb_status tb_split_kfold(const int32_t *y, const size_t *group, size_t n, size_t k, uint64_t seed, size_t *fold) {
    if (k < 2)
        return tb_error(TB_INVALID, "cross-validation needs at least 2 folds, got %zu", k);
    strata s;
    tb_status st = strata_build(y, group, n, seed, &s);
    if (st != TB_OK)
        return st;
    if (s.n_present < k) {
        strata_free(&s);
        return tb_error(TB_INVALID, "%zu folds but only %zu distinct ids", k, s.n_present);
    }
    size_t *gfold = malloc((s.n_groups ? s.n_groups : 1) * sizeof *gfold);
    if (!gfold) {
        strata_free(&s);
        return tb_error(TB_NOMEM, "out of memory");
    }
    /* Deal each class's groups round-robin, continuing where the previous class stopped, so fold
     * sizes differ by at most one group overall and per class. */
    size_t next = 0;
    for (size_t c = 0; c < s.n_strata; c++)
        for (size_t i = s.start[c]; i < s.start[c + 1]; i++)
            gfold[s.order[i]] = next++ % k;
    for (size_t i = 0; i < n; i++)
        fold[i] = gfold[group[i]];
    free(gfold);
    strata_free(&s);
    return TB_OK;
}

tb_status tb_split_named(size_t n, const size_t *held, size_t n_held, size_t **ret_rest, size_t *ret_n_rest,
                         size_t **ret_held, size_t *ret_n_held) {
    unsigned char *mark = tb_calloc_n(n, 1);
    size_t n_in = 0;
    if (!mark)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; i < n_held; i++) {
        if (held[i] >= n) {
            free(mark);
            return tb_error(TB_INVALID, "held-out row %zu of %zu rows", held[i], n);
        }
        n_in += !mark[held[i]];
        mark[held[i]] = 1;
    }
    size_t *rest = tb_malloc_n(n - n_in, sizeof *rest), *in = tb_malloc_n(n_in, sizeof *in), a = 0, b = 0;
    if (!rest || !in) {
        free(mark);
        free(rest);
        free(in);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (mark[i])
            in[b++] = i;
        else
            rest[a++] = i;
    }
    free(mark);
    *ret_rest = rest;
    *ret_n_rest = a;
    *ret_held = in;
    *ret_n_held = b;
    return TB_OK;
}
