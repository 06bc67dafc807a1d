/* GET /healthz (the process answers) and GET /readyz (a model is loaded and can serve). */
#include <cjson/cJSON.h>

#include "../loop.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

enum MHD_Result tb_handle_healthz(struct tb_request *req) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

enum MHD_Result tb_handle_readyz(struct tb_request *req) {
    const tb_server_state *s = req->state;
    if (req->loop && tb_loop_draining(req->loop))
        return tb_reply_fail(req, TB_DRAINING, NULL,
                              "the server is shutting down: it finishes the requests it has and takes no more");
    if (!tb_server_state_any(s))
        return tb_reply_fail(req, TB_UNAVAILABLE, NULL,
                              "no published model is loaded (train one with timbre-train)");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ready");
    cJSON *models = cJSON_AddObjectToObject(o, "models");
    for (int t = 0; t < TB_N_TASKS; t++)
        cJSON_AddBoolToObject(models, tb_store_tasks[t], s->served[t] != NULL);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}
