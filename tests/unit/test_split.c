/* Grouped, stratified splits and folds; the normal deviates of the RNG. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "split.h"

/* Mean 0, variance 1 and the one-sigma share 0.6827 of a standard normal, on 200,000 draws. */
static void normal_deviates(void) {
    tb_rng rng;
    tb_rng_seed(&rng, 7);
    double sum = 0, sq = 0;
    size_t inside = 0, n = 200000;
    for (size_t i = 0; i < n; i++) {
        double x = tb_rng_normal(&rng);
        sum += x;
        sq += x * x;
        inside += fabs(x) < 1.0;
    }
    CHECK_NEAR(sum / (double)n, 0.0, 0.01);
    CHECK_NEAR(sq / (double)n, 1.0, 0.01);
    CHECK_NEAR((double)inside / (double)n, 0.6827, 0.004);
}

int main(void) {
    normal_deviates();
    const char *keys[] = {"a", "b", "a", "c", "b", "d"};
    size_t group[6], n_groups;
    CHECK(tb_groups_from_keys(keys, 6, group, &n_groups) == TB_OK);
    CHECK(n_groups == 4);
    CHECK(group[0] == 0 && group[1] == 1 && group[2] == 0 && group[3] == 2 && group[4] == 1 && group[5] == 3);

    /* A named hold-out: repeats count once, both sides ascending, an index past the end refused. */
    const size_t named[] = {4, 1, 4};
    size_t *rest = NULL, *held = NULL, n_rest = 0, n_held = 0;
    CHECK(tb_split_named(6, named, 3, &rest, &n_rest, &held, &n_held) == TB_OK);
    CHECK(n_rest == 4 && n_held == 2);
    CHECK(rest && held && rest[0] == 0 && rest[1] == 2 && rest[2] == 3 && rest[3] == 5 && held[0] == 1 && held[1] == 4);
    free(rest);
    free(held);
    const size_t past[] = {2, 6};
    CHECK_ERR(tb_split_named(6, past, 2, &rest, &n_rest, &held, &n_held), TB_INVALID, "held-out row 6 of 6");

    /* 1000 rows, 4 classes, ids shared by pairs of rows (like a track under two genres). */
    enum { N = 1000 };
    int32_t y[N];
    size_t g[N];
    for (size_t i = 0; i < N; i++) {
        y[i] = (int32_t)(i % 4);
        g[i] = i / 2;
    }
    size_t *train, *test, n_train, n_test;
    CHECK(tb_split_train_test(y, g, N, 0.2, 42, &train, &n_train, &test, &n_test) == TB_OK);
    CHECK(n_train + n_test == N);
    CHECK(n_test == 200);
    int side[N / 2];
    for (size_t i = 0; i < N / 2; i++)
        side[i] = -1;
    int mixed = 0;
    for (size_t i = 0; i < n_train; i++)
        side[g[train[i]]] = 0;
    for (size_t i = 0; i < n_test; i++)
        mixed |= side[g[test[i]]] == 0;
    CHECK(!mixed); /* no id on both sides */
    size_t per_class[4] = {0};
    for (size_t i = 0; i < n_test; i++)
        per_class[y[test[i]]]++;
    /* Groups are stratified by their first row's class (0 or 2): those strata give 20% each. */
    CHECK(per_class[0] == 50 && per_class[2] == 50);
    for (size_t i = 1; i < n_test; i++)
        CHECK(test[i] > test[i - 1]);
    size_t *train2, *test2, n2, m2;
    CHECK(tb_split_train_test(y, g, N, 0.2, 42, &train2, &n2, &test2, &m2) == TB_OK);
    CHECK(m2 == n_test && memcmp(test, test2, n_test * sizeof *test) == 0); /* deterministic */
    free(train2);
    free(test2);
    CHECK(tb_split_train_test(y, g, N, 0.2, 7, &train2, &n2, &test2, &m2) == TB_OK);
    CHECK(memcmp(test, test2, n_test * sizeof *test) != 0); /* the seed matters */
    free(train2);
    free(test2);
    free(train);
    free(test);
    CHECK_ERR(tb_split_train_test(y, g, N, 1.5, 42, &train, &n_train, &test, &n_test), TB_INVALID, "not in (0, 1)");

    /* K folds: whole groups, balanced sizes and classes. */
    int32_t y2[N];
    size_t g2[N], fold[N];
    for (size_t i = 0; i < N; i++) {
        y2[i] = (int32_t)(i % 5);
        g2[i] = i;
    }
    CHECK(tb_split_kfold(y2, g2, N, 5, 42, fold) == TB_OK);
    size_t count[5][5] = {{0}};
    for (size_t i = 0; i < N; i++)
        count[fold[i]][y2[i]]++;
    int balanced = 1;
    for (int f = 0; f < 5; f++)
        for (int c = 0; c < 5; c++)
            balanced &= count[f][c] == 40;
    CHECK(balanced);
    CHECK(tb_split_kfold(y, g, N, 5, 42, fold) == TB_OK);
    int whole = 1;
    for (size_t i = 0; i + 1 < N; i += 2)
        whole &= fold[i] == fold[i + 1];
    CHECK(whole);
    CHECK_ERR(tb_split_kfold(y, g, N, 1, 42, fold), TB_INVALID, "at least 2 folds");

    /* Sparse group ids (a subset of rows keeping the table's ids): regression test for a
     * heap overflow when cross-validating the training rows with groups of the whole table. */
    size_t sparse[N / 2];
    int32_t ys[N / 2];
    for (size_t i = 0; i < N / 2; i++) {
        sparse[i] = 3 * i + 7;
        ys[i] = (int32_t)(i % 4);
    }
    CHECK(tb_split_kfold(ys, sparse, N / 2, 5, 42, fold) == TB_OK);
    size_t per_fold[5] = {0};
    for (size_t i = 0; i < N / 2; i++)
        per_fold[fold[i]]++;
    CHECK(per_fold[0] == 100 && per_fold[4] == 100);
    CHECK(tb_split_train_test(ys, sparse, N / 2, 0.2, 42, &train, &n_train, &test, &n_test) == TB_OK);
    CHECK(n_train == 400 && n_test == 100);
    free(train);
    free(test);
    size_t few[3] = {10, 20, 30};
    int32_t yf[3] = {0, 0, 0};
    CHECK_ERR(tb_split_kfold(yf, few, 3, 5, 42, fold), TB_INVALID, "only 3 distinct ids");
    return tb_test_done();
}
