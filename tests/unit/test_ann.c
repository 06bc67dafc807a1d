/* The approximate index (hnswlib behind tb_ann): recall@10 against the exact index on clustered
 * unit vectors, a blob round trip giving the same answers, and hostile blobs refused. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ann.h"
#include "check.h"
#include "index.h"
#include "rng.h"

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

static char **ids_of(size_t n) {
    char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "t%06zu", i);
    }
    return ids;
}

static void recall_against_exact_and_round_trip(void) {
    float *v = clustered(N, 1), *queries = clustered(Q, 2);
    float *copy = malloc(N * D * sizeof *copy);
    memcpy(copy, v, N * D * sizeof *copy);
    tb_index *ix = NULL;
    CHECK(tb_index_new(copy, ids_of(N), N, D, &ix) == TB_OK);
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
    int same = back != NULL;
    for (size_t q = 0; same && q < Q; q++) {
        tb_hit x[K], y[K];
        size_t nx = tb_ann_search(a, queries + q * D, K, x), ny = tb_ann_search(back, queries + q * D, K, y);
        same &= nx == ny && memcmp(x, y, nx * sizeof *x) == 0;
    }
    CHECK(same);
    CHECK(back && tb_ann_get_params(back)->m == 16 && tb_ann_get_params(back)->ef_search == 64);
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
    bad_parameters_are_refused();
    return tb_test_done();
}
