#include "half.h"

#include <string.h>

uint16_t tb_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffff;
    if (a >= 0x7f800000) /* infinity, NaN (quiet) */
        return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0));
    if (a >= 0x477ff000) /* rounds to 65520 or more: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (a <= 0x33000000) /* 2^-25 or less: rounds to zero (2^-25 is a tie, to the even zero) */
        return sign;
    uint32_t e = a >> 23, bits, rem, halfway;
    if (e < 113) { /* below 2^-14: a subnormal half, in units of 2^-24 */
        uint32_t mant = (a & 0x7fffff) | 0x800000, shift = 126 - e;
        bits = mant >> shift;
        rem = mant & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
    } else {
        bits = ((e - 112) << 10) | ((a >> 13) & 0x3ff);
        rem = a & 0x1fff;
        halfway = 0x1000;
    }
    /* A carry out of the mantissa moves to the next binade (or from subnormal to normal) correctly. */
    if (rem > halfway || (rem == halfway && (bits & 1)))
        bits++;
    return (uint16_t)(sign | bits);
}

float tb_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    bits = sign | (e == 31 ? 0x7f800000 | (m << 13) : ((e + 112) << 23) | (m << 13));
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
