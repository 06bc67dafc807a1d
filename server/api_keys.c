/* API keys: hashes and scopes; the secrets themselves are core/secret.c's. */
#include "api_keys.h"

#include <sodium.h> /* hex codec of the keys file */
#include <stdlib.h>
#include <string.h>

#include "secret.h"

typedef struct entry {
    unsigned char hash[TB_SECRET_BYTES];
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

tb_api_keys *tb_api_keys_free(tb_api_keys *k) {
    if (k) {
        tb_secret_wipe(k->keys, k->n * sizeof *k->keys);
        free(k->keys);
        free(k);
    }
    return NULL;
}

tb_status tb_api_keys_load(const char *path, tb_api_keys **ret) {
    if (tb_secret_init() != TB_OK)
        return TB_INTERNAL;
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
                 sodium_hex2bin(k->keys[k->n].hash, TB_SECRET_BYTES, hash_at, hex_len, NULL, &bin_len, NULL) != 0 || bin_len != TB_SECRET_BYTES)
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
    unsigned char h[TB_SECRET_BYTES];
    tb_secret_hash(key, h);
    unsigned scopes = 0;
    for (size_t i = 0; i < k->n; i++) /* no early exit: the time says nothing of which key matched */
        scopes |= tb_secret_hash_equal(h, k->keys[i].hash) ? k->keys[i].scopes : 0;
    return scopes;
}

tb_status tb_api_keys_new(const char *scopes, FILE *f) {
    unsigned mask;
    if (parse_scopes(scopes, strlen(scopes), &mask) != 0)
        return tb_error(TB_INVALID, "--new-api-key '%s': scopes are a comma list of predict, write, admin", scopes);
    unsigned char h[TB_SECRET_BYTES];
    char key[TB_SECRET_TEXT_BYTES], hex[2 * TB_SECRET_BYTES + 1];
    tb_status st = tb_secret_new("tbk_", key);
    if (st != TB_OK)
        return st;
    tb_secret_hash(key, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    fprintf(f, "key (give it to the client; it is not kept anywhere): %s\nline for the --api-keys file: %s %s\n", key,
            scopes, hex);
    tb_secret_wipe(key, sizeof key);
    return TB_OK;
}
