/* Saved tastes in their own SQLite file; secrets from core/secret.c. */
#include "userdb.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "secret.h"

struct tb_userdb {
    sqlite3 *db;
    pthread_mutex_t lock;
};

static tb_status db_fail(tb_userdb *u, const char *what) {
    int code = sqlite3_errcode(u->db);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return tb_error(TB_UNAVAILABLE, "the user database is busy (%s); retry shortly", what);
    return tb_error(TB_DB, "user database: %s: %s", what, sqlite3_errmsg(u->db));
}

tb_userdb *tb_userdb_close(tb_userdb *u) {
    if (!u)
        return NULL;
    sqlite3_close(u->db);
    pthread_mutex_destroy(&u->lock);
    free(u);
    return NULL;
}

tb_status tb_userdb_open(const char *path, tb_userdb **ret) {
    tb_status st = tb_secret_init();
    if (st != TB_OK)
        return st;
    tb_userdb *u = calloc(1, sizeof *u);
    if (!u)
        return tb_error(TB_NOMEM, "out of memory");
    pthread_mutex_init(&u->lock, NULL);
    if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        st = tb_error(TB_IO, "%s: cannot open the user database: %s", path, u->db ? sqlite3_errmsg(u->db) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(u->db, 5000); /* at start-up only: another server may be creating it */
    if (sqlite3_exec(u->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(u->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_fail(u, "setting the journal mode");
        goto fail;
    }
    if ((st = tb_migrate_with(u->db, tb_user_migrations, tb_user_n_migrations)) != TB_OK) {
        tb_error_prefix(st, "%s", path);
        goto fail;
    }
    sqlite3_busy_timeout(u->db, 0); /* from here on a lock held elsewhere fails at once (userdb.h) */
    *ret = u;
    return TB_OK;
fail:
    tb_userdb_close(u);
    return st;
}

/* Reads the name's stored hash into h (found 1, absent 0, error -1). Under the lock. */
static int stored_hash(tb_userdb *u, const char *name, unsigned char h[TB_SECRET_BYTES]) {
    sqlite3_stmt *stmt = NULL;
    int found = -1;
    if (sqlite3_prepare_v2(u->db, "SELECT secret_hash FROM tastes WHERE name = ?1", -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == TB_SECRET_BYTES) {
            memcpy(h, sqlite3_column_blob(stmt, 0), TB_SECRET_BYTES);
            found = 1;
        } else if (rc == SQLITE_DONE) {
            found = 0;
        }
    }
    sqlite3_finalize(stmt);
    return found;
}

/* The owner check shared by read, replace and delete. Under the lock. */
static tb_status authorize(tb_userdb *u, const char *name, const char *secret, int *ret_found) {
    unsigned char h[TB_SECRET_BYTES];
    int found = stored_hash(u, name, h);
    if (found < 0)
        return db_fail(u, "reading a taste");
    *ret_found = found;
    if (!found)
        return TB_OK;
    if (!secret || !secret[0])
        return tb_error(TB_UNAUTHORIZED, "taste '%s' belongs to the holder of its secret: send it as "
                                         "Authorization: Bearer <secret>", name);
    if (!tb_secret_matches(secret, h))
        return tb_error(TB_FORBIDDEN, "that secret does not own taste '%s'", name);
    return TB_OK;
}

static tb_status count_locked(tb_userdb *u, size_t *ret_n) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    if (sqlite3_prepare_v2(u->db, "SELECT COUNT(*) FROM tastes", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW)
        st = db_fail(u, "counting tastes");
    else
        *ret_n = (size_t)sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return st;
}

tb_status tb_userdb_count(tb_userdb *u, size_t *ret_n) {
    pthread_mutex_lock(&u->lock);
    tb_status st = count_locked(u, ret_n);
    pthread_mutex_unlock(&u->lock);
    return st;
}

tb_status tb_userdb_save(tb_userdb *u, const char *name, const char *secret, const char *index_name,
                         int index_version, const char *ratings_json, const char *fit_json, size_t max_tastes,
                         char ret_secret[TB_SECRET_TEXT_BYTES], int *ret_created) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    int found = 0;
    unsigned char h[TB_SECRET_BYTES];
    ret_secret[0] = '\0';
    pthread_mutex_lock(&u->lock);
    if (sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_fail(u, "saving a taste");
        goto out;
    }
    if ((st = authorize(u, name, secret, &found)) != TB_OK)
        goto rollback;
    if (!found) {
        size_t n = 0;
        if ((st = count_locked(u, &n)) != TB_OK)
            goto rollback;
        if (n >= max_tastes) {
            st = tb_error(TB_FULL, "%zu tastes are saved, the most this server keeps (--max-tastes): delete one first",
                          n);
            goto rollback;
        }
        if ((st = tb_secret_new("tbs_", ret_secret)) != TB_OK)
            goto rollback;
        tb_secret_hash(ret_secret, h);
    }
    const char *sql = found ? "UPDATE tastes SET index_name = ?2, index_version = ?3, ratings = ?4, fit = ?5, "
                              "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE name = ?1"
                            : "INSERT INTO tastes (name, index_name, index_version, ratings, fit, secret_hash) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    if (sqlite3_prepare_v2(u->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        st = db_fail(u, "saving a taste");
        goto rollback;
    }
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, index_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, index_version);
    sqlite3_bind_text(stmt, 4, ratings_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, fit_json, -1, SQLITE_STATIC);
    if (!found)
        sqlite3_bind_blob(stmt, 6, h, TB_SECRET_BYTES, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE || sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_fail(u, "saving a taste");
        goto rollback;
    }
    *ret_created = !found;
    goto out;
rollback:
    sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
    tb_secret_wipe(ret_secret, TB_SECRET_TEXT_BYTES);
    ret_secret[0] = '\0';
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&u->lock);
    return st;
}

static char *col_dup(sqlite3_stmt *stmt, int col) {
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return strdup(t ? (const char *)t : "");
}

tb_status tb_userdb_get(tb_userdb *u, const char *name, const char *secret, char **ret_ratings_json,
                        char **ret_fit_json, char **ret_updated_at) {
    if (!secret || !secret[0])
        return tb_error(TB_UNAUTHORIZED, "a saved taste is read with its secret: Authorization: Bearer <secret>");
    sqlite3_stmt *stmt = NULL;
    int found = 0;
    pthread_mutex_lock(&u->lock);
    tb_status st = authorize(u, name, secret, &found);
    if (st == TB_OK && !found)
        st = tb_error(TB_NOT_FOUND, "no saved taste named '%s'", name);
    if (st == TB_OK) {
        if (sqlite3_prepare_v2(u->db, "SELECT ratings, fit, updated_at FROM tastes WHERE name = ?1", -1, &stmt, NULL) !=
                SQLITE_OK ||
            (sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC), sqlite3_step(stmt)) != SQLITE_ROW) {
            st = db_fail(u, "reading a taste");
        } else {
            *ret_ratings_json = col_dup(stmt, 0);
            *ret_fit_json = col_dup(stmt, 1);
            *ret_updated_at = col_dup(stmt, 2);
            if (!*ret_ratings_json || !*ret_fit_json || !*ret_updated_at) {
                free(*ret_ratings_json), free(*ret_fit_json), free(*ret_updated_at);
                st = tb_error(TB_NOMEM, "out of memory");
            }
        }
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&u->lock);
    return st;
}

tb_status tb_userdb_delete(tb_userdb *u, const char *name, const char *secret) {
    if (!secret || !secret[0])
        return tb_error(TB_UNAUTHORIZED, "a saved taste is deleted with its secret: Authorization: Bearer <secret>");
    sqlite3_stmt *stmt = NULL;
    int found = 0;
    pthread_mutex_lock(&u->lock);
    tb_status st = sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                       ? authorize(u, name, secret, &found)
                       : db_fail(u, "deleting a taste");
    if (st == TB_OK && !found)
        st = tb_error(TB_NOT_FOUND, "no saved taste named '%s'", name);
    if (st == TB_OK && (sqlite3_prepare_v2(u->db, "DELETE FROM tastes WHERE name = ?1", -1, &stmt, NULL) != SQLITE_OK ||
                        (sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC), sqlite3_step(stmt)) != SQLITE_DONE ||
                        sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK))
        st = db_fail(u, "deleting a taste");
    if (st != TB_OK)
        sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&u->lock);
    return st;
}
