/* Seeded pseudo-random numbers (xoshiro256**, seeded through splitmix64): the same seed gives the
 * same stream on every platform. A tb_rng is a plain value; give each thread its own. */
#ifndef TB_RNG_H
#define TB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_rng {
    uint64_t s[4];
} tb_rng;

void tb_rng_seed(tb_rng *rng, uint64_t seed);
/* A stream independent of the parent's for index `stream` (per-tree, per-fold RNGs). */
void tb_rng_derive(tb_rng *rng, uint64_t seed, uint64_t stream);
uint64_t tb_rng_next(tb_rng *rng);
/* Uniform integer in [0, n); n > 0. Unbiased (rejection). */
uint64_t tb_rng_below(tb_rng *rng, uint64_t n);
/* Uniform double in [0, 1). */
double tb_rng_uniform(tb_rng *rng);
/* Standard normal (Box–Muller on two uniforms; one value per call). */
double tb_rng_normal(tb_rng *rng);
/* Fisher–Yates shuffle of n size_t values. */
void tb_rng_shuffle(tb_rng *rng, size_t *v, size_t n);

#endif
