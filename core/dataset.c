/* Role detection and typed extraction of a loaded table. */
#include "alloc.h"
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_features.h"
#include "split.h"

static const char *const label_names[] = {"genre", "track_genre", "music_genre", "playlist_genre", NULL};
static const char *const id_names[] = {"track_id", "instance_id", "id", NULL};
static const char *const popularity_names[] = {"popularity", "track_popularity", NULL};
static const char *const artists_names[] = {"artists", "artist_name", "track_artist", NULL};
static const char *const name_names[] = {"track_name", "name", NULL};
static const char *const date_names[] = {"release_date", "track_album_release_date", "album_release_date", NULL};

static tb_status resolve_role(const tb_table *t, const char *given, const char *const *candidates,
                              const char *role, long *ret_col) {
    if (given) {
        long c = tb_table_find(t, given);
        if (c < 0)
            return tb_error_with_field(TB_INVALID, role, "%s: no column named '%s' (given as the %s column)",
                                       t->path, given, role);
        *ret_col = c;
        return TB_OK;
    }
    *ret_col = -1;
    for (size_t i = 0; candidates[i]; i++) {
        long c = tb_table_find(t, candidates[i]);
        if (c >= 0) {
            *ret_col = c;
            break;
        }
    }
    return TB_OK;
}

tb_dataset *tb_dataset_free(tb_dataset *ds) {
    if (!ds)
        return NULL;
    tb_table_free(ds->table);
    if (ds->feature_names)
        for (size_t i = 0; i < ds->n_features; i++)
            free(ds->feature_names[i]);
    free(ds->feature_names);
    free(ds->X);
    if (ds->class_names)
        for (size_t i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->y);
    free(ds->popularity);
    free(ds);
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

long tb_dataset_class_index(const tb_dataset *ds, const char *name) {
    char *const *hit = bsearch(&name, ds->class_names, ds->n_classes, sizeof(char *), cmp_str);
    return hit ? (long)(hit - ds->class_names) : -1;
}

const char *tb_dataset_text(const tb_dataset *ds, long col, size_t row) {
    return col < 0 ? "" : tb_table_cell(ds->table, row, (size_t)col);
}

const char *tb_dataset_id(const tb_dataset *ds, size_t row, char buf[32]) {
    if (ds->col_id >= 0)
        return tb_table_cell(ds->table, row, (size_t)ds->col_id);
    snprintf(buf, 32, "row-%zu", row + 1);
    return buf;
}

tb_status tb_dataset_groups(const tb_dataset *ds, size_t **ret_group, size_t *ret_n_groups) {
    size_t n = ds->n_rows;
    const char **ids = tb_malloc_n(n, sizeof *ids);
    char (*buf)[32] = tb_malloc_n(n, 32);
    size_t *group = tb_malloc_n(n, sizeof *group);
    tb_status st = (!ids || !buf || !group) ? tb_error(TB_NOMEM, "out of memory") : TB_OK;
    if (st == TB_OK) {
        for (size_t i = 0; i < n; i++)
            ids[i] = tb_dataset_id(ds, i, buf[i]);
        st = tb_groups_from_keys(ids, n, group, ret_n_groups);
    }
    free(ids);
    free(buf);
    if (st != TB_OK) {
        free(group);
        return st;
    }
    *ret_group = group;
    return TB_OK;
}

/* Feature columns: the given list, or every audio column present, in file order. */
static tb_status choose_features(tb_dataset *ds, const tb_dataset_options *opt, long *cols, long col_date) {
    const tb_table *t = ds->table;
    size_t n = 0;
    if (opt->features) {
        const char *p = opt->features;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char name[128];
            if (len == 0 || len >= sizeof name)
                return tb_error_with_field(TB_INVALID, "features", "--features: empty or over-long name in '%s'",
                                           opt->features);
            memcpy(name, p, len);
            name[len] = '\0';
            long c = strcmp(name, "year") == 0 && col_date >= 0 ? -2 : tb_table_find(t, name);
            if (c == -1)
                return tb_error_with_field(TB_INVALID, "features", "%s: --features names '%s', which is not a column",
                                           t->path, name);
            if (c >= 0 && (c == ds->col_label || c == ds->col_id))
                return tb_error_with_field(TB_INVALID, "features", "--features: '%s' is the label or id column",
                                           name);
            for (size_t i = 0; i < n; i++)
                if (strcmp(ds->feature_names[i], name) == 0)
                    return tb_error_with_field(TB_INVALID, "features", "--features: '%s' is listed twice", name);
            if (!(ds->feature_names[n] = strdup(name)))
                return tb_error(TB_NOMEM, "out of memory");
            cols[n++] = c;
            ds->n_features = n;
            p = comma ? comma + 1 : p + len;
        }
    } else {
        for (size_t c = 0; c < t->n_cols; c++) {
            if (!tb_is_audio_feature(t->col_names[c]))
                continue;
            if (!(ds->feature_names[n] = strdup(t->col_names[c])))
                return tb_error(TB_NOMEM, "out of memory");
            cols[n++] = (long)c;
            ds->n_features = n;
        }
        if (col_date >= 0 && opt->derive_year) {
            if (!(ds->feature_names[n] = strdup("year")))
                return tb_error(TB_NOMEM, "out of memory");
            cols[n++] = -2;
            ds->n_features = n;
        }
    }
    if (n == 0)
        return tb_error_with_field(TB_INVALID, "features",
                                   "%s: no feature columns (none of the audio columns such as danceability, "
                                   "energy, tempo; name them with --features)",
                                   t->path);
    return TB_OK;
}

static tb_status extract_labels(tb_dataset *ds) {
    const tb_table *t = ds->table;
    size_t n = t->n_rows;
    const char **labels = malloc((n ? n : 1) * sizeof *labels);
    if (!labels)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t r = 0; r < n; r++) {
        labels[r] = tb_table_cell(t, r, (size_t)ds->col_label);
        if (labels[r][0] == '\0') {
            free(labels);
            return tb_error_with_field(TB_PARSE, t->col_names[ds->col_label], "%s:%u: column %s: empty label",
                                       t->path, t->lines[r], t->col_names[ds->col_label]);
        }
    }
    qsort(labels, n, sizeof *labels, cmp_str);
    size_t k = 0;
    for (size_t r = 0; r < n; r++)
        if (k == 0 || strcmp(labels[r], labels[k - 1]) != 0)
            labels[k++] = labels[r];
    ds->class_names = calloc(k ? k : 1, sizeof *ds->class_names);
    ds->y = malloc((n ? n : 1) * sizeof *ds->y);
    if (!ds->class_names || !ds->y) {
        free(labels);
        return tb_error(TB_NOMEM, "out of memory");
    }
    ds->n_classes = k;
    for (size_t i = 0; i < k; i++) {
        if (!(ds->class_names[i] = strdup(labels[i]))) {
            free(labels);
            return tb_error(TB_NOMEM, "out of memory");
        }
    }
    free(labels);
    for (size_t r = 0; r < n; r++)
        ds->y[r] = (int32_t)tb_dataset_class_index(ds, tb_table_cell(t, r, (size_t)ds->col_label));
    return TB_OK;
}

tb_status tb_dataset_load(const char *path, const tb_dataset_options *opt, tb_dataset **ret_dataset) {
    tb_dataset *ds = calloc(1, sizeof *ds);
    long *cols = NULL;
    if (!ds)
        return tb_error(TB_NOMEM, "out of memory");
    tb_status st = tb_table_load(path, &ds->table);
    if (st != TB_OK)
        goto fail;
    const tb_table *t = ds->table;
    long col_date = -1;
    if ((st = resolve_role(t, opt->label, label_names, "label", &ds->col_label)) != TB_OK ||
        (st = resolve_role(t, opt->id, id_names, "id", &ds->col_id)) != TB_OK ||
        (st = resolve_role(t, opt->popularity, popularity_names, "popularity", &ds->col_popularity)) != TB_OK ||
        (st = resolve_role(t, opt->artists, artists_names, "artists", &ds->col_artists)) != TB_OK ||
        (st = resolve_role(t, opt->name, name_names, "name", &ds->col_name)) != TB_OK ||
        (st = resolve_role(t, NULL, date_names, "date", &col_date)) != TB_OK)
        goto fail;
    if (opt->require_label && ds->col_label < 0) {
        st = tb_error_with_field(TB_INVALID, "label",
                                 "%s: no label column (looked for genre, track_genre, music_genre, playlist_genre; "
                                 "name it with --label)",
                                 path);
        goto fail;
    }
    ds->n_rows = t->n_rows;
    ds->feature_names = calloc(t->n_cols + 1, sizeof *ds->feature_names);
    cols = malloc((t->n_cols + 1) * sizeof *cols);
    if (!ds->feature_names || !cols) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = choose_features(ds, opt, cols, col_date)) != TB_OK)
        goto fail;
    size_t d = ds->n_features, n = ds->n_rows;
    ds->X = tb_malloc_n(n * d, sizeof *ds->X);
    if (!ds->X) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t r = 0; r < n; r++) {
        for (size_t j = 0; j < d; j++) {
            double *out = &ds->X[r * d + j];
            if (cols[j] == -2) {
                *out = tb_year_from_date(tb_table_cell(t, r, (size_t)col_date));
            } else if ((st = tb_feature_parse(ds->feature_names[j], tb_table_cell(t, r, (size_t)cols[j]), out)) !=
                       TB_OK) {
                tb_error_prefix(st, "%s:%u", path, t->lines[r]);
                goto fail;
            }
        }
    }
    if (ds->col_popularity >= 0) {
        ds->popularity = malloc((n ? n : 1) * sizeof *ds->popularity);
        if (!ds->popularity) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto fail;
        }
        const char *pname = t->col_names[ds->col_popularity];
        for (size_t r = 0; r < n; r++) {
            if ((st = tb_feature_parse(pname, tb_table_cell(t, r, (size_t)ds->col_popularity), &ds->popularity[r])) !=
                TB_OK) {
                tb_error_prefix(st, "%s:%u", path, t->lines[r]);
                goto fail;
            }
        }
    }
    if (ds->col_label >= 0 && (st = extract_labels(ds)) != TB_OK)
        goto fail;
    free(cols);
    *ret_dataset = ds;
    return TB_OK;
fail:
    free(cols);
    tb_dataset_free(ds);
    return st;
}

const char *tb_dataset_popularity_name(const tb_dataset *ds) {
    return ds->col_popularity >= 0 ? ds->table->col_names[ds->col_popularity] : NULL;
}

static tb_status build_matrix(const tb_dataset *ds, char *const *names, size_t n_names, int lenient, double **ret_X,
                              size_t *ret_absent) {
    size_t n = ds->n_rows, d = ds->n_features, absent = 0;
    long *src = malloc((n_names ? n_names : 1) * sizeof *src);
    if (!src)
        return tb_error(TB_NOMEM, "out of memory");
    const char *pop = tb_dataset_popularity_name(ds);
    for (size_t j = 0; j < n_names; j++) {
        src[j] = -1;
        for (size_t k = 0; k < d; k++)
            if (strcmp(ds->feature_names[k], names[j]) == 0)
                src[j] = (long)k;
        if (src[j] < 0 && pop && strcmp(pop, names[j]) == 0)
            src[j] = -2;
        if (src[j] == -1 && lenient) {
            src[j] = -3;
            absent++;
        }
        if (src[j] == -1) {
            free(src);
            return tb_error_with_field(TB_INVALID, names[j], "%s: no feature column '%s'", ds->table->path,
                                       names[j]);
        }
    }
    double *X = tb_malloc_n(n * n_names, sizeof *X);
    if (!X) {
        free(src);
        return tb_error(TB_NOMEM, "out of memory");
    }
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < n_names; j++)
            X[r * n_names + j] = src[j] == -3   ? NAN
                                 : src[j] == -2 ? ds->popularity[r]
                                                : ds->X[r * d + (size_t)src[j]];
    free(src);
    *ret_X = X;
    if (ret_absent)
        *ret_absent = absent;
    return TB_OK;
}

tb_status tb_dataset_matrix(const tb_dataset *ds, char *const *names, size_t n_names, double **ret_X) {
    return build_matrix(ds, names, n_names, 0, ret_X, NULL);
}

tb_status tb_dataset_matrix_lenient(const tb_dataset *ds, char *const *names, size_t n_names, double **ret_X,
                                    size_t *ret_absent) {
    return build_matrix(ds, names, n_names, 1, ret_X, ret_absent);
}
