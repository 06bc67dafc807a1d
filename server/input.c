/* Parsing and validating JSON request bodies. */
#include "input.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_features.h"
#include "limits.h"
#include "predictor.h"
#include "reply.h"
#include "utf8.h"

int tb_input_fail(tb_request *req, tb_status st, const char *field, const char *message) {
    tb_reply_fail(req, st, field, "%s", message);
    return 1;
}

int tb_input_bad(tb_request *req, const char *field, const char *message) {
    return tb_input_fail(req, TB_INVALID, field, message);
}

/* Quadratic, so callers bound the key count first (TB_MAX_KEYS). */
static int has_duplicate_keys(const cJSON *obj, const char **ret_name) {
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) {
                *ret_name = a->string;
                return 1;
            }
    return 0;
}

int tb_input_parse_object(tb_request *req, cJSON **ret_root) {
    if (!req->body || req->body_len == 0)
        return tb_input_bad(req, NULL, "request body is empty: expected a JSON object");
    size_t bad = tb_utf8_invalid_at(req->body, req->body_len); /* else replies would quote invalid text */
    if (bad < req->body_len) {
        tb_reply_fail(req, TB_INVALID, NULL,
                       "request body is not valid UTF-8 (byte %zu): JSON text must be UTF-8", bad);
        return 1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t offset = at && at >= req->body && at <= req->body + req->body_len ? (size_t)(at - req->body) : 0;
        tb_reply_fail(req, TB_INVALID, NULL, "malformed JSON near byte %zu", offset);
        return 1;
    }
    while (end && end < req->body + req->body_len && strchr(" \t\r\n", *end))
        end++;
    if (end != req->body + req->body_len) {
        cJSON_Delete(root);
        return tb_input_bad(req, NULL, "unexpected bytes after the JSON value");
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tb_input_bad(req, NULL, "request body must be a JSON object");
    }
    if (tb_input_check_object(req, root)) {
        cJSON_Delete(root);
        return 1;
    }
    *ret_root = root;
    return 0;
}

int tb_input_check_object(tb_request *req, const cJSON *obj) {
    const char *dup;
    if (!cJSON_IsObject(obj))
        return tb_input_bad(req, NULL, "a request must be a JSON object");
    if (cJSON_GetArraySize(obj) > TB_MAX_KEYS) {
        tb_reply_fail(req, TB_INVALID, NULL,
                       "the request object has more keys than the limit of %d", TB_MAX_KEYS);
        return 1;
    }
    if (has_duplicate_keys(obj, &dup)) {
        tb_reply_fail(req, TB_INVALID, dup, "key '%.64s' appears twice", dup);
        return 1;
    }
    return 0;
}

int tb_input_only_keys(tb_request *req, const cJSON *obj, const char *const *allowed, const char *where) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(c->string, allowed[i]) == 0;
        if (!ok) {
            char field[128];
            snprintf(field, sizeof field, "%s%.64s", where, c->string);
            tb_reply_fail(req, TB_INVALID, field, "unknown key '%.64s'", c->string);
            return 1;
        }
    }
    return 0;
}

/* One feature value: a finite number, a boolean, null (missing), or a string Spotify tables use
 * ("F#", "Major", "?"). Returns 0 and sets *v, or replies. */
static int feature_value(tb_request *req, const cJSON *item, double *v) {
    const char *name = item->string;
    if (cJSON_IsNull(item)) {
        *v = NAN;
        return 0;
    }
    if (cJSON_IsBool(item)) {
        *v = cJSON_IsTrue(item) ? 1.0 : 0.0;
        return 0;
    }
    if (cJSON_IsNumber(item)) {
        if (!isfinite(item->valuedouble) || fabs(item->valuedouble) > FLT_MAX) {
            /* Features are stored and compared as float32: beyond it a value would turn infinite. */
            tb_reply_fail(req, TB_INVALID, name,
                           "feature '%s' is not a finite number within float32's range (|x| <= 3.4e38)", name);
            return 1;
        }
        *v = tb_feature_normalize(name, item->valuedouble);
        return 0;
    }
    if (cJSON_IsString(item) && strlen(item->valuestring) <= TB_MAX_STRING_VALUE_BYTES) {
        tb_status st = tb_feature_parse(name, item->valuestring, v);
        if (st == TB_OK)
            return 0;
    }
    tb_reply_fail(req, TB_INVALID, name, "feature '%s' must be a number", name);
    return 1;
}

/* Fills raw from a features object. From a client (strict): unknown names are errors. From the
 * catalog: names the model does not use are skipped. */
static int fill_features(tb_request *req, const cJSON *features, const tb_pipeline *pl, double *raw, int strict) {
    unsigned char seen[TB_PREDICTOR_MAX_INPUTS] = {0}; /* a name the model takes, given twice: refused */
    for (const cJSON *c = features->child; c; c = c->next) {
        if (strlen(c->string) > TB_MAX_FEATURE_NAME_BYTES)
            return tb_input_bad(req, "features", "a feature name is longer than the limit of 64 bytes");
        long j = tb_pipeline_find(pl, c->string);
        if (j < 0) {
            if (!strict)
                continue;
            tb_reply_fail(req, TB_INVALID, c->string,
                           "unknown feature '%s' (this model takes %zu features; see GET /v1/models)", c->string,
                           pl->n_features);
            return 1;
        }
        if (seen[j]++) {
            tb_reply_fail(req, TB_INVALID, c->string, "feature '%.64s' appears twice",
                           c->string);
            return 1;
        }
        if (feature_value(req, c, &raw[j]))
            return 1;
    }
    return 0;
}

int tb_input_track_id(tb_request *req, const cJSON *id) {
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0')
        return tb_input_bad(req, "track_id", "\"track_id\" must be a non-empty string");
    if (strlen(id->valuestring) > TB_MAX_TRACK_ID_BYTES)
        return tb_input_bad(req, "track_id", "\"track_id\" is longer than the limit of 128 bytes");
    return 0;
}

int tb_input_features(tb_request *req, const cJSON *root, const tb_pipeline *pl, double *raw, cJSON **ret_imputed,
                      char *track_id) {
    track_id[0] = '\0';
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(root, "features");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "track_id");
    if (!features == !id)
        return tb_input_bad(req, NULL, "give exactly one of \"features\" (an object) or \"track_id\" (a string)");
    for (size_t j = 0; j < pl->n_features; j++)
        raw[j] = NAN;
    if (features) {
        if (!cJSON_IsObject(features))
            return tb_input_bad(req, "features", "\"features\" must be an object of feature name to number");
        if (cJSON_GetArraySize(features) > TB_MAX_KEYS) {
            tb_reply_fail(req, TB_INVALID, "features",
                           "\"features\" has more keys than the limit of %d", TB_MAX_KEYS);
            return 1;
        }
        if (fill_features(req, features, pl, raw, 1))
            return 1;
    } else {
        if (tb_input_track_id(req, id))
            return 1;
        tb_track track;
        tb_status st = tb_store_get_track(req->state->store, id->valuestring, &track);
        if (st != TB_OK) {
            tb_reply_status(req, st);
            return 1;
        }
        cJSON *stored = cJSON_Parse(track.features);
        tb_track_clear(&track);
        if (!cJSON_IsObject(stored)) {
            cJSON_Delete(stored);
            tb_reply_fail(req, TB_CORRUPT, "track_id",
                           "stored features of this track are not a JSON object");
            return 1;
        }
        int failed = fill_features(req, stored, pl, raw, 0);
        cJSON_Delete(stored);
        if (failed)
            return 1;
        snprintf(track_id, TB_MAX_TRACK_ID_BYTES + 1, "%s", id->valuestring);
    }
    cJSON *imputed = cJSON_CreateArray();
    if (!imputed) {
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
        return 1;
    }
    for (size_t j = 0; j < pl->n_features; j++)
        if (isnan(raw[j]))
            cJSON_AddItemToArray(imputed, cJSON_CreateString(pl->names[j]));
    *ret_imputed = imputed;
    return 0;
}

int tb_input_alpha(tb_request *req, const cJSON *root, double *alpha) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "alpha");
    *alpha = TB_DEFAULT_ALPHA;
    if (!a)
        return 0;
    double v = cJSON_IsNumber(a) ? a->valuedouble : NAN;
    if (!(v > 0.0 && v < 1.0)) {
        tb_reply_fail(req, TB_INVALID, "alpha",
                       "alpha must be a number strictly between 0 and 1 (0.1 asks for 90%% coverage)");
        return 1;
    }
    *alpha = v;
    return 0;
}
