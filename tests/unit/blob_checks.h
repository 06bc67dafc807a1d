/* Shared checks for model blobs: every truncation is refused, and random bit flips are either
 * refused or load into a model that predicts within bounds (the tests run under ASan in CI). */
#ifndef TB_TEST_BLOB_CHECKS_H
#define TB_TEST_BLOB_CHECKS_H

#include <stdlib.h>

#include "check.h"
#include "predictor.h"
#include "rng.h"

/* Checks truncations at about `cuts` places, then `trials` blobs with `flips` random bit flips,
 * predicting rows of X (n × d) with whatever loads. Returns how many corrupted blobs loaded. */
static inline size_t check_hostile_blobs(const void *blob, size_t len, size_t cuts, int trials, int flips,
                                         const double *X, size_t n, size_t d, uint64_t seed) {
    tb_predictor *back = NULL;
    int refused = 1;
    for (size_t cut = 0; cut < len; cut += len / cuts + 1) {
        back = NULL;
        refused &= tb_predictor_load(blob, cut, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    unsigned char *bad = malloc(len);
    double *out = malloc(65536 * sizeof *out);
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    size_t loaded = 0;
    for (int trial = 0; bad && out && trial < trials; trial++) {
        memcpy(bad, blob, len);
        for (int f = 0; f < flips; f++)
            bad[tb_rng_below(&rng, len)] ^= (unsigned char)(1u << tb_rng_below(&rng, 8));
        back = NULL;
        if (tb_predictor_load(bad, len, &back) == TB_OK) {
            for (size_t i = 0; i < n; i += 7)
                tb_predictor_predict(back, X + i * d, out);
            loaded++;
        }
        tb_predictor_free(back);
    }
    CHECK((int)loaded < trials);
    free(bad);
    free(out);
    return loaded;
}

#endif
