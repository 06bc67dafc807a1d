/* GET /v1/models: the loaded models and index, their inputs, classes and evaluation metrics. */
#include <cjson/cJSON.h>

#include "../reply.h"
#include "../request.h"
#include "handlers.h"

static cJSON *model_json(const tb_server_state *s, const tb_served *m, int t) {
    const tb_predictor *p = m->predictor;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", m->task);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "version", m->version);
    cJSON_AddNumberToObject(o, "id", (double)m->id);
    cJSON_AddStringToObject(o, "kind", m->kind);
    cJSON_AddStringToObject(o, "created_at", m->created_at);
    cJSON_AddBoolToObject(o, "pinned", s->pinned[t]);
    cJSON *features = cJSON_AddArrayToObject(o, "features");
    for (size_t j = 0; j < p->pipeline->n_features; j++)
        cJSON_AddItemToArray(features, cJSON_CreateString(p->pipeline->names[j]));
    if (p->n_classes) {
        cJSON *classes = cJSON_AddArrayToObject(o, "classes");
        for (size_t k = 0; k < p->n_classes; k++)
            cJSON_AddItemToArray(classes, cJSON_CreateString(p->class_names[k]));
    }
    cJSON *metrics = cJSON_Parse(m->metrics);
    cJSON_AddItemToObject(o, "metrics", metrics ? metrics : cJSON_CreateObject());
    return o;
}

static cJSON *index_json(const tb_server_state *s, const tb_served *x, int t) {
    const tb_pipeline *pl = x->embedder->pipeline;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", x->task);
    cJSON_AddStringToObject(o, "name", x->name);
    cJSON_AddNumberToObject(o, "version", x->version);
    cJSON_AddNumberToObject(o, "id", (double)x->id);
    cJSON_AddStringToObject(o, "kind", x->kind);
    cJSON_AddStringToObject(o, "created_at", x->created_at);
    cJSON_AddBoolToObject(o, "pinned", s->pinned[t]);
    cJSON *features = cJSON_AddArrayToObject(o, "features");
    for (size_t j = 0; j < pl->n_features; j++)
        cJSON_AddItemToArray(features, cJSON_CreateString(pl->names[j]));
    cJSON_AddNumberToObject(o, "tracks", (double)x->index->n);
    cJSON_AddNumberToObject(o, "dim", (double)x->index->dim);
    cJSON *ix = cJSON_AddObjectToObject(o, "index");
    cJSON_AddStringToObject(ix, "kind", x->ann ? "hnsw" : "exact");
    if (x->ann) {
        cJSON_AddNumberToObject(ix, "m", (double)tb_ann_get_params(x->ann)->m);
        cJSON_AddNumberToObject(ix, "ef_search", (double)tb_ann_get_params(x->ann)->ef_search);
        cJSON_AddNumberToObject(ix, "bytes", (double)tb_ann_bytes(x->ann));
    }
    cJSON *metrics = cJSON_Parse(x->metrics);
    cJSON_AddItemToObject(o, "metrics", metrics ? metrics : cJSON_CreateObject());
    return o;
}

enum MHD_Result tb_handle_models(struct tb_request *req) {
    const tb_server_state *s = req->state;
    cJSON *o = cJSON_CreateObject();
    if (s->snapshot.file[0]) {
        cJSON *snap = cJSON_AddObjectToObject(o, "snapshot");
        cJSON_AddStringToObject(snap, "file", s->snapshot.file);
        cJSON_AddStringToObject(snap, "sha256", s->snapshot.sha256);
    } else {
        cJSON_AddNullToObject(o, "snapshot");
    }
    cJSON *list = cJSON_AddArrayToObject(o, "models");
    for (int t = 0; t < TB_N_TASKS; t++)
        if (s->served[t])
            cJSON_AddItemToArray(list, s->served[t]->index ? index_json(s, s->served[t], t) : model_json(s, s->served[t], t));
    return tb_reply_json(req, MHD_HTTP_OK, o);
}
