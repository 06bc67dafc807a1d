/* The approximate index (hnswlib behind tb_ann): recall@10 against the exact index on clustered
 * unit vectors, a blob round trip (in memory and through SQLite) giving the same answers, hostile
 * blobs refused, and filtered top-k (models/nearest.h) holding only accepted rows. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ann.h"
#include "check.h"
#include "index.h"
#include "nearest.h"
#include "rng.h"
#include "store.h"

enum { N = 6000, D = 16, Q = 200, K = 10 };

/* Points around 60 random centres, unit length: neighbourhoods like a catalog's. */
static float *clustered(size_t n, uint64_t seed) {
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    static float centre[60][D];
    for (size_t c = 0; c < 60; c++)
        for (size_t j = 0; j < D; j++)
            centre[c][j] = (float)(tb_rng_uniform(&rng) * 2 - 1);
    float *v = malloc(n * D * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)tb_rng_below(&rng, 60);
        double norm = 0;
        for (size_t j = 0; j < D; j++) {
            v[i * D + j] = centre[c][j] + (float)(0.3 * (tb_rng_uniform(&rng) * 2 - 1));
            norm += (double)v[i * D + j] * v[i * D + j];
        }
        for (size_t j = 0; j < D; j++)
            v[i * D + j] = (float)(v[i * D + j] / sqrt(norm));
    }
    return v;
}



/* The graph's blob published through SQLite as a recommendation index's blob, read back. */
static tb_ann *through_sqlite(const void *blob, size_t len, const float *v, size_t n) {
    char path[] = "/tmp/timbre-test-ann-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    close(fd);
    tb_store *s = NULL;
    tb_ann *back = NULL;
    char **ids = tb_test_ids(n);
    tb_index_payload ix = {n, D, v, ids};
    tb_model_record m = {.task = "recommend", .kind = "embedder", .name = "recommend-test", .params = "{}",
                         .metrics = "{}", .feature_schema = "[]", .blob = (void *)blob, .blob_len = len};
    tb_model_record got = {0};
    int64_t id;
    int version;
    if (tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK && tb_store_publish_index(s, &m, &ix, &id, &version) == TB_OK &&
        tb_store_get_published(s, "recommend", &got) == TB_OK)
        CHECK(tb_ann_load(got.blob, got.blob_len, n, D, &back) == TB_OK);
    tb_model_record_clear(&got);
    tb_store_close(s);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    unlink(path);
    return back;
}

static int same_answers(const tb_ann *a, const tb_ann *b, const float *queries) {
    int same = a && b;
    for (size_t q = 0; same && q < Q; q++) {
        tb_hit x[K], y[K];
        size_t nx = tb_ann_search(a, queries + q * D, K, x), ny = tb_ann_search(b, queries + q * D, K, y);
        same &= nx == ny && memcmp(x, y, nx * sizeof *x) == 0;
    }
    return same;
}

static void recall_against_exact_and_round_trip(void) {
    float *v = clustered(N, 1), *queries = clustered(Q, 2);
    float *copy = malloc(N * D * sizeof *copy);
    memcpy(copy, v, N * D * sizeof *copy);
    tb_index *ix = NULL;
    CHECK(tb_index_new(copy, tb_test_ids(N), N, D, &ix) == TB_OK);
    tb_ann_params p = TB_ANN_PARAMS_DEFAULT;
    tb_ann *a = NULL;
    CHECK(tb_ann_build(v, N, D, &p, 2, &a) == TB_OK);
    if (!a || !ix)
        return;
    static float scores[N];
    tb_hit exact[K], approx[K];
    size_t hits = 0;
    for (size_t q = 0; q < Q; q++) {
        size_t ne = tb_index_search(ix, queries + q * D, K, NULL, NULL, scores, exact);
        size_t na = tb_ann_search(a, queries + q * D, K, approx);
        CHECK(ne == K && na == K);
        for (size_t i = 0; i < na; i++)
            for (size_t j = 0; j < ne; j++)
                hits += approx[i].row == exact[j].row;
        for (size_t i = 0; i + 1 < na; i++) /* best first, scores are inner products */
            CHECK(approx[i].score >= approx[i + 1].score - 1e-6f);
    }
    double recall = (double)hits / (Q * K);
    fprintf(stderr, "recall@10 %.4f\n", recall);
    CHECK(recall >= 0.95);
    CHECK(tb_ann_bytes(a) > N * D * sizeof(float));

    void *blob = NULL;
    size_t len = 0;
    CHECK(tb_ann_save(a, &blob, &len) == TB_OK);
    tb_ann *back = NULL;
    CHECK(tb_ann_load(blob, len, N, D, &back) == TB_OK);
    CHECK(same_answers(a, back, queries));
    tb_ann *stored = through_sqlite(blob, len, v, N);
    CHECK(same_answers(a, stored, queries));
    tb_ann_free(stored);
    CHECK(back && tb_ann_get_params(back)->m == 16 && tb_ann_get_params(back)->ef_search == 128);
    tb_ann_free(back);

    /* Hostile blobs: another shape, a flipped byte anywhere (the digest), every truncation. */
    CHECK_ERR(tb_ann_load(blob, len, N + 1, D, &back), TB_CORRUPT, "rows");
    CHECK_ERR(tb_ann_load(blob, len, N, D + 1, &back), TB_CORRUPT, "rows");
    unsigned char *bad = malloc(len);
    int refused = 1;
    for (size_t at = 0; at < len; at += len / 97 + 1) {
        memcpy(bad, blob, len);
        bad[at] ^= 0x40;
        back = NULL;
        refused &= tb_ann_load(bad, len, N, D, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    refused = 1;
    for (size_t cut = 0; cut < len; cut += len / 61 + 1) {
        back = NULL;
        refused &= tb_ann_load(blob, cut, N, D, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    free(bad);
    free(blob);
    tb_ann_free(a);
    tb_index_free(ix);
    free(v);
    free(queries);
}

static int every_seventh(void *ctx, size_t row) { return (void)ctx, row % 7 == 0; }
static int first_twenty(void *ctx, size_t row) { return (void)ctx, row < 20; }

/* Filtered top-k over the graph: only accepted rows; a common filter answered from the graph's
 * candidates close to the exact answer; a rare one (20 of 6,000 rows) sent to the scan and equal
 * to it; without a graph, the scan. */
static void filtered_search(void) {
    float *v = clustered(N, 1), *queries = clustered(Q, 3);
    float *copy = malloc(N * D * sizeof *copy);
    memcpy(copy, v, N * D * sizeof *copy);
    tb_index *ix = NULL;
    tb_ann *a = NULL;
    tb_ann_params p = TB_ANN_PARAMS_DEFAULT;
    CHECK(tb_index_new(copy, tb_test_ids(N), N, D, &ix) == TB_OK && tb_ann_build(v, N, D, &p, 1, &a) == TB_OK);
    if (!ix || !a)
        return;
    static float scores[N];
    size_t hits = 0, approximate = 0, only_accepted = 1, rare_exact = 1;
    for (size_t q = 0; q < Q; q++) {
        const float *qv = queries + q * D;
        tb_hit want[K], got[K];
        tb_nearest_path path;
        size_t nw = tb_index_search(ix, qv, K, every_seventh, NULL, scores, want);
        long ng = tb_nearest_top(ix, a, qv, K, every_seventh, NULL, got, &path);
        CHECK(ng == (long)K && nw == K);
        approximate += path == TB_NEAREST_APPROXIMATE;
        for (long i = 0; i < ng; i++) {
            only_accepted &= got[i].row % 7 == 0;
            for (size_t j = 0; j < nw; j++)
                hits += got[i].row == want[j].row;
        }
        nw = tb_index_search(ix, qv, K, first_twenty, NULL, scores, want);
        ng = tb_nearest_top(ix, a, qv, K, first_twenty, NULL, got, &path);
        rare_exact &= path == TB_NEAREST_FALLBACK && ng == (long)nw && memcmp(got, want, nw * sizeof *got) == 0;
        ng = tb_nearest_top(ix, NULL, qv, K, every_seventh, NULL, got, &path);
        rare_exact &= path == TB_NEAREST_EXACT && ng == (long)K;
    }
    fprintf(stderr, "filtered recall@10 %.4f, %zu of %d from the graph\n", (double)hits / (Q * K), approximate, Q);
    CHECK(only_accepted && approximate == Q);
    CHECK((double)hits / (Q * K) >= 0.95);
    CHECK(rare_exact);
    tb_ann_free(a);
    tb_index_free(ix);
    free(v);
    free(queries);
}

static void bad_parameters_are_refused(void) {
    float v[4] = {1, 0, 0, 1};
    tb_ann_params p = TB_ANN_PARAMS_DEFAULT;
    tb_ann *a = NULL;
    p.m = 1;
    CHECK_ERR(tb_ann_build(v, 2, 2, &p, 1, &a), TB_INVALID, "M 2 to");
    p = (tb_ann_params)TB_ANN_PARAMS_DEFAULT;
    CHECK_ERR(tb_ann_build(v, 0, 2, &p, 1, &a), TB_INVALID, "rows");
}

int main(void) {
    recall_against_exact_and_round_trip();
    filtered_search();
    bad_parameters_are_refused();
    return tb_test_done();
}
