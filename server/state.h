/* What the server serves: the published models loaded from the database at start-up, and the
 * store for track look-ups. Built once, then read-only and shared by every request thread. */
#ifndef TB_SERVER_STATE_H
#define TB_SERVER_STATE_H

#include <stdint.h>

#include "catalog.h"
#include "embedding.h"
#include "ann.h"
#include "index.h"
#include "predictor.h"
#include "status.h"
#include "snapshot.h"
#include "store.h"

/* What one task serves: a predictor (genre, multilabel, popularity), or the recommendation index
 * with the embedder that makes its query vectors (recommend). */
typedef struct tb_served {
    const char *task; /* tb_store_tasks[i] */
    int64_t id;
    char *kind, *name, *created_at;
    int version;
    char *metrics;    /* JSON text as stored */
    tb_predictor *predictor;
    tb_embedder *embedder;
    tb_index *index;
    size_t *track;    /* catalog track of each index row */
    tb_ann *ann;      /* recommend, optional: the approximate index published with it */
    float *centroids; /* recommend: per catalog genre, the unit mean of its tracks' vectors (zero when
                         none), so a genre can seed a query; n_genres × index dim */
} tb_served;

/* Indices of tb_server_state.served, in tb_store_tasks order. */
enum { TB_SERVED_GENRE, TB_SERVED_MULTILABEL, TB_SERVED_POPULARITY, TB_SERVED_RECOMMEND };

/* How a load may grow the process. */
typedef struct tb_load_options {
    size_t memory_budget; /* bytes the process may hold once a load is done and while it runs (0: no check) */
    int exact_index;      /* leave a published HNSW graph unloaded: every query scans */
    size_t hnsw_ef;       /* a loaded graph's search breadth (0: the one stored with it) */
} tb_load_options;

typedef struct tb_server_state {
    char *db_path;                /* a request that saves (a taste) opens its own writable connection;
                                     NULL when serving a snapshot, which nothing writes */
    char source[4096];            /* the --db given: a database file or a snapshot directory */
    tb_snapshot_ref snapshot;     /* the snapshot served (file "" when serving a database file) */
    int pinned[TB_N_TASKS];       /* per tb_store_tasks: the version served is pinned */
    tb_store *store;
    tb_catalog *catalog;          /* every stored track */
    /* Per task, indexed like tb_store_tasks (TB_SERVED_*); NULL when none is published. Every
     * route that lists what is served (/readyz, /v1/models, /metrics) walks this one array. */
    tb_served *served[TB_N_TASKS];
    tb_load_options load;         /* what it was loaded with (/metrics shows the budget) */
} tb_server_state;

/* db_path: a database file, or a snapshot directory (its CURRENT snapshot, checked against its
 * SHA-256, opened immutable). Opens the database read-only, loads the catalog and every published
 * model and index. Fails (nothing half-built) when the database is missing or invalid, a
 * published blob does not load, or the index would take the process past o->memory_budget
 * (checked from the stored sizes before anything large is read). */
tb_status tb_server_state_load(const char *db_path, const tb_load_options *o, tb_server_state **ret);
tb_server_state *tb_server_state_free(tb_server_state *s);
/* 1 when some task is served (what /readyz asks). */
int tb_server_state_any(const tb_server_state *s);

#endif
