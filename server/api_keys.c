/* API keys: hashes and scopes; libsodium for the randomness, the hash and the comparison. */
#include "api_keys.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    unsigned char hash[32];
    unsigned scopes;
} entry;

struct tb_api_keys {
    entry *keys;
    size_t n;
};

/* "predict,write" into a mask; -1 on an unknown name. */
static int parse_scopes(const char *text, size_t len, unsigned *ret) {
    unsigned mask = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (n == 7 && strncmp(p, "predict", 7) == 0)
            mask |= TB_SCOPE_PREDICT;
        else if (n == 5 && strncmp(p, "write", 5) == 0)
            mask |= TB_SCOPE_WRITE;
        else if (n == 5 && strncmp(p, "admin", 5) == 0)
            mask |= TB_SCOPE_ADMIN;
        else
            return -1;
        p += n + (comma != NULL);
    }
    *ret = mask;
    return mask ? 0 : -1;
}

static void hash_key(const char *key, unsigned char out[32]) {
    crypto_generichash(out, 32, (const unsigned char *)key, strlen(key), NULL, 0);
}

tb_api_keys *tb_api_keys_free(tb_api_keys *k) {
    if (k) {
        sodium_memzero(k->keys, k->n * sizeof *k->keys);
        free(k->keys);
        free(k);
    }
    return NULL;
}

tb_status tb_api_keys_load(const char *path, tb_api_keys **ret) {
    if (sodium_init() < 0)
        return tb_error(TB_INTERNAL, "libsodium failed to initialize");
    FILE *f = fopen(path, "r");
    if (!f)
        return tb_error(TB_IO, "--api-keys %s: cannot read it", path);
    tb_api_keys *k = calloc(1, sizeof *k);
    tb_status st = k && (k->keys = calloc(TB_MAX_API_KEYS, sizeof *k->keys)) ? TB_OK : tb_error(TB_NOMEM, "out of memory");
    char line[512];
    for (unsigned no = 1; st == TB_OK && fgets(line, sizeof line, f); no++) {
        char *hash_at, *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        size_t scope_len = strcspn(p, " \t");
        hash_at = p + scope_len;
        while (*hash_at == ' ' || *hash_at == '\t')
            hash_at++;
        size_t hex_len = strcspn(hash_at, " \t\r\n#");
        unsigned scopes;
        size_t bin_len = 0;
        if (k->n == TB_MAX_API_KEYS)
            st = tb_error(TB_LIMIT, "--api-keys %s: more than %d keys", path, TB_MAX_API_KEYS);
        else if (parse_scopes(p, scope_len, &scopes) != 0 || hex_len != 64 ||
                 sodium_hex2bin(k->keys[k->n].hash, 32, hash_at, hex_len, NULL, &bin_len, NULL) != 0 || bin_len != 32)
            st = tb_error(TB_PARSE, "--api-keys %s:%u: expected 'SCOPES HASH' (scopes predict, write, admin; the "
                                    "64-hex-digit hash timbre-serve --new-api-key prints)", path, no);
        else
            k->keys[k->n++].scopes = scopes;
    }
    fclose(f);
    if (st == TB_OK && k->n == 0)
        st = tb_error(TB_PARSE, "--api-keys %s: no key in it", path);
    if (st != TB_OK) {
        tb_api_keys_free(k);
        return st;
    }
    *ret = k;
    return TB_OK;
}

unsigned tb_api_keys_scopes(const tb_api_keys *k, const char *key) {
    if (!key || !key[0])
        return 0;
    unsigned char h[32];
    hash_key(key, h);
    unsigned scopes = 0;
    for (size_t i = 0; i < k->n; i++) /* no early exit: the time says nothing of which key matched */
        scopes |= sodium_memcmp(h, k->keys[i].hash, 32) == 0 ? k->keys[i].scopes : 0;
    return scopes;
}

tb_status tb_api_keys_new(const char *scopes, FILE *f) {
    unsigned mask;
    if (sodium_init() < 0)
        return tb_error(TB_INTERNAL, "libsodium failed to initialize");
    if (parse_scopes(scopes, strlen(scopes), &mask) != 0)
        return tb_error(TB_INVALID, "--new-api-key '%s': scopes are a comma list of predict, write, admin", scopes);
    unsigned char raw[32], h[32];
    char key[4 + 65], hex[65];
    randombytes_buf(raw, sizeof raw);
    memcpy(key, "tbk_", 4);
    sodium_bin2hex(key + 4, sizeof key - 4, raw, sizeof raw);
    hash_key(key, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    fprintf(f, "key (give it to the client; it is not kept anywhere): %s\nline for the --api-keys file: %s %s\n", key,
            scopes, hex);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(key, sizeof key);
    return TB_OK;
}
