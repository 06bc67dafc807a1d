/* JSON numbers: every finite double prints as text that reads back to exactly it, short where a
 * short form exists, as valid JSON (checked by cJSON parsing it back). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "number_text.h"
#include "reply.h"
#include "rng.h"

static double from_bits(uint64_t b) {
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static const char *text(double v) {
    static char buf[32];
    tb_format_double(v, buf);
    return buf;
}

/* The printf reference: 17 correctly rounded digits from glibc, their 16-digit rounding (half up)
 * when it reads back, else the 17 (trailing zeros dropped, exponent form as JSON needs). */
static void reference(double v, char *out) {
    char sci[40], d16[17], d17[18];
    snprintf(sci, sizeof sci, "%.16e", v);
    int neg = sci[0] == '-';
    const char *s = sci + neg;
    d17[0] = s[0];
    memcpy(d17 + 1, s + 2, 16);
    d17[17] = '\0';
    int e = atoi(s + 19), e16 = e;
    memcpy(d16, d17, 16);
    d16[16] = '\0';
    if (d17[16] >= '5') {
        int i = 15;
        for (; i >= 0 && d16[i] == '9'; i--)
            d16[i] = '0';
        if (i >= 0)
            d16[i]++;
        else
            d16[0] = '1', e16++;
    }
    char a[40], b[40];
    snprintf(a, sizeof a, "%s%c.%se%d", neg ? "-" : "", d16[0], d16 + 1, e16);
    snprintf(b, sizeof b, "%s%c.%se%d", neg ? "-" : "", d17[0], d17 + 1, e);
    snprintf(out, 40, "%s", strtod(a, NULL) == v ? a : b);
}

/* A decimal text as sign, significant digits and the exponent of the first: equal for equal
 * numbers however they are laid out ("0.00123" and "1.23e-3" both "123e-3"). */
static void canonical(const char *t, char *out) {
    int neg = *t == '-', nd = 0, point = -1, exp = 0;
    char dig[64];
    for (t += neg; *t && *t != 'e' && nd < 63; t++) {
        if (*t == '.')
            point = nd;
        else
            dig[nd++] = *t;
    }
    if (*t == 'e')
        exp = atoi(t + 1);
    if (point < 0)
        point = nd;
    int lead = 0, end = nd;
    while (lead < nd - 1 && dig[lead] == '0')
        lead++;
    while (end > lead + 1 && dig[end - 1] == '0')
        end--;
    snprintf(out, 80, "%s%.*se%d", neg ? "-" : "", end - lead, dig + lead, point + exp - 1 - lead);
}

/* tb_format_double's number is the reference's. */
static int same_number(double v) {
    char want[40], got[32], a[80], b[80];
    reference(v, want);
    tb_format_double(v, got);
    canonical(want, a);
    canonical(got, b);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "%.17g: %s, reference %s\n", v, got, want);
    return strcmp(a, b) == 0;
}

int main(void) {
    CHECK_STR(text(0.1), "0.1");
    CHECK_STR(text(0.3), "0.3");
    CHECK_STR(text(1.0), "1");
    CHECK_STR(text(100.0), "100");
    CHECK_STR(text(-2.5), "-2.5");
    CHECK_STR(text(0.0), "0");
    CHECK_STR(text(-0.0), "-0");
    CHECK_STR(text(1.0 / 3.0), "0.3333333333333333");
    CHECK_STR(text(2.0 / 3.0), "0.6666666666666666");
    CHECK_STR(text(0.1 + 0.2), "0.30000000000000004"); /* needs all 17 digits */
    CHECK_STR(text(1e-7), "1e-07");
    CHECK_STR(text(0.00001234), "0.00001234");
    CHECK_STR(text(1e300), "1e+300");
    CHECK_STR(text(123456789012345678.0), "1.2345678901234568e+17");
    CHECK_STR(text(9.999999999999999e22), "9.999999999999999e+22");
    CHECK_STR(text(5e-324), "4.940656458412465e-324"); /* the smallest subnormal: 16 digits read back */
    CHECK_STR(text(0.9999999999999999), "0.9999999999999999");
    CHECK_STR(text(99999999999999990.0), "99999999999999980"); /* 16 digits, padded */

    /* Random bit patterns (every exponent) and random probabilities: exact round trips. */
    tb_rng rng;
    tb_rng_seed(&rng, 11);
    size_t bad = 0, long_text = 0, bad_json = 0;
    for (int i = 0; i < 400000; i++) {
        double v = i % 2 ? from_bits(tb_rng_next(&rng)) : (double)tb_rng_next(&rng) / 18446744073709551616.0;
        if (!isfinite(v))
            continue;
        const char *t = text(v);
        bad += strtod(t, NULL) != v;
        long_text += strlen(t) > 25;
        if (i % 64 == 0) {
            cJSON *n = cJSON_Parse(t);
            bad_json += !cJSON_IsNumber(n);
            cJSON_Delete(n);
        }
    }
    CHECK(bad == 0);
    CHECK(long_text == 0);
    /* The integer path (1e-5 to 2^52) gives the printf path's digits: probabilities, features,
     * integers, values next to powers of two and ten, and the 17-digit cases. */
    size_t differ = 0;
    for (int i = 0; i < 500000; i++) {
        uint64_t r = tb_rng_next(&rng);
        double v;
        switch (i % 5) {
        case 0: v = (double)(r >> 11) / 9007199254740992.0; break;          /* [0, 1) */
        case 1: v = from_bits(0x3ee0000000000000ULL + (r % 0x0370000000000000ULL)); break; /* 7.6e-6 .. 4.5e15 */
        case 2: v = (double)(r % 100000) / 1000.0 - 50.0; break;             /* three decimals */
        case 3: /* next to 2^j, j in -16..51: the lower neighbour is nearer there */
            v = from_bits(((uint64_t)(1023 - 16 + (int)(r % 68)) << 52) + (r >> 63) - ((r >> 62) & 1));
            break;
        default: v = (double)(int64_t)(r >> 12) * ((r & 1) ? 1.0 : -1.0); break; /* integers up to 2^52 */
        }
        if (isfinite(v) && v != 0.0)
            differ += !same_number(v);
    }
    CHECK(differ == 0);
    const double edges[] = {1e-5, 0.00001, 9.999999999999999e-6, 1e15, 4503599627370495.5, 4503599627370496.0,
                            0.5, 0.25, 1.0 - 1e-16, 123456.789, 1e16 - 1, 0.1 + 0.2, 5e-5};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        CHECK(same_number(edges[i]));
    CHECK(bad_json == 0);
    CHECK(tb_json_number(INFINITY) == NULL);
    CHECK(tb_json_number(NAN) == NULL);
    return tb_test_done();
}
