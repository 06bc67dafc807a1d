/* The SQLite model database: published model versions, pins, the snapshots written from it and
 * the track catalog. One tb_store per process side; every function is thread-safe (an internal
 * mutex serializes statement use), except that a tb_store_begin … commit group belongs to the
 * thread that began it. */
#ifndef TB_STORE_H
#define TB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct tb_store tb_store;

typedef enum tb_store_mode {
    TB_STORE_READ_ONLY,   /* existing, fully migrated database (the server) */
    TB_STORE_READ_WRITE,  /* created if missing, migrated to this binary's schema (the trainer) */
    TB_STORE_SNAPSHOT,    /* a snapshot file: read-only and immutable, nothing written beside it */
} tb_store_mode;

/* Opens `path`. Read-only: TB_NOT_FOUND if missing, TB_CORRUPT if not a database, TB_VERSION if its
 * schema differs from this binary's (newer: upgrade; older: run timbre-train to migrate). */
tb_status tb_store_open(const char *path, tb_store_mode mode, tb_store **ret_store);
tb_store *tb_store_close(tb_store *s);

/* One row of `models`. Strings are owned by the record (tb_model_record_free) when it comes from
 * the store; when passed in to publish, the caller keeps ownership. */
typedef struct tb_model_record {
    int64_t id;
    char *task, *kind, *name, *created_at;
    int version;
    char *params, *metrics, *feature_schema, *class_names; /* JSON text; class_names may be NULL */
    void *blob;
    size_t blob_len;
    int published;
} tb_model_record;

void tb_model_record_clear(tb_model_record *m);

/* Inserts a new version of m->name (version = last + 1) and makes it the published model of
 * m->task, all in one transaction: a reader sees the old model or the new one, never a mix.
 * id, version, created_at and published of `m` are ignored on input. */
tb_status tb_store_publish_model(tb_store *s, const tb_model_record *m, int64_t *ret_id, int *ret_version);
/* A recommendation index published with its model row: n_rows L2-normalized vectors of dim floats
 * (row-major) and the track id of each row. The caller keeps ownership. */
typedef struct tb_index_payload {
    size_t n_rows, dim;
    const float *vectors;
    char *const *track_ids;
} tb_index_payload;

/* tb_store_publish_model for task "recommend": the model row, vectors and row ids in one
 * transaction. */
tb_status tb_store_publish_index(tb_store *s, const tb_model_record *m, const tb_index_payload *ix, int64_t *ret_id,
                                 int *ret_version);
/* What loading index `model_id` reads, before reading it: its model row's blob bytes (the
 * embedder and any graph) and its vectors' rows and values. TB_NOT_FOUND when it has none. */
typedef struct tb_index_sizes {
    size_t blob_bytes, n_rows, dim;
} tb_index_sizes;
tb_status tb_store_index_sizes(tb_store *s, int64_t model_id, tb_index_sizes *ret);
/* The vectors and row ids of index `model_id` (caller frees the vectors, each id and the array).
 * TB_CORRUPT when sizes disagree, rows are not 0..n-1, or a value is not finite. */
tb_status tb_store_get_index(tb_store *s, int64_t model_id, float **ret_vectors, size_t *ret_n, size_t *ret_dim,
                             char ***ret_track_ids);

/* The published model of `task`, blob included. TB_NOT_FOUND when there is none. */
tb_status tb_store_get_published(tb_store *s, const char *task, tb_model_record *ret);
/* The tasks a model row can serve, in fingerprint order. */
#define TB_N_TASKS 4
extern const char *const tb_store_tasks[TB_N_TASKS]; /* genre, multilabel, popularity, recommend */
/* The fingerprint of a published set, ids[i] the model of tb_store_tasks[i] (negative: none):
 * "task:id;" for each present task, in that order ("genre:3;popularity:4;"). The one formatter
 * for the database's side and the server's, so the two compare equal exactly when they serve the
 * same models. TB_INVALID when it does not fit in size bytes. */
tb_status tb_store_format_fingerprint(const int64_t ids[TB_N_TASKS], char *buf, size_t size);
/* What the database serves (tb_store_served) as tb_store_format_fingerprint writes it: changes
 * exactly when a model is published, pinned or unpinned. For watching the database. */
tb_status tb_store_served_fingerprint(tb_store *s, char *buf, size_t size);
/* Every model row without blobs (blob_len holds the blob's size), newest first; published_only filters. Caller frees each
 * record (tb_model_record_clear) and the array. */
tb_status tb_store_list_models(tb_store *s, int published_only, tb_model_record **ret, size_t *ret_n);

/* Groups the writes that follow (publishes, the catalog) into one transaction, so a reader — or a
 * trainer killed half-way — sees all of them or none. Each write inside becomes a savepoint. */
tb_status tb_store_begin(tb_store *s);
tb_status tb_store_commit(tb_store *s);
/* Undoes an open tb_store_begin (none: nothing). */
void tb_store_rollback(tb_store *s);

/* What each task serves: its pinned model, else its published one (-1: none); pinned[t] says
 * which. Indexed like tb_store_tasks. */
tb_status tb_store_served(tb_store *s, int64_t ret_ids[TB_N_TASKS], int ret_pinned[TB_N_TASKS]);
/* Makes `task` serve model `model_id` (of that task) until unpinned: a rollback. */
tb_status tb_store_pin(tb_store *s, const char *task, int64_t model_id);
/* TB_NOT_FOUND when the task is not pinned. */
tb_status tb_store_unpin(tb_store *s, const char *task);
/* One model row with its blob (TB_NOT_FOUND when absent); caller clears it. */
tb_status tb_store_get_model(tb_store *s, int64_t id, tb_model_record *ret);
/* The model `task` serves (pinned, else published), blob included; TB_NOT_FOUND when none. What a
 * server loads, from a database or a snapshot alike. */
tb_status tb_store_get_served(tb_store *s, const char *task, tb_model_record *ret);
/* Deletes a model version and its index; TB_INVALID for one published, pinned or absent. */
tb_status tb_store_remove_model(tb_store *s, int64_t id);
/* Per task, deletes every version past the `keep` newest that is neither published nor pinned;
 * *ret_removed the count. The file shrinks on tb_store_vacuum. */
tb_status tb_store_prune(tb_store *s, int keep, size_t *ret_removed);
/* Rewrites the file without its free pages (and truncates the WAL). */
tb_status tb_store_vacuum(tb_store *s);

/* Writes a new database at `path` (which must not exist) holding only the models ids[] (marked
 * published), their indexes, their pins and the whole catalog: a snapshot's contents. */
tb_status tb_store_write_served(tb_store *s, const int64_t ids[TB_N_TASKS], const char *path);
/* The next snapshot number, and the record of one written. */
tb_status tb_store_next_snapshot_seq(tb_store *s, int64_t *ret_seq);
tb_status tb_store_record_snapshot(tb_store *s, const char *file, const char *sha256, const char *fingerprint,
                                   long long bytes, int64_t *ret_seq);
/* The path it was opened with. */
const char *tb_store_path(const tb_store *s);

typedef struct tb_track {
    char *track_id, *track_name, *artists;
    char *genres;    /* JSON array text */
    double popularity; /* NaN when unknown */
    char *features;  /* JSON object text of raw feature values */
} tb_track;

void tb_track_clear(tb_track *t);
/* Inserts or replaces tracks, all in one transaction. */
tb_status tb_store_put_tracks(tb_store *s, const tb_track *tracks, size_t n);
/* TB_NOT_FOUND when the id is unknown. Strings in *ret are owned by the caller (tb_track_clear). */
tb_status tb_store_get_track(tb_store *s, const char *track_id, tb_track *ret);
tb_status tb_store_count_tracks(tb_store *s, int64_t *ret_n);

/* A listener's saved taste (migration 0003): JSON texts of the ratings and of the fit. Saving
 * replaces a taste of the same name. */
tb_status tb_store_save_taste(tb_store *s, const char *name, int64_t index_model_id, const char *ratings_json,
                              const char *fit_json);
/* TB_NOT_FOUND when no taste has that name. Caller frees the three strings. */
tb_status tb_store_get_taste(tb_store *s, const char *name, char **ret_ratings_json, char **ret_fit_json,
                             char **ret_updated_at);
/* Calls visit for every track in ascending id order; genres is the list joined by 0x1f ("" when
 * none), popularity NaN when unknown, audio its tb_audio_features values as stored (NaN when
 * absent). The strings live until visit returns. A visit error stops the scan and is returned. */
typedef tb_status (*tb_track_visit)(void *ctx, const char *id, const char *name, const char *artists,
                                    const char *genres, double popularity, const double *audio);
tb_status tb_store_scan_tracks(tb_store *s, tb_track_visit visit, void *ctx);

#endif
