/* JSON response helpers. */
#include "reply.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "request.h"
#include "utf8.h"

/* Queues resp with the common headers and records the outcome in req; consumes resp. */
static enum MHD_Result queue_typed(tb_request *req, unsigned http_status, struct MHD_Response *resp,
                                   const char *content_type) {
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (req->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (req->cors_origin[0]) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, req->cors_origin);
        if (strcmp(req->cors_origin, "*") != 0)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    }
    if (http_status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"timbre\"");
    if (req->retry_after) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%u", req->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    if (req->closing || (req->loop && tb_loop_draining(req->loop)))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    req->replied = 1;
    req->status = http_status;
    if (req->defer) { /* libmicrohttpd closes a connection whose reply is queued before its body is read */
        req->pending = resp;
        return req->result = MHD_YES;
    }
    enum MHD_Result r = MHD_queue_response(req->conn, http_status, resp);
    MHD_destroy_response(resp);
    req->result = r;
    return r;
}

static enum MHD_Result queue(tb_request *req, unsigned http_status, struct MHD_Response *resp) {
    return queue_typed(req, http_status, resp, http_status == MHD_HTTP_NO_CONTENT ? NULL : "application/json");
}

/* Sends text (malloc'd; freed by libmicrohttpd after sending, or here on failure). */
static enum MHD_Result send_text(tb_request *req, unsigned http_status, char *text) {
    req->bytes = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(req->bytes, text, free);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    return queue(req, http_status, resp);
}

enum MHD_Result tb_reply_json(tb_request *req, unsigned http_status, cJSON *body) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
    return send_text(req, http_status, text);
}

enum MHD_Result tb_reply_fail(tb_request *req, tb_status st, const char *field, const char *fmt, ...) {
    unsigned http_status = (unsigned)tb_status_http(st);
    const char *code = tb_status_code(st);
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    char prefixed[1100], full_field[160];
    if (req->error_prefix[0]) {
        /* A batch instance: "instances[3].tempo" and "instances[3]: <message>". */
        snprintf(prefixed, sizeof prefixed, "%s: %s", req->error_prefix, message);
        if (field && field[0])
            snprintf(full_field, sizeof full_field, "%s.%.120s", req->error_prefix, field);
        else
            snprintf(full_field, sizeof full_field, "%s", req->error_prefix);
        field = full_field;
    }
    /* Messages quote what clients sent (a key, an id, a query parameter) and %.64s may cut a
     * character in two: the reply must stay valid UTF-8 whatever the bytes. */
    char clean_message[sizeof prefixed + 64], clean_field[sizeof full_field + 64];
    tb_utf8_sanitize(clean_message, sizeof clean_message, req->error_prefix[0] ? prefixed : message);
    tb_utf8_sanitize(clean_field, sizeof clean_field, field ? field : "");
    cJSON *root = cJSON_CreateObject();
    if (req->v2_errors) {
        cJSON_AddStringToObject(root, "error", clean_message);
    } else {
        cJSON *err = cJSON_AddObjectToObject(root, "error");
        cJSON_AddStringToObject(err, "code", code);
        cJSON_AddStringToObject(err, "message", clean_message);
        if (clean_field[0])
            cJSON_AddStringToObject(err, "field", clean_field);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        /* Last resort that needs no allocation by us. */
        static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        return queue(req, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
    }
    return send_text(req, http_status, text);
}

enum MHD_Result tb_reply_preflight(tb_request *req, const char *methods) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS, methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    req->bytes = 0;
    return queue(req, MHD_HTTP_NO_CONTENT, resp);
}

enum MHD_Result tb_reply_raw_json(tb_request *req, const char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    req->bytes = strlen(text);
    return queue(req, MHD_HTTP_OK, resp);
}

enum MHD_Result tb_reply_text(tb_request *req, unsigned http_status, const char *content_type, char *text) {
    req->bytes = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(req->bytes, text, free);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    return queue_typed(req, http_status, resp, content_type);
}

enum MHD_Result tb_reply_status(tb_request *req, tb_status st) {
    const char *msg = tb_error_message();
    return tb_reply_fail(req, st, tb_error_field(), "%s", msg[0] ? msg : tb_strerror(st));
}
