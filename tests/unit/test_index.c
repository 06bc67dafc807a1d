/* The exact top-k index against a naive scan, ties, filters, batches; the standardized embedder
 * (hand-computed values, blob round trip, hostile blobs); Genre-Hit@k on a hand-made case. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "embedding.h"
#include "index.h"
#include "model.h"
#include "recommend.h"
#include "rng.h"


static float *random_unit_vectors(size_t n, size_t d, uint64_t seed) {
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    float *v = malloc(n * d * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        double norm = 0.0;
        for (size_t j = 0; j < d; j++) {
            v[i * d + j] = (float)(tb_rng_uniform(&rng) * 2.0 - 1.0);
            norm += (double)v[i * d + j] * v[i * d + j];
        }
        for (size_t j = 0; j < d; j++)
            v[i * d + j] = (float)(v[i * d + j] / sqrt(norm));
    }
    return v;
}

/* Best-first rows by a double-precision scan, ties to the lower row; accepted rows only. */
static size_t naive_top(const float *v, size_t n, size_t d, const float *q, size_t k, int even_only, size_t *out,
                        double *out_score) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (even_only && i % 2)
            continue;
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += (double)v[i * d + j] * q[j];
        size_t at = m < k ? m++ : k;
        while (at > 0 && s > out_score[at - 1]) {
            if (at < k) {
                out[at] = out[at - 1];
                out_score[at] = out_score[at - 1];
            }
            at--;
        }
        if (at < k) {
            out[at] = i;
            out_score[at] = s;
        }
    }
    return m;
}

static int even_rows(void *ctx, size_t row) {
    (void)ctx;
    return row % 2 == 0;
}

static void test_against_naive(void) {
    size_t n = 5000, d = 14, k = 10, nq = 64;
    float *v = random_unit_vectors(n, d, 1);
    float *queries = random_unit_vectors(nq, d, 2);
    tb_index *ix = NULL;
    CHECK(tb_index_new(v, tb_test_ids(n), n, d, &ix) == TB_OK);
    float *scores = malloc(n * sizeof *scores);
    tb_hit hits[10], *batch = malloc(nq * k * sizeof *batch);
    size_t want[10];
    double want_score[10];
    int same = 1, same_filtered = 1, same_batch = 1, scores_close = 1;
    CHECK(tb_index_search_batch(ix, queries, nq, k, 2, batch) == TB_OK);
    for (size_t q = 0; q < nq; q++) {
        const float *qv = queries + q * d;
        CHECK(tb_index_search(ix, qv, k, NULL, NULL, scores, hits) == k);
        naive_top(v, n, d, qv, k, 0, want, want_score);
        for (size_t i = 0; i < k; i++) {
            same &= hits[i].row == want[i];
            scores_close &= fabs(hits[i].score - want_score[i]) < 1e-5;
            same_batch &= batch[q * k + i].row == want[i];
        }
        CHECK(tb_index_search(ix, qv, k, even_rows, NULL, scores, hits) == k);
        naive_top(v, n, d, qv, k, 1, want, want_score);
        for (size_t i = 0; i < k; i++)
            same_filtered &= hits[i].row == want[i];
    }
    CHECK(same);
    CHECK(scores_close);
    CHECK(same_batch);
    CHECK(same_filtered);
    /* k larger than the rows that pass: all of them, best first. */
    tb_hit *all = malloc(n * sizeof *all);
    CHECK(tb_index_search(ix, queries, n + 10, even_rows, NULL, scores, all) == n / 2);
    int ordered = 1;
    for (size_t i = 1; i < n / 2; i++)
        ordered &= all[i - 1].score >= all[i].score;
    CHECK(ordered);
    CHECK(tb_index_find(ix, "t000042") == 42);
    CHECK(tb_index_find(ix, "t999999") == -1);
    CHECK(tb_index_find(ix, "") == -1);
    free(all);
    free(scores);
    free(batch);
    free(queries);
    tb_index_free(ix);
}

static void test_ties_and_rejects(void) {
    /* Rows 1, 3 and 4 are the same vector: equal scores go to the lower row. */
    float v[5 * 2] = {1, 0, 0.6f, 0.8f, 0, 1, 0.6f, 0.8f, 0.6f, 0.8f};
    tb_index *ix = NULL;
    float *vc = malloc(sizeof v);
    memcpy(vc, v, sizeof v);
    CHECK(tb_index_new(vc, tb_test_ids(5), 5, 2, &ix) == TB_OK);
    float q[2] = {0.6f, 0.8f}, scores[5];
    tb_hit hits[3];
    CHECK(tb_index_search(ix, q, 3, NULL, NULL, scores, hits) == 3);
    CHECK(hits[0].row == 1 && hits[1].row == 3 && hits[2].row == 4);
    tb_hit batch[3];
    CHECK(tb_index_search_batch(ix, q, 1, 3, 1, batch) == TB_OK);
    CHECK(batch[0].row == 1 && batch[1].row == 3 && batch[2].row == 4);
    tb_index_free(ix);

    char **ids = tb_test_ids(3);
    char *t = ids[0];
    ids[0] = ids[2];
    ids[2] = t;
    ix = NULL;
    CHECK_ERR(tb_index_new(calloc(6, sizeof(float)), ids, 3, 2, &ix), TB_INVALID, "ascending");
    CHECK(ix == NULL);
    float *nan_v = calloc(6, sizeof(float));
    nan_v[3] = NAN;
    CHECK_ERR(tb_index_new(nan_v, tb_test_ids(3), 3, 2, &ix), TB_INVALID, "non-finite");
}

static void test_embedder(void) {
    /* Two features; training rows (1, 10), (3, 30): mean (2, 20), scale (1, 10). */
    double X[4] = {1, 10, 3, 30};
    char *names[2] = {"energy", "tempo"};
    size_t rows[2] = {0, 1};
    tb_pipeline *pl = NULL;
    CHECK(tb_pipeline_fit(X, 2, names, rows, 2, &pl) == TB_OK);
    double w[2] = {2.0, 1.0};
    tb_embedder *e = NULL;
    CHECK(tb_embedder_standardized_new(pl, w, &e) == TB_OK);
    /* raw (4, 20) → standardized (2, 0) → weighted (4, 0) → unit (1, 0). raw (2, 40) → (0, 2) → (0, 1).
     * raw (3, 30) → (1, 1) → (2, 1) → (2, 1)/√5. A missing value is imputed by the mean (0). */
    double r1[2] = {4, 20}, r2[2] = {2, 40}, r3[2] = {3, 30}, r4[2] = {NAN, 30}, r5[2] = {2, 20};
    float out[2];
    tb_embedder_embed(e, r1, out);
    CHECK_NEAR(out[0], 1.0, 1e-7);
    CHECK_NEAR(out[1], 0.0, 1e-7);
    tb_embedder_embed(e, r2, out);
    CHECK_NEAR(out[0], 0.0, 1e-7);
    CHECK_NEAR(out[1], 1.0, 1e-7);
    tb_embedder_embed(e, r3, out);
    CHECK_NEAR(out[0], 2.0 / sqrt(5.0), 1e-7);
    CHECK_NEAR(out[1], 1.0 / sqrt(5.0), 1e-7);
    tb_embedder_embed(e, r4, out);
    CHECK_NEAR(out[0], 0.0, 1e-7);
    CHECK_NEAR(out[1], 1.0, 1e-7);
    tb_embedder_embed(e, r5, out); /* the mean itself: the zero vector stays zero */
    CHECK(out[0] == 0.0f && out[1] == 0.0f);

    void *blob = NULL;
    size_t len = 0;
    CHECK(tb_embedder_save(e, &blob, &len) == TB_OK);
    tb_embedder *back = NULL;
    CHECK(tb_embedder_load(blob, len, &back) == TB_OK);
    float a[2], b[2];
    tb_embedder_embed(e, r3, a);
    tb_embedder_embed(back, r3, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_STR(back->ops->kind, "standardized");
    tb_embedder_free(back);
    /* Every truncation refused; random flips refused or harmless (ASan watches). */
    int refused = 1;
    for (size_t cut = 0; cut < len; cut++) {
        back = NULL;
        refused &= tb_embedder_load(blob, cut, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    unsigned char *bad = malloc(len);
    tb_rng rng;
    tb_rng_seed(&rng, 7);
    for (int trial = 0; trial < 300; trial++) {
        memcpy(bad, blob, len);
        bad[tb_rng_below(&rng, len)] ^= (unsigned char)(1u << tb_rng_below(&rng, 8));
        back = NULL;
        if (tb_embedder_load(bad, len, &back) == TB_OK)
            tb_embedder_embed(back, r3, a);
        tb_embedder_free(back);
    }
    memcpy(bad, blob, len);
    bad[0] = 'X';
    CHECK_ERR(tb_embedder_load(bad, len, &back), TB_CORRUPT, "magic");
    free(bad);
    free(blob);
    double zero[2] = {0, 0}, neg[2] = {1, -1};
    tb_pipeline *pl2 = NULL;
    CHECK(tb_pipeline_fit(X, 2, names, rows, 2, &pl2) == TB_OK);
    tb_embedder *e2 = NULL;
    CHECK_ERR(tb_embedder_standardized_new(pl2, zero, &e2), TB_INVALID, "0");
    CHECK_ERR(tb_embedder_standardized_new(pl2, neg, &e2), TB_INVALID, ">= 0");
    tb_pipeline_free(pl2);
    tb_embedder_free(e);
}

static void test_genre_hit(void) {
    /* Two queries, k = 2, three hits each (the first query's own track is among its hits).
     * Genres as bits: query 0 {0}, query 1 {1, 2}; pool rows 0 {0}, 1 {1}, 2 {0, 2}, 3 {3}.
     * Query 0 (own track = pool row 0): hits 0 (skipped), 2 (shares 0), 3 (no) → 1/2.
     * Query 1: hits 1 (shares 1), 2 (shares 2), 0 (not judged) → 2/2. Mean 0.75. */
    tb_hit hits[6] = {{0.9f, 0}, {0.8f, 2}, {0.7f, 3}, {0.9f, 1}, {0.8f, 2}, {0.7f, 0}};
    uint64_t qg[2] = {1u, 6u}, pg[4] = {1u, 2u, 5u, 8u};
    size_t own[2] = {0, SIZE_MAX};
    CHECK_NEAR(tb_recommend_genre_hit(hits, 2, 3, 2, qg, pg, 1, own), 0.75, 1e-12);
}

/* A batch with a per-query filter gives each query what a filtered single search gives it; a
 * filter that leaves fewer than k rows pads with row UINT32_MAX. */
static int mod3_differs(void *ctx, size_t q, size_t row) {
    (void)ctx;
    return row % 3 != q % 3 && (q != 5 || row < 4); /* query 5 may use rows 0..3 only */
}

typedef struct one_query {
    size_t q;
} one_query;

static int mod3_differs_single(void *ctx, size_t row) { return mod3_differs(NULL, ((one_query *)ctx)->q, row); }

static void filtered_batch_matches_single_searches(void) {
    enum { N = 700, D = 6, M = 40, K = 5 };
    float *v = random_unit_vectors(N, D, 21), *queries = random_unit_vectors(M, D, 22);
    tb_index *ix = NULL;
    CHECK(tb_index_new(v, tb_test_ids(N), N, D, &ix) == TB_OK);
    static tb_hit batch[M * K], single[K];
    static float scores[N];
    CHECK(tb_index_search_batch_filtered(ix, queries, M, K, 2, mod3_differs, NULL, batch) == TB_OK);
    int same = 1;
    for (size_t q = 0; q < M; q++) {
        one_query ctx = {q};
        size_t n = tb_index_search(ix, queries + q * D, K, mod3_differs_single, &ctx, scores, single);
        for (size_t h = 0; h < K; h++)
            same &= h < n ? batch[q * K + h].row == single[h].row && fabsf(batch[q * K + h].score - single[h].score) < 1e-5f
                          : batch[q * K + h].row == UINT32_MAX;
    }
    CHECK(same);
    /* Query 5 (5 % 3 = 2) may take rows 0, 1, 3: three of five slots, then padding. */
    CHECK(batch[5 * K + 2].row != UINT32_MAX && batch[5 * K + 3].row == UINT32_MAX);
    tb_index_free(ix);
    free(queries);
}

/* Coverage and artist variety by hand. Pool of 4 rows, artists "A", "A", "B;C", NULL; k = 2.
 * Query 0 (own row 0): hits 0 (skipped), 1, 2 → list {1, 2}: artists A, B;C → 2/2 distinct.
 * Query 1 (no own row): hits 1, 0, 3 → list {1, 0}: A, A → 1/2. Rows in a list: 0, 1, 2 → 3/4. */
static void coverage_and_artist_share(void) {
    tb_hit hits[6] = {{0.9f, 0}, {0.8f, 1}, {0.7f, 2}, {0.9f, 1}, {0.8f, 0}, {0.7f, 3}};
    const char *artists[4] = {"A", "A", "B;C", NULL};
    size_t own[2] = {0, SIZE_MAX};
    double coverage, share;
    tb_recommend_list_stats(hits, 2, 3, 2, own, artists, 4, &coverage, &share);
    CHECK_NEAR(coverage, 0.75, 1e-12);
    CHECK_NEAR(share, 0.75, 1e-12);
    tb_recommend_list_stats(hits, 2, 3, 2, own, NULL, 4, &coverage, &share);
    CHECK(isnan(share) && coverage == 0.75);
}

/* The "genre" embedder: a query's block is the classifier's probabilities, a catalog track's its
 * known genres; each block has unit length, weighed √w and √(1 − w), so their dot product is
 * w · (p̂ · ĥ) + (1 − w) · (x̂ · x̂'). Checked by hand on a 3-genre logistic model, then a blob
 * round trip and a refused weight. */
static void genre_embedder_scores_by_hand(void) {
    enum { N = 60 };
    static double X[N * 2];
    static int32_t y[N];
    char *names[2] = {"energy", "tempo"};
    size_t rows[N];
    for (size_t i = 0; i < N; i++) {
        rows[i] = i;
        y[i] = (int32_t)(i % 3);
        X[i * 2] = (double)y[i] + 0.1 * (double)(i % 5);
        X[i * 2 + 1] = 100.0 + 10.0 * (double)(i % 7);
    }
    tb_pipeline *pl = NULL;
    CHECK(tb_pipeline_fit(X, 2, names, rows, N, &pl) == TB_OK);
    double *Z = NULL;
    CHECK(tb_pipeline_transform_rows(pl, X, rows, N, &Z) == TB_OK);
    tb_train_params p;
    tb_train_params_default(&p);
    tb_train_data d = {.X = Z, .n = N, .d = 2, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 3};
    tb_model *m = NULL;
    CHECK(tb_model_train("linear", &d, &p, &m) == TB_OK);
    double proba[3], raw[2] = {1.2, 130.0}, x[2];
    tb_pipeline_transform(pl, raw, x);
    tb_model_predict(m, x, proba);
    tb_embedder *e = NULL;
    CHECK(tb_embedder_genre_new(pl, m, 0.7, &e) == TB_OK && e->dim == 5 && tb_embedder_label_dims(e) == 3);
    float q[5], t[5];
    tb_embedder_embed(e, raw, q);
    size_t known[2] = {1, 2};
    double other[2] = {0.3, 150.0}, xo[2];
    tb_pipeline_transform(e->pipeline, other, xo);
    tb_embedder_embed_known(e, other, known, 2, t);
    double np = sqrt(proba[0] * proba[0] + proba[1] * proba[1] + proba[2] * proba[2]);
    double nx = sqrt(x[0] * x[0] + x[1] * x[1]), no = sqrt(xo[0] * xo[0] + xo[1] * xo[1]);
    double want = 0.7 * (proba[1] + proba[2]) / (np * sqrt(2.0)) + 0.3 * (x[0] * xo[0] + x[1] * xo[1]) / (nx * no);
    double got = 0.0, qn = 0.0, tn = 0.0;
    for (size_t j = 0; j < 5; j++) {
        got += (double)q[j] * t[j];
        qn += (double)q[j] * q[j];
        tn += (double)t[j] * t[j];
    }
    CHECK_NEAR(got, want, 1e-6);
    CHECK_NEAR(qn, 1.0, 1e-6);
    CHECK_NEAR(tn, 1.0, 1e-6);
    CHECK(t[0] == 0.0f && fabsf(t[1] - t[2]) < 1e-7f); /* the known genres, equal weight */
    void *blob = NULL;
    size_t len = 0;
    CHECK(tb_embedder_save(e, &blob, &len) == TB_OK);
    tb_embedder *back = NULL;
    float q2[5];
    CHECK(tb_embedder_load(blob, len, &back) == TB_OK && back->dim == 5);
    if (back) {
        tb_embedder_embed(back, raw, q2);
        CHECK(memcmp(q, q2, sizeof q) == 0);
        CHECK_STR(back->ops->kind, "genre");
    }
    tb_embedder_free(back);
    free(blob);
    tb_embedder_free(e);
    tb_pipeline *pl2 = NULL;
    CHECK(tb_pipeline_fit(X, 2, names, rows, N, &pl2) == TB_OK);
    tb_model *m2 = NULL;
    CHECK(tb_model_train("linear", &d, &p, &m2) == TB_OK);
    CHECK_ERR(tb_embedder_genre_new(pl2, m2, 1.0, &e), TB_INVALID, "genre weight");
    free(Z);
}

/* An index whose first L values are kept sparse scores as the dense one: single searches with a
 * sparse and with a dense query block, and batches, against a naive double-precision scan. */
static void label_dims_score_as_dense(void) {
    enum { N = 900, L = 12, D = 6, DIM = L + D, M = 20, K = 7 };
    float *v = random_unit_vectors(N, DIM, 31), *queries = random_unit_vectors(M, DIM, 32);
    for (size_t i = 0; i < N; i++) /* one or two labels a row, the rest zero */
        for (size_t g = 0; g < L; g++)
            if (g != i % L && (g != (i / L) % L || i % 3))
                v[i * DIM + g] = 0.0f;
    for (size_t q = 0; q < M / 2; q++) /* half the queries: a sparse label block too */
        for (size_t g = 2; g < L; g++)
            queries[q * DIM + g] = 0.0f;
    float *copy = malloc(N * DIM * sizeof *copy);
    memcpy(copy, v, N * DIM * sizeof *copy);
    tb_index *ix = NULL;
    CHECK(tb_index_new(v, tb_test_ids(N), N, DIM, &ix) == TB_OK && tb_index_set_label_dims(ix, L) == TB_OK);
    CHECK(ix->n_labels == L && ix->label_start[L] == ix->row_start[N]);
    static float scores[N];
    static tb_hit got[K], batch[M * K];
    size_t want[K];
    double want_score[K];
    int same = 1;
    CHECK(tb_index_search_batch(ix, queries, M, K, 2, batch) == TB_OK);
    for (size_t q = 0; q < M; q++) {
        naive_top(copy, N, DIM, queries + q * DIM, K, 0, want, want_score);
        size_t n = tb_index_search(ix, queries + q * DIM, K, NULL, NULL, scores, got);
        for (size_t h = 0; h < K && n == K; h++)
            same &= (got[h].row == want[h] || fabs(want_score[h] - got[h].score) < 1e-5) &&
                    fabs(want_score[h] - got[h].score) < 1e-5 && fabs(want_score[h] - batch[q * K + h].score) < 1e-5;
    }
    CHECK(same);
    CHECK_ERR(tb_index_set_label_dims(ix, 3), TB_INVALID, "label values");
    tb_index_free(ix);
    free(copy);
    free(queries);
}

int main(void) {
    label_dims_score_as_dense();
    genre_embedder_scores_by_hand();
    filtered_batch_matches_single_searches();
    coverage_and_artist_share();
    test_against_naive();
    test_ties_and_rejects();
    test_embedder();
    test_genre_hit();
    return tb_test_done();
}
