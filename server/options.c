/* The option table: {name, argument, kind, field, range, help} rows drive getopt_long, the range
 * checks and the --help text, so a new flag is one row. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_keys.h"
#include "clients.h"
#include "log.h"

typedef enum kind {
    K_UINT,    /* unsigned, min..max */
    K_SIZE,    /* size_t, min..max */
    K_DOUBLE,  /* double, min..max */
    K_STRING,  /* const char * */
    K_OFF,     /* no argument: sets an int field to 0 */
    K_SPECIAL, /* parsed by special() below */
} kind;

typedef struct row {
    const char *name, *arg; /* arg NULL: the flag takes none */
    kind kind;
    size_t offset; /* of the field in tb_serve_config */
    double min, max;
    const char *help; /* lines after the first are indented under it */
} row;

#define F(field) offsetof(tb_serve_config, field)

static const row rows[] = {
    {"db", "PATH", K_STRING, F(db), 0, 0,
     "a model database file, or a snapshot directory written by\ntimbre-train (its CURRENT snapshot, opened read-only and\n"
     "immutable; --watch follows the pointer; default timbre.db)"},
    {"listen", "ADDR:PORT", K_STRING, F(listen), 0, 0,
     "numeric address and port; port 0 picks a free one\n(IPv6 as [::1]:8080; default 127.0.0.1:8080)"},
    {"threads", "N", K_UINT, F(http.threads), 1, 1024, "request threads (default: number of cores)"},
    {"port-file", "FILE", K_STRING, F(port_file), 0, 0, "write the bound port there once listening"},
    {"log-level", "L", K_SPECIAL, 0, 0, 0, "debug | info | warn | error (default info)"},
    {"cors-origin", "O", K_SPECIAL, 0, 0, 0,
     "let web pages from origin O (e.g. https://app.example.com;\nrepeatable or comma-separated; * for any) call the "
     "API;\nOPTIONS preflights are always answered"},
    {"no-access-log", NULL, K_OFF, F(http.access_log), 0, 0, "no JSON line per request on stderr"},
    {"max-header-bytes", "N", K_UINT, F(http.max_header_bytes), 4096, 1 << 20,
     "request line and headers, at most (default 8192): over it a JSON\n431 and a close; past the connection's buffer "
     "(the limit +\n8 KiB) libmicrohttpd answers 414 or 431 itself, in HTML"},
    {"max-body-bytes", "N", K_SIZE, F(http.limits.max_body), 1024, 1 << 30,
     "request body of single-request routes (default 65536)"},
    {"max-batch-body-bytes", "N", K_SIZE, F(http.limits.max_batch_body), 1024, 1 << 30,
     "request body of routes that take batches (default 1048576)"},
    {"max-batch-rows", "N", K_SIZE, F(http.limits.max_batch_rows), 1, 1000000,
     "instances in a batch, rows of a V2 tensor (default 1000)"},
    {"max-k", "N", K_SIZE, F(http.limits.max_k), 1, TB_MAX_K_CEILING, "recommendations per request (default 100)"},
    {"sched-slice-us", "N", K_SPECIAL, 0, 0, 0,
     "ask the scheduler for N-microsecond slices for the request\nthreads (Linux 6.12+, 100 to 100000; 0: the kernel's "
     "default):\na woken request thread runs sooner beside busy neighbours\n(default 100 where no seccomp filter is in "
     "place, else 0:\na filter may kill the process on that call; give the flag\nwhen yours allows sched_setattr)"},
    {"max-connections", "N", K_UINT, F(http.connection_limit), 1, 100000,
     "open connections (default 1024); past it a new one gets a\n503 and is closed at once"},
    {"max-connections-per-ip", "N", K_UINT, F(http.per_ip_limit), 0, 100000,
     "per client address (default 256, 0: no limit); past\nit a 429 and a close"},
    {"timeout", "S", K_UINT, F(http.timeout_s), 0, 3600,
     "close a connection silent this long (keep-alive idle;\ndefault 30, 0: never)"},
    {"request-timeout", "S", K_UINT, F(http.request_timeout_s), 0, 3600,
     "a request must arrive whole, headers and body, within S\nseconds of its first byte, or it gets a 408 and the\n"
     "connection closes (default 10, 0: no deadline)"},
    {"drain-timeout", "S", K_UINT, F(drain_s), 0, 3600,
     "on SIGTERM: stop listening, finish the requests already\nreceived (replies say Connection: close), /readyz 503,\n"
     "exit 0 within S seconds (default 20)"},
    {"shed-after-ms", "N", K_UINT, F(http.shed_after_ms), 0, 600000,
     "a request that waited N ms behind others on its thread gets\n503 with Retry-After at once (default 500, 0: never)"},
    {"rate-limit", "R", K_DOUBLE, F(http.rate_limit), 0, 1e6,
     "requests per second per client (token bucket; default 0:\noff); over it, 429 with Retry-After. Health checks "
     "and\n/metrics are exempt"},
    {"rate-burst", "N", K_DOUBLE, F(rate_burst), 0, 1e6, "the bucket's size (default: 2 x R, at least 1)"},
    {"trusted-proxy", "ADDR", K_SPECIAL, 0, 0, 0,
     "a proxy whose X-Forwarded-For names the client for the rate\nlimit (repeatable; exact addresses, at most 16)"},
    {"user-db", "FILE", K_STRING, F(user_db), 0, 0,
     "where POST /v1/taste with save_as keeps tastes (created if\nmissing); each is owned by the secret its first save\n"
     "returns. Without it, saving is off (404)"},
    {"max-tastes", "N", K_SIZE, F(http.limits.max_tastes), 1, 100000000,
     "tastes the user database keeps (default 10000)"},
    {"api-keys", "FILE", K_STRING, F(api_keys), 0, 0,
     "require an X-API-Key on every route but health checks, the\npage and /openapi.json; FILE holds 'SCOPES HASH' "
     "lines\n(scopes predict, write, admin), never the keys (default:\nno keys, every route open)"},
    {"new-api-key", "SCOPES", K_SPECIAL, 0, 0, 0, "print a new random key and its line for that file, and exit"},
    {"watch", "S", K_UINT, F(watch_s), 1, 86400,
     "every S seconds, reload when the database holds a newly\npublished model (SIGHUP reloads at any time)"},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

void tb_serve_usage(FILE *f) {
    fputs("usage: timbre-serve [options]\n"
          "       timbre-serve --new-api-key predict[,write][,admin]\n\n",
          f);
    for (size_t i = 0; i < N_ROWS; i++) {
        char head[64];
        snprintf(head, sizeof head, "  --%s%s%s", rows[i].name, rows[i].arg ? " " : "", rows[i].arg ? rows[i].arg : "");
        fputs(head, f);
        size_t col = strlen(head);
        const char *h = rows[i].help;
        for (int first = 1; *h; first = 0) {
            const char *nl = strchr(h, '\n');
            size_t n = nl ? (size_t)(nl - h) : strlen(h);
            size_t pad = first ? (col < 23 ? 23 - col : 2) : 23;
            if (!first)
                fputc('\n', f);
            fprintf(f, "%*s%.*s", (int)pad, "", (int)n, h);
            h += n + (nl != NULL);
        }
        fputc('\n', f);
    }
}

static int number(const row *r, const char *arg, double *ret) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    int integral = r->kind != K_DOUBLE;
    if (errno || end == arg || *end || !(v >= r->min && v <= r->max) || (integral && (v != (double)(long long)v ||
                                                                                      strpbrk(arg, ".eE-+")))) {
        tb_log(TB_LOG_ERROR, "--%s: '%s' is not %s from %.0f to %.0f", r->name, arg, integral ? "an integer" : "a number",
               r->min, r->max);
        return -1;
    }
    *ret = v;
    return 0;
}

static int special(const row *r, const char *arg, tb_serve_config *c) {
    if (strcmp(r->name, "log-level") == 0) {
        tb_log_level level;
        if (tb_log_parse_level(arg, &level)) {
            tb_log(TB_LOG_ERROR, "--log-level: '%s' is not debug, info, warn or error", arg);
            return -1;
        }
        tb_log_set_level(level);
    } else if (strcmp(r->name, "cors-origin") == 0) {
        size_t n = strlen(arg), used = strlen(c->cors);
        if (n == 0 || strpbrk(arg, " \t\r\n") || used + n + 2 > sizeof c->cors) {
            tb_log(TB_LOG_ERROR, "--cors-origin '%s': give an origin such as https://app.example.com, or *", arg);
            return -1;
        }
        snprintf(c->cors + used, sizeof c->cors - used, "%s%s", used ? "," : "", arg);
        c->http.cors_origins = c->cors;
    } else if (strcmp(r->name, "trusted-proxy") == 0) {
        tb_client_addr probe; /* the parser the server reads them with */
        if (c->http.n_trusted_proxies == TB_MAX_TRUSTED_PROXIES || tb_client_addr_parse(arg, strlen(arg), &probe) != 0) {
            tb_log(TB_LOG_ERROR, "--trusted-proxy '%s': give a numeric address such as 10.0.0.5 (at most %d)", arg,
                   TB_MAX_TRUSTED_PROXIES);
            return -1;
        }
        c->proxies[c->http.n_trusted_proxies++] = arg;
    } else if (strcmp(r->name, "sched-slice-us") == 0) {
        row range = {r->name, r->arg, K_UINT, 0, 0, 100000, NULL};
        double v;
        if (number(&range, arg, &v) || (v > 0 && v < 100)) {
            if (v > 0 && v < 100)
                tb_log(TB_LOG_ERROR, "--sched-slice-us must be 0 or from 100 to 100000");
            return -1;
        }
        c->http.slice_us = (unsigned)v;
        c->slice_given = 1;
    } else { /* new-api-key */
        c->new_api_key = arg;
    }
    return 0;
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
    struct option opts[N_ROWS + 2];
    for (size_t i = 0; i < N_ROWS; i++)
        opts[i] = (struct option){rows[i].name, rows[i].arg ? required_argument : no_argument, 0, (int)(256 + i)};
    opts[N_ROWS] = (struct option){"help", no_argument, 0, 'h'};
    opts[N_ROWS + 1] = (struct option){0, 0, 0, 0};
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            tb_serve_usage(stdout);
            return 1;
        }
        if (o < 256 || o >= 256 + (int)N_ROWS) {
            tb_log(TB_LOG_ERROR, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
        const row *r = &rows[o - 256];
        char *field = (char *)c + r->offset;
        double v;
        switch (r->kind) {
        case K_UINT:
        case K_SIZE:
        case K_DOUBLE:
            if (number(r, optarg, &v))
                return -1;
            if (r->kind == K_UINT)
                *(unsigned *)field = (unsigned)v;
            else if (r->kind == K_SIZE)
                *(size_t *)field = (size_t)v;
            else
                *(double *)field = v;
            break;
        case K_STRING: *(const char **)field = optarg; break;
        case K_OFF: *(int *)field = 0; break;
        case K_SPECIAL:
            if (special(r, optarg, c))
                return -1;
            break;
        }
    }
    if (optind < argc) {
        tb_log(TB_LOG_ERROR, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
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
