/* Exact JSON numbers: see json_number.h. */
#include "json_number.h"

#include <math.h>
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

void tb_format_double(double v, char out[32]) {
    /* glibc prints the 17 correctly rounded digits, which always read back to v; the 16-digit
     * rounding of them usually does too and is then used (one printf and one strtod a number,
     * where trying %.15g, %.16g, %.17g in turn took two or three of each). */
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

cJSON *tb_json_number(double v) {
    if (!isfinite(v))
        return NULL;
    char buf[32];
    tb_format_double(v, buf);
    return cJSON_CreateRaw(buf);
}

cJSON *tb_json_float(float v) {
    if (!isfinite(v))
        return NULL;
    static const char *const formats[] = {"%.6g", "%.7g", "%.8g", "%.9g"};
    char buf[32];
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, formats[i], (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(buf);
}
