/* Numbers as text that reads back exactly: see number_text.h. */
#include "number_text.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes sign, the n significant digits (no trailing zeros) and the decimal exponent e of the
 * first digit as a JSON number: plain from 1e-5 to 1e17, else in exponent form. */
static void render(char *out, int negative, const char *digits, int n, int e) {
    char *p = out;
    if (negative)
        *p++ = '-';
    if (e >= -5 && e < 17) {
        if (e < 0) {
            *p++ = '0';
            *p++ = '.';
            for (int i = -1; i > e; i--)
                *p++ = '0';
            memcpy(p, digits, (size_t)n);
            p += n;
        } else {
            for (int i = 0; i <= e; i++)
                *p++ = i < n ? digits[i] : '0';
            if (n > e + 1) {
                *p++ = '.';
                memcpy(p, digits + e + 1, (size_t)(n - e - 1));
                p += n - e - 1;
            }
        }
        *p = '\0';
        return;
    }
    *p++ = digits[0];
    if (n > 1) {
        *p++ = '.';
        memcpy(p, digits + 1, (size_t)(n - 1));
        p += n - 1;
    }
    sprintf(p, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

static int trim_zeros(const char *digits, int n) {
    while (n > 1 && digits[n - 1] == '0')
        n--;
    return n;
}

/* The n decimal digits of c (c < 10^n), leading zeros kept. */
static void digits_of(uint64_t c, char *out, int n) {
    for (int i = n - 1; i >= 0; i--, c /= 10)
        out[i] = (char)('0' + c % 10);
}

/* Exact integer arithmetic for 1e-5 <= |v| < 2^52 (probabilities, features, counts): v = m·2^e,
 * so v·10^k = m·5^k / 2^s with s = −e − k, all in 128 bits. The 17 digits are that quotient
 * rounded half to even (what glibc's printf gives); the 16-digit candidate is those rounded half
 * up (as before); it reads back to v iff it lies within half an ulp of v (ties to even m), the
 * test strtod would make. Same text as the printf path, about 5× faster. 0 = out of range. */
static int format_exact(double v, char out[32]) {
    static const uint64_t pow5[22] = {1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL,
                                      390625ULL, 1953125ULL, 9765625ULL, 48828125ULL, 244140625ULL,
                                      1220703125ULL, 6103515625ULL, 30517578125ULL, 152587890625ULL,
                                      762939453125ULL, 3814697265625ULL, 19073486328125ULL, 95367431640625ULL,
                                      476837158203125ULL};
    typedef unsigned __int128 u128;
    double a = fabs(v);
    if (!(a >= 1e-5 && a < 4503599627370496.0))
        return 0;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int e = (int)(bits >> 52) - 1075, k = 16 - (int)floor(log10(a));
    u128 c17 = 0;
    for (int tries = 0; tries < 3; tries++) {
        int s = -e - k;
        if (k < 0 || k > 21 || s < 1 || s > 60)
            return 0;
        u128 x = (u128)m * pow5[k], rest = x & (((u128)1 << s) - 1), half = (u128)1 << (s - 1);
        c17 = x >> s;
        c17 += rest > half || (rest == half && (c17 & 1));
        if (c17 < 10000000000000000ULL)
            k++; /* log10 said one digit too many */
        else if (c17 >= 100000000000000000ULL)
            k--;
        else
            break;
    }
    if (c17 < 10000000000000000ULL || c17 >= 100000000000000000ULL)
        return 0;
    int s = -e - k, e10 = 16 - k, negative = signbit(v) != 0;
    uint64_t c16 = (uint64_t)(c17 / 10) + (c17 % 10 >= 5);
    /* Distance to v in units of 2^−(s+1): the candidate c16·10 against 2·x; half an ulp is 5^k.
     * (Below a power of two the next double down is nearer, but the powers of two in this range
     * have at most 16 significant digits, so there the candidate is v itself.) */
    u128 x2 = (u128)m * pow5[k] * 2, cand = (u128)c16 * 10 << (s + 1), half_ulp = pow5[k];
    u128 dist = cand < x2 ? x2 - cand : cand - x2;
    char digits[18];
    if (dist < half_ulp || (dist == half_ulp && !(m & 1))) {
        int e16 = e10;
        if (c16 == 10000000000000000ULL) { /* rounding carried into a new digit */
            c16 /= 10;
            e16++;
        }
        digits_of(c16, digits, 16);
        render(out, negative, digits, trim_zeros(digits, 16), e16);
    } else {
        digits_of((uint64_t)c17, digits, 17);
        render(out, negative, digits, trim_zeros(digits, 17), e10);
    }
    return 1;
}

void tb_format_double(double v, char out[32]) {
    if (format_exact(v, out))
        return;
    /* Elsewhere glibc prints the 17 correctly rounded digits, which always read back to v; the
     * 16-digit rounding of them usually does too and is then used. */
    char sci[40], digits[18];
    snprintf(sci, sizeof sci, "%.16e", v);
    int negative = sci[0] == '-';
    const char *s = sci + negative;
    digits[0] = s[0];
    memcpy(digits + 1, s + 2, 16);
    int e = atoi(s + 19);
    char d16[17];
    memcpy(d16, digits, 16);
    int e16 = e;
    if (digits[16] >= '5') { /* round up, carrying */
        int i = 15;
        for (; i >= 0 && d16[i] == '9'; i--)
            d16[i] = '0';
        if (i >= 0) {
            d16[i]++;
        } else {
            d16[0] = '1';
            e16++;
        }
    }
    render(out, negative, d16, trim_zeros(d16, 16), e16);
    if (strtod(out, NULL) != v)
        render(out, negative, digits, trim_zeros(digits, 17), e);
}

void tb_format_float(float v, char out[32]) {
    static const char *const formats[] = {"%.6g", "%.7g", "%.8g", "%.9g"};
    for (int i = 0; i < 4; i++) {
        snprintf(out, 32, formats[i], (double)v);
        if (strtof(out, NULL) == v)
            break;
    }
}
