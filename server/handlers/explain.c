/* POST /v1/genre/explain and POST /v1/popularity/explain: the inputs of the predict routes, and
 * each feature's exact contribution to the prediction (models/treeshap.c for trees), with the
 * base value they add to; batches as {"instances": [...]}. A genre request explains the predicted
 * genre, the genre named by "genre", or the "top" N (at most TB_TOP_GENRES). */
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

#define TB_STR_(x) #x
#define TB_STR(x) TB_STR_(x)

/* Whether the feature named `name` was imputed (the request's "imputed" list). */
static int was_imputed(const cJSON *imputed, const char *name) {
    const cJSON *e;
    cJSON_ArrayForEach(e, imputed) {
        if (cJSON_IsString(e) && strcmp(e->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

/* The contributions to output o, largest magnitude first: [{feature, value, contribution}]. */
static cJSON *contributions(const tb_pipeline *pl, const double *raw, const double *phi, size_t n_out, size_t o,
                            const cJSON *imputed) {
    size_t d = pl->n_features, order[TB_PREDICTOR_MAX_INPUTS];
    for (size_t j = 0; j < d; j++) { /* insertion sort: d is a few dozen at most */
        size_t i = j;
        for (; i > 0 && fabs(phi[order[i - 1] * n_out + o]) < fabs(phi[j * n_out + o]); i--)
            order[i] = order[i - 1];
        order[i] = j;
    }
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < d; i++) {
        size_t j = order[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(e, "feature", cJSON_CreateStringReference(pl->names[j]));
        cJSON_AddItemToObjectCS(e, "value", isnan(raw[j]) ? cJSON_CreateNull() : tb_json_number(raw[j]));
        cJSON_AddItemToObjectCS(e, "contribution", tb_json_number(phi[j * n_out + o]));
        if (was_imputed(imputed, pl->names[j]))
            cJSON_AddItemToObjectCS(e, "imputed", cJSON_CreateTrue());
        cJSON_AddItemToArray(list, e);
    }
    return list;
}

/* Which genres to explain: "genre" (a name), "top" (1 to TB_TOP_GENRES), else the predicted one. */
static int explained_genres(struct tb_request *req, const cJSON *root, const tb_predictor *p, const double *proba,
                            size_t *outputs, size_t *n_out) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "genre"), *top = cJSON_GetObjectItemCaseSensitive(root, "top");
    size_t k = p->n_classes, n = 1;
    if (g && top)
        return tb_input_bad(req, "genre", "give genre or top, not both");
    if (g) {
        for (size_t c = 0; cJSON_IsString(g) && c < k; c++)
            if (strcmp(p->class_names[c], g->valuestring) == 0) {
                outputs[0] = c;
                *n_out = 1;
                return 0;
            }
        char msg[96];
        snprintf(msg, sizeof msg, "genre must name one of the model's %zu genres", k);
        return tb_input_fail(req, TB_INVALID, "genre", msg);
    }
    if (top) {
        double v = cJSON_IsNumber(top) ? top->valuedouble : NAN;
        if (!(v >= 1 && v <= TB_TOP_GENRES && v == floor(v)))
            return tb_input_bad(req, "top", "top must be an integer from 1 to " TB_STR(TB_TOP_GENRES));
        n = (size_t)v < k ? (size_t)v : k;
    }
    n = tb_rank_genres(proba, k, -INFINITY, n, outputs); /* the n most probable, the argmax first */
    *n_out = n;
    return 0;
}

/* One request of either route: task TB_SERVED_GENRE or TB_SERVED_POPULARITY. */
static cJSON *explain_one(struct tb_request *req, const cJSON *root, int task) {
    static const char *const genre_keys[] = {"features", "track_id", "genre", "top", NULL};
    static const char *const popularity_keys[] = {"features", "track_id", NULL};
    const tb_served *m = req->state->served[task];
    const tb_predictor *p = m->predictor;
    int genre = task == TB_SERVED_GENRE;
    cJSON *imputed = NULL;
    char track_id[TB_MAX_TRACK_ID_BYTES + 1] = "";
    double raw[TB_PREDICTOR_MAX_INPUTS];
    if (tb_input_only_keys(req, root, genre ? genre_keys : popularity_keys, "") ||
        tb_input_features(req, root, p->pipeline, raw, &imputed, track_id))
        return NULL;
    size_t k = p->model->n_outputs, d = p->pipeline->n_features, outputs[TB_TOP_GENRES] = {0}, n_out = 1;
    double *out = malloc(k * sizeof *out), *phi = malloc(d * TB_TOP_GENRES * sizeof *phi);
    double base[TB_TOP_GENRES], value[TB_TOP_GENRES];
    tb_status st = out && phi ? TB_OK : tb_error(TB_NOMEM, "out of memory");
    size_t twins = st == TB_OK ? tb_predictor_predict(p, raw, out) : 0;
    if (st == TB_OK && genre && explained_genres(req, root, p, out, outputs, &n_out)) {
        free(out);
        free(phi);
        cJSON_Delete(imputed);
        return NULL;
    }
    if (st == TB_OK)
        st = tb_predictor_explain(p, raw, outputs, n_out, phi, base, value);
    if (st != TB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot explain the published %s model: %s", genre ? "genre" : "popularity",
                 tb_error_message());
        tb_input_fail(req, st == TB_NOMEM ? TB_NOMEM : TB_INVALID, NULL, msg);
        free(out);
        free(phi);
        cJSON_Delete(imputed);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    /* To regress, boosting's margin and a forest's mean are the value itself. */
    cJSON_AddStringToObject(o, "space", genre ? p->model->ops->explain_space : "value");
    cJSON *list = cJSON_AddArrayToObject(o, "explained");
    for (size_t i = 0; i < n_out; i++) {
        cJSON *e = cJSON_CreateObject();
        if (genre) {
            cJSON_AddItemToObjectCS(e, "genre", cJSON_CreateStringReference(p->class_names[outputs[i]]));
            cJSON_AddItemToObjectCS(e, "probability", tb_json_number(out[outputs[i]]));
        } else {
            cJSON_AddItemToObjectCS(e, "popularity", tb_json_number(out[0]));
        }
        cJSON_AddItemToObjectCS(e, "base", tb_json_number(base[i]));
        cJSON_AddItemToObjectCS(e, "output", tb_json_number(value[i]));
        cJSON_AddItemToObjectCS(e, "contributions", contributions(p->pipeline, raw, phi, n_out, i, imputed));
        cJSON_AddItemToArray(list, e);
    }
    if (twins) /* the served probabilities mixed in training rows' genres: not part of the model's sum */
        cJSON_AddItemToObjectCS(o, "twins", tb_json_number((double)twins));
    free(out);
    free(phi);
    tb_add_common(o, m, imputed, track_id);
    return o;
}

static cJSON *genre_explain_one(struct tb_request *req, const cJSON *root) {
    return explain_one(req, root, TB_SERVED_GENRE);
}

static cJSON *popularity_explain_one(struct tb_request *req, const cJSON *root) {
    return explain_one(req, root, TB_SERVED_POPULARITY);
}

enum MHD_Result tb_handle_genre_explain(struct tb_request *req) {
    if (!req->state->served[TB_SERVED_GENRE])
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL, "no published genre model is loaded");
    return tb_run_single_or_batch_max(req, genre_explain_one, TB_MAX_EXPLAIN_ROWS);
}

enum MHD_Result tb_handle_popularity_explain(struct tb_request *req) {
    if (!req->state->served[TB_SERVED_POPULARITY])
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL, "no published popularity model is loaded");
    return tb_run_single_or_batch_max(req, popularity_explain_one, TB_MAX_EXPLAIN_ROWS);
}
