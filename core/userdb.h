/* The user database (timbre-serve --user-db): saved listener tastes, each owned by the holder of
 * the secret its first save returned. Secrets are 256 random bits from the kernel (libsodium),
 * kept only as a BLAKE2b hash and compared in constant time. The database is never waited on: a
 * write that finds it locked by another process fails at once with TB_UNAVAILABLE, as a request
 * thread that waited would hold every other connection it serves (a 100 ms busy timeout held
 * /healthz for 111 ms). Thread-safe: one connection, one mutex, held for a row's write. */
#ifndef TB_USERDB_H
#define TB_USERDB_H

#include <stddef.h>
#include <stdint.h>

#include "secret.h"
#include "status.h"


typedef struct tb_userdb tb_userdb;

/* Opens (creating and migrating) the user database at path. */
tb_status tb_userdb_open(const char *path, tb_userdb **ret);
tb_userdb *tb_userdb_close(tb_userdb *u);

/* Saves a taste. A new name is created — unless max_tastes are stored (TB_FULL) — with a fresh
 * secret written to ret_secret (the only time it is shown) and *ret_created = 1. An existing name
 * is replaced only when `secret` is its own (NULL: TB_UNAUTHORIZED; another: TB_FORBIDDEN);
 * ret_secret is then "". TB_UNAVAILABLE when the database is locked. */
tb_status tb_userdb_save(tb_userdb *u, const char *name, const char *secret, const char *index_name,
                         int index_version, const char *ratings_json, const char *fit_json, size_t max_tastes,
                         char ret_secret[TB_SECRET_TEXT_BYTES], int *ret_created);
/* Reads a taste for the holder of its secret (caller frees the strings): TB_UNAUTHORIZED without
 * a secret, TB_NOT_FOUND for an unknown name, TB_FORBIDDEN for the wrong secret. */
tb_status tb_userdb_get(tb_userdb *u, const char *name, const char *secret, char **ret_ratings_json,
                        char **ret_fit_json, char **ret_updated_at);
/* Deletes a taste for the holder of its secret; the same errors as tb_userdb_get. */
tb_status tb_userdb_delete(tb_userdb *u, const char *name, const char *secret);
/* Saved tastes. */
tb_status tb_userdb_count(tb_userdb *u, size_t *ret_n);

#endif
