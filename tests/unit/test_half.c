/* Binary16 conversions: known values and ties, every half round-trips; and, run with --hardware
 * (its own meson test), float → half agrees with the F16C instruction (vcvtps2ph, round to nearest
 * even) on a million floats — reported as a skip (exit 77) on a processor without it. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "rng.h"

static uint32_t bits_of(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float float_of(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

__attribute__((target("f16c"))) static uint16_t hardware_half(float f) {
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}

__attribute__((target("f16c"))) static float hardware_float(uint16_t h) { return _cvtsh_ss(h); }

static void test_known_values_and_ties(void) {
    CHECK(tb_float_to_half(1.0f) == 0x3c00);
    CHECK(tb_float_to_half(-2.0f) == 0xc000);
    CHECK(tb_float_to_half(0.0f) == 0x0000);
    CHECK(tb_float_to_half(-0.0f) == 0x8000);
    CHECK(tb_float_to_half(65504.0f) == 0x7bff);      /* the largest half */
    CHECK(tb_float_to_half(65519.0f) == 0x7bff);      /* below the tie with 65536 */
    CHECK(tb_float_to_half(65520.0f) == 0x7c00);      /* the tie: to even, infinity */
    CHECK(tb_float_to_half(0x1p-24f) == 0x0001);      /* the smallest subnormal */
    CHECK(tb_float_to_half(0x1p-25f) == 0x0000);      /* half of it: a tie, to even zero */
    CHECK(tb_float_to_half(0x1.8p-25f) == 0x0001);    /* above the tie */
    CHECK(tb_float_to_half(0x1.8p-24f) == 0x0002);    /* 1.5 units: a tie, to even 2 */
    CHECK(tb_float_to_half(0x1.ffcp-15f) == 0x0400);  /* the largest subnormal rounds up to 2^-14 */
    CHECK(tb_float_to_half(1.0f + 0x1p-11f) == 0x3c00);     /* tie between 1 and 1 + 2^-10: even */
    CHECK(tb_float_to_half(1.0f + 3 * 0x1p-11f) == 0x3c02); /* tie: to even 1 + 2^-9 */
    CHECK(tb_float_to_half(1.0f + 0x1.8p-11f) == 0x3c01);   /* above the tie */
    CHECK(tb_float_to_half(INFINITY) == 0x7c00);
    CHECK(tb_float_to_half(-INFINITY) == 0xfc00);
    CHECK(isnan(tb_half_to_float(tb_float_to_half(NAN))));
    CHECK(tb_half_to_float(0x0001) == 0x1p-24f);
    CHECK(tb_half_to_float(0x3555) == 0x1.554p-2f);
}

/* Every finite half converts to float and back to itself. */
static void test_every_half_round_trips(void) {
    int round_trip = 1;
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7c00) != 0x7c00 && tb_float_to_half(tb_half_to_float((uint16_t)h)) != h)
            round_trip = 0;
    CHECK(round_trip);
}

__attribute__((target("f16c"))) static void test_agrees_with_f16c(void) {
    tb_rng rng;
    tb_rng_seed(&rng, 7);
    size_t disagree = 0;
    for (int i = 0; i < 1000000; i++) {
        /* Exponents across the half range and beyond, every mantissa pattern. */
        uint32_t b = (uint32_t)tb_rng_next(&rng);
        uint32_t exp = 90 + (uint32_t)(tb_rng_next(&rng) % 60);
        float f = float_of((b & 0x807fffffu) | exp << 23);
        if (tb_float_to_half(f) != hardware_half(f))
            disagree++;
        if (bits_of(tb_half_to_float(hardware_half(f))) != bits_of(hardware_float(hardware_half(f))))
            disagree++;
    }
    CHECK(disagree == 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--hardware") == 0) {
        if (!__builtin_cpu_supports("f16c")) {
            fprintf(stderr, "no F16C on this processor: the comparison with the hardware is skipped\n");
            return 77; /* meson's skip */
        }
        test_agrees_with_f16c();
        return tb_test_done();
    }
    test_known_values_and_ties();
    test_every_half_round_trips();
    return tb_test_done();
}
