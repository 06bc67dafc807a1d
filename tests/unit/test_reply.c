/* JSON numbers: every finite double prints as text that reads back to exactly it, short where a
 * short form exists, as valid JSON (checked by cJSON parsing it back). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
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
    CHECK(bad_json == 0);
    CHECK(tb_json_number(INFINITY) == NULL);
    CHECK(tb_json_number(NAN) == NULL);
    return tb_test_done();
}
