/* stderr logger used by timbre-train and timbre-serve. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static tb_log_level g_level = TB_LOG_INFO;
static const char *const g_names[] = {"debug", "info", "warn", "error"};

void tb_log_set_level(tb_log_level level) { g_level = level; }

int tb_log_parse_level(const char *name, tb_log_level *ret_level) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, g_names[i]) == 0) {
            *ret_level = (tb_log_level)i;
            return 0;
        }
    }
    return -1;
}

void tb_log(tb_log_level level, const char *fmt, ...) {
    if (level < g_level)
        return;
    char msg[2048], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: %s\n", stamp, g_names[level], msg);
}

tb_status tb_log_level_option(void *base, const char *arg) {
    (void)base;
    tb_log_level level;
    if (tb_log_parse_level(arg, &level))
        return tb_error(TB_INVALID, "--log-level: '%s' is not debug, info, warn or error", arg);
    tb_log_set_level(level);
    return TB_OK;
}
