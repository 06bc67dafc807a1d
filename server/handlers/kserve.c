/* Open Inference Protocol (KServe V2) subset, so standard inference clients can call Timbre:
 * GET /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready and
 * POST /v2/models/{name}/infer with one FP32 (or FP64) tensor [N, n_features] in the model's
 * feature order (GET /v2/models/{name} lists it; null = missing). {name} is a task ("genre",
 * "popularity") or the served model's name. Errors follow the protocol: {"error": "message"}. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../input.h"
#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "audio_features.h"
#include "handlers.h"

static const tb_served *find_model(const tb_server_state *s, const char *name) {
    const tb_served *all[2] = {s->served[TB_SERVED_GENRE], s->served[TB_SERVED_POPULARITY]};
    for (int i = 0; i < 2; i++)
        if (all[i] && (strcmp(name, all[i]->task) == 0 || strcmp(name, all[i]->name) == 0))
            return all[i];
    return NULL;
}

static const tb_served *model_or_404(struct tb_request *req) {
    const tb_served *m = find_model(req->state, req->param);
    if (!m)
        tb_reply_fail(req, TB_NOT_FOUND, NULL, "no model named '%.100s' (try genre or popularity)",
                       req->param);
    return m;
}

enum MHD_Result tb_handle_v2_live(struct tb_request *req) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "live", 1);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

enum MHD_Result tb_handle_v2_ready(struct tb_request *req) {
    int ready = req->state->served[TB_SERVED_GENRE] || req->state->served[TB_SERVED_POPULARITY];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ready", ready);
    return tb_reply_json(req, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}

static cJSON *tensor_meta(const char *name, const char *datatype, long long cols) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", datatype);
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(-1));
    if (cols > 0)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)cols));
    return t;
}

enum MHD_Result tb_handle_v2_model(struct tb_request *req) {
    const tb_served *m = model_or_404(req);
    if (!m)
        return req->result;
    const tb_predictor *p = m->predictor;
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON *versions = cJSON_AddArrayToObject(o, "versions");
    cJSON_AddItemToArray(versions, cJSON_CreateString(version));
    cJSON_AddStringToObject(o, "platform", "timbre");
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    cJSON *in = tensor_meta("input", "FP32", (long long)p->pipeline->n_features);
    cJSON *params = cJSON_AddObjectToObject(in, "parameters");
    cJSON *names = cJSON_AddArrayToObject(params, "features");
    for (size_t j = 0; j < p->pipeline->n_features; j++)
        cJSON_AddItemToArray(names, cJSON_CreateString(p->pipeline->names[j]));
    cJSON_AddItemToArray(inputs, in);
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    if (p->n_classes) {
        cJSON_AddItemToArray(outputs, tensor_meta("probabilities", "FP32", (long long)p->n_classes));
        cJSON_AddItemToArray(outputs, tensor_meta("label", "BYTES", 0));
    } else {
        cJSON_AddItemToArray(outputs, tensor_meta("popularity", "FP32", 0));
    }
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

enum MHD_Result tb_handle_v2_model_ready(struct tb_request *req) {
    const tb_served *m = model_or_404(req);
    if (!m)
        return req->result;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddBoolToObject(o, "ready", 1);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

/* Flattens data (flat, or nested row by row) into out[0..want); returns the count seen or -1. */
static long flatten(const cJSON *data, double *out, size_t want, size_t *at, int depth) {
    const cJSON *e;
    cJSON_ArrayForEach(e, data) {
        if (cJSON_IsArray(e)) {
            if (depth > 2 || flatten(e, out, want, at, depth + 1) < 0)
                return -1;
        } else if (*at >= want) {
            return -1;
        } else if (cJSON_IsNull(e)) {
            out[(*at)++] = NAN;
        } else if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && fabs(e->valuedouble) <= FLT_MAX) { /* FP32 */
            out[(*at)++] = e->valuedouble;
        } else {
            return -1;
        }
    }
    return (long)*at;
}

/* The input tensor as n × d doubles (caller frees); replies and returns NULL when invalid. */
static double *input_tensor(struct tb_request *req, const cJSON *root, size_t d, size_t *ret_n) {
    static const char *const keys[] = {"inputs", "outputs", "id", "parameters", NULL};
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (tb_input_only_keys(req, root, keys, ""))
        return NULL;
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1) {
        tb_input_bad(req, NULL, "\"inputs\" must hold exactly one tensor");
        return NULL;
    }
    const cJSON *t = inputs->child;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "datatype");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    char msg[160];
    if (!cJSON_IsObject(t) || !cJSON_IsString(dtype) ||
        (strcmp(dtype->valuestring, "FP32") != 0 && strcmp(dtype->valuestring, "FP64") != 0)) {
        tb_input_bad(req, NULL, "the input tensor needs \"datatype\": \"FP32\" (or FP64)");
        return NULL;
    }
    double rows = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == 2 && cJSON_IsNumber(shape->child)
                      ? shape->child->valuedouble : -1;
    double cols = rows >= 0 && cJSON_IsNumber(shape->child->next) ? shape->child->next->valuedouble : -1;
    if (!(rows >= 1 && rows <= (double)req->limits->max_batch_rows && rows == floor(rows)) || cols != (double)d) {
        snprintf(msg, sizeof msg, "the input \"shape\" must be [N, %zu] with N from 1 to %zu (features in the model's "
                 "order: GET /v2/models/{name})", d, req->limits->max_batch_rows);
        tb_input_bad(req, NULL, msg);
        return NULL;
    }
    size_t n = (size_t)rows, at = 0;
    double *x = malloc(n * d * sizeof *x);
    if (!x) {
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (!cJSON_IsArray(data) || flatten(data, x, n * d, &at, 0) != (long)(n * d)) {
        free(x);
        snprintf(msg, sizeof msg, "the input \"data\" must hold %zu finite FP32 numbers (or null for missing)", n * d);
        tb_input_bad(req, NULL, msg);
        return NULL;
    }
    *ret_n = n;
    return x;
}

static cJSON *float_tensor(const char *name, const double *v, size_t n, size_t cols) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", "FP32");
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)n));
    if (cols > 1)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)cols));
    cJSON *data = cJSON_AddArrayToObject(t, "data");
    for (size_t i = 0; i < n * cols; i++)
        cJSON_AddItemToArray(data, tb_json_float((float)v[i]));
    return t;
}

enum MHD_Result tb_handle_v2_infer(struct tb_request *req) {
    const tb_served *m = model_or_404(req);
    cJSON *root = NULL;
    if (!m || tb_input_parse_object(req, &root))
        return req->result;
    const tb_predictor *p = m->predictor;
    size_t d = p->pipeline->n_features, n = 0, k = p->n_classes ? p->n_classes : 1;
    double *x = input_tensor(req, root, d, &n);
    if (!x) {
        cJSON_Delete(root);
        return req->result;
    }
    double *out = malloc(n * k * sizeof *out);
    if (!out) {
        free(x);
        cJSON_Delete(root);
        return tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
    }
    /* Inputs arrive raw in model order; the same value conventions as /v1 (-1 = unknown tempo...). */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            if (!isnan(x[i * d + j]))
                x[i * d + j] = tb_feature_normalize(p->pipeline->names[j], x[i * d + j]);
        tb_predictor_predict(p, x + i * d, out + i * k);
    }
    cJSON *o = cJSON_CreateObject();
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    cJSON_AddStringToObject(o, "model_name", m->name);
    cJSON_AddStringToObject(o, "model_version", version);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsString(id))
        cJSON_AddStringToObject(o, "id", id->valuestring);
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    if (p->n_classes) {
        cJSON_AddItemToArray(outputs, float_tensor("probabilities", out, n, k));
        cJSON *label = cJSON_CreateObject();
        cJSON_AddStringToObject(label, "name", "label");
        cJSON_AddStringToObject(label, "datatype", "BYTES");
        cJSON *shape = cJSON_AddArrayToObject(label, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)n));
        cJSON *data = cJSON_AddArrayToObject(label, "data");
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t c = 1; c < k; c++)
                if (out[i * k + c] > out[i * k + best])
                    best = c;
            cJSON_AddItemToArray(data, cJSON_CreateString(p->class_names[best]));
        }
        cJSON_AddItemToArray(outputs, label);
    } else {
        cJSON_AddItemToArray(outputs, float_tensor("popularity", out, n, 1));
    }
    free(x);
    free(out);
    cJSON_Delete(root);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}
