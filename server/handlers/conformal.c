/* POST /v1/genre/set: a conformal prediction set of genres that holds the true genre with
 * probability >= 1 - alpha, for any alpha in (0, 1), from the calibration stored with the model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../batch.h"
#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"
#include "rng.h"

static int bool_option(struct tb_request *req, const cJSON *root, const char *key, int *out) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = 0;
    if (!b)
        return 0;
    if (!cJSON_IsBool(b)) {
        tb_reply_fail(req, TB_INVALID, key, "%s must be true or false", key);
        return 1;
    }
    *out = cJSON_IsTrue(b);
    return 0;
}

/* The uniform for randomized APS: from "seed" when given (reproducible), else from the clock. */
static int randomizer(struct tb_request *req, const cJSON *root, double *u) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "seed");
    uint64_t seed;
    if (s) {
        double v = cJSON_IsNumber(s) ? s->valuedouble : NAN;
        if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v))) {
            tb_reply_fail(req, TB_INVALID, "seed", "seed must be a non-negative integer");
            return 1;
        }
        seed = (uint64_t)v;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)req;
    }
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    *u = tb_rng_uniform(&rng);
    return 0;
}

static cJSON *genre_set_one(struct tb_request *req, const cJSON *root) {
    static const char *const keys[] = {"features", "track_id", "alpha", "method", "mondrian", "randomized", "seed",
                                       NULL};
    const tb_served *m = req->state->served[TB_SERVED_GENRE];
    const tb_predictor *p = m->predictor;
    cJSON *imputed = NULL;
    char track_id[TB_MAX_TRACK_ID_BYTES + 1];
    double alpha, u = 1.0;
    int mondrian, randomized;
    tb_set_method method = TB_SET_LAC;
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (tb_input_only_keys(req, root, keys, "") || tb_input_alpha(req, root, &alpha) ||
        bool_option(req, root, "mondrian", &mondrian) || bool_option(req, root, "randomized", &randomized))
        goto done;
    if (mj) {
        const char *name = cJSON_IsString(mj) ? mj->valuestring : "";
        if (strcmp(name, "lac") == 0)
            method = TB_SET_LAC;
        else if (strcmp(name, "aps") == 0)
            method = TB_SET_APS;
        else if (strcmp(name, "raps") == 0)
            method = TB_SET_RAPS;
        else {
            tb_reply_fail(req, TB_INVALID, "method", "method must be \"lac\", \"aps\" or \"raps\"");
            goto done;
        }
    }
    if (randomized) {
        if (method != TB_SET_APS) {
            tb_reply_fail(req, TB_INVALID, "randomized", "randomized applies to method \"aps\"");
            goto done;
        }
        method = TB_SET_APS_RANDOMIZED;
        if (randomizer(req, root, &u))
            goto done;
    } else if (cJSON_GetObjectItemCaseSensitive(root, "seed")) {
        tb_reply_fail(req, TB_INVALID, "seed", "seed goes with \"randomized\": true");
        goto done;
    }
    double raw[TB_PREDICTOR_MAX_INPUTS];
    if (tb_input_features(req, root, p->pipeline, raw, &imputed, track_id))
        goto done;
    size_t k = p->n_classes;
    double *proba = malloc(k * sizeof *proba), *class_q = malloc(k * sizeof *class_q);
    int *in_set = malloc(k * sizeof *in_set);
    size_t *order = malloc(k * sizeof *order);
    if (!proba || !class_q || !in_set || !order) {
        free(proba), free(class_q), free(in_set), free(order);
        cJSON_Delete(imputed);
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
        goto done;
    }
    tb_predictor_predict(p, raw, proba);
    double qhat;
    int too_small;
    size_t size = tb_genre_set(p->calibration, method, mondrian, alpha, proba, u, in_set, &qhat, class_q, &too_small);
    /* The set, most probable genre first (ties to the lower class index). */
    size_t n = 0;
    for (size_t c = 0; c < k; c++)
        if (in_set[c]) {
            size_t at = n++;
            while (at > 0 && proba[order[at - 1]] < proba[c]) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = c;
        }
    cJSON *o = cJSON_CreateObject();
    cJSON *set = cJSON_AddArrayToObject(o, "set");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "genre", p->class_names[order[i]]);
        cJSON_AddItemToObject(e, "probability", tb_json_number(proba[order[i]]));
        if (mondrian) {
            cJSON *q = tb_json_number(class_q[order[i]]);
            cJSON_AddItemToObject(e, "qhat", q ? q : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(set, e);
    }
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddItemToObject(o, "alpha", tb_json_number(alpha));
    cJSON_AddStringToObject(o, "method", tb_set_method_name(method));
    cJSON_AddBoolToObject(o, "mondrian", mondrian);
    cJSON_AddBoolToObject(o, "randomized", randomized);
    cJSON_AddItemToObject(o, "guarantee", tb_json_number(1.0 - alpha));
    cJSON *q = mondrian ? NULL : tb_json_number(qhat);
    cJSON_AddItemToObject(o, "qhat", q ? q : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "alpha_too_small", too_small);
    if (too_small)
        cJSON_AddStringToObject(o, "note", "alpha is below what the calibration rows support: the set holds every genre "
                                           "that lacks a finite threshold");
    cJSON_AddNumberToObject(o, "calibration_rows", (double)p->calibration->n);
    tb_add_common(o, m, imputed, track_id);
    free(proba), free(class_q), free(in_set), free(order);
    return o;
done:
    return NULL;
}

enum MHD_Result tb_handle_genre_set(struct tb_request *req) {
    const tb_served *m = req->state->served[TB_SERVED_GENRE];
    if (!m)
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL, "no published genre model is loaded");
    if (!m->predictor->calibration)
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL,
                              "the published genre model has no calibration (trained with --calibration-fraction 0)");
    return tb_run_single_or_batch(req, genre_set_one);
}
