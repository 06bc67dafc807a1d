/* Twins: hand-computed mixes of the twins' genre counts with the model's probabilities, NaN and
 * −0 keys, rows without a twin untouched, bit-identical round trips (alone and inside a predictor
 * blob), and hostile sections refused. */
#include <stdlib.h>

#include "blob_checks.h"
#include "check.h"
#include "model.h"
#include "predictor.h"
#include "rng.h"
#include "twins.h"

enum { N = 46, D = 3, K = 3 };

/* Rows 0-2 are one input under two genres, rows 3-4 one input spelled with −0, the rest random;
 * rows lists them all. */
static void make_rows(double *X, int32_t *y, size_t *rows) {
    const double fixed[6][D] = {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}, {NAN, 0.0, 5}, {NAN, -0.0, 5}, {4, 5, 6}};
    const int32_t fixed_y[6] = {0, 1, 1, 2, 2, 0};
    tb_rng rng;
    tb_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            X[i * D + j] = i < 6 ? fixed[i][j] : 10.0 + tb_rng_uniform(&rng);
        y[i] = i < 6 ? fixed_y[i] : (int32_t)tb_rng_below(&rng, K);
        rows[i] = i;
    }
}

static tb_twins *load_bytes(const void *data, size_t len, size_t d, size_t k, tb_status *st) {
    tb_reader r;
    tb_reader_init(&r, data, len);
    tb_twins *t = NULL;
    *st = tb_twins_load(&r, d, k, &t);
    return t;
}

/* A twins section written by hand: one class list per key. */
static tb_status load_handmade(const float *keys, size_t n_keys, const int32_t *start, const int32_t *cls,
                               const int32_t *count, size_t n_entries) {
    tb_writer w;
    tb_writer_init(&w);
    tb_write_u16(&w, 1);
    tb_write_u32(&w, 1);
    tb_write_u32(&w, K);
    tb_write_f64(&w, 0.1);
    tb_write_u32(&w, (uint32_t)n_keys);
    tb_write_u32(&w, (uint32_t)n_entries);
    tb_write_f32s(&w, keys, n_keys);
    tb_write_i32s(&w, start, n_keys + 1);
    tb_write_i32s(&w, cls, n_entries);
    tb_write_i32s(&w, count, n_entries);
    void *blob;
    size_t len;
    CHECK(tb_writer_finish(&w, &blob, &len) == TB_OK);
    tb_status st;
    tb_twins *t = load_bytes(blob, len, 1, K, &st);
    tb_twins_free(t);
    free(blob);
    return st;
}

static void test_mix(void) {
    double X[N * D];
    int32_t y[N];
    size_t rows[N];
    make_rows(X, y, rows);
    tb_twins *t = NULL;
    CHECK(tb_twins_build(X, D, rows, N, y, K, 0.1, &t) == TB_OK);
    if (!t)
        return;
    CHECK(tb_twins_n_keys(t) == N - 3);
    /* Keys compare at float precision: 1 + 1e-10 is 1 there, 3.0000005 is not 3. */
    const double q123[D] = {1, 2, 3}, qnan[D] = {NAN, -0.0, 5}, qnear[D] = {1, 2, 3.0000005};
    const double qfloat[D] = {1.0000000001, 2, 3};
    double scratch[K] = {0};
    CHECK(tb_twins_apply(t, qfloat, scratch) == 3);
    CHECK(tb_twins_apply(t, qnan, scratch) == 2);

    /* (counts + 0.1 · model) / (3 + 0.1): genre 0 once, genre 1 twice. */
    double p[K] = {0.5, 0.3, 0.2};
    CHECK(tb_twins_apply(t, q123, p) == 3);
    CHECK_NEAR(p[0], (1 + 0.05) / 3.1, 1e-15);
    CHECK_NEAR(p[1], (2 + 0.03) / 3.1, 1e-15);
    CHECK_NEAR(p[2], 0.02 / 3.1, 1e-15);
    CHECK_NEAR(p[0] + p[1] + p[2], 1.0, 1e-15);
    double untouched[K] = {0.5, 0.3, 0.2};
    CHECK(tb_twins_apply(t, qnear, untouched) == 0);
    CHECK(untouched[0] == 0.5 && untouched[1] == 0.3 && untouched[2] == 0.2);

    /* Prior 0: the counts alone. */
    tb_twins *bare = NULL;
    CHECK(tb_twins_build(X, D, rows, N, y, K, 0.0, &bare) == TB_OK);
    double q[K] = {0.2, 0.2, 0.6};
    tb_twins_apply(bare, qnan, q);
    CHECK(q[0] == 0.0 && q[1] == 0.0 && q[2] == 1.0);
    tb_twins_free(bare);

    /* Round trip: the same answers bit for bit; every truncation refused. */
    tb_writer w;
    tb_writer_init(&w);
    tb_twins_save(t, &w);
    void *blob;
    size_t len;
    CHECK(tb_writer_finish(&w, &blob, &len) == TB_OK);
    tb_status st;
    tb_twins *back = load_bytes(blob, len, D, K, &st);
    CHECK(st == TB_OK && back);
    for (size_t i = 0; back && i < N; i++) {
        double a[K] = {0.25, 0.25, 0.5}, b[K] = {0.25, 0.25, 0.5};
        tb_twins_apply(t, X + i * D, a);
        tb_twins_apply(back, X + i * D, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    tb_twins_free(back);
    int refused = 1;
    for (size_t cut = 0; cut < len; cut++) {
        back = load_bytes(blob, cut, D, K, &st);
        refused &= st != TB_OK && !back;
    }
    CHECK(refused);
    CHECK_ERR((load_bytes(blob, len, D + 1, K, &st), st), TB_CORRUPT, "do not fit the model");
    CHECK_ERR((load_bytes(blob, len, D, K + 1, &st), st), TB_CORRUPT, "do not fit the model");
    free(blob);
    tb_twins_free(t);

    /* Bad training input. */
    y[3] = K;
    CHECK_ERR(tb_twins_build(X, D, rows, N, y, K, 0.1, &t), TB_INVALID, "class 3 of 3");
    y[3] = 2;
    CHECK_ERR(tb_twins_build(X, D, rows, N, y, K, -1.0, &t), TB_INVALID, "prior");
    CHECK_ERR(tb_twins_build(X, D, rows, N, y, K, NAN, &t), TB_INVALID, "prior");
}

static void test_hostile_sections(void) {
    const float keys[2] = {1.0f, 2.0f};
    const int32_t start[3] = {0, 1, 3}, cls[3] = {0, 1, 2}, count[3] = {1, 2, 1};
    CHECK(load_handmade(keys, 2, start, cls, count, 3) == TB_OK);
    const float same[2] = {2.0f, 2.0f}, negzero[2] = {1.0f, -0.0f};
    CHECK_ERR(load_handmade(same, 2, start, cls, count, 3), TB_CORRUPT, "repeats key 0");
    CHECK_ERR(load_handmade(negzero, 2, start, cls, count, 3), TB_CORRUPT, "canonical");
    const int32_t bad_cls[3] = {0, 2, 1}, big_cls[3] = {0, 1, K}, zero_count[3] = {1, 0, 1};
    CHECK_ERR(load_handmade(keys, 2, start, bad_cls, count, 3), TB_CORRUPT, "bad class");
    CHECK_ERR(load_handmade(keys, 2, start, big_cls, count, 3), TB_CORRUPT, "bad class");
    CHECK_ERR(load_handmade(keys, 2, start, cls, zero_count, 3), TB_CORRUPT, "bad class or count");
    const int32_t empty_key[3] = {0, 0, 3}, short_span[3] = {0, 1, 2};
    CHECK_ERR(load_handmade(keys, 2, empty_key, cls, count, 3), TB_CORRUPT, "no classes");
    CHECK_ERR(load_handmade(keys, 2, short_span, cls, count, 3), TB_CORRUPT, "do not span");
}

/* Inside a predictor: predict = model, then the twins; the blob keeps them; a mismatch is refused. */
static void test_predictor(void) {
    double X[N * D];
    int32_t y[N];
    size_t rows[N];
    make_rows(X, y, rows);
    tb_train_params params;
    tb_train_params_default(&params);
    params.n_trees = 10;
    params.threads = 1;
    tb_train_data data = {.X = X, .n = N, .d = D, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = K};
    double imputed[N * D];
    for (size_t i = 0; i < N * D; i++)
        imputed[i] = isnan(X[i]) ? 0.0 : X[i];
    data.X = imputed;
    tb_model *m = NULL;
    CHECK(tb_model_train("rf", &data, &params, &m) == TB_OK);
    char *names[D] = {"a", "b", "c"};
    const double zero[D] = {0, 0, 0};
    const size_t row0 = 0;
    tb_pipeline *pl = NULL;
    tb_pipeline_fit(zero, D, names, &row0, 1, &pl);
    char *classes[K] = {"jazz", "pop", "rock"};
    tb_predictor *p = NULL;
    CHECK(tb_predictor_new(pl, m, classes, K, &p) == TB_OK);
    if (!p)
        return;
    tb_twins *t = NULL, *wrong = NULL;
    CHECK(tb_twins_build(X, D, rows, N, y, K, 0.1, &t) == TB_OK);
    CHECK(tb_twins_build(X, D - 1, rows, N, y, K, 0.1, &wrong) == TB_OK);
    CHECK_ERR(tb_predictor_set_twins(p, wrong), TB_INVALID, "do not fit");
    double model_only[K], with[K];
    const double q123[D] = {1, 2, 3};
    tb_predictor_predict(p, q123, model_only);
    CHECK(tb_predictor_set_twins(p, t) == TB_OK);
    tb_predictor_predict(p, q123, with);
    CHECK_NEAR(with[1], (2 + 0.1 * model_only[1]) / 3.1, 1e-15);

    void *blob;
    size_t len;
    CHECK(tb_predictor_save(p, &blob, &len) == TB_OK);
    tb_predictor *back = NULL;
    CHECK(tb_predictor_load(blob, len, &back) == TB_OK);
    CHECK(back && back->twins && tb_twins_n_keys(back->twins) == N - 3);
    for (size_t i = 0; back && i < N; i++) {
        double a[K], b[K];
        tb_predictor_predict(p, X + i * D, a);
        tb_predictor_predict(back, X + i * D, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    tb_predictor_free(back);
    check_hostile_blobs(blob, len, 499, 200, 3, X, N, D, 11);
    free(blob);
    tb_predictor_free(p);
}

/* Leaving each row's track out: A's two tracks agree, B's two disagree, C is one track twice. */
static void test_agreement(void) {
    const double X[7] = {1, 1, 2, 2, 3, 3, 4};
    const int32_t y[7] = {0, 0, 1, 2, 1, 1, 0};
    const size_t group[7] = {10, 11, 12, 13, 14, 14, 15}, rows[7] = {0, 1, 2, 3, 4, 5, 6};
    tb_twins *t = NULL;
    CHECK(tb_twins_build(X, 1, rows, 7, y, K, 0.1, &t) == TB_OK);
    size_t with_twin = 99, agree = 99;
    CHECK(t && tb_twins_agreement(t, X, rows, 7, y, group, &with_twin, &agree) == TB_OK);
    CHECK(with_twin == 4 && agree == 2);
    /* Without groups every row is its own track: C's two rows now agree too. */
    CHECK(t && tb_twins_agreement(t, X, rows, 7, y, NULL, &with_twin, &agree) == TB_OK);
    CHECK(with_twin == 6 && agree == 4);
    tb_twins_free(t);
}

int main(void) {
    test_mix();
    test_agreement();
    test_hostile_sections();
    test_predictor();
    return tb_test_done();
}
