/* POST /v1/taste: a listener's ratings of catalog tracks → a ridge model of their taste over the
 * recommendation index's track embeddings (models/taste.c), fitted for this request; the reply
 * holds the catalog tracks it predicts they will rate highest (rated tracks and other releases of
 * them left out, one release per song) and the fit's leave-one-out R². Candidates are the
 * neighbourhood of the tracks the listener rated at or above their median (the TASTE_NEIGHBOURS
 * nearest of each): a linear fit of a handful of ratings is trustworthy near them and
 * extrapolates wildly far away. Nothing is stored unless "save_as" names the taste;
 * GET /v1/taste/{name} reads a saved one back. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "userdb.h"
#include "../request.h"
#include "handlers.h"
#include "taste.h"

#define TASTE_NEIGHBOURS 100 /* candidates contributed by each liked track */
#define TASTE_MAX_LIKED 50    /* liked tracks whose neighbourhoods are searched (the best rated) */

typedef struct taste_filter {
    const tb_served *x;
    const tb_catalog *c;
    const size_t *rated;     /* catalog tracks rated, ascending */
    size_t n_rated;
    const uint8_t *candidate; /* per index row; NULL while the neighbourhoods are gathered */
} taste_filter;

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int accept_unrated(void *ctx, size_t row) {
    const taste_filter *f = ctx;
    if (f->candidate && !f->candidate[row])
        return 0;
    size_t t = f->x->track[row];
    if (bsearch(&t, f->rated, f->n_rated, sizeof t, cmp_size))
        return 0;
    for (size_t i = 0; i < f->n_rated; i++)
        if (tb_catalog_same_song(f->c, t, f->rated[i]))
            return 0;
    return 1;
}

/* Marks the TASTE_NEIGHBOURS nearest unrated rows of each liked track (rated at or above the
 * median; at most TASTE_MAX_LIKED of them, the best rated, earlier first on ties). Returns 0, or
 * -1 when out of memory. */
static int gather_candidates(const tb_served *x, const double *ratings, const size_t *rows, size_t n,
                              taste_filter *f, uint8_t **ret_candidate, size_t *ret_n) {
    const tb_index *ix = x->index;
    uint8_t *cand = calloc(ix->n, 1);
    size_t *order = malloc(n * sizeof *order);
    float *scores = malloc(ix->n * sizeof *scores);
    tb_hit *hits = malloc(TASTE_NEIGHBOURS * sizeof *hits);
    int rc = 0;
    if (!cand || !order || !scores || !hits) {
        rc = -1;
        goto out;
    }
    /* Ratings best first, earlier first on ties (insertion sort: n <= 1000); the median from it. */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && ratings[order[j - 1]] < ratings[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    double median = n % 2 ? ratings[order[n / 2]] : 0.5 * (ratings[order[n / 2 - 1]] + ratings[order[n / 2]]);
    f->candidate = NULL;
    for (size_t i = 0, liked = 0; i < n && liked < TASTE_MAX_LIKED && ratings[order[i]] >= median; i++, liked++) {
        tb_index_scores(ix, ix->vectors + rows[order[i]] * ix->dim, scores);
        size_t got = tb_index_top(scores, ix->n, TASTE_NEIGHBOURS, accept_unrated, f, hits);
        for (size_t h = 0; h < got; h++)
            if (!cand[hits[h].row]) {
                cand[hits[h].row] = 1;
                (*ret_n)++;
            }
    }
out:
    free(order);
    free(scores);
    free(hits);
    if (rc != 0)
        free(cand);
    else
        *ret_candidate = cand;
    return rc;
}

/* A name for save_as: 1 to 64 of [A-Za-z0-9._-]. */
static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* The ratings: each {track_id, rating} of an indexed catalog track, no track twice. Fills the
 * index rows and ratings (n slots). Replies and returns 1 on bad input. */
static int parse_ratings(tb_request *req, const cJSON *list, const tb_served *x, size_t *rows,
                         double *ratings, size_t *ret_n) {
    static const char *const keys[] = {"track_id", "rating", NULL};
    size_t n = 0;
    const cJSON *r;
    char field[48];
    cJSON_ArrayForEach(r, list) {
        snprintf(field, sizeof field, "ratings[%zu]", n);
        if (!cJSON_IsObject(r))
            return tb_input_bad(req, field, "each rating must be an object {\"track_id\": ..., \"rating\": ...}");
        snprintf(field, sizeof field, "ratings[%zu].", n);
        if (tb_input_check_object(req, r) || tb_input_only_keys(req, r, keys, field))
            return 1;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "track_id");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "rating");
        snprintf(field, sizeof field, "ratings[%zu].track_id", n);
        if (!id)
            return tb_input_bad(req, field, "each rating needs a track_id");
        if (tb_input_track_id(req, id))
            return 1;
        long row = tb_index_find(x->index, id->valuestring);
        if (row < 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown track '%.128s'", id->valuestring);
            return tb_input_fail(req, TB_NOT_FOUND, field, msg);
        }
        snprintf(field, sizeof field, "ratings[%zu].rating", n);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e6)
            return tb_input_bad(req, field, "a rating must be a finite number (at most 1e6 in size)");
        for (size_t i = 0; i < n; i++)
            if (rows[i] == (size_t)row) {
                snprintf(field, sizeof field, "ratings[%zu].track_id", n);
                return tb_input_bad(req, field, "this track is rated twice");
            }
        rows[n] = (size_t)row;
        ratings[n++] = v->valuedouble;
    }
    *ret_n = n;
    return 0;
}

/* The taste's owner secret from "Authorization: Bearer <secret>", or NULL. */
static const char *bearer(const tb_request *req) {
    const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* A user-database failure as its reply: 401 (asks for the secret), 403, 404, 503 (retry), 507. */
static int reject_status(tb_request *req, tb_status st, const char *field) {
    if (st == TB_UNAVAILABLE)
        req->retry_after = 1;
    return tb_input_fail(req, st, field, tb_error_message());
}

static int no_user_db(tb_request *req, const char *field) {
    return tb_input_fail(req, TB_NOT_FOUND, field,
                           "saved tastes need a user database: start timbre-serve with --user-db FILE");
}

/* Saves into the user database: a new name gets a secret (written to `secret`, else ""), an
 * existing one needs its own. Replies and returns 1 on failure. */
static int save_taste(tb_request *req, const char *name, const cJSON *ratings, const tb_taste *fit,
                      char secret[TB_SECRET_TEXT_BYTES]) {
    if (!req->userdb)
        return no_user_db(req, "save_as");
    if (!(req->scopes & TB_SCOPE_WRITE))
        return tb_input_fail(req, TB_FORBIDDEN, "save_as", "this API key lacks the write scope");
    cJSON *fj = cJSON_CreateObject();
    cJSON_AddNumberToObject(fj, "cv_r2", fit->cv_r2);
    cJSON_AddNumberToObject(fj, "lambda", fit->lambda);
    cJSON_AddNumberToObject(fj, "intercept", fit->intercept);
    cJSON *w = cJSON_AddArrayToObject(fj, "weights");
    for (size_t j = 0; j < fit->dim; j++)
        cJSON_AddItemToArray(w, cJSON_CreateNumber(fit->w[j]));
    char *fit_text = cJSON_PrintUnformatted(fj), *ratings_text = cJSON_PrintUnformatted(ratings);
    cJSON_Delete(fj);
    int created = 0;
    const tb_served *x = req->state->served[TB_SERVED_RECOMMEND];
    tb_status st = fit_text && ratings_text
                       ? tb_userdb_save(req->userdb, name, bearer(req), x->name, x->version, ratings_text, fit_text,
                                        req->limits->max_tastes, secret, &created)
                       : tb_error(TB_NOMEM, "out of memory");
    free(fit_text);
    free(ratings_text);
    return st == TB_OK ? 0 : reject_status(req, st, "save_as");
}

enum MHD_Result tb_handle_taste(tb_request *req) {
    const tb_served *x = req->state->served[TB_SERVED_RECOMMEND];
    if (!x)
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL,
                              "no published recommendation index is loaded (a taste is fitted on its embeddings)");
    static const char *const keys[] = {"ratings", "k", "save_as", NULL};
    cJSON *root = NULL;
    size_t *rows = NULL, *rated = NULL, n = 0, k = TB_DEFAULT_K;
    double *ratings = NULL;
    float *X = NULL, *q = NULL;
    tb_hit *top = NULL;
    uint8_t *candidate = NULL;
    tb_taste fit = {0};
    cJSON *o = NULL;
    if (tb_input_parse_object(req, &root) || tb_input_only_keys(req, root, keys, ""))
        goto done;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "ratings");
    const cJSON *kj = cJSON_GetObjectItemCaseSensitive(root, "k");
    const cJSON *save = cJSON_GetObjectItemCaseSensitive(root, "save_as");
    int count = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || count < TB_TASTE_MIN_RATINGS || count > TB_MAX_TASTE_RATINGS) {
        tb_reply_fail(req, TB_INVALID, "ratings",
                       "ratings must be an array of %d to %d {\"track_id\", \"rating\"} objects", TB_TASTE_MIN_RATINGS,
                       TB_MAX_TASTE_RATINGS);
        goto done;
    }
    if (kj) {
        double v = cJSON_IsNumber(kj) ? kj->valuedouble : NAN;
        if (!(v >= 1 && v <= (double)req->limits->max_k && v == floor(v))) {
            tb_reply_fail(req, TB_INVALID, "k", "k must be an integer from 1 to %zu",
                           req->limits->max_k);
            goto done;
        }
        k = (size_t)v;
    }
    if (save && (!cJSON_IsString(save) || !valid_name(save->valuestring))) {
        tb_input_bad(req, "save_as", "save_as must be a name of 1 to 64 letters, digits, '.', '_' or '-'");
        goto done;
    }
    size_t dim = x->index->dim;
    rows = malloc((size_t)count * sizeof *rows);
    rated = malloc((size_t)count * sizeof *rated);
    ratings = malloc((size_t)count * sizeof *ratings);
    X = malloc((size_t)count * dim * sizeof *X);
    q = malloc(dim * sizeof *q);
    top = malloc(k * sizeof *top);
    if (!rows || !rated || !ratings || !X || !q || !top) {
        tb_input_fail(req, TB_NOMEM, NULL, "out of memory");
        goto done;
    }
    if (parse_ratings(req, list, x, rows, ratings, &n))
        goto done;
    for (size_t i = 0; i < n; i++) {
        memcpy(X + i * dim, x->index->vectors + rows[i] * dim, dim * sizeof *X);
        rated[i] = x->track[rows[i]];
    }
    if (tb_taste_fit(X, ratings, n, dim, &fit) != TB_OK) {
        tb_input_bad(req, "ratings", tb_error_message());
        goto done;
    }
    qsort(rated, n, sizeof *rated, cmp_size);
    taste_filter f = {.x = x, .c = req->state->catalog, .rated = rated, .n_rated = n};
    size_t n_candidates = 0;
    long n_top = -1;
    if (gather_candidates(x, ratings, rows, n, &f, &candidate, &n_candidates) == 0) {
        /* the best of the candidates by predicted rating */
        for (size_t j = 0; j < dim; j++)
            q[j] = (float)fit.w[j];
        f.candidate = candidate;
        n_top = tb_recommend_top(x, f.c, q, k, accept_unrated, &f, top, NULL);
    }
    if (n_top < 0) {
        tb_input_fail(req, TB_NOMEM, NULL, "out of memory");
        goto done;
    }
    char secret[TB_SECRET_TEXT_BYTES] = "";
    if (save && save_taste(req, save->valuestring, list, &fit, secret))
        goto done;
    /* A linear fit extrapolates past the scale the listener used; the ranking does not depend on
     * it, the number shown stays within the ratings given. */
    double lo = ratings[0], hi = ratings[0];
    for (size_t i = 1; i < n; i++) {
        lo = ratings[i] < lo ? ratings[i] : lo;
        hi = ratings[i] > hi ? ratings[i] : hi;
    }
    o = cJSON_CreateObject();
    cJSON *tracks = cJSON_AddArrayToObject(o, "tracks");
    for (long i = 0; i < n_top; i++) {
        cJSON *t = tb_track_json(f.c, x->track[top[i].row]);
        double pr = fit.intercept + (double)top[i].score;
        cJSON_AddItemToObject(t, "predicted_rating", tb_json_number(pr < lo ? lo : pr > hi ? hi : pr));
        cJSON_AddItemToArray(tracks, t);
    }
    cJSON_AddNumberToObject(o, "k", (double)k);
    cJSON *fj = cJSON_AddObjectToObject(o, "fit");
    cJSON_AddNumberToObject(fj, "n_ratings", (double)n);
    cJSON_AddNumberToObject(fj, "candidates", (double)n_candidates);
    cJSON_AddItemToObject(fj, "cv_r2", tb_json_number(fit.cv_r2));
    cJSON_AddNumberToObject(fj, "lambda", fit.lambda);
    cJSON_AddItemToObject(fj, "intercept", tb_json_number(fit.intercept));
    cJSON_AddItemToObject(fj, "mean_rating", tb_json_number(fit.mean));
    cJSON_AddStringToObject(fj, "method", "ridge regression on the index embeddings, penalty by leave-one-out");
    if (save)
        cJSON_AddStringToObject(o, "saved_as", save->valuestring);
    if (secret[0]) { /* shown this once: only its hash is kept */
        cJSON_AddStringToObject(o, "secret", secret);
        tb_secret_wipe(secret, TB_SECRET_TEXT_BYTES);
    }
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(model, "name", x->name);
    cJSON_AddNumberToObject(model, "version", x->version);
done:
    free(candidate);
    tb_taste_clear(&fit);
    free(rows);
    free(rated);
    free(ratings);
    free(X);
    free(q);
    free(top);
    cJSON_Delete(root);
    return o ? tb_reply_json(req, MHD_HTTP_OK, o) : req->result;
}

/* The {name} of a taste route, and a user database to find it in; replies and returns 1 if not. */
static int named_taste(tb_request *req) {
    if (!valid_name(req->param))
        return tb_input_bad(req, "name", "a taste name is 1 to 64 letters, digits, '.', '_' or '-'");
    return req->userdb ? 0 : no_user_db(req, "name");
}

enum MHD_Result tb_handle_taste_get(tb_request *req) {
    if (named_taste(req))
        return req->result;
    char *ratings = NULL, *fit = NULL, *updated = NULL;
    tb_status st = tb_userdb_get(req->userdb, req->param, bearer(req), &ratings, &fit, &updated);
    if (st != TB_OK)
        return reject_status(req, st, "name"), req->result;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", req->param);
    cJSON_AddItemToObject(o, "ratings", cJSON_Parse(ratings));
    cJSON_AddItemToObject(o, "fit", cJSON_Parse(fit));
    cJSON_AddStringToObject(o, "updated_at", updated);
    free(ratings);
    free(fit);
    free(updated);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

enum MHD_Result tb_handle_taste_delete(tb_request *req) {
    if (named_taste(req))
        return req->result;
    tb_status st = tb_userdb_delete(req->userdb, req->param, bearer(req));
    if (st != TB_OK)
        return reject_status(req, st, "name"), req->result;
    return tb_reply_text(req, MHD_HTTP_NO_CONTENT, NULL, strdup(""));
}
