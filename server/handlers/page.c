/* GET /: the web page (server/api/index.html, embedded at build time): search a track, see its
 * genre probabilities, its conformal genre set for an α slider, its popularity with an interval,
 * and similar tracks to click on. It calls the same JSON routes as any client. */
#include <stdlib.h>
#include <string.h>

#include "../reply.h"
#include "../request.h"
#include "handlers.h"

enum MHD_Result tb_handle_page(struct tb_request *req) {
    char *copy = strdup(tb_index_html);
    if (!copy)
        return tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
    return tb_reply_text(req, MHD_HTTP_OK, "text/html; charset=utf-8", copy);
}
