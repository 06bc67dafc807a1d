/* Schema migrations: the SQL files under migrations/, embedded at build time, applied in order,
 * each inside one transaction that also sets PRAGMA user_version. */
#ifndef TB_MIGRATE_H
#define TB_MIGRATE_H

#include <sqlite3.h>

#include "status.h"

typedef struct tb_migration {
    int version;
    const char *name;
    const char *sql;
} tb_migration;

extern const tb_migration tb_migrations[]; /* generated: build/migrations_gen.c */
extern const int tb_n_migrations;
extern const tb_migration tb_user_migrations[]; /* the user database's (migrations/user/) */
extern const int tb_user_n_migrations;

/* Version this binary's schema reaches. */
int tb_schema_version(void);
/* Reads PRAGMA user_version. TB_CORRUPT when the file is not an SQLite database. */
tb_status tb_migrate_current(sqlite3 *db, int *ret_version);
/* Applies every migration above the current version. A database newer than this binary is
 * refused (TB_VERSION) and left untouched; a failing migration is rolled back whole. */
tb_status tb_migrate(sqlite3 *db);
/* The same with another schema's list (the user database's). */
tb_status tb_migrate_with(sqlite3 *db, const tb_migration *list, int n);

#endif
