/* UTF-8 validation against Unicode's Table 3-7 at its edges, and sanitizing: replacement of
 * ill-formed bytes and cut-off characters, truncation at character boundaries. */
#include "check.h"
#include "utf8.h"

static size_t at(const char *s) { return tb_utf8_invalid_at(s, strlen(s)); }

int main(void) {
    /* Well-formed: ASCII (long runs take the 8-byte path), and each sequence length at its limits. */
    CHECK(at("") == 0);
    CHECK(at("plain ASCII text longer than eight bytes") == strlen("plain ASCII text longer than eight bytes"));
    CHECK(at("caf\xC3\xA9") == 5);                 /* U+00E9 */
    CHECK(at("\xC2\x80") == 2);                    /* U+0080, smallest 2-byte */
    CHECK(at("\xDF\xBF") == 2);                    /* U+07FF */
    CHECK(at("\xE0\xA0\x80") == 3);                /* U+0800, smallest 3-byte */
    CHECK(at("\xED\x9F\xBF") == 3);                /* U+D7FF, below the surrogates */
    CHECK(at("\xEE\x80\x80") == 3);                /* U+E000, above them */
    CHECK(at("\xEF\xBF\xBD") == 3);                /* U+FFFD */
    CHECK(at("\xF0\x90\x80\x80") == 4);            /* U+10000 */
    CHECK(at("\xF4\x8F\xBF\xBF") == 4);            /* U+10FFFF, the last code point */
    CHECK(at("Beyonc\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x8E\xB5 ok") == strlen("Beyonc\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x8E\xB5 ok"));

    /* Ill-formed: the offset of the first bad byte. */
    CHECK(at("abc\x80") == 3);                     /* a lone continuation byte */
    CHECK(at("\xC0\xAF") == 0);                    /* overlong '/' */
    CHECK(at("\xC1\xBF") == 0);
    CHECK(at("\xE0\x9F\xBF") == 0);                /* overlong 3-byte */
    CHECK(at("\xED\xA0\x80") == 0);                /* U+D800, a surrogate */
    CHECK(at("\xED\xBF\xBF") == 0);                /* U+DFFF */
    CHECK(at("\xF0\x8F\xBF\xBF") == 0);            /* overlong 4-byte */
    CHECK(at("\xF4\x90\x80\x80") == 0);            /* U+110000 */
    CHECK(at("\xF5\x80\x80\x80") == 0);
    CHECK(at("\xFF") == 0);
    CHECK(at("ok \xC3") == 3);                     /* cut off at the end */
    CHECK(at("ok \xE2\x80") == 3);
    CHECK(at("0123456789\xE2\x28\xA1") == 10);      /* bad second byte after an ASCII word */
    /* The length is what counts, not a NUL: a NUL is ASCII, and bytes past n are not read. */
    CHECK(tb_utf8_invalid_at("a\0b\xFF", 3) == 3);
    CHECK(tb_utf8_invalid_at("a\0b\xFF", 4) == 3);
    CHECK(tb_utf8_invalid_at("\xC3\xA9", 1) == 0); /* the sequence runs past n */

    /* Sanitizing. */
    char out[64];
    CHECK(tb_utf8_sanitize(out, sizeof out, "caf\xC3\xA9") == 5 && strcmp(out, "caf\xC3\xA9") == 0);
    CHECK(tb_utf8_sanitize(out, sizeof out, "rat\x9Cng") == 8 && strcmp(out, "rat\xEF\xBF\xBDng") == 0);
    tb_utf8_sanitize(out, sizeof out, "x\xED\xA0\x80y"); /* a surrogate: each of its bytes replaced */
    CHECK(strcmp(out, "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy") == 0);
    tb_utf8_sanitize(out, sizeof out, "end\xE2\x80"); /* a character cut in two by %.Ns */
    CHECK(tb_utf8_invalid_at(out, strlen(out)) == strlen(out) && strncmp(out, "end\xEF\xBF\xBD", 6) == 0);
    /* Truncation stops before a character that does not fit, never inside it. */
    char small[6];
    CHECK(tb_utf8_sanitize(small, sizeof small, "ab\xE2\x80\x94z") == 5 && strcmp(small, "ab\xE2\x80\x94") == 0);
    CHECK(tb_utf8_sanitize(small, 5, "ab\xE2\x80\x94z") == 2 && strcmp(small, "ab") == 0);
    CHECK(tb_utf8_sanitize(small, 4, "ab\xFF") == 2 && strcmp(small, "ab") == 0); /* U+FFFD needs 3 + NUL */
    CHECK(tb_utf8_sanitize(small, 1, "abc") == 0 && small[0] == '\0');
    return tb_test_done();
}
