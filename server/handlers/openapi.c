/* GET /openapi.json: the OpenAPI 3 document of this API, embedded at build time from
 * server/api/openapi.json (tests/unit/test_routes.c keeps it and the route table in step). */
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

enum MHD_Result tb_handle_openapi(struct tb_request *req) { return tb_reply_raw_json(req, tb_openapi_json); }
