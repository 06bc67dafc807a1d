/* Status strings and the thread-local error detail buffer. */
#include "status.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char tls_message[1024];
static _Thread_local char tls_field[128];

const char *tb_strerror(tb_status s) {
    switch (s) {
#define TB_STATUS_MSG(name, http, code, msg) \
    case TB_##name:                          \
        return msg;
        TB_STATUS_MAP(TB_STATUS_MSG)
#undef TB_STATUS_MSG
    }
    return "unknown status";
}

int tb_status_http(tb_status s) {
    switch (s) {
#define TB_STATUS_HTTP(name, http, code, msg) \
    case TB_##name:                           \
        return http;
        TB_STATUS_MAP(TB_STATUS_HTTP)
#undef TB_STATUS_HTTP
    }
    return 500;
}

const char *tb_status_code(tb_status s) {
    switch (s) {
#define TB_STATUS_CODE(name, http, code, msg) \
    case TB_##name:                           \
        return code;
        TB_STATUS_MAP(TB_STATUS_CODE)
#undef TB_STATUS_CODE
    }
    return "internal";
}

/* Formats aside first: an argument may be tb_error_message() itself (re-raising with a new status). */
static void set_message(const char *fmt, va_list ap) {
    char text[sizeof tls_message];
    vsnprintf(text, sizeof text, fmt, ap);
    memcpy(tls_message, text, strlen(text) + 1);
}

tb_status tb_error(tb_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    tls_field[0] = '\0';
    return s;
}

tb_status tb_error_with_field(tb_status s, const char *field, const char *fmt, ...) {
    char f[sizeof tls_field];
    snprintf(f, sizeof f, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    memcpy(tls_field, f, strlen(f) + 1);
    return s;
}

tb_status tb_error_prefix(tb_status s, const char *fmt, ...) {
    char joined[sizeof tls_message];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, sizeof joined, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof joined ? (size_t)n : sizeof joined - 1;
    const char *old = tls_message[0] ? tls_message : tb_strerror(s);
    /* "prefix: old", cut to the buffer; built aside because old may be tls_message itself. */
    if (len + 2 < sizeof joined) {
        memcpy(joined + len, ": ", 2);
        len += 2;
        size_t rest = strlen(old);
        if (rest > sizeof joined - 1 - len)
            rest = sizeof joined - 1 - len;
        memcpy(joined + len, old, rest);
        len += rest;
    }
    joined[len] = '\0';
    memcpy(tls_message, joined, len + 1);
    return s;
}

const char *tb_error_message(void) { return tls_message; }
const char *tb_error_field(void) { return tls_field; }

void tb_error_clear(void) {
    tls_message[0] = '\0';
    tls_field[0] = '\0';
}
