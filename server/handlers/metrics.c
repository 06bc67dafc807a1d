/* GET /metrics: Prometheus text exposition (server/prometheus.c). */
#include <stdlib.h>

#include "../loop.h"
#include "../prometheus.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

enum MHD_Result tb_handle_metrics(struct tb_request *req) {
    char *text = tb_metrics_render(req->metrics, req->state, req->loop ? tb_loop_connections(req->loop) : 0);
    if (!text)
        return tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
    return tb_reply_text(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
}
