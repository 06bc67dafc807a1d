/* SQLite store: migrations, version checks, publishing, tracks, recommendation indexes, the
 * in-memory catalog. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog.h"
#include "check.h"
#include "migrate.h"
#include "store.h"

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

static void test_index_and_catalog(const char *path) {
    tb_store *s = NULL;
    tb_test_remove_db(path);
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    tb_track tracks[10] = {
        {"a1", "Blue Song", "Ann;Bob", "[\"jazz\",\"blues\"]", 50.0, "{}"},
        {"a2", "blue song", "ann;bob", "[\"jazz\"]", 70.0, "{}"},
        {"b1", "Red", "Bob", "[\"rock\"]", NAN, "{}"},
        {"c1", "Green Blues", "Cy", "[]", 70.0, "{}"},
        {"d1", "Yellow", "Dee;Ann", "[\"pop\",\"jazz\"]", 10.0, "{\"energy\":0.25,\"tempo\":121.5,\"key\":7}"},
        {"e1", "Bohemian Rhapsody", "Queen", "[\"rock\"]", 75.0, "{}"},
        {"e2", "Bohemian Rhapsody - Remastered 2011", "Queen", "[\"rock\"]", 82.0, "{}"},
        {"e3", "bohemian rhapsody (Live Aid)", "QUEEN", "[\"rock\"]", 40.0, "{}"},
        {"e4", "Bohemian Rhapsody - Remastered 2011", "Panic! At The Disco", "[\"rock\"]", 50.0, "{}"},
        {"f1", "Blue Songbird", "Ann;Bob", "[\"jazz\"]", 20.0, "{}"},
    };
    CHECK(tb_store_put_tracks(s, tracks, 10) == TB_OK);
    float vectors[3 * 2] = {1.0f, 0.0f, 0.6f, 0.8f, 0.0f, -1.0f};
    char *ids[3] = {"a1", "b1", "d1"};
    tb_index_payload ix = {3, 2, vectors, ids};
    tb_model_record m = record("recommend", "recommend-standardized", "embedder");
    int64_t id;
    int version;
    CHECK(tb_store_publish_index(s, &m, &ix, &id, &version) == TB_OK && version == 1);
    float *got_v = NULL;
    char **got_ids = NULL;
    size_t n = 0, dim = 0;
    CHECK(tb_store_get_index(s, id, &got_v, &n, &dim, &got_ids) == TB_OK);
    CHECK(n == 3 && dim == 2 && memcmp(got_v, vectors, sizeof vectors) == 0);
    CHECK_STR(got_ids[0], "a1");
    CHECK_STR(got_ids[2], "d1");
    for (size_t i = 0; i < n; i++)
        free(got_ids[i]);
    free(got_ids);
    free(got_v);
    CHECK_ERR(tb_store_get_index(s, id + 100, &got_v, &n, &dim, &got_ids), TB_CORRUPT, "has no vectors");
    /* A row without a track id is refused by the schema, and the whole publish rolls back. */
    char *bad_ids[3] = {"a1", NULL, "d1"};
    tb_index_payload wrong = {3, 2, vectors, bad_ids};
    CHECK(tb_store_publish_index(s, &m, &wrong, &id, &version) == TB_DB);
    tb_model_record got;
    CHECK(tb_store_get_published(s, "recommend", &got) == TB_OK && got.version == 1);
    tb_model_record_clear(&got);

    tb_catalog *c = NULL;
    CHECK(tb_catalog_load(s, &c) == TB_OK);
    CHECK(c->n == 10 && c->n_genres == 4);
    CHECK_STR(c->genres[0], "blues");
    CHECK_STR(c->genres[3], "rock");
    CHECK(tb_catalog_find(c, "c1") == 3 && tb_catalog_find(c, "zz") == -1);
    CHECK(tb_catalog_genre(c, "pop") == 2 && tb_catalog_genre(c, "polka") == -1);
    CHECK(tb_catalog_has_genre(c, 0, 0) && tb_catalog_has_genre(c, 0, 1) && !tb_catalog_has_genre(c, 0, 3));
    CHECK(tb_catalog_share_artist(c, 0, 2) && tb_catalog_share_artist(c, 0, 4) && !tb_catalog_share_artist(c, 2, 4));
    CHECK(!tb_catalog_share_artist(c, 0, 1)); /* artist names are exact */
    CHECK(tb_catalog_same_song(c, 0, 1) && !tb_catalog_same_song(c, 0, 3));
    /* Regression (issue 18): "Bohemian Rhapsody - Remastered 2011" answered a query of
     * "Bohemian Rhapsody": a remaster, a live take, a feature credit are the same song. */
    CHECK(tb_catalog_same_song(c, 5, 6) && tb_catalog_same_song(c, 5, 7) && tb_catalog_same_song(c, 6, 7));
    CHECK(!tb_catalog_same_song(c, 5, 8)); /* another artist */
    CHECK(!tb_catalog_same_song(c, 0, 9)); /* "Blue Songbird" is not "Blue Song" */
    CHECK(isnan(c->tracks[2].popularity) && c->tracks[1].popularity == 70.0);
    /* Audio values come out of the stored JSON in tb_audio_features' order; absent ones are NaN. */
    size_t energy = 1, key = 2, tempo = 10;
    CHECK_STR(tb_audio_features[energy], "energy");
    CHECK_STR(tb_audio_features[key], "key");
    CHECK_STR(tb_audio_features[tempo], "tempo");
    CHECK(c->tracks[4].audio[energy] == 0.25f && c->tracks[4].audio[tempo] == 121.5f && c->tracks[4].audio[key] == 7.0f);
    CHECK(isnan(c->tracks[4].audio[0]) && isnan(c->tracks[0].audio[energy]));
    /* "blue" matches a1, a2, c1 and f1 (case-insensitive): popularity 70 (a2, c1 by id), 50, 20. */
    size_t found[10], total = 0;
    CHECK(tb_catalog_search(c, "BLUE", 5, found, &total) == 4 && total == 4);
    CHECK(found[0] == 1 && found[1] == 3 && found[2] == 0 && found[3] == 9);
    CHECK(tb_catalog_search(c, "blue", 1, found, &total) == 1 && total == 4 && found[0] == 1);
    CHECK(tb_catalog_search(c, "ann", 5, found, &total) == 4); /* artists too */
    CHECK(tb_catalog_search(c, "", 10, found, &total) == 10 && found[9] == 2); /* unknown popularity last */
    CHECK(tb_catalog_search(c, "nothing like it", 5, found, &total) == 0 && total == 0);
    tb_catalog_free(c);
    tb_store_close(s);
    tb_test_remove_db(path);
}

/* A schema-1 database (as the first release wrote it) migrates to 2 with its models kept. */
static void test_migration_from_1(const char *path) {
    tb_test_remove_db(path);
    sqlite3 *db;
    sqlite3_open(path, &db);
    CHECK(sqlite3_exec(db, tb_migrations[0].sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "PRAGMA user_version = 1; INSERT INTO models (task, kind, name, version, feature_schema, blob, "
                       "published) VALUES ('genre', 'rf', 'genre-rf', 3, '[]', x'00', 1)",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    tb_store *s = NULL;
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_VERSION, "older than this binary");
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    tb_model_record got;
    CHECK(tb_store_get_published(s, "genre", &got) == TB_OK && got.version == 3);
    tb_model_record_clear(&got);
    tb_store_close(s);
    tb_test_remove_db(path);
}

/* What each task serves (pins over published), removal rules, prune's count, and the copy a
 * snapshot holds: only the served rows, marked published, with the pins. */
static void test_pins_prune_and_served_copy(const char *path) {
    tb_store *s = NULL;
    tb_test_remove_db(path);
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    int64_t ids[5];
    int version;
    for (int i = 0; i < 4; i++) {
        tb_model_record m = record("genre", "genre-rf", "blob");
        CHECK(tb_store_publish_model(s, &m, &ids[i], &version) == TB_OK && version == i + 1);
    }
    tb_model_record p = record("popularity", "popularity-rf", "blob-p");
    CHECK(tb_store_publish_model(s, &p, &ids[4], &version) == TB_OK);
    int64_t served[TB_N_TASKS];
    int pinned[TB_N_TASKS];
    CHECK(tb_store_served(s, served, pinned) == TB_OK && served[0] == ids[3] && !pinned[0] && served[2] == ids[4] &&
          served[1] == -1 && served[3] == -1);
    CHECK(tb_store_pin(s, "genre", ids[1]) == TB_OK);
    CHECK(tb_store_served(s, served, pinned) == TB_OK && served[0] == ids[1] && pinned[0]);
    CHECK_ERR(tb_store_pin(s, "popularity", ids[1]), TB_INVALID, "not popularity");
    CHECK_ERR(tb_store_pin(s, "nonsense", ids[1]), TB_INVALID, "no task");
    CHECK(tb_store_pin(s, "genre", 999) == TB_NOT_FOUND);
    CHECK_ERR(tb_store_remove_model(s, ids[1]), TB_INVALID, "published, pinned or absent"); /* pinned */
    CHECK_ERR(tb_store_remove_model(s, ids[3]), TB_INVALID, "published, pinned or absent"); /* published */
    char fp[128];
    CHECK(tb_store_format_fingerprint(served, fp, sizeof fp) == TB_OK);
    char copy[600];
    snprintf(copy, sizeof copy, "%s.copy", path);
    tb_test_remove_db(copy);
    CHECK(tb_store_write_served(s, served, copy) == TB_OK);
    size_t removed = 99;
    CHECK(tb_store_prune(s, 1, &removed) == TB_OK && removed == 2); /* v1 and v3 of genre; v2 pinned, v4 published */
    tb_model_record *list;
    size_t n;
    CHECK(tb_store_list_models(s, 0, &list, &n) == TB_OK && n == 3);
    for (size_t i = 0; i < n; i++)
        tb_model_record_clear(&list[i]);
    free(list);
    CHECK(tb_store_unpin(s, "genre") == TB_OK);
    CHECK(tb_store_unpin(s, "genre") == TB_NOT_FOUND);
    CHECK(tb_store_remove_model(s, ids[1]) == TB_OK);
    CHECK(tb_store_vacuum(s) == TB_OK);
    tb_store_close(s);
    /* The copy: two rows, both published, genre v2 among them, and its pin. */
    tb_store *c = NULL;
    CHECK(tb_store_open(copy, TB_STORE_SNAPSHOT, &c) == TB_OK);
    char fp_copy[128];
    CHECK(tb_store_served_fingerprint(c, fp_copy, sizeof fp_copy) == TB_OK);
    CHECK_STR(fp_copy, fp);
    CHECK(tb_store_served(c, served, pinned) == TB_OK && served[0] == ids[1] && pinned[0]);
    CHECK(tb_store_list_models(c, 0, &list, &n) == TB_OK && n == 2);
    for (size_t i = 0; i < n; i++)
        tb_model_record_clear(&list[i]);
    free(list);
    tb_store_close(c);
    tb_test_remove_db(copy);
    tb_test_remove_db(path);
}

/* Regression: two trainers creating one new database raced, the version read outside the write
 * lock: one ran migration 0001 again and failed ("table models already exists"). Forked
 * processes, as two timbre-train runs would be; each round a fresh file. */
static void test_concurrent_creation_race(const char *path) {
    for (int round = 0; round < 20; round++) {
        tb_test_remove_db(path);
        pid_t kids[4];
        for (int k = 0; k < 4; k++)
            if ((kids[k] = fork()) == 0) {
                tb_store *s = NULL;
                tb_status st = tb_store_open(path, TB_STORE_READ_WRITE, &s);
                if (st != TB_OK)
                    fprintf(stderr, "concurrent open: %s\n", tb_error_message());
                tb_store_close(s);
                _exit(st == TB_OK ? 0 : 1);
            }
        int all_ok = 1;
        for (int k = 0; k < 4; k++) {
            int status = 0;
            waitpid(kids[k], &status, 0);
            all_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        CHECK(all_ok);
    }
    tb_store *s = NULL;
    CHECK(tb_store_open(path, TB_STORE_READ_ONLY, &s) == TB_OK);
    tb_store_close(s);
    tb_test_remove_db(path);
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tb_test_store_%d.db", (int)getpid());
    test_concurrent_creation_race(path);
    tb_test_remove_db(path);
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
    tb_test_remove_db(path);

    /* A file that is not a database. */
    FILE *f = fopen(path, "w");
    fputs("this is not an SQLite database, just text long enough to have a header........", f);
    fclose(f);
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_CORRUPT, "not a valid SQLite database");
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_WRITE, &s), TB_CORRUPT, "not a valid SQLite database");
    tb_test_remove_db(path);

    /* An empty SQLite database is not a Timbre one for the server. */
    sqlite3_open(path, &db);
    sqlite3_exec(db, "CREATE TABLE x(y)", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_ERR(tb_store_open(path, TB_STORE_READ_ONLY, &s), TB_VERSION, "not a Timbre database");
    tb_test_remove_db(path);
    CHECK(tb_schema_version() == 4);
    test_index_and_catalog(path);
    test_pins_prune_and_served_copy(path);
    test_migration_from_1(path);
    return tb_test_done();
}
