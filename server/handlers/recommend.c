/* POST /v1/recommend: the catalog tracks most similar to a track (by id) or to a set of
 * features: cosine top-k over the published index (its HNSW graph when one is published and its
 * candidates meet the filters, else the exact scan: models/nearest.h), with optional filters. The query
 * track, other releases of the same song, and repeats of one song never appear. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../batch.h"
#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

typedef struct rec_filter {
    const tb_served *x;
    const tb_catalog *c;
    long query_track;          /* catalog index of the query track, or -1 */
    int exclude_same_artist;
    long genres[TB_MAX_GENRE_FILTER];
    size_t n_genres;
    double min_popularity;     /* NaN: no bound */
} rec_filter;

static int accept_row(void *ctx, size_t row) {
    const rec_filter *f = ctx;
    size_t t = f->x->track[row];
    if (f->query_track >= 0) {
        size_t q = (size_t)f->query_track;
        if (t == q || tb_catalog_same_song(f->c, t, q))
            return 0;
        if (f->exclude_same_artist && tb_catalog_share_artist(f->c, t, q))
            return 0;
    }
    if (!isnan(f->min_popularity)) {
        double p = f->c->tracks[t].popularity;
        if (isnan(p) || p < f->min_popularity)
            return 0;
    }
    if (f->n_genres) {
        int any = 0;
        for (size_t g = 0; g < f->n_genres && !any; g++)
            any = tb_catalog_has_genre(f->c, t, (size_t)f->genres[g]);
        if (!any)
            return 0;
    }
    return 1;
}

/* k, exclude_same_artist, genres and min_popularity from the request (each optional). */
static int parse_options(struct tb_request *req, const cJSON *root, size_t *k, rec_filter *f) {
    const cJSON *kj = cJSON_GetObjectItemCaseSensitive(root, "k");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "exclude_same_artist");
    const cJSON *genres = cJSON_GetObjectItemCaseSensitive(root, "genres");
    const cJSON *minp = cJSON_GetObjectItemCaseSensitive(root, "min_popularity");
    *k = TB_DEFAULT_K;
    if (kj) {
        double v = cJSON_IsNumber(kj) ? kj->valuedouble : NAN;
        if (!(v >= 1 && v <= (double)req->limits->max_k && v == floor(v))) {
            tb_reply_fail(req, TB_INVALID, "k", "k must be an integer from 1 to %zu",
                           req->limits->max_k);
            return 1;
        }
        *k = (size_t)v;
    }
    if (ex) {
        if (!cJSON_IsBool(ex))
            return tb_input_bad(req, "exclude_same_artist", "exclude_same_artist must be true or false");
        f->exclude_same_artist = cJSON_IsTrue(ex);
    }
    if (genres) {
        int n = cJSON_GetArraySize(genres);
        if (!cJSON_IsArray(genres) || n < 1 || n > TB_MAX_GENRE_FILTER) {
            tb_reply_fail(req, TB_INVALID, "genres",
                           "genres must be an array of 1 to %d genre names", TB_MAX_GENRE_FILTER);
            return 1;
        }
        const cJSON *g;
        cJSON_ArrayForEach(g, genres) {
            long id = cJSON_IsString(g) ? tb_catalog_genre(f->c, g->valuestring) : -1;
            if (id < 0) {
                if (cJSON_IsString(g))
                    tb_reply_fail(req, TB_INVALID, "genres",
                                   "unknown genre '%.64s' (the catalog has %zu genres)", g->valuestring,
                                   f->c->n_genres);
                else
                    tb_input_bad(req, "genres", "genres must hold strings");
                return 1;
            }
            f->genres[f->n_genres++] = id;
        }
    }
    f->min_popularity = NAN;
    if (minp) {
        double v = cJSON_IsNumber(minp) ? minp->valuedouble : NAN;
        if (!(v >= 0 && v <= 100))
            return tb_input_bad(req, "min_popularity", "min_popularity must be a number from 0 to 100");
        f->min_popularity = v;
    }
    return 0;
}

/* Up to k of hits[0..n) (best first) into out, no two releases of one song. Returns how many. */
static size_t distinct_songs(const tb_served *x, const tb_catalog *c, const tb_hit *hits, size_t n, size_t k,
                             tb_hit *out) {
    size_t n_keep = 0;
    for (size_t i = 0; i < n && n_keep < k; i++) {
        int repeat = 0;
        for (size_t j = 0; j < n_keep && !repeat; j++)
            repeat = tb_catalog_same_song(c, x->track[out[j].row], x->track[hits[i].row]);
        if (!repeat)
            out[n_keep++] = hits[i];
    }
    return n_keep;
}

long tb_recommend_top(const tb_served *x, const tb_catalog *c, const float *q, size_t k, tb_index_accept accept,
                      void *ctx, tb_hit *out, tb_nearest_path *path) {
    const tb_index *ix = x->index;
    /* The best m accepted rows (the graph's or the scan's), widened while repeats of one song
     * leave fewer than k distinct songs. */
    size_t m = 2 * k < ix->n ? 2 * k : ix->n, n_keep = 0;
    tb_hit *hits = NULL;
    for (;;) {
        tb_hit *grown = realloc(hits, m * sizeof *hits);
        if (!grown) {
            free(hits);
            return -1;
        }
        hits = grown;
        long got = tb_nearest_top(ix, x->ann, q, m, accept, ctx, hits, path);
        if (got < 0) {
            free(hits);
            return -1;
        }
        n_keep = distinct_songs(x, c, hits, (size_t)got, k, out);
        if (n_keep == k || (size_t)got < m || m == ix->n)
            break;
        m = 4 * m < ix->n ? 4 * m : ix->n;
    }
    free(hits);
    return (long)n_keep;
}

static cJSON *recommend_one(struct tb_request *req, const cJSON *root) {
    static const char *const keys[] = {"features", "track_id", "k", "exclude_same_artist", "genres", "min_popularity",
                                       NULL};
    const tb_served *x = req->state->served[TB_SERVED_RECOMMEND];
    const tb_catalog *c = req->state->catalog;
    cJSON *imputed = NULL;
    rec_filter f = {.x = x, .c = c, .query_track = -1};
    size_t k;
    if (tb_input_only_keys(req, root, keys, "") || parse_options(req, root, &k, &f))
        return NULL;
    const tb_index *ix = x->index;
    float q[TB_EMBED_MAX_DIM];
    char track_id[TB_MAX_TRACK_ID_BYTES + 1] = "";
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "track_id");
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(root, "features");
    long row = -1;
    if (f.exclude_same_artist && !(id && !features)) {
        tb_input_bad(req, "exclude_same_artist", "exclude_same_artist needs a track_id query (features have no artist)");
        return NULL;
    }
    if (id && !features) {
        if (tb_input_track_id(req, id))
            return NULL;
        row = tb_index_find(ix, id->valuestring);
        f.query_track = tb_catalog_find(c, id->valuestring);
    }
    if (row >= 0) {
        /* An indexed track: its stored vector is the query. */
        memcpy(q, ix->vectors + (size_t)row * ix->dim, ix->dim * sizeof *q);
        snprintf(track_id, sizeof track_id, "%s", id->valuestring);
        imputed = cJSON_CreateArray();
    } else {
        double raw[TB_PREDICTOR_MAX_INPUTS];
        if (tb_input_features(req, root, x->embedder->pipeline, raw, &imputed, track_id))
            return NULL;
        tb_embedder_embed(x->embedder, raw, q);
    }
    tb_hit *top = malloc(k * sizeof *top);
    tb_nearest_path path = TB_NEAREST_EXACT;
    long n_top = top ? tb_recommend_top(x, c, q, k, accept_row, &f, top, &path) : -1;
    if (n_top < 0) {
        free(top);
        cJSON_Delete(imputed);
        tb_input_fail(req, TB_NOMEM, NULL, "out of memory");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "tracks");
    for (long i = 0; i < n_top; i++) {
        cJSON *t = tb_track_json(c, x->track[top[i].row]);
        cJSON_AddItemToObject(t, "score", tb_json_number((double)top[i].score));
        cJSON_AddItemToArray(list, t);
    }
    free(top);
    if (track_id[0])
        cJSON_AddStringToObject(o, "track_id", track_id);
    cJSON_AddNumberToObject(o, "k", (double)k);
    cJSON_AddItemToObject(o, "imputed", imputed);
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(model, "name", x->name);
    cJSON_AddNumberToObject(model, "version", x->version);
    cJSON_AddStringToObject(o, "index", path == TB_NEAREST_APPROXIMATE ? "hnsw" : "exact");
    return o;
}

enum MHD_Result tb_handle_recommend(struct tb_request *req) {
    if (!req->state->served[TB_SERVED_RECOMMEND])
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL,
                              "no published recommendation index is loaded (train one with timbre-train --task "
                              "recommend)");
    return tb_run_single_or_batch(req, recommend_one);
}
