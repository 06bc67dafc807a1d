/* SQLite store: migrations, version checks, publishing, tracks. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "migrate.h"
#include "store.h"

static void cleanup(const char *path) {
    char p[256];
    remove(path);
    snprintf(p, sizeof p, "%s-wal", path);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", path);
    remove(p);
}

static tb_model_record record(const char *task, const char *name, const char *blob) {
    tb_model_record m = {0};
    m.task = (char *)task;
    m.kind = "rf";
    m.name = (char *)name;
    m.params = "{\"trees\":10}";
    m.metrics = "{\"accuracy\":0.5}";
    m.feature_schema = "[\"tempo\"]";
    m.class_names = strcmp(task, "genre") == 0 ? "[\"jazz\",\"rock\"]" : NULL;
    m.blob = (void *)blob;
    m.blob_len = strlen(blob);
    return m;
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tb_test_store_%d.db", (int)getpid());
    cleanup(path);
    tb_store *s = NULL;
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_NOT_FOUND, "no such database");
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    int64_t id;
    int version;
    tb_model_record m1 = record("genre", "genre-rf", "blob-one");
    CHECK(tb_store_publish_model(s, &m1, &id, &version) == TB_OK && version == 1);
    tb_model_record m2 = record("genre", "genre-rf", "blob-two");
    CHECK(tb_store_publish_model(s, &m2, &id, &version) == TB_OK && version == 2);
    tb_model_record m3 = record("popularity", "popularity-rf", "blob-three");
    CHECK(tb_store_publish_model(s, &m3, &id, &version) == TB_OK && version == 1);
    /* A failing insert (invalid JSON violates a CHECK) rolls back: the old model stays published. */
    tb_model_record bad = record("genre", "genre-rf", "blob-bad");
    bad.metrics = "{not json";
    CHECK(tb_store_publish_model(s, &bad, &id, &version) == TB_DB);
    tb_store_close(s);

    s = NULL;
    CHECK(tb_store_open(path, TB_STORE_READ_ONLY, &s) == TB_OK);
    tb_model_record got;
    CHECK(tb_store_get_published(s, "genre", &got) == TB_OK);
    CHECK(got.version == 2 && got.blob_len == 8 && memcmp(got.blob, "blob-two", 8) == 0);
    CHECK_STR(got.class_names, "[\"jazz\",\"rock\"]");
    tb_model_record_clear(&got);
    tb_model_record *list;
    size_t n;
    CHECK(tb_store_list_models(s, 0, &list, &n) == TB_OK && n == 3);
    for (size_t i = 0; i < n; i++)
        tb_model_record_clear(&list[i]);
    free(list);
    CHECK(tb_store_list_models(s, 1, &list, &n) == TB_OK && n == 2);
    for (size_t i = 0; i < n; i++)
        tb_model_record_clear(&list[i]);
    free(list);
    CHECK_ERR(tb_store_get_published(s, "nothing", &got), TB_NOT_FOUND, "no published nothing model");
    tb_store_close(s);

    /* Tracks. */
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    tb_track tracks[2] = {
        {"id1", "Song", "Artist", "[\"jazz\",\"blues\"]", 41.0, "{\"tempo\":120}"},
        {"id2", "Other", "B", "[]", NAN, "{}"},
    };
    CHECK(tb_store_put_tracks(s, tracks, 2) == TB_OK);
    tb_track t;
    CHECK(tb_store_get_track(s, "id1", &t) == TB_OK);
    CHECK_STR(t.genres, "[\"jazz\",\"blues\"]");
    CHECK(t.popularity == 41.0);
    tb_track_clear(&t);
    CHECK(tb_store_get_track(s, "id2", &t) == TB_OK && isnan(t.popularity));
    tb_track_clear(&t);
    CHECK_ERR(tb_store_get_track(s, "nope", &t), TB_NOT_FOUND, "no track with id 'nope'");
    CHECK_STR(tb_error_field(), "track_id");
    int64_t count;
    CHECK(tb_store_count_tracks(s, &count) == TB_OK && count == 2);
    tb_store_close(s);

    /* A database from a newer binary is refused, read-write or read-only, and left untouched. */
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_WRITE, &s), TB_VERSION, "newer than this binary");
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_VERSION, "version 99");
    cleanup(path);

    /* A file that is not a database. */
    FILE *f = fopen(path, "w");
    fputs("this is not an SQLite database, just text long enough to have a header........", f);
    fclose(f);
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_CORRUPT, "not a valid SQLite database");
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_WRITE, &s), TB_CORRUPT, "not a valid SQLite database");
    cleanup(path);

    /* An empty SQLite database is not a Timbre one for the server. */
    sqlite3_open(path, &db);
    sqlite3_exec(db, "CREATE TABLE x(y)", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_VERSION, "not a Timbre database");
    cleanup(path);
    CHECK(tb_schema_version() == 1);
    return tb_test_done();
}
