/* GET /v1/recommendations (the parameters of Spotify's Web API, closed to new apps in November 2024)
 * and POST /v1/recommendations (the same as JSON, whose seeds may also be raw feature vectors).
 * Up to TB_MAX_SEEDS seeds of tracks, genres and features combine in the embedding: the query is
 * the unit mean of their unit vectors (a genre's is the mean of its tracks'). min_X and max_X
 * filter on every audio attribute and popularity; target_X ranks: each candidate's cosine loses
 * TARGET_WEIGHT times its mean distance to the targets, in catalog standard deviations.
 * diversity (maximal marginal relevance) and max_per_artist shape the list. Seed tracks and other
 * releases of the same song never appear, nor two releases of one song. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

#define N_ATTRS (TB_MAX_AUDIO_FEATURES + 1) /* tb_audio_features, then popularity */
#define TARGET_WEIGHT 0.5
#define DEFAULT_LIMIT 20                    /* Spotify's default */
#define MIN_CANDIDATES 200                  /* rows re-ranked: at least this, or 10 × limit */
#define MAX_ARTIST_NAMES 1024               /* names counted for max_per_artist */

typedef struct spec {
    const tb_served *x;
    const tb_catalog *c;
    float q[TB_EMBED_MAX_DIM];
    size_t n_seeds;
    long seed_track[TB_MAX_SEEDS]; /* catalog indices of track seeds */
    size_t n_seed_tracks;
    cJSON *seeds;                  /* the reply's list of seeds */
    size_t limit;
    double target[N_ATTRS], lo[N_ATTRS], hi[N_ATTRS]; /* NaN: not given */
    size_t n_targets;
    double diversity;
    size_t max_per_artist;         /* 0: no cap */
} spec;

static const char *attr_name(size_t a) { return a < tb_n_audio_features ? tb_audio_features[a] : "popularity"; }

static double attr_value(const tb_catalog *c, size_t t, size_t a) {
    return a < tb_n_audio_features ? (double)c->tracks[t].audio[a] : c->tracks[t].popularity;
}

static double attr_scale(const tb_catalog *c, size_t a) {
    return a < tb_n_audio_features ? c->audio_scale[a] : c->popularity_scale;
}

static void add_vector(spec *s, const float *v) {
    for (size_t j = 0; j < s->x->index->dim; j++)
        s->q[j] += v[j];
}

static int count_seed(struct tb_request *req, spec *s, const char *field) {
    if (s->n_seeds == TB_MAX_SEEDS) {
        tb_reply_fail(req, TB_INVALID, field, "at most %d seeds in all (tracks, genres and features)", TB_MAX_SEEDS);
        return 1;
    }
    s->n_seeds++;
    return 0;
}

static int seed_track(struct tb_request *req, spec *s, const char *id, const char *field) {
    if (count_seed(req, s, field))
        return 1;
    if (strlen(id) > TB_MAX_TRACK_ID_BYTES) {
        tb_reply_fail(req, TB_INVALID, field, "a track id is longer than the limit of %d bytes", TB_MAX_TRACK_ID_BYTES);
        return 1;
    }
    long row = tb_index_find(s->x->index, id), t = tb_catalog_find(s->c, id);
    if (row < 0 || t < 0) {
        tb_reply_fail(req, TB_NOT_FOUND, field, "no track with id '%.100s' in the index", id);
        return 1;
    }
    add_vector(s, s->x->index->vectors + (size_t)row * s->x->index->dim);
    s->seed_track[s->n_seed_tracks++] = t;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "track");
    cJSON_AddStringToObject(o, "id", s->c->tracks[t].id);
    cJSON_AddItemToArray(s->seeds, o);
    return 0;
}

static int seed_genre(struct tb_request *req, spec *s, const char *name, const char *field) {
    if (count_seed(req, s, field))
        return 1;
    long g = tb_catalog_genre(s->c, name);
    if (g < 0) {
        tb_reply_fail(req, TB_INVALID, field, "unknown genre '%.64s' (the catalog has %zu genres)", name,
                      s->c->n_genres);
        return 1;
    }
    add_vector(s, s->x->centroids + (size_t)g * s->x->index->dim);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "genre");
    cJSON_AddStringToObject(o, "id", s->c->genres[g]);
    cJSON_AddItemToArray(s->seeds, o);
    return 0;
}

/* {"features": {...}}: the embedder's vector of those inputs (missing ones imputed, listed). */
static int seed_features(struct tb_request *req, spec *s, const cJSON *seed) {
    if (count_seed(req, s, "seeds"))
        return 1;
    double raw[TB_PREDICTOR_MAX_INPUTS];
    cJSON *imputed = NULL;
    char unused[TB_MAX_TRACK_ID_BYTES + 1];
    if (tb_input_features(req, seed, s->x->embedder->pipeline, raw, &imputed, unused))
        return 1;
    float v[TB_EMBED_MAX_DIM];
    tb_embedder_embed(s->x->embedder, raw, v);
    add_vector(s, v);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "features");
    cJSON_AddItemToObject(o, "imputed", imputed);
    cJSON_AddItemToArray(s->seeds, o);
    return 0;
}

/* A named number: limit, diversity, max_per_artist, target_X, min_X, max_X. text (GET) or v
 * (POST). Returns 0, 1 when it replied with an error, -1 for a name it does not know. */
static int set_param(struct tb_request *req, spec *s, const char *key, const char *text, double v) {
    if (text) {
        char *end;
        errno = 0;
        v = strtod(text, &end);
        if (errno || end == text || *end)
            v = NAN;
    }
    if (strcmp(key, "limit") == 0 || strcmp(key, "max_per_artist") == 0) {
        size_t top = strcmp(key, "limit") == 0 ? req->limits->max_k : TB_MAX_K_CEILING;
        if (!(v >= 1 && v <= (double)top && v == floor(v))) {
            tb_reply_fail(req, TB_INVALID, key, "%s must be an integer from 1 to %zu", key, top);
            return 1;
        }
        *(strcmp(key, "limit") == 0 ? &s->limit : &s->max_per_artist) = (size_t)v;
        return 0;
    }
    if (strcmp(key, "diversity") == 0) {
        if (!(v >= 0 && v <= 1)) {
            tb_reply_fail(req, TB_INVALID, key, "diversity must be a number from 0 (relevance only) to 1");
            return 1;
        }
        s->diversity = v;
        return 0;
    }
    static const char *const kinds[] = {"target_", "min_", "max_"};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(kinds[k]);
        if (strncmp(key, kinds[k], n) != 0)
            continue;
        for (size_t a = 0; a < N_ATTRS; a++) {
            if (strcmp(key + n, attr_name(a)) != 0)
                continue;
            if (!isfinite(v)) {
                tb_reply_fail(req, TB_INVALID, key, "%s must be a finite number", key);
                return 1;
            }
            double *slot = k == 0 ? &s->target[a] : k == 1 ? &s->lo[a] : &s->hi[a];
            s->n_targets += k == 0 && isnan(*slot);
            *slot = v;
            return 0;
        }
    }
    return -1;
}

static int check_bounds(struct tb_request *req, const spec *s, int post) {
    for (size_t a = 0; a < N_ATTRS; a++)
        if (s->lo[a] > s->hi[a]) {
            char field[40];
            snprintf(field, sizeof field, "min_%s", attr_name(a));
            tb_reply_fail(req, TB_INVALID, field, "min_%s (%g) is above max_%s (%g)", attr_name(a), s->lo[a],
                          attr_name(a), s->hi[a]);
            return 1;
        }
    if (s->n_seeds == 0) {
        tb_reply_fail(req, TB_INVALID, "seeds", "give 1 to %d seeds (seed_tracks, seed_genres%s)", TB_MAX_SEEDS,
                      post ? " or seeds" : "");
        return 1;
    }
    return 0;
}

static int accept_row(void *ctx, size_t row) {
    const spec *s = ctx;
    size_t t = s->x->track[row];
    for (size_t i = 0; i < s->n_seed_tracks; i++)
        if (t == (size_t)s->seed_track[i] || tb_catalog_same_song(s->c, t, (size_t)s->seed_track[i]))
            return 0;
    for (size_t a = 0; a < N_ATTRS; a++) {
        if (isnan(s->lo[a]) && isnan(s->hi[a]))
            continue;
        double v = attr_value(s->c, t, a);
        if (isnan(v) || v < s->lo[a] || v > s->hi[a])
            return 0;
    }
    return 1;
}

/* The candidate's relevance: its cosine, less TARGET_WEIGHT × its mean distance to the targets
 * (an unknown value counts as one standard deviation away). */
static double relevance(const spec *s, size_t t, float score) {
    if (!s->n_targets)
        return score;
    double d = 0.0;
    for (size_t a = 0; a < N_ATTRS; a++)
        if (!isnan(s->target[a])) {
            double v = attr_value(s->c, t, a);
            d += isnan(v) ? 1.0 : fabs(v - s->target[a]) / attr_scale(s->c, a);
        }
    return score - TARGET_WEIGHT * d / (double)s->n_targets;
}

/* Artist names picked so far, for max_per_artist. */
typedef struct artist_count {
    const char *name;
    size_t len, n;
} artist_count;

/* Whether track t may join (no name of its artists already cap times); with add, counts them. */
static int artists_fit(const tb_catalog *c, size_t t, size_t cap, artist_count *seen, size_t *n_seen, int add) {
    for (const char *p = c->tracks[t].artists; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p), i = 0;
        while (i < *n_seen && !(seen[i].len == len && memcmp(seen[i].name, p, len) == 0))
            i++;
        if (!add && i < *n_seen && seen[i].n >= cap)
            return 0;
        if (add && i == *n_seen && *n_seen < MAX_ARTIST_NAMES)
            seen[(*n_seen)++] = (artist_count){p, len, 0};
        if (add && i < *n_seen)
            seen[i].n++;
        p = end ? end + 1 : p + len;
    }
    return 1;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t j = 0; j < n; j++)
        s += (double)a[j] * b[j];
    return s;
}

/* Greedy selection over the candidates: the best (1 − diversity) × relevance − diversity × its
 * nearest pick's similarity, skipping repeats of a picked song and artists at their cap. */
static size_t select_tracks(const spec *s, const tb_hit *cand, const double *rel, size_t n, size_t *picked) {
    const tb_index *ix = s->x->index;
    double *nearest = calloc(n ? n : 1, sizeof *nearest);
    unsigned char *out = calloc(n ? n : 1, 1);
    artist_count *seen = s->max_per_artist ? calloc(MAX_ARTIST_NAMES, sizeof *seen) : NULL;
    size_t n_picked = 0, n_seen = 0;
    if (!nearest || !out || (s->max_per_artist && !seen))
        n = 0;
    for (int any = 1; n_picked < s->limit && any;) {
        any = 0;
        size_t best = 0;
        double best_v = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (out[i])
                continue;
            size_t t = s->x->track[cand[i].row];
            if (n_picked && tb_catalog_same_song(s->c, t, s->x->track[cand[picked[n_picked - 1]].row])) {
                out[i] = 1; /* a release of a song already picked */
                continue;
            }
            if (seen && !artists_fit(s->c, t, s->max_per_artist, seen, &n_seen, 0))
                continue;
            double v = (1.0 - s->diversity) * rel[i] - (n_picked ? s->diversity * nearest[i] : 0.0);
            if (!any || v > best_v) {
                best = i;
                best_v = v;
                any = 1;
            }
        }
        if (!any)
            break;
        picked[n_picked++] = best;
        out[best] = 1;
        if (seen)
            artists_fit(s->c, s->x->track[cand[best].row], s->max_per_artist, seen, &n_seen, 1);
        const float *vb = ix->vectors + (size_t)cand[best].row * ix->dim;
        for (size_t i = 0; i < n && s->diversity > 0.0; i++) {
            double sim = dot(ix->vectors + (size_t)cand[i].row * ix->dim, vb, ix->dim);
            nearest[i] = n_picked == 1 || sim > nearest[i] ? sim : nearest[i];
        }
    }
    free(nearest);
    free(out);
    free(seen);
    return n_picked;
}

/* The list for a parsed request; takes s->seeds into the reply. NULL after replying an error. */
static cJSON *recommend(struct tb_request *req, spec *s) {
    const tb_index *ix = s->x->index;
    double norm = sqrt(dot(s->q, s->q, ix->dim));
    if (!(norm > 0.0)) {
        cJSON_Delete(s->seeds);
        tb_reply_fail(req, TB_INVALID, "seeds", "the seeds' vectors cancel out: give other seeds");
        return NULL;
    }
    for (size_t j = 0; j < ix->dim; j++)
        s->q[j] = (float)(s->q[j] / norm);
    size_t m = 10 * s->limit > MIN_CANDIDATES ? 10 * s->limit : MIN_CANDIDATES;
    m = m < ix->n ? m : ix->n;
    tb_hit *cand = malloc(m * sizeof *cand);
    double *rel = malloc(m * sizeof *rel);
    size_t *picked = malloc(s->limit * sizeof *picked), n_picked = 0;
    long got = -1;
    tb_nearest_path path = TB_NEAREST_EXACT;
    if (cand && rel && picked && (got = tb_nearest_top(ix, s->x->ann, s->q, m, accept_row, s, cand, &path)) > 0) {
        for (long i = 0; i < got; i++)
            rel[i] = relevance(s, s->x->track[cand[i].row], cand[i].score);
        n_picked = select_tracks(s, cand, rel, (size_t)got, picked);
    }
    cJSON *o = got >= 0 ? cJSON_CreateObject() : NULL;
    if (o) {
        cJSON *list = cJSON_AddArrayToObject(o, "tracks");
        for (size_t i = 0; i < n_picked; i++) {
            const tb_hit *h = &cand[picked[i]];
            cJSON *t = tb_track_json(s->c, s->x->track[h->row]);
            cJSON_AddItemToObject(t, "score", tb_json_number((double)h->score));
            if (s->n_targets)
                cJSON_AddItemToObject(t, "relevance", tb_json_number(rel[picked[i]]));
            cJSON_AddItemToArray(list, t);
        }
        cJSON_AddItemToObject(o, "seeds", s->seeds);
        cJSON_AddNumberToObject(o, "limit", (double)s->limit);
        cJSON_AddNumberToObject(o, "candidates", (double)got);
        cJSON_AddStringToObject(o, "index", path == TB_NEAREST_APPROXIMATE ? "hnsw" : "exact");
        cJSON *model = cJSON_AddObjectToObject(o, "model");
        cJSON_AddStringToObject(model, "name", s->x->name);
        cJSON_AddNumberToObject(model, "version", s->x->version);
    } else {
        cJSON_Delete(s->seeds);
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
    }
    free(cand);
    free(rel);
    free(picked);
    return o;
}

static void spec_init(struct tb_request *req, spec *s) {
    memset(s, 0, sizeof *s);
    s->x = req->state->served[TB_SERVED_RECOMMEND];
    s->c = req->state->catalog;
    s->limit = DEFAULT_LIMIT < req->limits->max_k ? DEFAULT_LIMIT : req->limits->max_k;
    s->seeds = cJSON_CreateArray();
    for (size_t a = 0; a < N_ATTRS; a++)
        s->target[a] = s->lo[a] = s->hi[a] = NAN;
}

static int no_index(struct tb_request *req) {
    if (req->state->served[TB_SERVED_RECOMMEND])
        return 0;
    tb_reply_fail(req, TB_UNAVAILABLE, NULL,
                  "no published recommendation index is loaded (train one with timbre-train --task recommend)");
    return 1;
}

/* ---------- GET: the query string ---------- */

#define MAX_ARGS 64

typedef struct args {
    const char *key[MAX_ARGS], *value[MAX_ARGS];
    size_t n;
    int too_many;
} args;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    args *a = cls;
    if (a->n == MAX_ARGS) {
        a->too_many = 1;
        return MHD_NO;
    }
    a->key[a->n] = key;
    a->value[a->n++] = value ? value : "";
    return MHD_YES;
}

/* Each comma-separated item of a seed_tracks or seed_genres value. */
static int seed_list(struct tb_request *req, spec *s, const char *key, const char *value) {
    char item[TB_MAX_TRACK_ID_BYTES + 2];
    for (const char *p = value;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= sizeof item) {
            tb_reply_fail(req, TB_INVALID, key, "%s takes comma-separated %s of 1 to %d bytes", key,
                          strcmp(key, "seed_tracks") == 0 ? "track ids" : "genre names", TB_MAX_TRACK_ID_BYTES);
            return 1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (strcmp(key, "seed_tracks") == 0 ? seed_track(req, s, item, key) : seed_genre(req, s, item, key))
            return 1;
        if (!end)
            return 0;
        p = end + 1;
    }
}

enum MHD_Result tb_handle_recommendations_get(struct tb_request *req) {
    if (no_index(req))
        return req->result;
    args a = {0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect, &a);
    if (a.too_many)
        return tb_reply_fail(req, TB_INVALID, NULL, "more than %d query parameters", MAX_ARGS);
    spec s;
    spec_init(req, &s);
    for (size_t i = 0; i < a.n; i++) {
        int r = strcmp(a.key[i], "seed_tracks") == 0 || strcmp(a.key[i], "seed_genres") == 0
                    ? seed_list(req, &s, a.key[i], a.value[i])
                    : set_param(req, &s, a.key[i], a.value[i], NAN);
        if (r < 0)
            tb_reply_fail(req, TB_INVALID, a.key[i],
                          "unknown query parameter '%.64s' (seed_tracks, seed_genres, limit, diversity, "
                          "max_per_artist, target_/min_/max_ of an audio attribute or popularity)",
                          a.key[i]);
        if (r) {
            cJSON_Delete(s.seeds);
            return req->result;
        }
    }
    if (check_bounds(req, &s, 0)) {
        cJSON_Delete(s.seeds);
        return req->result;
    }
    cJSON *o = recommend(req, &s);
    return o ? tb_reply_json(req, MHD_HTTP_OK, o) : req->result;
}

/* ---------- POST: JSON ---------- */

static int seeds_json(struct tb_request *req, spec *s, const cJSON *seeds) {
    int n = cJSON_GetArraySize(seeds);
    if (!cJSON_IsArray(seeds) || n < 1 || n > TB_MAX_SEEDS) {
        tb_reply_fail(req, TB_INVALID, "seeds", "seeds must be an array of 1 to %d seeds", TB_MAX_SEEDS);
        return 1;
    }
    static const char *const kinds[] = {"track_id", "genre", "features", NULL};
    const cJSON *seed;
    cJSON_ArrayForEach(seed, seeds) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(seed, "track_id");
        const cJSON *genre = cJSON_GetObjectItemCaseSensitive(seed, "genre");
        const cJSON *features = cJSON_GetObjectItemCaseSensitive(seed, "features");
        if (!cJSON_IsObject(seed) || cJSON_GetArraySize(seed) != 1 || tb_input_check_object(req, seed) ||
            tb_input_only_keys(req, seed, kinds, "seeds.")) {
            if (!req->replied)
                tb_reply_fail(req, TB_INVALID, "seeds",
                              "a seed is one of {\"track_id\": ID}, {\"genre\": NAME}, {\"features\": {...}}");
            return 1;
        }
        if ((id || genre) && !cJSON_IsString(id ? id : genre)) {
            tb_reply_fail(req, TB_INVALID, "seeds", "a seed's %s must be a string", id ? "track_id" : "genre");
            return 1;
        }
        if (id ? seed_track(req, s, id->valuestring, "seeds")
               : genre ? seed_genre(req, s, genre->valuestring, "seeds")
               : features ? seed_features(req, s, seed) : 1)
            return 1;
    }
    return 0;
}

enum MHD_Result tb_handle_recommendations_post(struct tb_request *req) {
    cJSON *root = NULL;
    if (no_index(req) || tb_input_parse_object(req, &root))
        return req->result;
    spec s;
    spec_init(req, &s);
    const cJSON *item;
    int r = 0;
    cJSON_ArrayForEach(item, root) {
        r = strcmp(item->string, "seeds") == 0 ? seeds_json(req, &s, item)
            : cJSON_IsNumber(item)             ? set_param(req, &s, item->string, NULL, item->valuedouble)
                                               : set_param(req, &s, item->string, NULL, NAN);
        if (r < 0)
            tb_reply_fail(req, TB_INVALID, item->string,
                          "unknown key '%.64s' (seeds, limit, diversity, max_per_artist, target_/min_/max_ of an "
                          "audio attribute or popularity)",
                          item->string);
        if (r)
            break;
    }
    cJSON *o = NULL;
    if (!r && !check_bounds(req, &s, 1))
        o = recommend(req, &s); /* takes s.seeds */
    else
        cJSON_Delete(s.seeds);
    cJSON_Delete(root);
    return o ? tb_reply_json(req, MHD_HTTP_OK, o) : req->result;
}
