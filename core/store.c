/* SQLite access for models and tracks. Statements are prepared per call: none of these is on a
 * path where a prepare (a few microseconds) matters next to the work around it. */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audio_features.h"
#include "migrate.h"

struct tb_store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock;
};

static tb_status db_error(tb_store *s, const char *what) {
    int code = sqlite3_errcode(s->db);
    tb_status st = (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) ? TB_CORRUPT : TB_DB;
    return tb_error(st, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

tb_store *tb_store_close(tb_store *s) {
    if (!s)
        return NULL;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
    return NULL;
}

/* "file:PATH?immutable=1" with PATH's reserved bytes %-escaped (sqlite3_free). */
static char *uri_immutable(const char *path) {
    size_t n = strlen(path);
    char *out = sqlite3_malloc64(n * 3 + 32);
    if (!out)
        return NULL;
    size_t len = 0;
    memcpy(out, "file:", 5);
    len = 5;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p == '?' || *p == '#' || *p == '%' || *p < 0x21 || *p >= 0x7f)
            len += (size_t)sprintf(out + len, "%%%02X", *p);
        else
            out[len++] = (char)*p;
    }
    memcpy(out + len, "?immutable=1", sizeof "?immutable=1");
    return out;
}

tb_status tb_store_open(const char *path, tb_store_mode mode, tb_store **ret_store) {
    struct stat sb;
    if (mode != TB_STORE_READ_WRITE && stat(path, &sb) != 0)
        return errno == ENOENT
                   ? tb_error(TB_NOT_FOUND, "%s: no such database (train one with timbre-train --db %s)", path, path)
                   : tb_error(TB_IO, "%s: %s", path, strerror(errno));
    tb_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return tb_error(TB_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    int flags = mode == TB_STORE_READ_WRITE ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    flags |= SQLITE_OPEN_NOMUTEX; /* our own mutex serializes use */
    tb_status st = TB_OK;
    char *uri = NULL;
    if (mode == TB_STORE_SNAPSHOT) {
        /* immutable=1: no locks, no -shm or -wal, so a 0444 file in a read-only directory opens. */
        flags |= SQLITE_OPEN_URI;
        if (!(uri = uri_immutable(path))) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto fail;
        }
    }
    int opened = sqlite3_open_v2(uri ? uri : path, &s->db, flags, NULL);
    sqlite3_free(uri);
    if (opened != SQLITE_OK) {
        st = tb_error(TB_IO, "%s: cannot open database: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_extended_result_codes(s->db, 0);
    int version;
    if ((st = tb_migrate_current(s->db, &version)) != TB_OK) {
        tb_error_prefix(st, "%s", path);
        goto fail;
    }
    if (mode == TB_STORE_READ_WRITE) {
        /* Switching to WAL needs the database to itself and SQLite's busy handler does not wait
         * for it: another process opening the same new file at once gets SQLITE_BUSY. Retry for
         * as long as the busy timeout. */
        int rc = SQLITE_BUSY;
        for (int tries = 0; tries < 500 && (rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL)) ==
                                              SQLITE_BUSY;
             tries++) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        if (rc != SQLITE_OK) {
            st = db_error(s, "enabling WAL");
            goto fail;
        }
        if ((st = tb_migrate(s->db)) != TB_OK) {
            tb_error_prefix(st, "%s", path);
            goto fail;
        }
    } else if (version != tb_schema_version()) {
        st = version > tb_schema_version()
                 ? tb_error(TB_VERSION, "%s: database schema version %d is newer than this binary's %d: upgrade Timbre",
                            path, version, tb_schema_version())
             : version == 0
                 ? tb_error(TB_VERSION, "%s: not a Timbre database (schema version 0; create it with timbre-train)", path)
                 : tb_error(TB_VERSION, "%s: database schema version %d is older than this binary's %d: run timbre-train "
                            "on it to migrate", path, version, tb_schema_version());
        goto fail;
    }
    sqlite3_exec(s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    *ret_store = s;
    return TB_OK;
fail:
    tb_store_close(s);
    return st;
}

static char *col_strdup(sqlite3_stmt *stmt, int col) {
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? strdup((const char *)t) : NULL;
}

void tb_model_record_clear(tb_model_record *m) {
    free(m->task);
    free(m->kind);
    free(m->name);
    free(m->created_at);
    free(m->params);
    free(m->metrics);
    free(m->feature_schema);
    free(m->class_names);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

/* The index's vectors and row ids, inside the publishing transaction. */
static int insert_index(tb_store *s, int64_t id, const tb_index_payload *ix) {
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO index_vectors (model_id, n_rows, dim, vectors) VALUES (?1, ?2, ?3, ?4)",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)ix->n_rows);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)ix->dim);
    /* float32 in host order: every platform Timbre builds on is little-endian, as the column says. */
    sqlite3_bind_blob64(stmt, 4, ix->vectors, (sqlite3_uint64)(ix->n_rows * ix->dim * sizeof(float)), SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE ||
        sqlite3_prepare_v2(s->db, "INSERT INTO index_rows (model_id, row, track_id) VALUES (?1, ?2, ?3)", -1, &stmt,
                           NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < ix->n_rows; i++) {
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_int64(stmt, 2, (sqlite3_int64)i);
        sqlite3_bind_text(stmt, 3, ix->track_ids[i], -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            sqlite3_finalize(stmt);
            return -1;
        }
    }
    sqlite3_finalize(stmt);
    return 0;
}

static tb_status publish(tb_store *s, const tb_model_record *m, const tb_index_payload *ix, int64_t *ret_id,
                         int *ret_version);

/* A write step: its own BEGIN IMMEDIATE, or a savepoint inside the caller's tb_store_begin. */
static int step_begin(tb_store *s, int *nested) {
    *nested = !sqlite3_get_autocommit(s->db);
    return sqlite3_exec(s->db, *nested ? "SAVEPOINT tb_step" : "BEGIN IMMEDIATE", NULL, NULL, NULL);
}

static int step_commit(tb_store *s, int nested) {
    return sqlite3_exec(s->db, nested ? "RELEASE tb_step" : "COMMIT", NULL, NULL, NULL);
}

static void step_rollback(tb_store *s, int nested) {
    sqlite3_exec(s->db, nested ? "ROLLBACK TO tb_step; RELEASE tb_step" : "ROLLBACK", NULL, NULL, NULL);
}

tb_status tb_store_begin(tb_store *s) {
    pthread_mutex_lock(&s->lock);
    tb_status st = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                       ? TB_OK
                       : db_error(s, "starting a transaction");
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_commit(tb_store *s) {
    pthread_mutex_lock(&s->lock);
    tb_status st = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? TB_OK : db_error(s, "committing");
    if (st != TB_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
    return st;
}

void tb_store_rollback(tb_store *s) {
    pthread_mutex_lock(&s->lock);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
}

tb_status tb_store_publish_model(tb_store *s, const tb_model_record *m, int64_t *ret_id, int *ret_version) {
    return publish(s, m, NULL, ret_id, ret_version);
}

tb_status tb_store_publish_index(tb_store *s, const tb_model_record *m, const tb_index_payload *ix, int64_t *ret_id,
                                 int *ret_version) {
    return publish(s, m, ix, ret_id, ret_version);
}

static tb_status publish(tb_store *s, const tb_model_record *m, const tb_index_payload *ix, int64_t *ret_id,
                         int *ret_version) {
    tb_status st = TB_OK;
    sqlite3_stmt *stmt = NULL;
    int nested;
    pthread_mutex_lock(&s->lock);
    if (step_begin(s, &nested) != SQLITE_OK) {
        st = db_error(s, "starting the publish transaction");
        goto out;
    }
    int version = 1;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?1", -1, &stmt,
                           NULL) != SQLITE_OK)
        goto db_fail;
    sqlite3_bind_text(stmt, 1, m->name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW)
        goto db_fail;
    version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE models SET published = 0 WHERE task = ?1 AND published = 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        goto db_fail;
    sqlite3_bind_text(stmt, 1, m->task, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto db_fail;
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO models (task, kind, name, version, params, metrics, feature_schema, "
                           "class_names, blob, published) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto db_fail;
    sqlite3_bind_text(stmt, 1, m->task, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, m->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, version);
    sqlite3_bind_text(stmt, 5, m->params ? m->params : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, m->metrics ? m->metrics : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, m->feature_schema, -1, SQLITE_STATIC);
    if (m->class_names)
        sqlite3_bind_text(stmt, 8, m->class_names, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 8);
    sqlite3_bind_blob64(stmt, 9, m->blob, m->blob_len, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto db_fail;
    sqlite3_finalize(stmt);
    stmt = NULL;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (ix && insert_index(s, id, ix) != 0)
        goto db_fail;
    if (step_commit(s, nested) != SQLITE_OK)
        goto db_fail;
    *ret_id = id;
    *ret_version = version;
    goto out;
db_fail:
    st = db_error(s, "publishing a model");
    sqlite3_finalize(stmt);
    step_rollback(s, nested);
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

#define MODEL_COLUMNS "id, task, kind, name, version, created_at, params, metrics, feature_schema, class_names, published"

static tb_status read_model_row(sqlite3_stmt *stmt, tb_model_record *m) {
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(stmt, 0);
    m->task = col_strdup(stmt, 1);
    m->kind = col_strdup(stmt, 2);
    m->name = col_strdup(stmt, 3);
    m->version = sqlite3_column_int(stmt, 4);
    m->created_at = col_strdup(stmt, 5);
    m->params = col_strdup(stmt, 6);
    m->metrics = col_strdup(stmt, 7);
    m->feature_schema = col_strdup(stmt, 8);
    m->class_names = col_strdup(stmt, 9);
    m->published = sqlite3_column_int(stmt, 10);
    if (!m->task || !m->kind || !m->name || !m->created_at || !m->params || !m->metrics || !m->feature_schema) {
        tb_model_record_clear(m);
        return tb_error(TB_NOMEM, "out of memory reading a model row");
    }
    return TB_OK;
}

/* A row of MODEL_COLUMNS followed by the blob (column 11). */
static tb_status read_model_with_blob(sqlite3_stmt *stmt, tb_model_record *ret) {
    tb_status st = read_model_row(stmt, ret);
    if (st != TB_OK)
        return st;
    int n = sqlite3_column_bytes(stmt, 11);
    ret->blob = malloc(n > 0 ? (size_t)n : 1);
    if (!ret->blob) {
        tb_model_record_clear(ret);
        return tb_error(TB_NOMEM, "out of memory reading a model blob");
    }
    if (n > 0)
        memcpy(ret->blob, sqlite3_column_blob(stmt, 11), (size_t)n);
    ret->blob_len = (size_t)n;
    return TB_OK;
}

tb_status tb_store_get_published(tb_store *s, const char *task, tb_model_record *ret) {
    sqlite3_stmt *stmt = NULL;
    tb_status st;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT " MODEL_COLUMNS ", blob FROM models WHERE task = ?1 AND published = 1",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "reading the published model");
        goto out;
    }
    sqlite3_bind_text(stmt, 1, task, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        st = tb_error(TB_NOT_FOUND, "%s: no published %s model", s->path, task);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        st = db_error(s, "reading the published model");
        goto out;
    }
    st = read_model_with_blob(stmt, ret);
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_list_models(tb_store *s, int published_only, tb_model_record **ret, size_t *ret_n) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    tb_model_record *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&s->lock);
    const char *sql = published_only
                          ? "SELECT " MODEL_COLUMNS ", length(blob) FROM models WHERE published = 1 ORDER BY id DESC"
                          : "SELECT " MODEL_COLUMNS ", length(blob) FROM models ORDER BY id DESC";
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "listing models");
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            tb_model_record *p = realloc(rows, cap * sizeof *p);
            if (!p) {
                st = tb_error(TB_NOMEM, "out of memory");
                goto out;
            }
            rows = p;
        }
        if ((st = read_model_row(stmt, &rows[n])) != TB_OK)
            goto out;
        rows[n++].blob_len = (size_t)sqlite3_column_int64(stmt, 11); /* the size; the blob stays out */
    }
    if (rc != SQLITE_DONE)
        st = db_error(s, "listing models");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    if (st != TB_OK) {
        for (size_t i = 0; i < n; i++)
            tb_model_record_clear(&rows[i]);
        free(rows);
        return st;
    }
    *ret = rows;
    *ret_n = n;
    return TB_OK;
}

void tb_track_clear(tb_track *t) {
    free(t->track_id);
    free(t->track_name);
    free(t->artists);
    free(t->genres);
    free(t->features);
    memset(t, 0, sizeof *t);
}

tb_status tb_store_put_tracks(tb_store *s, const tb_track *tracks, size_t n) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    int nested;
    pthread_mutex_lock(&s->lock);
    if (step_begin(s, &nested) != SQLITE_OK) {
        st = db_error(s, "starting the catalog transaction");
        goto out;
    }
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO tracks (track_id, track_name, artists, genres, popularity, features) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto db_fail;
    for (size_t i = 0; i < n; i++) {
        const tb_track *t = &tracks[i];
        sqlite3_reset(stmt);
        sqlite3_bind_text(stmt, 1, t->track_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, t->track_name ? t->track_name : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, t->artists ? t->artists : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, t->genres ? t->genres : "[]", -1, SQLITE_STATIC);
        if (isnan(t->popularity))
            sqlite3_bind_null(stmt, 5);
        else
            sqlite3_bind_double(stmt, 5, t->popularity);
        sqlite3_bind_text(stmt, 6, t->features ? t->features : "{}", -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            goto db_fail;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (step_commit(s, nested) != SQLITE_OK)
        goto db_fail;
    goto out;
db_fail:
    st = db_error(s, "storing tracks");
    sqlite3_finalize(stmt);
    step_rollback(s, nested);
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_get_track(tb_store *s, const char *track_id, tb_track *ret) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT track_id, track_name, artists, genres, popularity, features FROM tracks "
                           "WHERE track_id = ?1",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "reading a track");
        goto out;
    }
    sqlite3_bind_text(stmt, 1, track_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        st = tb_error_with_field(TB_NOT_FOUND, "track_id", "no track with id '%.100s'", track_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        st = db_error(s, "reading a track");
        goto out;
    }
    memset(ret, 0, sizeof *ret);
    ret->track_id = col_strdup(stmt, 0);
    ret->track_name = col_strdup(stmt, 1);
    ret->artists = col_strdup(stmt, 2);
    ret->genres = col_strdup(stmt, 3);
    ret->popularity = sqlite3_column_type(stmt, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 4);
    ret->features = col_strdup(stmt, 5);
    if (!ret->track_id || !ret->track_name || !ret->artists || !ret->genres || !ret->features) {
        tb_track_clear(ret);
        st = tb_error(TB_NOMEM, "out of memory reading a track");
    }
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_count_tracks(tb_store *s, int64_t *ret_n) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM tracks", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW)
        st = db_error(s, "counting tracks");
    else
        *ret_n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_save_taste(tb_store *s, const char *name, int64_t index_model_id, const char *ratings_json,
                              const char *fit_json) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO tastes (name, index_model_id, ratings, fit) VALUES (?1, ?2, ?3, ?4)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "saving a taste");
    } else {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, index_model_id);
        sqlite3_bind_text(stmt, 3, ratings_json, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, fit_json, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            st = db_error(s, "saving a taste");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_get_taste(tb_store *s, const char *name, char **ret_ratings_json, char **ret_fit_json,
                             char **ret_updated_at) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    *ret_ratings_json = *ret_fit_json = *ret_updated_at = NULL;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT ratings, fit, updated_at FROM tastes WHERE name = ?1", -1, &stmt, NULL) !=
        SQLITE_OK) {
        st = db_error(s, "reading a taste");
        goto out;
    }
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        st = tb_error(TB_NOT_FOUND, "no saved taste is called '%.64s'", name);
    } else if (rc != SQLITE_ROW) {
        st = db_error(s, "reading a taste");
    } else {
        *ret_ratings_json = strdup((const char *)sqlite3_column_text(stmt, 0));
        *ret_fit_json = strdup((const char *)sqlite3_column_text(stmt, 1));
        *ret_updated_at = strdup((const char *)sqlite3_column_text(stmt, 2));
        if (!*ret_ratings_json || !*ret_fit_json || !*ret_updated_at) {
            free(*ret_ratings_json);
            free(*ret_fit_json);
            free(*ret_updated_at);
            *ret_ratings_json = *ret_fit_json = *ret_updated_at = NULL;
            st = tb_error(TB_NOMEM, "out of memory");
        }
    }
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_index_sizes(tb_store *s, int64_t model_id, tb_index_sizes *ret) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT length(m.blob), v.n_rows, v.dim FROM models m JOIN index_vectors v ON "
                           "v.model_id = m.id WHERE m.id = ?1",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "reading index sizes");
    } else {
        sqlite3_bind_int64(stmt, 1, model_id);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            sqlite3_int64 b = sqlite3_column_int64(stmt, 0), n = sqlite3_column_int64(stmt, 1),
                          d = sqlite3_column_int64(stmt, 2);
            *ret = (tb_index_sizes){b > 0 ? (size_t)b : 0, n > 0 ? (size_t)n : 0, d > 0 ? (size_t)d : 0};
        } else {
            st = rc == SQLITE_DONE ? tb_error(TB_NOT_FOUND, "%s: index %lld has no vectors", s->path, (long long)model_id)
                                   : db_error(s, "reading index sizes");
        }
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_get_index(tb_store *s, int64_t model_id, float **ret_vectors, size_t *ret_n, size_t *ret_dim,
                             char ***ret_track_ids) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    float *vectors = NULL;
    char **ids = NULL;
    size_t n = 0, dim = 0, n_ids = 0;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT n_rows, dim, vectors FROM index_vectors WHERE model_id = ?1", -1, &stmt,
                           NULL) != SQLITE_OK) {
        st = db_error(s, "reading index vectors");
        goto out;
    }
    sqlite3_bind_int64(stmt, 1, model_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        st = rc == SQLITE_DONE ? tb_error(TB_CORRUPT, "%s: index %lld has no vectors", s->path, (long long)model_id)
                               : db_error(s, "reading index vectors");
        goto out;
    }
    sqlite3_int64 n64 = sqlite3_column_int64(stmt, 0), d64 = sqlite3_column_int64(stmt, 1);
    size_t bytes = (size_t)sqlite3_column_bytes(stmt, 2);
    if (n64 < 1 || d64 < 1 || d64 > 4096 || n64 > 100000000 || bytes != (size_t)n64 * (size_t)d64 * sizeof(float)) {
        st = tb_error(TB_CORRUPT, "%s: index %lld: %lld rows of %lld values disagree with %zu bytes of vectors", s->path,
                      (long long)model_id, (long long)n64, (long long)d64, bytes);
        goto out;
    }
    n = (size_t)n64;
    dim = (size_t)d64;
    if (!(vectors = malloc(bytes)) || !(ids = calloc(n, sizeof *ids))) {
        st = tb_error(TB_NOMEM, "out of memory reading an index of %zu rows", n);
        goto out;
    }
    memcpy(vectors, sqlite3_column_blob(stmt, 2), bytes);
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(vectors[i])) {
            st = tb_error(TB_CORRUPT, "%s: index %lld holds a non-finite value", s->path, (long long)model_id);
            goto out;
        }
    sqlite3_finalize(stmt);
    if (sqlite3_prepare_v2(s->db, "SELECT row, track_id FROM index_rows WHERE model_id = ?1 ORDER BY row", -1, &stmt,
                           NULL) != SQLITE_OK) {
        stmt = NULL;
        st = db_error(s, "reading index rows");
        goto out;
    }
    sqlite3_bind_int64(stmt, 1, model_id);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n_ids >= n || sqlite3_column_int64(stmt, 0) != (sqlite3_int64)n_ids) {
            st = tb_error(TB_CORRUPT, "%s: index %lld: its rows are not numbered 0..%zu", s->path, (long long)model_id,
                          n - 1);
            goto out;
        }
        if (!(ids[n_ids++] = col_strdup(stmt, 1))) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        st = db_error(s, "reading index rows");
        goto out;
    }
    if (n_ids != n)
        st = tb_error(TB_CORRUPT, "%s: index %lld: %zu track ids for %zu vectors", s->path, (long long)model_id, n_ids,
                      n);
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    if (st != TB_OK) {
        for (size_t i = 0; i < n_ids; i++)
            free(ids[i]);
        free(ids);
        free(vectors);
        return st;
    }
    *ret_vectors = vectors;
    *ret_n = n;
    *ret_dim = dim;
    *ret_track_ids = ids;
    return TB_OK;
}

tb_status tb_store_scan_tracks(tb_store *s, tb_track_visit visit, void *ctx) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    /* Genres come joined by the unit separator (0x1f), which no genre name holds; each audio value
     * is taken out of the stored JSON by SQLite. */
    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT track_id, track_name, artists, popularity, "
                                                   "(SELECT group_concat(value, char(31)) FROM json_each(tracks.genres))");
    for (size_t a = 0; a < tb_n_audio_features && len < sizeof sql; a++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", json_extract(features, '$.%s')", tb_audio_features[a]);
    if (len < sizeof sql)
        snprintf(sql + len, sizeof sql - len, " FROM tracks ORDER BY track_id");
    if (len >= sizeof sql || sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "reading the catalog");
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *genres = (const char *)sqlite3_column_text(stmt, 4);
        double pop = sqlite3_column_type(stmt, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 3);
        const char *id = (const char *)sqlite3_column_text(stmt, 0), *name = (const char *)sqlite3_column_text(stmt, 1),
                   *artists = (const char *)sqlite3_column_text(stmt, 2);
        if (!id || !name || !artists) {
            st = tb_error(TB_NOMEM, "out of memory reading the catalog");
            goto out;
        }
        double audio[TB_MAX_AUDIO_FEATURES];
        for (size_t a = 0; a < tb_n_audio_features; a++) {
            int type = sqlite3_column_type(stmt, 5 + (int)a);
            audio[a] = type == SQLITE_INTEGER || type == SQLITE_FLOAT ? sqlite3_column_double(stmt, 5 + (int)a) : NAN;
        }
        if ((st = visit(ctx, id, name, artists, genres ? genres : "", pop, audio)) != TB_OK)
            goto out;
    }
    if (rc != SQLITE_DONE)
        st = db_error(s, "reading the catalog");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

const char *const tb_store_tasks[TB_N_TASKS] = {"genre", "multilabel", "popularity", "recommend"};

tb_status tb_store_format_fingerprint(const int64_t ids[TB_N_TASKS], char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int t = 0; t < TB_N_TASKS; t++) {
        if (ids[t] < 0)
            continue;
        int n = snprintf(buf + len, size - len, "%s:%lld;", tb_store_tasks[t], (long long)ids[t]);
        if (n < 0 || (size_t)n >= size - len)
            return tb_error(TB_INVALID, "published-model fingerprint longer than %zu bytes", size);
        len += (size_t)n;
    }
    return TB_OK;
}

tb_status tb_store_served_fingerprint(tb_store *s, char *buf, size_t size) {
    int64_t ids[TB_N_TASKS];
    int pinned[TB_N_TASKS];
    buf[0] = '\0';
    tb_status st = tb_store_served(s, ids, pinned);
    return st == TB_OK ? tb_store_format_fingerprint(ids, buf, size) : st;
}

/* --- versions: what each task serves, pins, removal ------------------------------------------ */

static int task_index(const char *task) {
    for (int t = 0; t < TB_N_TASKS; t++)
        if (task && strcmp(tb_store_tasks[t], task) == 0)
            return t;
    return -1;
}

tb_status tb_store_served(tb_store *s, int64_t ret_ids[TB_N_TASKS], int ret_pinned[TB_N_TASKS]) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    for (int t = 0; t < TB_N_TASKS; t++)
        ret_ids[t] = -1, ret_pinned[t] = 0;
    pthread_mutex_lock(&s->lock);
    /* Published rows first, then pins, which override them. */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT task, id, 0 FROM models WHERE published = 1 "
                           "UNION ALL SELECT task, model_id, 1 FROM pins ORDER BY 3",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "reading what is served");
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int t = task_index((const char *)sqlite3_column_text(stmt, 0));
        if (t < 0)
            continue;
        ret_ids[t] = sqlite3_column_int64(stmt, 1);
        ret_pinned[t] = sqlite3_column_int(stmt, 2);
    }
    if (rc != SQLITE_DONE)
        st = db_error(s, "reading what is served");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Runs one statement whose parameters are `text` (?1, when not NULL) then the integer `a` (the next
 * one, when the statement has it); *ret_changes gets the changed row count. */
static tb_status exec_bound(tb_store *s, const char *sql, const char *text, int64_t a, int *ret_changes,
                            const char *what) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return db_error(s, what);
    int at = 1;
    if (text)
        sqlite3_bind_text(stmt, at++, text, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(stmt) >= at)
        sqlite3_bind_int64(stmt, at, (sqlite3_int64)a);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        st = db_error(s, what);
    else if (ret_changes)
        *ret_changes = sqlite3_changes(s->db);
    sqlite3_finalize(stmt);
    return st;
}

tb_status tb_store_pin(tb_store *s, const char *task, int64_t model_id) {
    if (task_index(task) < 0)
        return tb_error(TB_INVALID, "no task '%s' (genre, multilabel, popularity or recommend)", task);
    tb_model_record m;
    tb_status st = tb_store_get_model(s, model_id, &m);
    if (st != TB_OK)
        return st;
    int same = strcmp(m.task, task) == 0;
    char found_task[32];
    snprintf(found_task, sizeof found_task, "%s", m.task);
    tb_model_record_clear(&m);
    if (!same)
        return tb_error(TB_INVALID, "model %lld is a %s model, not %s", (long long)model_id, found_task, task);
    pthread_mutex_lock(&s->lock);
    st = exec_bound(s, "INSERT OR REPLACE INTO pins (task, model_id) VALUES (?1, ?2)", task, model_id, NULL,
                    "pinning");
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_unpin(tb_store *s, const char *task) {
    int changes = 0;
    pthread_mutex_lock(&s->lock);
    tb_status st = exec_bound(s, "DELETE FROM pins WHERE task = ?1", task, 0, &changes, "unpinning");
    pthread_mutex_unlock(&s->lock);
    if (st == TB_OK && changes == 0)
        return tb_error(TB_NOT_FOUND, "%s is not pinned", task);
    return st;
}

/* Deletes a model row and its index rows; refuses one that is published or pinned. Under the lock,
 * inside a step: the index rows go first (they reference the model), and for a model that may not
 * go the last delete changes nothing, the error makes the caller roll the whole step back. */
static tb_status remove_model(tb_store *s, int64_t id) {
    static const char *const sql[] = {"DELETE FROM index_rows WHERE model_id = ?1",
                                      "DELETE FROM index_vectors WHERE model_id = ?1",
                                      "DELETE FROM tastes WHERE index_model_id = ?1",
                                      "DELETE FROM models WHERE id = ?1 AND published = 0 AND "
                                      "id NOT IN (SELECT model_id FROM pins)"};
    int changes = 0;
    tb_status st = TB_OK;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && st == TB_OK; i++)
        st = exec_bound(s, sql[i], NULL, id, &changes, "removing a model");
    if (st == TB_OK && changes == 0)
        st = tb_error(TB_INVALID, "model %lld is published, pinned or absent: not removed", (long long)id);
    return st;
}

tb_status tb_store_remove_model(tb_store *s, int64_t id) {
    int nested;
    pthread_mutex_lock(&s->lock);
    tb_status st = step_begin(s, &nested) == SQLITE_OK ? remove_model(s, id) : db_error(s, "removing a model");
    if (st == TB_OK && step_commit(s, nested) != SQLITE_OK)
        st = db_error(s, "removing a model");
    if (st != TB_OK)
        step_rollback(s, nested);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_prune(tb_store *s, int keep, size_t *ret_removed) {
    sqlite3_stmt *stmt = NULL;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int nested = 0, began = 0;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    /* Per task, the rows past the `keep` newest that are neither published nor pinned. */
    if (step_begin(s, &nested) != SQLITE_OK || !(began = 1) ||
        sqlite3_prepare_v2(s->db,
                           "SELECT id FROM (SELECT id, published, row_number() OVER (PARTITION BY task ORDER BY id "
                           "DESC) AS rank FROM models) WHERE rank > ?1 AND published = 0 AND "
                           "id NOT IN (SELECT model_id FROM pins)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "pruning");
        goto out;
    }
    sqlite3_bind_int(stmt, 1, keep);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            int64_t *p = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof *p);
            if (!p) {
                st = tb_error(TB_NOMEM, "out of memory");
                goto out;
            }
            ids = p;
        }
        ids[n++] = sqlite3_column_int64(stmt, 0);
    }
    if (rc != SQLITE_DONE)
        st = db_error(s, "pruning");
    sqlite3_finalize(stmt);
    stmt = NULL;
    for (size_t i = 0; i < n && st == TB_OK; i++)
        st = remove_model(s, ids[i]);
    if (st == TB_OK && step_commit(s, nested) != SQLITE_OK)
        st = db_error(s, "pruning");
    if (st == TB_OK) {
        began = 0;
        *ret_removed = n;
    }
out:
    sqlite3_finalize(stmt);
    if (began)
        step_rollback(s, nested);
    pthread_mutex_unlock(&s->lock);
    free(ids);
    return st;
}

tb_status tb_store_vacuum(tb_store *s) {
    pthread_mutex_lock(&s->lock);
    tb_status st = sqlite3_exec(s->db, "VACUUM", NULL, NULL, NULL) == SQLITE_OK &&
                           sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK
                       ? TB_OK
                       : db_error(s, "compacting");
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_get_model(tb_store *s, int64_t id, tb_model_record *ret) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT " MODEL_COLUMNS ", blob FROM models WHERE id = ?1", -1, &stmt, NULL) !=
        SQLITE_OK) {
        st = db_error(s, "reading a model");
        goto out;
    }
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        st = read_model_with_blob(stmt, ret);
    else if (rc == SQLITE_DONE)
        st = tb_error(TB_NOT_FOUND, "no model with id %lld (timbre-train models list shows them)", (long long)id);
    else
        st = db_error(s, "reading a model");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_get_served(tb_store *s, const char *task, tb_model_record *ret) {
    int64_t ids[TB_N_TASKS];
    int pinned[TB_N_TASKS], t = task_index(task);
    tb_status st = tb_store_served(s, ids, pinned);
    if (st != TB_OK)
        return st;
    if (t < 0 || ids[t] < 0)
        return tb_error(TB_NOT_FOUND, "%s: no %s model is published or pinned", s->path, task);
    return tb_store_get_model(s, ids[t], ret);
}

/* --- snapshots -------------------------------------------------------------------------------- */

tb_status tb_store_write_served(tb_store *s, const int64_t ids[TB_N_TASKS], const char *path) {
    sqlite3 *db = NULL;
    tb_status st = TB_OK;
    char *err = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        st = tb_error(TB_IO, "%s: cannot create the snapshot: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if ((st = tb_migrate(db)) != TB_OK) { /* a rollback-journal database: one file, nothing beside it */
        tb_error_prefix(st, "%s", path);
        goto out;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS src", -1, &stmt, NULL) != SQLITE_OK) {
        st = tb_error(TB_DB, "%s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(stmt, 1, s->path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        st = tb_error(TB_DB, "%s: attaching %s: %s", path, s->path, sqlite3_errmsg(db));
        goto out;
    }
    char list[TB_N_TASKS * 24 + 8];
    size_t len = 0;
    len += (size_t)snprintf(list + len, sizeof list - len, "(-1");
    for (int t = 0; t < TB_N_TASKS; t++)
        if (ids[t] >= 0)
            len += (size_t)snprintf(list + len, sizeof list - len, ",%lld", (long long)ids[t]);
    snprintf(list + len, sizeof list - len, ")");
    /* Only integers from our own tables go into this text: nothing a client sent. */
    char *sql = sqlite3_mprintf(
        "BEGIN;"
        "INSERT INTO models (id, task, kind, name, version, created_at, params, metrics, feature_schema, class_names,"
        " blob, published) SELECT id, task, kind, name, version, created_at, params, metrics, feature_schema,"
        " class_names, blob, 1 FROM src.models WHERE id IN %s;"
        "INSERT INTO index_vectors SELECT * FROM src.index_vectors WHERE model_id IN %s;"
        "INSERT INTO index_rows SELECT * FROM src.index_rows WHERE model_id IN %s;"
        "INSERT INTO pins SELECT * FROM src.pins WHERE model_id IN %s;"
        "INSERT INTO tracks SELECT * FROM src.tracks;"
        "COMMIT;",
        list, list, list, list);
    if (!sql || sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        st = tb_error(TB_DB, "%s: copying the served models: %s", path, err ? err : sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_free(sql);
    sqlite3_free(err);
    if (st == TB_OK && sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL) != SQLITE_OK)
        st = tb_error(TB_DB, "%s: %s", path, sqlite3_errmsg(db));
out:
    if (db && sqlite3_close(db) != SQLITE_OK && st == TB_OK)
        st = tb_error(TB_DB, "%s: closing the snapshot", path);
    return st;
}

tb_status tb_store_record_snapshot(tb_store *s, const char *file, const char *sha256, const char *fingerprint,
                                   long long bytes, int64_t *ret_seq) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO snapshots (file, sha256, fingerprint, bytes) VALUES (?1, ?2, ?3, ?4)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        st = db_error(s, "recording a snapshot");
        goto out;
    }
    sqlite3_bind_text(stmt, 1, file, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, bytes);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        st = db_error(s, "recording a snapshot");
    else if (ret_seq)
        *ret_seq = sqlite3_last_insert_rowid(s->db);
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

tb_status tb_store_next_snapshot_seq(tb_store *s, int64_t *ret_seq) {
    sqlite3_stmt *stmt = NULL;
    tb_status st = TB_OK;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(seq), 0) + 1 FROM snapshots", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW)
        st = db_error(s, "numbering a snapshot");
    else
        *ret_seq = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return st;
}

const char *tb_store_path(const tb_store *s) { return s->path; }
