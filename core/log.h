/* Leveled logging to stderr for the binaries (library code never logs; it returns errors). */
#ifndef TB_LOG_H
#define TB_LOG_H

#include "status.h"

typedef enum tb_log_level { TB_LOG_DEBUG, TB_LOG_INFO, TB_LOG_WARN, TB_LOG_ERROR } tb_log_level;

/* Messages below the threshold are dropped. Default: TB_LOG_INFO. Not thread-safe to change
 * while other threads log; set it once at start-up. */
void tb_log_set_level(tb_log_level level);
/* Parses "debug|info|warn|error"; returns 0 on success, -1 for an unknown name. */
int tb_log_parse_level(const char *name, tb_log_level *ret_level);
/* --log-level as an option-table parser (core/opt_table.h): sets the level, or returns an error
 * naming the flag. base is unused. */
tb_status tb_log_level_option(void *base, const char *arg);
/* One line "2026-11-22T10:00:00Z info: message" on stderr; thread-safe (one fprintf per line). */
void tb_log(tb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
