/* UTF-8 checks for text that crosses the API boundary: JSON text must be UTF-8 (RFC 8259 §8.1),
 * and a reply that quotes a client's bytes must stay valid even when it cuts them short. */
#ifndef TIMBRE_UTF8_H
#define TIMBRE_UTF8_H

#include <stddef.h>

/* The offset of the first byte of s[0..n) that does not start a well-formed UTF-8 sequence
 * (overlong forms, surrogates and code points above U+10FFFF are ill-formed), or n. */
size_t tb_utf8_invalid_at(const char *s, size_t n);

/* Copies the NUL-terminated src into dst (dst_size > 0), each ill-formed or cut-off sequence
 * replaced by U+FFFD, stopping at a character boundary so dst always ends NUL-terminated and
 * well-formed. Returns the bytes written (without the NUL). */
size_t tb_utf8_sanitize(char *dst, size_t dst_size, const char *src);

#endif
