/* timbre-serve: loads the published models from the database and answers JSON over HTTP until
 * SIGINT or SIGTERM. SIGHUP (and, with --watch, a newly published model) reloads them off the
 * request path: a new state that loads and validates replaces the old one for new requests; one
 * that does not is logged and the old one keeps serving. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_keys.h"
#include "http.h"
#include "limits.h"
#include "log.h"
#include "slice.h"
#include "state.h"
#include "userdb.h"

static void usage(FILE *f) {
    fprintf(f, "usage: timbre-serve [--db timbre.db] [--listen 127.0.0.1:8080] [--threads N]\n"
               "                    [--max-connections N] [--max-connections-per-ip N] [--timeout S]\n"
               "                    [--log-level debug|info|warn|error] [--port-file FILE]\n"
               "                    [--cors-origin ORIGIN]... [--no-access-log] [--watch S]\n"
               "                    [--max-header-bytes N] [--max-body-bytes N] [--max-batch-body-bytes N]\n"
               "                    [--max-batch-rows N] [--max-k N] [--sched-slice-us N]\n"
               "                    [--request-timeout S] [--drain-timeout S] [--shed-after-ms N]\n"
               "                    [--rate-limit R] [--rate-burst N] [--trusted-proxy ADDR]...\n"
               "                    [--user-db FILE] [--max-tastes N] [--api-keys FILE]\n"
               "       timbre-serve --new-api-key predict[,write][,admin]\n"
               "\n"
               "  --db PATH            a model database file, or a snapshot directory written by\n"
               "                       timbre-train (its CURRENT snapshot, opened read-only and\n"
               "                       immutable; --watch follows the pointer)\n"
               "  --listen ADDR:PORT   numeric address and port; port 0 picks a free one\n"
               "                       (IPv6 as [::1]:8080)\n"
               "  --threads N          request threads (default: number of cores)\n"
               "  --port-file FILE     write the bound port there once listening\n"
               "  --cors-origin O      let web pages from origin O (e.g. https://app.example.com;\n"
               "                       repeatable or comma-separated; * for any) call the API;\n"
               "                       OPTIONS preflights are always answered\n"
               "  --no-access-log      no JSON line per request on stderr\n"
               "  --max-header-bytes N request line and headers, at most (default 8192; above,\n"
               "                       libmicrohttpd answers 414 for a long URL, 431 for long\n"
               "                       headers, with its own short HTML body, and closes)\n"
               "  --max-body-bytes N   request body of single-request routes (default 65536)\n"
               "  --max-batch-body-bytes N  request body of routes that take batches (default 1048576)\n"
               "  --max-batch-rows N   instances in a batch, rows of a V2 tensor (default 1000)\n"
               "  --max-k N            recommendations per request (default 100)\n"
               "  --sched-slice-us N   ask the scheduler for N-microsecond slices for the request\n"
               "                       threads (Linux 6.12+, 100 to 100000; 0: the kernel's default):\n"
               "                       a woken request thread runs sooner beside busy neighbours\n"
               "                       (default 100 where no seccomp filter is in place, else 0:\n"
               "                       a filter may kill the process on that call; give the flag\n"
               "                       when yours allows sched_setattr)\n"
               "  --max-connections N  open connections (default 1024); past it a new one gets a\n"
               "                       503 and is closed at once\n"
               "  --max-connections-per-ip N  per client address (default 256, 0: no limit); past\n"
               "                       it a 429 and a close\n"
               "  --timeout S          close a connection silent this long (keep-alive idle;\n"
               "                       default 30, 0: never)\n"
               "  --request-timeout S  a request must arrive whole, headers and body, within S\n"
               "                       seconds of its first byte, or it gets a 408 and the\n"
               "                       connection closes (default 10, 0: no deadline)\n"
               "  --drain-timeout S    on SIGTERM: stop listening, finish the requests already\n"
               "                       received (replies say Connection: close), /readyz 503,\n"
               "                       exit 0 within S seconds (default 20)\n"
               "  --shed-after-ms N    a request that waited N ms behind others on its thread gets\n"
               "                       503 with Retry-After at once (default 500, 0: never)\n"
               "  --rate-limit R       requests per second per client (token bucket; default 0:\n"
               "                       off); over it, 429 with Retry-After. Health checks and\n"
               "                       /metrics are exempt\n"
               "  --rate-burst N       the bucket's size (default: 2 x R, at least 1)\n"
               "  --trusted-proxy ADDR a proxy whose X-Forwarded-For names the client for the rate\n"
               "                       limit (repeatable; exact addresses, at most 16)\n"
               "  --user-db FILE       where POST /v1/taste with save_as keeps tastes (created if\n"
               "                       missing); each is owned by the secret its first save\n"
               "                       returns. Without it, saving is off (404)\n"
               "  --max-tastes N       tastes the user database keeps (default 10000)\n"
               "  --api-keys FILE      require an X-API-Key on every route but health checks, the\n"
               "                       page and /openapi.json; FILE holds 'SCOPES HASH' lines\n"
               "                       (scopes predict, write, admin), never the keys (default:\n"
               "                       no keys, every route open)\n"
               "  --new-api-key SCOPES print a new random key and its line for that file, and exit\n"
               "  --watch S            every S seconds, reload when the database holds a newly\n"
               "                       published model (SIGHUP reloads at any time)\n");
}

static int parse_uint(const char *flag, const char *s, unsigned long max, unsigned long *ret) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-') {
        tb_log(TB_LOG_ERROR, "%s: '%s' is not an integer from 0 to %lu", flag, s, max);
        return -1;
    }
    *ret = v;
    return 0;
}

/* "host:port" or "[v6]:port" into host (64 bytes) and port. */
static int parse_listen(const char *s, char *host, unsigned long *port) {
    const char *colon;
    size_t len;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        len = (size_t)(close - s - 1);
        if (len >= 64)
            return -1;
        memcpy(host, s + 1, len);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        len = (size_t)(colon - s);
        if (len >= 64)
            return -1;
        memcpy(host, s, len);
    }
    host[len] = '\0';
    return parse_uint("--listen port", colon + 1, 65535, port);
}

static void describe(const tb_server_state *s, const char *what) {
    tb_log(TB_LOG_INFO, "%s models%s%s: genre %s v%d, popularity %s v%d, recommend %s v%d (%zu catalog tracks)", what,
           s->snapshot.file[0] ? " of " : "", s->snapshot.file,
           s->genre ? s->genre->name : "-", s->genre ? s->genre->version : 0,
           s->popularity ? s->popularity->name : "-", s->popularity ? s->popularity->version : 0,
           s->recommend ? s->recommend->name : "-", s->recommend ? s->recommend->version : 0, s->catalog->n);
}

/* Loads and validates the database's published models off the request path, then swaps them in;
 * on any failure the current models keep serving. */
static int reload(tb_http *http, const char *db, const char *why) {
    tb_server_state *fresh = NULL;
    if (tb_server_state_load(db, &fresh) != TB_OK) {
        tb_log(TB_LOG_ERROR, "reload (%s) refused, still serving the previous models: %s", why, tb_error_message());
        tb_http_count_reload(http, 0);
        return 0;
    }
    describe(fresh, "reloaded");
    tb_http_swap_state(http, fresh);
    tb_http_count_reload(http, 1);
    return 1;
}

/* The served models' ids as tb_store_published_fingerprint writes them, and the database's now. */
typedef struct watch_check {
    char serving[256], stored[256];
    int failed;
} watch_check;

static void fingerprints(const tb_server_state *s, void *ctx) {
    watch_check *w = ctx;
    if (s->snapshot.file[0]) { /* a snapshot never changes: its directory's pointer does */
        tb_snapshot_ref now;
        w->failed = tb_snapshot_current(s->source, &now) != TB_OK;
        snprintf(w->serving, sizeof w->serving, "%s %s", s->snapshot.file, s->snapshot.sha256);
        snprintf(w->stored, sizeof w->stored, "%s %s", w->failed ? "" : now.file, w->failed ? "" : now.sha256);
        return;
    }
    /* In tb_store_tasks' order: the same formatter writes both sides. */
    const int64_t ids[TB_N_TASKS] = {s->genre ? s->genre->id : -1, s->multilabel ? s->multilabel->id : -1,
                                     s->popularity ? s->popularity->id : -1, s->recommend ? s->recommend->id : -1};
    w->failed = tb_store_format_fingerprint(ids, w->serving, sizeof w->serving) != TB_OK ||
                tb_store_published_fingerprint(s->store, w->stored, sizeof w->stored) != TB_OK;
}

/* Whether the database's published models differ from the ones being served and from a set that
 * already failed to load (retried only once the database changes again); fp gets the database's. */
static int newly_published(tb_http *http, const char *last_failed, char *fp) {
    watch_check now;
    tb_http_with_state(http, fingerprints, &now);
    if (now.failed) {
        tb_log(TB_LOG_WARN, "--watch: cannot read the database: %s", tb_error_message());
        return 0;
    }
    memcpy(fp, now.stored, sizeof now.stored);
    return strcmp(now.serving, fp) != 0 && strcmp(last_failed, fp) != 0;
}

int main(int argc, char **argv) {
    enum { O_DB = 256, O_LISTEN, O_THREADS, O_MAXCONN, O_PERIP, O_TIMEOUT, O_LOG, O_PORTFILE, O_CORS, O_NO_ACCESS, O_WATCH, O_HEADER, O_BODY, O_BATCH_BODY,
           O_BATCH_ROWS, O_MAX_K, O_SLICE, O_REQ_TIMEOUT, O_DRAIN, O_SHED, O_RATE, O_BURST, O_PROXY, O_USER_DB,
           O_MAX_TASTES, O_API_KEYS, O_NEW_KEY };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB}, {"listen", required_argument, 0, O_LISTEN},
        {"threads", required_argument, 0, O_THREADS}, {"max-connections", required_argument, 0, O_MAXCONN},
        {"max-connections-per-ip", required_argument, 0, O_PERIP}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"log-level", required_argument, 0, O_LOG}, {"port-file", required_argument, 0, O_PORTFILE},
        {"cors-origin", required_argument, 0, O_CORS}, {"no-access-log", no_argument, 0, O_NO_ACCESS},
        {"watch", required_argument, 0, O_WATCH}, {"max-header-bytes", required_argument, 0, O_HEADER},
        {"max-body-bytes", required_argument, 0, O_BODY}, {"max-batch-body-bytes", required_argument, 0, O_BATCH_BODY},
        {"max-batch-rows", required_argument, 0, O_BATCH_ROWS}, {"max-k", required_argument, 0, O_MAX_K},
        {"sched-slice-us", required_argument, 0, O_SLICE}, {"request-timeout", required_argument, 0, O_REQ_TIMEOUT},
        {"drain-timeout", required_argument, 0, O_DRAIN}, {"shed-after-ms", required_argument, 0, O_SHED},
        {"rate-limit", required_argument, 0, O_RATE}, {"rate-burst", required_argument, 0, O_BURST},
        {"trusted-proxy", required_argument, 0, O_PROXY}, {"user-db", required_argument, 0, O_USER_DB},
        {"max-tastes", required_argument, 0, O_MAX_TASTES}, {"api-keys", required_argument, 0, O_API_KEYS},
        {"new-api-key", required_argument, 0, O_NEW_KEY},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *db = "timbre.db", *listen = "127.0.0.1:8080", *port_file = NULL, *user_db = NULL, *api_keys_path = NULL;
    unsigned watch_s = 0, drain_s = TB_DEFAULT_DRAIN_TIMEOUT_S;
    const char *proxies[TB_MAX_TRUSTED_PROXIES];
    double burst = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    tb_http_options hopt = {
        .threads = cores > 0 ? (unsigned)cores : 2,
        .connection_limit = TB_DEFAULT_CONNECTION_LIMIT,
        .per_ip_limit = TB_DEFAULT_PER_IP_LIMIT,
        .timeout_s = TB_DEFAULT_CONNECTION_TIMEOUT_S,
        .request_timeout_s = TB_DEFAULT_REQUEST_TIMEOUT_S,
        .shed_after_ms = TB_DEFAULT_SHED_AFTER_MS,
        .trusted_proxies = proxies,
        .max_header_bytes = TB_DEFAULT_HEADER_BYTES,
        .access_log = 1,
        .slice_us = TB_DEFAULT_SLICE_US,
        .limits = TB_LIMITS_DEFAULT,
    };
    char cors[4096] = "";
    size_t cors_len = 0;
    unsigned long v;
    int o, slice_given = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_DB: db = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_THREADS:
            if (parse_uint("--threads", optarg, 1024, &v) || v == 0) {
                tb_log(TB_LOG_ERROR, "--threads must be from 1 to 1024");
                return 2;
            }
            hopt.threads = (unsigned)v;
            break;
        case O_MAXCONN:
            if (parse_uint("--max-connections", optarg, 100000, &v) || v == 0)
                return 2;
            hopt.connection_limit = (unsigned)v;
            break;
        case O_PERIP:
            if (parse_uint("--max-connections-per-ip", optarg, 100000, &v))
                return 2;
            hopt.per_ip_limit = (unsigned)v;
            break;
        case O_TIMEOUT:
            if (parse_uint("--timeout", optarg, 3600, &v))
                return 2;
            hopt.timeout_s = (unsigned)v;
            break;
        case O_LOG: {
            tb_log_level level;
            if (tb_log_parse_level(optarg, &level)) {
                tb_log(TB_LOG_ERROR, "--log-level: '%s' is not debug, info, warn or error", optarg);
                return 2;
            }
            tb_log_set_level(level);
            break;
        }
        case O_PORTFILE: port_file = optarg; break;
        case O_NO_ACCESS: hopt.access_log = 0; break;
        case O_HEADER:
            if (parse_uint("--max-header-bytes", optarg, 1 << 20, &v) || v < 4096) {
                tb_log(TB_LOG_ERROR, "--max-header-bytes must be from 4096 to 1048576");
                return 2;
            }
            hopt.max_header_bytes = (unsigned)v;
            break;
        case O_BODY:
        case O_BATCH_BODY:
            if (parse_uint(o == O_BODY ? "--max-body-bytes" : "--max-batch-body-bytes", optarg, 1UL << 30, &v) ||
                v < 1024) {
                tb_log(TB_LOG_ERROR, "body limits must be from 1024 bytes to 1 GiB");
                return 2;
            }
            *(o == O_BODY ? &hopt.limits.max_body : &hopt.limits.max_batch_body) = v;
            break;
        case O_BATCH_ROWS:
            if (parse_uint("--max-batch-rows", optarg, 1000000, &v) || v == 0) {
                tb_log(TB_LOG_ERROR, "--max-batch-rows must be from 1 to 1000000");
                return 2;
            }
            hopt.limits.max_batch_rows = v;
            break;
        case O_MAX_K:
            if (parse_uint("--max-k", optarg, TB_MAX_K_CEILING, &v) || v == 0) {
                tb_log(TB_LOG_ERROR, "--max-k must be from 1 to %d", TB_MAX_K_CEILING);
                return 2;
            }
            hopt.limits.max_k = v;
            break;
        case O_SLICE:
            if (parse_uint("--sched-slice-us", optarg, 100000, &v) || (v > 0 && v < 100)) {
                tb_log(TB_LOG_ERROR, "--sched-slice-us must be 0 or from 100 to 100000");
                return 2;
            }
            hopt.slice_us = (unsigned)v;
            slice_given = 1;
            break;
        case O_REQ_TIMEOUT:
            if (parse_uint("--request-timeout", optarg, 3600, &v))
                return 2;
            hopt.request_timeout_s = (unsigned)v;
            break;
        case O_DRAIN:
            if (parse_uint("--drain-timeout", optarg, 3600, &v))
                return 2;
            drain_s = (unsigned)v;
            break;
        case O_SHED:
            if (parse_uint("--shed-after-ms", optarg, 600000, &v))
                return 2;
            hopt.shed_after_ms = (unsigned)v;
            break;
        case O_RATE:
        case O_BURST: {
            char *end;
            errno = 0;
            double r = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(r >= 0 && r <= 1e6)) {
                tb_log(TB_LOG_ERROR, "%s: '%s' is not a number from 0 to 1000000", o == O_RATE ? "--rate-limit" : "--rate-burst",
                       optarg);
                return 2;
            }
            *(o == O_RATE ? &hopt.rate_limit : &burst) = r;
            break;
        }
        case O_PROXY: {
            char probe[16];
            if (hopt.n_trusted_proxies == TB_MAX_TRUSTED_PROXIES ||
                (inet_pton(AF_INET, optarg, probe) != 1 && inet_pton(AF_INET6, optarg, probe) != 1)) {
                tb_log(TB_LOG_ERROR, "--trusted-proxy '%s': give a numeric address such as 10.0.0.5 (at most %d)", optarg,
                       TB_MAX_TRUSTED_PROXIES);
                return 2;
            }
            proxies[hopt.n_trusted_proxies++] = optarg;
            break;
        }
        case O_USER_DB: user_db = optarg; break;
        case O_API_KEYS: api_keys_path = optarg; break;
        case O_NEW_KEY:
            if (tb_api_keys_new(optarg, stdout) != TB_OK) {
                tb_log(TB_LOG_ERROR, "%s", tb_error_message());
                return 2;
            }
            return 0;
        case O_MAX_TASTES:
            if (parse_uint("--max-tastes", optarg, 100000000, &v) || v == 0) {
                tb_log(TB_LOG_ERROR, "--max-tastes must be from 1 to 100000000");
                return 2;
            }
            hopt.limits.max_tastes = v;
            break;
        case O_WATCH:
            if (parse_uint("--watch", optarg, 86400, &v) || v == 0) {
                tb_log(TB_LOG_ERROR, "--watch must be from 1 to 86400 seconds");
                return 2;
            }
            watch_s = (unsigned)v;
            break;
        case O_CORS: {
            size_t n = strlen(optarg);
            if (n == 0 || strpbrk(optarg, " \t\r\n") || cors_len + n + 2 > sizeof cors) {
                tb_log(TB_LOG_ERROR, "--cors-origin '%s': give an origin such as https://app.example.com, or *",
                       optarg);
                return 2;
            }
            cors_len += (size_t)snprintf(cors + cors_len, sizeof cors - cors_len, "%s%s", cors_len ? "," : "", optarg);
            hopt.cors_origins = cors;
            break;
        }
        case 'h': usage(stdout); return 0;
        default:
            tb_log(TB_LOG_ERROR, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        tb_log(TB_LOG_ERROR, "unexpected argument '%s' (see --help)", argv[optind]);
        return 2;
    }
    char host[64];
    if (parse_listen(listen, host, &v)) {
        tb_log(TB_LOG_ERROR, "--listen '%s': expected ADDRESS:PORT such as 127.0.0.1:8080 or [::1]:8080", listen);
        return 2;
    }
    hopt.host = host;
    hopt.rate_burst = burst > 0 ? burst : hopt.rate_limit * 2 < 1 ? 1 : hopt.rate_limit * 2;
    hopt.port = (uint16_t)v;
    if (!slice_given && hopt.slice_us && tb_seccomp_filtered()) {
        tb_log(TB_LOG_INFO, "a seccomp filter is in place: the request threads keep the kernel's scheduler slice "
                            "(--sched-slice-us asks anyway)");
        hopt.slice_us = 0;
    }

    /* Block the signals before any thread starts so only the loop below receives them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Each request runs its BLAS calls on its own thread; a BLAS thread pool would only contend. */
    tb_index_blas_single_thread();
    tb_server_state *state = NULL;
    tb_status st = tb_server_state_load(db, &state);
    if (st != TB_OK) {
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        return 1;
    }
    if (!state->genre && !state->popularity && !state->recommend)
        tb_log(TB_LOG_WARN, "%s holds no published model: /readyz answers 503 until one is trained", db);
    describe(state, "serving");
    tb_userdb *users = NULL;
    tb_api_keys *keys = NULL;
    if ((user_db && (st = tb_userdb_open(user_db, &users)) != TB_OK) ||
        (api_keys_path && (st = tb_api_keys_load(api_keys_path, &keys)) != TB_OK)) {
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        tb_server_state_free(state);
        tb_userdb_close(users);
        return 1;
    }
    hopt.userdb = users;
    hopt.api_keys = keys;
    tb_http *http = NULL;
    if ((st = tb_http_start(&hopt, state, &http)) != TB_OK) { /* the server owns state from here */
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        tb_userdb_close(users);
        tb_api_keys_free(keys);
        return 1;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%u\n", tb_http_port(http)) < 0 || fclose(f) != 0) {
            tb_log(TB_LOG_ERROR, "cannot write --port-file %s", port_file);
            tb_http_stop(http);
            tb_userdb_close(users);
            tb_api_keys_free(keys);
            return 1;
        }
    }
    tb_log(TB_LOG_INFO, "listening on %s port %u with %u threads%s", host, tb_http_port(http), hopt.threads,
           watch_s ? "; watching the database for new models" : "");
    char last_failed[256] = "", fp[256];
    for (;;) {
        int sig;
        if (watch_s) {
            struct timespec wait = {(time_t)watch_s, 0};
            sig = sigtimedwait(&signals, NULL, &wait);
            if (sig < 0) {
                if (errno == EAGAIN && newly_published(http, last_failed, fp) &&
                    !reload(http, db, "a newly published model"))
                    memcpy(last_failed, fp, sizeof fp);
                continue;
            }
        } else if (sigwait(&signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            reload(http, db, "SIGHUP");
            continue;
        }
        tb_log(TB_LOG_INFO, "received %s: no longer listening; finishing the requests already received (at most %u s)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", drain_s);
        break;
    }
    if (!tb_http_drain(http, drain_s))
        tb_log(TB_LOG_WARN, "--drain-timeout (%u s) reached: closing the connections still open", drain_s);
    else
        tb_log(TB_LOG_INFO, "drained: every connection closed");
    tb_http_stop(http);
    tb_userdb_close(users);
    tb_api_keys_free(keys);
    return 0;
}
