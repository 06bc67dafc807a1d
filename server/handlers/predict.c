/* POST /v1/genre and POST /v1/popularity: one track's features (or a catalog id) in, the
 * prediction out, with the features that had to be imputed; or a batch of such requests as
 * {"instances": [...]} (server/batch.c). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../batch.h"
#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

static int model_or_503(struct tb_request *req, const tb_served *m, const char *task) {
    if (m)
        return 0;
    tb_reply_fail(req, TB_UNAVAILABLE, NULL, "no published %s model is loaded", task);
    return 1;
}

static cJSON *genre_one(struct tb_request *req, const cJSON *root) {
    static const char *const keys[] = {"features", "track_id", "multilabel", NULL};
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "multilabel");
    if (tb_input_only_keys(req, root, keys, ""))
        return NULL;
    if (ml && !cJSON_IsBool(ml)) {
        tb_input_bad(req, "multilabel", "multilabel must be true or false");
        return NULL;
    }
    int sets = ml && cJSON_IsTrue(ml);
    const tb_served *m = sets ? req->state->served[TB_SERVED_MULTILABEL] : req->state->served[TB_SERVED_GENRE];
    if (!m) {
        tb_input_fail(req, TB_UNAVAILABLE, sets ? "multilabel" : NULL,
                        sets ? "no published multi-label genre model is loaded (train one with timbre-train "
                               "--multilabel)"
                             : "no published genre model is loaded");
        return NULL;
    }
    cJSON *imputed = NULL;
    double raw[TB_PREDICTOR_MAX_INPUTS], *proba;
    char track_id[TB_MAX_TRACK_ID_BYTES + 1] = "";
    const tb_predictor *p = m->predictor;
    if (tb_input_features(req, root, p->pipeline, raw, &imputed, track_id))
        return NULL;
    size_t k = p->n_classes, *order = malloc(k * sizeof *order);
    if (!(proba = malloc(k * sizeof *proba)) || !order) {
        free(proba);
        free(order);
        cJSON_Delete(imputed);
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
        return NULL;
    }
    size_t twins = tb_predictor_predict(p, raw, proba);
    size_t top[TB_TOP_GENRES], n_top = tb_rank_genres(proba, k, -INFINITY, TB_TOP_GENRES, order);
    memcpy(top, order, n_top * sizeof *top);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "genre", cJSON_CreateStringReference(p->class_names[top[0]]));
    if (sets) { /* every genre at or above the threshold, most probable first */
        double threshold = tb_model_threshold(p->model);
        cJSON *set = cJSON_AddArrayToObject(o, "genres");
        size_t n_set = tb_rank_genres(proba, k, threshold, k, order);
        for (size_t i = 0; i < n_set; i++)
            cJSON_AddItemToArray(set, cJSON_CreateString(p->class_names[order[i]]));
        cJSON_AddItemToObject(o, "threshold", tb_json_number(threshold));
    }
    cJSON *list = cJSON_CreateArray();
    cJSON_AddItemToObjectCS(o, "probabilities", list);
    for (size_t i = 0; i < n_top; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(e, "genre", cJSON_CreateStringReference(p->class_names[top[i]]));
        cJSON_AddItemToObjectCS(e, "probability", tb_json_number(proba[top[i]]));
        cJSON_AddItemToArray(list, e);
    }
    if (twins) /* training rows with these inputs: their genres shaped the probabilities */
        cJSON_AddItemToObjectCS(o, "twins", tb_json_number((double)twins));
    free(proba);
    free(order);
    tb_add_common(o, m, imputed, track_id);
    return o;
}

enum MHD_Result tb_handle_genre(struct tb_request *req) {
    if (!req->state->served[TB_SERVED_MULTILABEL] && model_or_503(req, req->state->served[TB_SERVED_GENRE], "genre"))
        return req->result; /* else each request says which model it lacks */
    return tb_run_single_or_batch(req, genre_one);
}

static cJSON *popularity_one(struct tb_request *req, const cJSON *root) {
    static const char *const keys[] = {"features", "track_id", "alpha", "interval_method", NULL};
    const tb_served *m = req->state->served[TB_SERVED_POPULARITY];
    cJSON *imputed = NULL;
    double raw[TB_PREDICTOR_MAX_INPUTS], value, alpha = 0.0;
    char track_id[TB_MAX_TRACK_ID_BYTES + 1] = "";
    tb_interval_method method = TB_INTERVAL_NORMALIZED;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "alpha");
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(root, "interval_method");
    int failed = tb_input_only_keys(req, root, keys, "") || (a && tb_input_alpha(req, root, &alpha));
    if (!failed && mj) {
        const char *name = cJSON_IsString(mj) ? mj->valuestring : "";
        if (!a)
            failed = tb_input_fail(req, TB_INVALID, "interval_method", "interval_method goes with alpha");
        else if (strcmp(name, "absolute") == 0)
            method = TB_INTERVAL_ABSOLUTE;
        else if (strcmp(name, "normalized") != 0)
            failed = tb_input_fail(req, TB_INVALID, "interval_method",
                            "interval_method must be \"normalized\" or \"absolute\"");
    }
    if (!failed && a && !m->predictor->calibration)
        failed = tb_input_fail(req, TB_UNAVAILABLE, "alpha",
                        "the published popularity model has no calibration (trained with --calibration-fraction 0)");
    if (!failed)
        failed = tb_input_features(req, root, m->predictor->pipeline, raw, &imputed, track_id);
    if (failed)
        return NULL;
    const tb_predictor *p = m->predictor;
    tb_predictor_predict(p, raw, &value);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "popularity", tb_json_number(value));
    if (a) {
        const tb_calibration *c = p->calibration;
        if (method == TB_INTERVAL_NORMALIZED && !c->difficulty)
            method = TB_INTERVAL_ABSOLUTE;
        double lo, hi, q, sigma = method == TB_INTERVAL_NORMALIZED ? tb_predictor_sigma(p, raw) : 1.0;
        int too_small = tb_popularity_interval(c, method, alpha, value, sigma, 0.0, 100.0, &lo, &hi, &q);
        cJSON *iv = cJSON_AddObjectToObject(o, "interval");
        cJSON_AddItemToObject(iv, "lower", tb_json_number(lo));
        cJSON_AddItemToObject(iv, "upper", tb_json_number(hi));
        cJSON_AddItemToObject(iv, "alpha", tb_json_number(alpha));
        cJSON_AddItemToObject(iv, "guarantee", tb_json_number(1.0 - alpha));
        cJSON_AddStringToObject(iv, "method", tb_interval_method_name(method));
        cJSON_AddBoolToObject(iv, "alpha_too_small", too_small);
        if (too_small)
            cJSON_AddStringToObject(iv, "note", "alpha is below what the calibration rows support: the interval is "
                                                "the whole 0-100 range");
    }
    tb_add_common(o, m, imputed, track_id);
    return o;
}

enum MHD_Result tb_handle_popularity(struct tb_request *req) {
    if (model_or_503(req, req->state->served[TB_SERVED_POPULARITY], "popularity"))
        return req->result;
    return tb_run_single_or_batch(req, popularity_one);
}
