/* timbre-train --db DB --predict FILE --out FILE, without --data: labels a table with the
 * versions the database serves (pinned, else published) — no retraining — reading and writing
 * it in chunks, so a file larger than memory works. The output appears whole (renamed from a
 * temporary file) or not at all. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "audio_features.h"
#include "csv.h"
#include "log.h"
#include "snapshot.h"
#include "train_cli.h"

#define LABEL_CHUNK 4096 /* rows predicted at once */

static const char *const id_names[] = {"track_id", "instance_id", "id", NULL};
static const char *const date_names[] = {"release_date", "track_album_release_date", "album_release_date", NULL};

typedef struct labeler {
    tb_predictor *p;
    long *col;   /* per pipeline input: the CSV column, -2 the year from the date column, -1 absent */
    double *raw; /* LABEL_CHUNK × inputs */
    double *out; /* LABEL_CHUNK × outputs */
} labeler;

static long find_col(char **names, size_t n, const char *want) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0)
            return (long)i;
    return -1;
}

static long find_any(char **names, size_t n, const char *given, const char *const *candidates) {
    if (given)
        return find_col(names, n, given);
    for (size_t i = 0; candidates[i]; i++) {
        long c = find_col(names, n, candidates[i]);
        if (c >= 0)
            return c;
    }
    return -1;
}

/* Opens the database or snapshot directory read-only. */
static tb_status open_source(const char *db, tb_store **ret) {
    if (!tb_snapshot_is_dir(db))
        return tb_store_open(db, TB_STORE_READ_ONLY, ret);
    tb_snapshot_ref ref;
    char path[4096];
    tb_status st = tb_snapshot_current(db, &ref);
    if (st == TB_OK)
        st = tb_snapshot_verify(db, &ref);
    if (st != TB_OK)
        return st;
    snprintf(path, sizeof path, "%s/%s", db, ref.file);
    return tb_store_open(path, TB_STORE_SNAPSHOT, ret);
}

/* The model `task` serves, as a predictor; *loaded 0 (and TB_OK) when it serves none. */
static tb_status load_served(tb_store *store, const char *task, tb_predictor **ret, int *loaded) {
    tb_model_record m;
    tb_status st = tb_store_get_served(store, task, &m);
    *loaded = 0;
    if (st == TB_NOT_FOUND)
        return TB_OK;
    if (st != TB_OK)
        return st;
    st = tb_predictor_load(m.blob, m.blob_len, ret);
    *loaded = st == TB_OK;
    tb_log(TB_LOG_INFO, "labelling with %s version %d (model %lld)", m.name, m.version, (long long)m.id);
    tb_model_record_clear(&m);
    return st;
}

static tb_status prepare(labeler *L, char **header, size_t n_cols, long date_col, const char *path) {
    size_t d = L->p->pipeline->n_features, absent = 0;
    L->col = tb_malloc_n(d ? d : 1, sizeof *L->col);
    L->raw = tb_malloc_n(LABEL_CHUNK * (d ? d : 1), sizeof *L->raw);
    L->out = tb_malloc_n(LABEL_CHUNK * L->p->model->n_outputs, sizeof *L->out);
    if (!L->col || !L->raw || !L->out)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t j = 0; j < d; j++) {
        const char *name = L->p->pipeline->names[j];
        L->col[j] = strcmp(name, "year") == 0 && date_col >= 0 ? -2 : find_col(header, n_cols, name);
        absent += L->col[j] == -1;
    }
    if (absent)
        tb_log(TB_LOG_WARN, "%s: %zu of the model's %zu inputs are not columns of this file; they count as missing",
               path, absent, d);
    return TB_OK;
}

static void labeler_clear(labeler *L) {
    tb_predictor_free(L->p);
    free(L->col);
    free(L->raw);
    free(L->out);
}

/* One record's inputs into row `at` of each labeler. */
static tb_status fill_row(labeler *L, size_t n_l, char **fields, long date_col, size_t at, const char *path,
                          size_t line) {
    for (size_t l = 0; l < n_l; l++) {
        size_t d = L[l].p->pipeline->n_features;
        for (size_t j = 0; j < d; j++) {
            long c = L[l].col[j];
            double v = NAN;
            if (c == -2) {
                v = tb_year_from_date(fields[date_col]);
            } else if (c >= 0) {
                const char *name = L[l].p->pipeline->names[j];
                if (tb_feature_parse(name, fields[c], &v) != TB_OK)
                    return tb_error_with_field(TB_PARSE, name, "%s:%zu: %s", path, line, tb_error_message());
            }
            L[l].raw[at * d + j] = v;
        }
    }
    return TB_OK;
}

static tb_status write_rows(FILE *f, labeler *L, size_t n_l, int genre_at, const cli *c, char **ids, size_t n) {
    for (size_t r = 0; r < n; r++) {
        tb_train_put_csv_field(f, ids[r]);
        const double *gp = NULL;
        for (size_t l = 0; l < n_l; l++) {
            size_t k = L[l].p->model->n_outputs;
            if ((int)l == genre_at) {
                gp = L[l].out + r * k;
                int32_t best;
                tb_argmax_rows(gp, 1, k, &best);
                fputc(',', f);
                tb_train_put_csv_field(f, L[l].p->class_names[best]);
            } else {
                fprintf(f, ",%.17g", L[l].out[r]);
            }
        }
        if (c->proba && gp)
            for (size_t k = 0; k < L[genre_at].p->n_classes; k++)
                fprintf(f, ",%.17g", gp[k]);
        for (size_t l = 0; c->explain && l < n_l; l++) {
            size_t d = L[l].p->pipeline->n_features, k = L[l].p->model->n_outputs;
            tb_status st = tb_train_put_explain_row(f, L[l].p, L[l].raw + r * d, L[l].out + r * k);
            if (st != TB_OK)
                return st;
        }
        fputc('\n', f);
    }
    return TB_OK;
}

tb_status tb_train_label_stream(const cli *c) {
    int want_genre = strcmp(c->task, "all") == 0 || strcmp(c->task, "genre") == 0;
    int want_pop = strcmp(c->task, "all") == 0 || strcmp(c->task, "popularity") == 0;
    tb_store *store = NULL;
    tb_csv_reader *csv = NULL;
    labeler L[2];
    memset(L, 0, sizeof L);
    size_t n_l = 0, n_cols = 0, rows = 0;
    int genre_at = -1;
    char **header = NULL, **ids = NULL, tmp[4096];
    FILE *f = NULL;
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", c->out, (long)getpid());
    int loaded = 0;
    tb_status st = open_source(c->db, &store);
    if (st == TB_OK && want_genre && (st = load_served(store, "genre", &L[n_l].p, &loaded)) == TB_OK && loaded)
        genre_at = (int)n_l++;
    if (st == TB_OK && want_pop && (st = load_served(store, "popularity", &L[n_l].p, &loaded)) == TB_OK && loaded)
        n_l++;
    if (st == TB_OK && n_l == 0)
        st = tb_error(TB_NOT_FOUND, "%s serves no %s model to label with (train one, or give --data)", c->db,
                      want_genre && want_pop ? "genre or popularity" : want_genre ? "genre" : "popularity");
    char **fields;
    size_t n, line;
    if (st == TB_OK && (st = tb_csv_open(c->predict, &csv)) == TB_OK && (st = tb_csv_next(csv, &fields, &n, &line)) == TB_EOF)
        st = tb_error(TB_PARSE, "%s: empty file: expected a header row", c->predict);
    if (st == TB_OK && !(header = tb_malloc_n(n, sizeof *header)))
        st = tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; st == TB_OK && i < n; i++, n_cols++)
        if (!(header[i] = strdup(fields[i])))
            st = tb_error(TB_NOMEM, "out of memory");
    long id_col = -1, date_col = -1;
    if (st == TB_OK) {
        id_col = find_any(header, n_cols, c->ds_opt.id, id_names);
        date_col = c->ds_opt.derive_year ? find_any(header, n_cols, NULL, date_names) : -1;
        if (c->ds_opt.id && id_col < 0)
            st = tb_error_with_field(TB_INVALID, "id", "%s: no column named '%s' (given as the id column)", c->predict,
                                     c->ds_opt.id);
    }
    for (size_t l = 0; st == TB_OK && l < n_l; l++)
        st = prepare(&L[l], header, n_cols, date_col, c->predict);
    for (size_t l = 0; st == TB_OK && c->explain && l < n_l; l++)
        st = tb_train_explainable(L[l].p, (int)l == genre_at ? "genre" : "popularity");
    if (st == TB_OK && !(ids = calloc(LABEL_CHUNK, sizeof *ids)))
        st = tb_error(TB_NOMEM, "out of memory");
    if (st == TB_OK && !(f = fopen(tmp, "w")))
        st = tb_error(TB_IO, "%s: cannot open for writing: %s", tmp, strerror(errno));
    if (st == TB_OK) {
        fputs("track_id", f);
        for (size_t l = 0; l < n_l; l++)
            fputs((int)l == genre_at ? ",genre" : ",popularity", f);
        if (c->proba && genre_at >= 0)
            for (size_t k = 0; k < L[genre_at].p->n_classes; k++) {
                char col[300];
                snprintf(col, sizeof col, "p_%s", L[genre_at].p->class_names[k]);
                fputc(',', f);
                tb_train_put_csv_field(f, col);
            }
        for (size_t l = 0; c->explain && l < n_l; l++)
            tb_train_put_explain_header(f, L[l].p, (int)l == genre_at ? "genre" : "popularity");
        fputc('\n', f);
    }
    size_t in_chunk = 0;
    while (st == TB_OK) {
        st = tb_csv_next(csv, &fields, &n, &line);
        int end = st == TB_EOF;
        if (end)
            st = TB_OK;
        else if (st == TB_OK && n != n_cols)
            st = tb_error(TB_PARSE, "%s:%zu: %zu fields, the header has %zu", c->predict, line, n, n_cols);
        int blank = 1; /* a row of empty fields, as the training tables carry: skipped there too */
        for (size_t i = 0; st == TB_OK && !end && i < n && blank; i++)
            blank = fields[i][0] == '\0';
        if (st == TB_OK && !end && !blank) {
            char idbuf[32];
            if (id_col < 0)
                snprintf(idbuf, sizeof idbuf, "row-%zu", rows + 1);
            free(ids[in_chunk]);
            if (!(ids[in_chunk] = strdup(id_col >= 0 ? fields[id_col] : idbuf)))
                st = tb_error(TB_NOMEM, "out of memory");
            else
                st = fill_row(L, n_l, fields, date_col, in_chunk, c->predict, line);
            in_chunk += st == TB_OK;
            rows += st == TB_OK;
        }
        if (st == TB_OK && in_chunk && (end || in_chunk == LABEL_CHUNK)) {
            for (size_t l = 0; l < n_l && st == TB_OK; l++)
                st = tb_trainer_predict_raw(L[l].p, L[l].raw, in_chunk, c->opt.threads, L[l].out);
            if (st == TB_OK)
                st = write_rows(f, L, n_l, genre_at, c, ids, in_chunk);
            in_chunk = 0;
        }
        if (end)
            break;
    }
    if (f && fclose(f) != 0 && st == TB_OK)
        st = tb_error(TB_IO, "%s: write failed", tmp);
    if (st == TB_OK && rename(tmp, c->out) != 0)
        st = tb_error(TB_IO, "%s: %s", c->out, strerror(errno));
    if (st != TB_OK)
        unlink(tmp);
    else
        tb_log(TB_LOG_INFO, "wrote %zu predictions to %s", rows, c->out);
    for (size_t i = 0; ids && i < LABEL_CHUNK; i++)
        free(ids[i]);
    free(ids);
    for (size_t i = 0; header && i < n_cols; i++)
        free(header[i]);
    free(header);
    for (size_t l = 0; l < 2; l++)
        labeler_clear(&L[l]);
    tb_csv_close(csv);
    tb_store_close(store);
    return st;
}
