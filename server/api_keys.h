/* Optional API keys (--api-keys FILE): each line "SCOPES HASH", SCOPES a comma list of predict,
 * write, admin and HASH the hex BLAKE2b-256 of a key; the keys themselves are never stored.
 * timbre-serve --new-api-key SCOPES makes a key and its line. A request sends its key as
 * X-API-Key (Authorization stays free for a taste's owner secret). Read-only once loaded;
 * thread-safe. */
#ifndef TB_SERVER_API_KEYS_H
#define TB_SERVER_API_KEYS_H

#include <stdio.h>

#include "route.h"
#include "status.h"

#define TB_MAX_API_KEYS 1024

typedef struct tb_api_keys tb_api_keys;

/* Loads the file; TB_PARSE naming the line for a malformed one. */
tb_status tb_api_keys_load(const char *path, tb_api_keys **ret);
tb_api_keys *tb_api_keys_free(tb_api_keys *k);
/* The scopes (a tb_scope mask) the key grants; 0 for a key that is absent or unknown. Every
 * stored hash is compared, each in constant time. */
unsigned tb_api_keys_scopes(const tb_api_keys *k, const char *key);
/* Writes a fresh key (256 random bits from the kernel) and its file line to f. */
tb_status tb_api_keys_new(const char *scopes, FILE *f);

#endif
