/* Status codes shared by every layer: one generated list, so a code, its HTTP status and its
 * message never drift apart. Codes are never reused or renumbered. */
#ifndef TB_STATUS_H
#define TB_STATUS_H

#include <stdarg.h>

/* X(NAME, http_status, "short machine code", "default message") */
#define TB_STATUS_MAP(X)                                                              \
    X(OK, 200, "ok", "success")                                                       \
    X(NOMEM, 500, "out_of_memory", "out of memory")                                   \
    X(IO, 500, "io_error", "input/output error")                                      \
    X(PARSE, 400, "bad_request", "malformed input")                                   \
    X(INVALID, 400, "bad_request", "invalid argument")                                \
    X(NOT_FOUND, 404, "not_found", "not found")                                       \
    X(CORRUPT, 500, "corrupt", "corrupt data")                                        \
    X(VERSION, 500, "version_mismatch", "unsupported format or schema version")       \
    X(DB, 500, "database_error", "database error")                                    \
    X(LIMIT, 413, "too_large", "limit exceeded")                                      \
    X(METHOD, 405, "method_not_allowed", "method not allowed")                        \
    X(MEDIA_TYPE, 415, "unsupported_media_type", "unsupported media type")            \
    X(UNAVAILABLE, 503, "unavailable", "service unavailable")                         \
    X(EOF, 500, "eof", "end of input")                                                \
    X(INTERNAL, 500, "internal", "internal error")                                    \
    X(UNAUTHORIZED, 401, "unauthorized", "credentials required")                      \
    X(FORBIDDEN, 403, "forbidden", "credentials do not grant this")                   \
    X(FULL, 507, "storage_full", "storage limit reached")                             \
    X(RATE_LIMITED, 429, "rate_limited", "over the client's rate limit")             \
    X(HEADERS_TOO_LARGE, 431, "headers_too_large", "request headers too large")       \
    X(BAD_FRAMING, 400, "bad_framing", "ambiguous request framing")                   \
    X(OVERLOADED, 503, "overloaded", "overloaded: retry shortly")                     \
    X(DRAINING, 503, "draining", "shutting down")

typedef enum tb_status {
#define TB_STATUS_ENUM(name, http, code, msg) TB_##name,
    TB_STATUS_MAP(TB_STATUS_ENUM)
#undef TB_STATUS_ENUM
} tb_status;

/* Default message for a status ("invalid argument"). Never NULL. */
const char *tb_strerror(tb_status s);
/* HTTP status code a server should answer with for this status. */
int tb_status_http(tb_status s);
/* Short machine-readable code ("bad_request") for JSON error bodies. */
const char *tb_status_code(tb_status s);

/* Detail of the most recent error on this thread ("row 1043: column tempo: '?' is not a number").
 * tb_error() formats it and returns s, so a failing function ends with `return tb_error(...)`.
 * tb_error_field() names the offending input field (or "" when none); both live until the next
 * tb_error on this thread. Thread-safe: the buffers are thread-local. */
tb_status tb_error(tb_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tb_status tb_error_with_field(tb_status s, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to the current message, keeping its field; returns s. */
tb_status tb_error_prefix(tb_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tb_error_message(void);
const char *tb_error_field(void);
void tb_error_clear(void);

#endif
