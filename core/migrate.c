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

tb_status tb_migrate(sqlite3 *db) {
    int current;
    tb_status st = tb_migrate_current(db, &current);
    if (st != TB_OK)
        return st;
    if (current > tb_schema_version())
        return tb_error(TB_VERSION,
                        "database schema version %d is newer than this binary's %d: upgrade Timbre",
                        current, tb_schema_version());
    for (int i = current; i < tb_n_migrations; i++) {
        const tb_migration *m = &tb_migrations[i];
        char *err = NULL;
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK) {
            st = tb_error(TB_DB, "migration %s: %s", m->name, err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            return st;
        }
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
    return TB_OK;
}
