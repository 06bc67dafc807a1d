/* xoshiro256** by Blackman and Vigna (public domain), seeded with splitmix64. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void tb_rng_seed(tb_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

void tb_rng_derive(tb_rng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    tb_rng_seed(rng, splitmix64(&x));
}

uint64_t tb_rng_next(tb_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t tb_rng_below(tb_rng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = tb_rng_next(rng);
    } while (r >= limit);
    return r % n;
}

double tb_rng_uniform(tb_rng *rng) { return (double)(tb_rng_next(rng) >> 11) * 0x1.0p-53; }

double tb_rng_normal(tb_rng *rng) {
    double u = 1.0 - tb_rng_uniform(rng), v = tb_rng_uniform(rng); /* u in (0, 1]: log(u) finite */
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

void tb_rng_shuffle(tb_rng *rng, size_t *v, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tb_rng_below(rng, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}
