/* Secrets through libsodium. */
#include "secret.h"

#include <sodium.h>
#include <string.h>

tb_status tb_secret_init(void) {
    return sodium_init() < 0 ? tb_error(TB_INTERNAL, "libsodium failed to initialize") : TB_OK;
}

tb_status tb_secret_new(const char *prefix, char out[TB_SECRET_TEXT_BYTES]) {
    tb_status st = tb_secret_init();
    if (st != TB_OK)
        return st;
    if (strlen(prefix) != 4)
        return tb_error(TB_INVALID, "a secret's prefix has 4 bytes");
    unsigned char raw[TB_SECRET_BYTES];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, prefix, 4);
    sodium_bin2hex(out + 4, TB_SECRET_TEXT_BYTES - 4, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    return TB_OK;
}

void tb_secret_hash(const char *secret, unsigned char out[TB_SECRET_BYTES]) {
    crypto_generichash(out, TB_SECRET_BYTES, (const unsigned char *)secret, strlen(secret), NULL, 0);
}

int tb_secret_hash_equal(const unsigned char a[TB_SECRET_BYTES], const unsigned char b[TB_SECRET_BYTES]) {
    return sodium_memcmp(a, b, TB_SECRET_BYTES) == 0;
}

int tb_secret_matches(const char *secret, const unsigned char stored[TB_SECRET_BYTES]) {
    unsigned char h[TB_SECRET_BYTES];
    tb_secret_hash(secret, h);
    return tb_secret_hash_equal(h, stored);
}

void tb_secret_wipe(void *p, size_t n) { sodium_memzero(p, n); }
