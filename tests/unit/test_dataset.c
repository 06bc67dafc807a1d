/* Column roles and value conventions of both real tables, on small hand-made copies. */
#include "audio_features.h"
#include "check.h"
#include "dataset.h"

static long feature_index(const tb_dataset *ds, const char *name) {
    for (size_t j = 0; j < ds->n_features; j++)
        if (strcmp(ds->feature_names[j], name) == 0)
            return (long)j;
    return -1;
}

int main(void) {
    tb_dataset_options opt = {.require_label = 1, .derive_year = 1};
    tb_dataset *ds = NULL;
    CHECK(tb_dataset_load(tb_fixture("music_genre_small.csv"), &opt, &ds) == TB_OK);
    if (ds) {
        CHECK(ds->n_rows == 4 && ds->table->n_blank_rows == 2);
        CHECK(ds->n_features == 12);
        CHECK(ds->n_classes == 2);
        CHECK_STR(ds->class_names[0], "Electronic");
        CHECK_STR(ds->class_names[1], "Jazz");
        CHECK(ds->y[0] == 0 && ds->y[2] == 1);
        CHECK_STR(tb_dataset_text(ds, ds->col_id, 0), "32894.0");
        CHECK_STR(tb_dataset_text(ds, ds->col_artists, 2), "Blockhead");
        CHECK_STR(tb_dataset_text(ds, ds->col_name, 2), "Cheer up, You're Not Dead Yet");
        CHECK_STR(tb_dataset_popularity_name(ds), "popularity");
        CHECK_NEAR(ds->popularity[2], 44.0, 0);
        size_t d = ds->n_features;
        CHECK(isnan(ds->X[0 * d + feature_index(ds, "duration_ms")]));       /* -1 = missing */
        CHECK_NEAR(ds->X[0 * d + feature_index(ds, "key")], 10.0, 0);        /* A# */
        CHECK_NEAR(ds->X[0 * d + feature_index(ds, "mode")], 0.0, 0);        /* Minor */
        CHECK_NEAR(ds->X[2 * d + feature_index(ds, "mode")], 1.0, 0);        /* Major */
        CHECK(isnan(ds->X[2 * d + feature_index(ds, "tempo")]));             /* ? = missing */
        CHECK_NEAR(ds->X[1 * d + feature_index(ds, "tempo")], 115.00200000000001, 0);
        CHECK(feature_index(ds, "popularity") < 0);                          /* not a feature column */
        char *names[2] = {"tempo", "popularity"};
        double *X = NULL;
        CHECK(tb_dataset_matrix(ds, names, 2, &X) == TB_OK);
        if (X) {
            CHECK_NEAR(X[1 * 2 + 0], 115.00200000000001, 0);
            CHECK_NEAR(X[3 * 2 + 1], 50.0, 0);
        }
        free(X);
        char *unknown[1] = {"nope"};
        CHECK_ERR(tb_dataset_matrix(ds, unknown, 1, &X), TB_INVALID, "no feature column 'nope'");
        char *some[2] = {"nope", "tempo"};
        size_t absent = 0;
        X = NULL;
        CHECK(tb_dataset_matrix_lenient(ds, some, 2, &X, &absent) == TB_OK && absent == 1);
        if (X)
            CHECK(isnan(X[0]) && X[1 * 2 + 1] == 115.00200000000001);
        free(X);
    }
    tb_dataset_free(ds);

    ds = NULL;
    CHECK(tb_dataset_load(tb_fixture("tracks_small.csv"), &opt, &ds) == TB_OK);
    if (ds) {
        CHECK(ds->n_rows == 4 && ds->n_features == 14); /* the unnamed index column is not a feature */
        CHECK(ds->n_classes == 3);
        CHECK_STR(tb_table_cell(ds->table, 0, 0), "0");
        size_t d = ds->n_features;
        CHECK_NEAR(ds->X[2 * d + feature_index(ds, "explicit")], 1.0, 0); /* True */
        CHECK_NEAR(ds->X[0 * d + feature_index(ds, "explicit")], 0.0, 0); /* False */
        CHECK_NEAR(ds->X[0 * d + feature_index(ds, "instrumentalness")], 1.01e-06, 0);
        CHECK_STR(tb_dataset_text(ds, ds->col_id, 3), "5SuOikwiRyPMVoIQDJUgSV");
        CHECK(tb_dataset_class_index(ds, "j-pop") == 1);
    }
    tb_dataset_free(ds);

    /* The playlist table's names, and a year derived from the release date. */
    ds = NULL;
    CHECK(tb_dataset_load(tb_fixture("playlist_small.csv"), &opt, &ds) == TB_OK);
    if (ds) {
        CHECK_STR(tb_dataset_popularity_name(ds), "track_popularity");
        CHECK_STR(tb_dataset_text(ds, ds->col_artists, 1), "Maroon 5");
        CHECK_STR(ds->class_names[1], "rock");
        long y = feature_index(ds, "year");
        CHECK(y == (long)ds->n_features - 1);
        CHECK_NEAR(ds->X[2 * ds->n_features + (size_t)y], 2019.0, 0);
    }
    tb_dataset_free(ds);
    tb_dataset_options no_year = {.require_label = 1};
    ds = NULL;
    CHECK(tb_dataset_load(tb_fixture("playlist_small.csv"), &no_year, &ds) == TB_OK);
    CHECK(ds && feature_index(ds, "year") < 0);
    tb_dataset_free(ds);

    /* Overrides and errors. */
    tb_dataset_options o2 = {.require_label = 1, .features = "energy,danceability"};
    ds = NULL;
    CHECK(tb_dataset_load(tb_fixture("tracks_small.csv"), &o2, &ds) == TB_OK);
    if (ds) {
        CHECK(ds->n_features == 2);
        CHECK_STR(ds->feature_names[0], "energy");
    }
    tb_dataset_free(ds);
    ds = NULL;
    o2.features = "energy,missing_col";
    CHECK_ERR(tb_dataset_load(tb_fixture("tracks_small.csv"), &o2, &ds), TB_INVALID, "'missing_col'");
    o2.features = "track_genre";
    CHECK_ERR(tb_dataset_load(tb_fixture("tracks_small.csv"), &o2, &ds), TB_INVALID, "label or id");
    o2.features = NULL;
    o2.label = "nope";
    CHECK_ERR(tb_dataset_load(tb_fixture("tracks_small.csv"), &o2, &ds), TB_INVALID, "no column named 'nope'");
    CHECK_ERR(tb_dataset_load(tb_fixture("bad_number.csv"), &opt, &ds), TB_PARSE,
              "bad_number.csv:3: column energy: 'abc' is not a number");
    CHECK_STR(tb_error_field(), "energy");
    CHECK(ds == NULL);
    CHECK_ERR(tb_dataset_load(tb_fixture("rfc4180.csv"), &opt, &ds), TB_INVALID, "no label column");

    /* Cell conventions. */
    double v;
    CHECK(tb_feature_parse("key", "C", &v) == TB_OK && v == 0.0);
    CHECK(tb_feature_parse("key", "B", &v) == TB_OK && v == 11.0);
    CHECK(tb_feature_parse("key", "Db", &v) == TB_OK && v == 1.0);
    CHECK(tb_feature_parse("key", "-1", &v) == TB_OK && isnan(v));
    CHECK(tb_feature_parse("loudness", "-1", &v) == TB_OK && v == -1.0); /* a real loudness */
    CHECK(tb_feature_parse("tempo", "", &v) == TB_OK && isnan(v));
    CHECK_ERR(tb_feature_parse("tempo", "inf", &v), TB_PARSE, "'inf' is not a number");
    CHECK_ERR(tb_feature_parse("tempo", "12abc", &v), TB_PARSE, "not a number");
    CHECK_ERR(tb_feature_parse("energy", "H", &v), TB_PARSE, "not a number");
    CHECK_NEAR(tb_year_from_date("1999-05-01"), 1999.0, 0);
    CHECK_NEAR(tb_year_from_date("2010"), 2010.0, 0);
    CHECK(isnan(tb_year_from_date("May 2010")));
    return tb_test_done();
}
