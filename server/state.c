/* Loading the published models. */
#include "state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

static void served_free(tb_served *m) {
    if (!m)
        return;
    tb_predictor_free(m->predictor);
    tb_embedder_free(m->embedder);
    tb_index_free(m->index);
    free(m->track);
    free(m->centroids);
    tb_ann_free(m->ann);
    free(m->kind);
    free(m->name);
    free(m->created_at);
    free(m->metrics);
    free(m);
}

/* Takes the record's strings over (the caller clears the rest). */
static void take_record(tb_served *m, tb_model_record *rec, const char *task) {
    m->task = task;
    m->id = rec->id;
    m->kind = rec->kind;
    m->name = rec->name;
    m->created_at = rec->created_at;
    m->version = rec->version;
    m->metrics = rec->metrics;
    rec->kind = rec->name = rec->created_at = rec->metrics = NULL;
}

int tb_server_state_any(const tb_server_state *s) {
    for (int t = 0; t < TB_N_TASKS; t++)
        if (s->served[t])
            return 1;
    return 0;
}

tb_server_state *tb_server_state_free(tb_server_state *s) {
    if (!s)
        return NULL;
    for (int t = 0; t < TB_N_TASKS; t++)
        served_free(s->served[t]);
    tb_catalog_free(s->catalog);
    tb_store_close(s->store);
    free(s->db_path);
    free(s);
    return NULL;
}

/* Loads the published model of `task`; *ret stays NULL when none is published. */
static tb_status load_model(tb_store *store, const char *task, tb_task expected, tb_served **ret) {
    tb_model_record rec;
    tb_status st = tb_store_get_served(store, task, &rec);
    if (st == TB_NOT_FOUND)
        return TB_OK;
    if (st != TB_OK)
        return st;
    tb_served *m = calloc(1, sizeof *m);
    if (!m) {
        tb_model_record_clear(&rec);
        return tb_error(TB_NOMEM, "out of memory");
    }
    st = tb_predictor_load(rec.blob, rec.blob_len, &m->predictor);
    if (st != TB_OK) {
        tb_error_prefix(st, "published %s model '%s' version %d", task, rec.name, rec.version);
    } else if (m->predictor->model->task != expected) {
        st = tb_error(TB_CORRUPT, "published %s model '%s' version %d is not a %s model", task, rec.name,
                      rec.version, expected == TB_TASK_CLASSIFY ? "classification"
                                   : expected == TB_TASK_MULTILABEL ? "multi-label" : "regression");
    }
    if (st != TB_OK) {
        tb_model_record_clear(&rec);
        served_free(m);
        return st;
    }
    take_record(m, &rec, task);
    tb_model_record_clear(&rec);
    *ret = m;
    return TB_OK;
}

/* Each genre's unit mean vector over the index rows of the tracks that list it. */
static float *genre_centroids(const tb_index *ix, const size_t *track, const tb_catalog *c) {
    size_t dim = ix->dim;
    float *out = calloc((c->n_genres ? c->n_genres : 1) * dim, sizeof *out);
    if (!out)
        return NULL;
    for (size_t r = 0; r < ix->n; r++) {
        const tb_catalog_track *t = &c->tracks[track[r]];
        for (uint16_t g = 0; g < t->n_genres; g++) {
            float *v = out + (size_t)c->genre_ids[t->genre_start + g] * dim;
            for (size_t j = 0; j < dim; j++)
                v[j] += ix->vectors[r * dim + j];
        }
    }
    for (size_t g = 0; g < c->n_genres; g++) {
        float *v = out + g * dim;
        double norm = 0.0;
        for (size_t j = 0; j < dim; j++)
            norm += (double)v[j] * v[j];
        for (size_t j = 0; j < dim && norm > 0.0; j++)
            v[j] = (float)(v[j] / sqrt(norm));
    }
    return out;
}

/* What loading the index needs at its peak, from its stored sizes, erring high: the vectors and
 * their transposed copy, ids and row map (~48 bytes a row), and the blob three times (the
 * record's, then the embedder's copy of a graph in it, the memory file hnswlib reads, the graph:
 * taken as all graph, which costs an embedder-only blob a few MB of slack). Measured: 1.4 times
 * the peak resident size at 1 M tracks (tests/bench/recommend_scale.sh). */
static tb_status check_budget(tb_store *store, int64_t id, const tb_load_options *o) {
    tb_index_sizes z;
    if (!o->memory_budget)
        return TB_OK;
    tb_status st = tb_store_index_sizes(store, id, &z);
    if (st != TB_OK)
        return st == TB_NOT_FOUND ? TB_OK : st; /* the load says what is missing */
    double mb = 1024.0 * 1024.0, need = 2.0 * (double)z.n_rows * (double)z.dim * sizeof(float) +
                                          48.0 * (double)z.n_rows + (o->exact_index ? 1.0 : 3.0) * (double)z.blob_bytes;
    double resident = (double)tb_memory_resident();
    if (resident + need > (double)o->memory_budget)
        return tb_error(TB_NOMEM,
                        "loading it needs about %.0f MB (%zu tracks of %zu values, a %.0f MB blob) beside the %.0f "
                        "MB already resident: over the memory budget of %.0f MB (--memory-budget-mb; --exact-index "
                        "leaves a graph out)",
                        need / mb, z.n_rows, z.dim, (double)z.blob_bytes / mb, resident / mb,
                        (double)o->memory_budget / mb);
    return TB_OK;
}

/* The graph kept beside the embedder, loaded against the index's rows (checked before any search)
 * unless left out; the embedder's copy of its bytes is then dropped. */
static tb_status load_graph(tb_served *x, int leave_out) {
    tb_status st = leave_out ? TB_OK
                             : tb_ann_load(x->embedder->ann_blob, x->embedder->ann_len, x->index->n, x->index->dim,
                                           &x->ann);
    free(x->embedder->ann_blob);
    x->embedder->ann_blob = NULL;
    x->embedder->ann_len = 0;
    return st;
}

/* Loads the published recommendation index, if any, and ties its rows to the catalog. */
static tb_status load_index(tb_store *store, const tb_catalog *catalog, const char *task, int64_t id,
                            const tb_load_options *o, tb_served **ret) {
    tb_model_record rec;
    tb_status st = check_budget(store, id, o);
    if (st != TB_OK) {
        tb_error_prefix(st, "the published recommendation index (model %lld)", (long long)id);
        return st;
    }
    if ((st = tb_store_get_served(store, task, &rec)) == TB_NOT_FOUND)
        return TB_OK;
    if (st != TB_OK)
        return st;
    tb_served *x = calloc(1, sizeof *x);
    float *vectors = NULL;
    char **ids = NULL;
    size_t n = 0, dim = 0;
    if (!x)
        st = tb_error(TB_NOMEM, "out of memory");
    if (st == TB_OK)
        st = tb_embedder_load(rec.blob, rec.blob_len, &x->embedder);
    free(rec.blob); /* the embedder holds what it needs */
    rec.blob = NULL;
    rec.blob_len = 0;
    if (st == TB_OK && (st = tb_store_get_index(store, rec.id, &vectors, &n, &dim, &ids)) == TB_OK) {
        st = tb_index_new(vectors, ids, n, dim, &x->index);
        if (st == TB_INVALID)
            st = tb_error(TB_CORRUPT, "%s", tb_error_message());
    }
    if (st == TB_OK && dim != x->embedder->dim)
        st = tb_error(TB_CORRUPT, "index vectors have %zu values, its embedder makes %zu", dim, x->embedder->dim);
    if (st == TB_OK) /* a genre block: kept sparse, so a query scans only the dense values */
        st = tb_index_set_label_dims(x->index, tb_embedder_label_dims(x->embedder));
    if (st == TB_OK && !(x->track = malloc(n * sizeof *x->track)))
        st = tb_error(TB_NOMEM, "out of memory");
    for (size_t i = 0; st == TB_OK && i < n; i++) {
        long t = tb_catalog_find(catalog, x->index->ids[i]);
        if (t < 0)
            st = tb_error(TB_CORRUPT, "index row %zu: track '%.100s' is not in the catalog", i, x->index->ids[i]);
        else
            x->track[i] = (size_t)t;
    }
    if (st == TB_OK && x->embedder->ann_len)
        st = load_graph(x, o->exact_index);
    if (st == TB_OK && x->ann && o->hnsw_ef) /* before any search: setting it is not thread-safe */
        tb_ann_set_ef(x->ann, o->hnsw_ef);
    if (st == TB_OK && !(x->centroids = genre_centroids(x->index, x->track, catalog)))
        st = tb_error(TB_NOMEM, "out of memory");
    if (st != TB_OK) {
        tb_error_prefix(st, "published recommendation index '%s' version %d", rec.name, rec.version);
        tb_model_record_clear(&rec);
        served_free(x);
        return st;
    }
    take_record(x, &rec, task);
    tb_model_record_clear(&rec);
    *ret = x;
    return TB_OK;
}

tb_status tb_server_state_load(const char *db_path, const tb_load_options *o, tb_server_state **ret) {
    tb_server_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error(TB_NOMEM, "out of memory");
    snprintf(s->source, sizeof s->source, "%s", db_path);
    s->load = *o;
    tb_status st = TB_OK;
    if (tb_snapshot_is_dir(db_path)) {
        char file[sizeof s->source + 80];
        if ((st = tb_snapshot_current(db_path, &s->snapshot)) == TB_OK &&
            (st = tb_snapshot_verify(db_path, &s->snapshot)) == TB_OK) {
            snprintf(file, sizeof file, "%s/%s", db_path, s->snapshot.file);
            st = tb_store_open(file, TB_STORE_SNAPSHOT, &s->store);
        }
    } else if (!(s->db_path = strdup(db_path))) {
        free(s);
        return tb_error(TB_NOMEM, "out of memory");
    } else {
        st = tb_store_open(db_path, TB_STORE_READ_ONLY, &s->store);
    }
    int64_t served[TB_N_TASKS];
    if (st == TB_OK)
        st = tb_store_served(s->store, served, s->pinned);
    /* The model task each served predictor must be, in tb_store_tasks order; 0: the index. */
    static const tb_task expected[TB_N_TASKS] = {TB_TASK_CLASSIFY, TB_TASK_MULTILABEL, TB_TASK_REGRESS, 0};
    if (st == TB_OK)
        st = tb_catalog_load(s->store, &s->catalog);
    for (int t = 0; t < TB_N_TASKS && st == TB_OK; t++)
        st = expected[t] ? load_model(s->store, tb_store_tasks[t], expected[t], &s->served[t])
                         : load_index(s->store, s->catalog, tb_store_tasks[t], served[t], o, &s->served[t]);
    if (st != TB_OK) {
        tb_server_state_free(s);
        return st;
    }
    *ret = s;
    return TB_OK;
}
