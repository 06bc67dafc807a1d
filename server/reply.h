/* JSON replies: every response body the server sends goes through here, so errors have one
 * shape: {"error": {"code", "message", "field"?}}. */
#ifndef TB_SERVER_REPLY_H
#define TB_SERVER_REPLY_H

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "json_number.h"
#include "status.h"

struct tb_request;

/* Sends `body` (consumed: deleted here) with `http_status`. */
enum MHD_Result tb_reply_json(struct tb_request *req, unsigned http_status, cJSON *body);
/* The one error reply: {"error": {"code", "message", "field"?}} (V2 routes: {"error": message}),
 * its HTTP status and code from the status list (core/status.h); field may be NULL. */
enum MHD_Result tb_reply_fail(struct tb_request *req, tb_status st, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 204 answer to a CORS preflight: methods allowed on the path (the Allow header is req->allow). */
enum MHD_Result tb_reply_preflight(struct tb_request *req, const char *methods);
/* 200 with a static JSON text (not copied: it must outlive the response). */
enum MHD_Result tb_reply_raw_json(struct tb_request *req, const char *text);
/* Sends malloc'd text (consumed) with this Content-Type. */
enum MHD_Result tb_reply_text(struct tb_request *req, unsigned http_status, const char *content_type, char *text);
/* Error reply for a tb_status, with the thread's tb_error_message() and tb_error_field(). */
enum MHD_Result tb_reply_status(struct tb_request *req, tb_status st);

#endif
