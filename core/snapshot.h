/* Snapshots: immutable copies of what the trainer's database serves, one file each in a
 * directory, and a pointer file CURRENT naming the one to serve, replaced by rename — a reader
 * sees the old set or the new one, whole. Servers open a snapshot read-only and immutable and
 * write nothing beside it; replicas copy the directory (or just CURRENT and its file). */
#ifndef TB_SNAPSHOT_H
#define TB_SNAPSHOT_H

#include <stddef.h>

#include "status.h"
#include "store.h"

#define TB_SNAPSHOT_POINTER "CURRENT"

typedef struct tb_snapshot_ref {
    char file[64];    /* "snapshot-000007.db", within the directory */
    char sha256[65];  /* hex digest of the whole file */
} tb_snapshot_ref;

/* The directory a trainer's database at db_path writes its snapshots to by default: the path
 * without ".db", plus ".snapshots" (malloc'd; NULL when out of memory). */
char *tb_snapshot_default_dir(const char *db_path);
/* Whether path is a directory (a snapshot directory to serve from). */
int tb_snapshot_is_dir(const char *path);

/* Writes what `s` serves now (tb_store_served) as the next snapshot file in dir (created if
 * missing), checksums it, makes it read-only, and moves CURRENT to it; every step is fsync'd and
 * renamed into place, so a crash at any point leaves CURRENT naming a whole snapshot. */
tb_status tb_snapshot_publish(tb_store *s, const char *dir, tb_snapshot_ref *ret);
/* Reads dir/CURRENT. TB_NOT_FOUND when there is none, TB_CORRUPT when it is malformed. */
tb_status tb_snapshot_current(const char *dir, tb_snapshot_ref *ret);
/* The SHA-256 of dir/ref->file against ref->sha256; TB_CORRUPT naming both on a mismatch. */
tb_status tb_snapshot_verify(const char *dir, const tb_snapshot_ref *ref);
/* Deletes snapshot files of dir other than CURRENT's and the `keep` - 1 newest before it, and
 * stray temporary files; *ret_removed the count. */
tb_status tb_snapshot_prune(const char *dir, int keep, size_t *ret_removed);

#endif
