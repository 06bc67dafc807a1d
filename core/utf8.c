#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the well-formed sequence at s (at most n bytes available), or 0 if ill-formed.
 * The ranges are Unicode's Table 3-7. */
static size_t sequence_length(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0; /* continuation byte, C0/C1 (overlong ASCII), F5..FF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

size_t tb_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint64_t word;
        if (n - i >= 8 && (memcpy(&word, u + i, 8), (word & 0x8080808080808080u) == 0)) {
            i += 8; /* eight ASCII bytes: most of any request */
            continue;
        }
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = sequence_length(u + i, n - i);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}

size_t tb_utf8_sanitize(char *dst, size_t dst_size, const char *src) {
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *u = (const unsigned char *)src;
    size_t n = strlen(src), i = 0, out = 0;
    while (i < n) {
        size_t len = sequence_length(u + i, n - i);
        const char *piece = len ? src + i : replacement;
        size_t piece_len = len ? len : sizeof replacement - 1;
        if (out + piece_len + 1 > dst_size)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        i += len ? len : 1;
    }
    dst[out] = '\0';
    return out;
}
