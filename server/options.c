/* timbre-serve's option table (core/opt_table.h drives getopt_long, range checks and --help). */
#include "options.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_keys.h"
#include "clients.h"
#include "log.h"
#include "opt_table.h"

#define F(field) offsetof(tb_serve_config, field)
#define ROW(flag, arg, type, offset, min, max, help) {flag, arg, type, offset, min, max, help, NULL, 0, NULL}
#define CUSTOM(flag, arg, help, parse) {flag, arg, TB_OPT_CUSTOM, 0, 0, 0, help, parse, 0, NULL}

static tb_status parse_cors_origin(void *base, const char *arg) {
    tb_serve_config *c = base;
    size_t n = strlen(arg), used = strlen(c->cors);
    if (n == 0 || strpbrk(arg, " \t\r\n") || used + n + 2 > sizeof c->cors)
        return tb_error(TB_INVALID, "--cors-origin '%s': give an origin such as https://app.example.com, or *", arg);
    snprintf(c->cors + used, sizeof c->cors - used, "%s%s", used ? "," : "", arg);
    c->http.cors_origins = c->cors;
    return TB_OK;
}

static tb_status parse_trusted_proxy(void *base, const char *arg) {
    tb_serve_config *c = base;
    tb_client_addr probe; /* the parser the server reads them with */
    if (c->http.n_trusted_proxies == TB_MAX_TRUSTED_PROXIES || tb_client_addr_parse(arg, strlen(arg), &probe) != 0)
        return tb_error(TB_INVALID, "--trusted-proxy '%s': give a numeric address such as 10.0.0.5 (at most %d)", arg,
                        TB_MAX_TRUSTED_PROXIES);
    c->proxies[c->http.n_trusted_proxies++] = arg;
    return TB_OK;
}

static tb_status parse_slice(void *base, const char *arg) {
    tb_serve_config *c = base;
    static const tb_opt range = ROW("sched-slice-us", "N", TB_OPT_UINT, F(http.slice_us), 0, 100000, "");
    if (tb_opt_set(&range, c, arg) != TB_OK || (c->http.slice_us > 0 && c->http.slice_us < 100))
        return tb_error(TB_INVALID, "--sched-slice-us: '%s' is not 0 or an integer from 100 to 100000", arg);
    c->slice_given = 1;
    return TB_OK;
}


static const tb_opt rows[] = {
    ROW("db", "PATH", TB_OPT_STRING, F(db), 0, 0,
     "a model database file, or a snapshot directory written by\ntimbre-train (its CURRENT snapshot, opened read-only and\n"
     "immutable; --watch follows the pointer; default timbre.db)"),
    ROW("listen", "ADDR:PORT", TB_OPT_STRING, F(listen), 0, 0,
     "numeric address and port; port 0 picks a free one\n(IPv6 as [::1]:8080; default 127.0.0.1:8080)"),
    ROW("threads", "N", TB_OPT_UINT, F(http.threads), 1, 1024, "request threads (default: number of cores)"),
    ROW("port-file", "FILE", TB_OPT_STRING, F(port_file), 0, 0, "write the bound port there once listening"),
    CUSTOM("log-level", "L", "debug | info | warn | error (default info)", tb_log_level_option),
    CUSTOM("cors-origin", "O",
     "let web pages from origin O (e.g. https://app.example.com;\nrepeatable or comma-separated; * for any) call the "
     "API;\nOPTIONS preflights are always answered",
     parse_cors_origin),
    ROW("no-access-log", NULL, TB_OPT_OFF, F(http.access_log), 0, 0, "no JSON line per request on stderr"),
    ROW("max-header-bytes", "N", TB_OPT_UINT, F(http.max_header_bytes), 4096, 1 << 20,
     "request line and headers, at most (default 8192): over it a JSON\n431 and a close; past the connection's buffer "
     "(the limit +\n8 KiB) libmicrohttpd answers 414 or 431 itself, in HTML"),
    ROW("max-body-bytes", "N", TB_OPT_SIZE, F(http.limits.max_body), 1024, 1 << 30,
     "request body of single-request routes (default 65536)"),
    ROW("max-batch-body-bytes", "N", TB_OPT_SIZE, F(http.limits.max_batch_body), 1024, 1 << 30,
     "request body of routes that take batches (default 1048576)"),
    ROW("max-batch-rows", "N", TB_OPT_SIZE, F(http.limits.max_batch_rows), 1, 1000000,
     "instances in a batch, rows of a V2 tensor (default 1000)"),
    ROW("max-k", "N", TB_OPT_SIZE, F(http.limits.max_k), 1, TB_MAX_K_CEILING, "recommendations per request (default 100)"),
    CUSTOM("sched-slice-us", "N",
     "ask the scheduler for N-microsecond slices for the request\nthreads (Linux 6.12+, 100 to 100000; 0: the kernel's "
     "default):\na woken request thread runs sooner beside busy neighbours\n(default 100 where no seccomp filter is in "
     "place, else 0:\na filter may kill the process on that call; give the flag\nwhen yours allows sched_setattr)",
     parse_slice),
    ROW("max-connections", "N", TB_OPT_UINT, F(http.connection_limit), 1, 100000,
     "open connections (default 1024); past it a new one gets a\n503 and is closed at once"),
    ROW("max-connections-per-ip", "N", TB_OPT_UINT, F(http.per_ip_limit), 0, 100000,
     "per client address (default 256, 0: no limit); past\nit a 429 and a close"),
    ROW("timeout", "S", TB_OPT_UINT, F(http.timeout_s), 0, 3600,
     "close a connection silent this long (keep-alive idle;\ndefault 30, 0: never)"),
    ROW("request-timeout", "S", TB_OPT_UINT, F(http.request_timeout_s), 0, 3600,
     "a request must arrive whole, headers and body, within S\nseconds of its first byte, or it gets a 408 and the\n"
     "connection closes (default 10, 0: no deadline)"),
    ROW("drain-timeout", "S", TB_OPT_UINT, F(drain_s), 0, 3600,
     "on SIGTERM: stop listening, finish the requests already\nreceived (replies say Connection: close), /readyz 503,\n"
     "exit 0 within S seconds (default 20)"),
    ROW("shed-after-ms", "N", TB_OPT_UINT, F(http.shed_after_ms), 0, 600000,
     "a request that waited N ms behind others on its thread gets\n503 with Retry-After at once (default 500, 0: never)"),
    ROW("rate-limit", "R", TB_OPT_DOUBLE, F(http.rate_limit), 0, 1e6,
     "requests per second per client (token bucket; default 0:\noff); over it, 429 with Retry-After. Health checks "
     "and\n/metrics are exempt"),
    ROW("rate-burst", "N", TB_OPT_DOUBLE, F(rate_burst), 0, 1e6, "the bucket's size (default: 2 x R, at least 1)"),
    CUSTOM("trusted-proxy", "ADDR",
     "a proxy whose X-Forwarded-For names the client for the rate\nlimit (repeatable; exact addresses, at most 16)",
     parse_trusted_proxy),
    ROW("user-db", "FILE", TB_OPT_STRING, F(user_db), 0, 0,
     "where POST /v1/taste with save_as keeps tastes (created if\nmissing); each is owned by the secret its first save\n"
     "returns. Without it, saving is off (404)"),
    ROW("max-tastes", "N", TB_OPT_SIZE, F(http.limits.max_tastes), 1, 100000000,
     "tastes the user database keeps (default 10000)"),
    ROW("api-keys", "FILE", TB_OPT_STRING, F(api_keys), 0, 0,
     "require an X-API-Key on every route but health checks, the\npage and /openapi.json; FILE holds 'SCOPES HASH' "
     "lines\n(scopes predict, write, admin), never the keys (default:\nno keys, every route open)"),
    ROW("new-api-key", "SCOPES", TB_OPT_STRING, F(new_api_key), 0, 0,
     "print a new random key and its line for that file, and exit"),
    ROW("memory-budget-mb", "N", TB_OPT_SIZE, F(memory_budget_mb), 1, (size_t)1 << 30,
     "the most the process may hold: a recommendation index that\nwould load past it (at start or on reload) is "
     "refused with\nits size, and the models already served keep serving\n(default: the cgroup's memory.max, else "
     "physical memory)"),
    ROW("exact-index", NULL, TB_OPT_ON, F(exact_index), 0, 0,
     "leave a published HNSW graph unloaded: every recommendation\nscans the index exactly (less memory, recall 1)"),
    ROW("hnsw-ef", "N", TB_OPT_SIZE, F(hnsw_ef), 1, 100000,
     "breadth of an HNSW search: higher finds more of the exact\ntop k, slower (default: the one trained with the graph,\n"
     "128)"),
    ROW("watch", "S", TB_OPT_UINT, F(watch_s), 1, 86400,
     "every S seconds, reload when the database holds a newly\npublished model (SIGHUP reloads at any time)"),
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static const tb_opt_group group = {NULL, rows, N_ROWS, NULL};

void tb_serve_usage(FILE *f) {
    fputs("usage: timbre-serve [options]\n"
          "       timbre-serve --new-api-key predict[,write][,admin]\n\n",
          f);
    tb_opt_usage(f, &group);
}

int tb_serve_parse_args(int argc, char **argv, tb_serve_config *c) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    memset(c, 0, sizeof *c);
    c->db = "timbre.db";
    c->listen = "127.0.0.1:8080";
    c->drain_s = TB_DEFAULT_DRAIN_TIMEOUT_S;
    c->http = (tb_http_options){
        .threads = cores > 0 ? (unsigned)cores : 2,
        .connection_limit = TB_DEFAULT_CONNECTION_LIMIT,
        .per_ip_limit = TB_DEFAULT_PER_IP_LIMIT,
        .timeout_s = TB_DEFAULT_CONNECTION_TIMEOUT_S,
        .request_timeout_s = TB_DEFAULT_REQUEST_TIMEOUT_S,
        .shed_after_ms = TB_DEFAULT_SHED_AFTER_MS,
        .trusted_proxies = c->proxies,
        .max_header_bytes = TB_DEFAULT_HEADER_BYTES,
        .access_log = 1,
        .slice_us = TB_DEFAULT_SLICE_US,
        .limits = TB_LIMITS_DEFAULT,
    };
    tb_opt_group mine = group;
    mine.base = c;
    int help;
    if (tb_opt_parse(argc, argv, &mine, 1, &help) != TB_OK) {
        tb_log(TB_LOG_ERROR, "%s", tb_error_message());
        return -1;
    }
    if (help) {
        tb_serve_usage(stdout);
        return 1;
    }
    if (c->new_api_key) {
        if (tb_api_keys_new(c->new_api_key, stdout) != TB_OK) {
            tb_log(TB_LOG_ERROR, "%s", tb_error_message());
            return -1;
        }
        return 1;
    }
    double rate = c->http.rate_limit;
    c->http.rate_burst = c->rate_burst > 0 ? c->rate_burst : rate * 2 < 1 ? 1 : rate * 2;
    return 0;
}
