/* Migration runner. */
#include "migrate.h"

#include <stddef.h>

int tb_schema_version(void) { return tb_n_migrations; }

tb_status tb_migrate_current(sqlite3 *db, int *ret_version) {
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        *ret_version = sqlite3_column_int(stmt, 0);
        sqlite3_finalize(stmt);
        return TB_OK;
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        return tb_error(TB_CORRUPT, "not a valid SQLite database (%s)", sqlite3_errmsg(db));
    return tb_error(TB_DB, "reading the schema version: %s", sqlite3_errmsg(db));
}

/* Each step takes the write lock (BEGIN IMMEDIATE) before it reads the version, so two
 * processes creating or migrating one database take turns: the second finds the first's work
 * done instead of running the same CREATE TABLE again ("table models already exists"). */
tb_status tb_migrate(sqlite3 *db) { return tb_migrate_with(db, tb_migrations, tb_n_migrations); }

tb_status tb_migrate_with(sqlite3 *db, const tb_migration *list, int n) {
    for (;;) {
        char *err = NULL;
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK) {
            tb_status st = tb_error(TB_DB, "migrating: %s", err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            return st;
        }
        int current;
        tb_status st = tb_migrate_current(db, &current);
        if (st == TB_OK && current > n)
            st = tb_error(TB_VERSION, "database schema version %d is newer than this binary's %d: upgrade Timbre",
                          current, n);
        if (st != TB_OK || current == n) {
            if (st == TB_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
                st = tb_error(TB_DB, "migrating: %s", err ? err : sqlite3_errmsg(db));
                sqlite3_free(err);
            }
            if (st != TB_OK)
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
        const tb_migration *m = &list[current];
        char pragma[64];
        sqlite3_snprintf(sizeof pragma, pragma, "PRAGMA user_version = %d", m->version);
        if (sqlite3_exec(db, m->sql, NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, pragma, NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
            st = tb_error(TB_DB, "migration %s failed: %s", m->name, err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
    }
}
