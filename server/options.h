/* timbre-serve's command line: one table of options drives parsing, range checks and --help. */
#ifndef TB_SERVER_OPTIONS_H
#define TB_SERVER_OPTIONS_H

#include <stdio.h>

#include "http.h"
#include "limits.h"

typedef struct tb_serve_config {
    const char *db, *listen, *port_file, *user_db, *api_keys, *new_api_key;
    unsigned watch_s, drain_s;
    int slice_given;             /* --sched-slice-us was given (else dropped under a seccomp filter) */
    char cors[4096];             /* the --cors-origin values, comma-joined */
    const char *proxies[TB_MAX_TRUSTED_PROXIES];
    double rate_burst;           /* 0: twice the rate */
    size_t memory_budget_mb;     /* 0: the cgroup's limit or physical memory */
    int exact_index;             /* --exact-index */
    size_t hnsw_ef;              /* --hnsw-ef; 0: the graph's own */
    tb_http_options http;        /* host and port are set from listen by the caller */
} tb_serve_config;

/* Defaults, then argv. 0: run; 1: --help or --new-api-key was handled (exit 0); -1: a bad
 * argument, logged naming the flag and its range (exit 2). */
int tb_serve_parse_args(int argc, char **argv, tb_serve_config *c);
void tb_serve_usage(FILE *f);

#endif
