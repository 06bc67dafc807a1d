/* The libmicrohttpd daemon: request contexts, body accumulation under the route's limit, and
 * dispatch through the routing table. */
#ifndef TB_SERVER_HTTP_H
#define TB_SERVER_HTTP_H

#include <stdint.h>

#include "limits.h"
#include "state.h"
#include "status.h"

typedef struct tb_http_options {
    const char *host;        /* numeric IPv4 or IPv6 address */
    uint16_t port;           /* 0: any free port (see tb_http_port) */
    unsigned threads;        /* thread-pool size */
    unsigned connection_limit, per_ip_limit;
    unsigned timeout_s;         /* keep-alive and inactivity: a silent connection is closed */
    unsigned request_timeout_s; /* a whole request, headers and body, from its first byte (0: none) */
    unsigned shed_after_ms;     /* a request that waited longer behind others gets a 503 (0: never) */
    double rate_limit, rate_burst; /* requests per second and bucket size per client (0: off) */
    const char *const *trusted_proxies; /* addresses whose X-Forwarded-For names the client */
    size_t n_trusted_proxies;
    unsigned max_header_bytes; /* request line + headers (libmicrohttpd's per-connection buffer) */
    const char *cors_origins; /* NULL: no CORS headers; "*": any origin; else comma-separated origins */
    int access_log;           /* 1: one JSON line per request on stderr */
    unsigned slice_us;        /* request threads' scheduler slice request (server/slice.h); 0: the kernel's */
    tb_limits limits;
    struct tb_userdb *userdb; /* saved tastes (--user-db); NULL without. Not owned */
    const struct tb_api_keys *api_keys; /* --api-keys; NULL: every route open. Not owned */
} tb_http_options;

typedef struct tb_http tb_http;

/* Starts serving `state`, which the server then owns (also on failure). */
tb_status tb_http_start(const tb_http_options *opt, tb_server_state *state, tb_http **ret);
/* Serves `state` (owned from here) to every request that starts from now on; requests already
 * running finish on the state they began with, which is freed when the last of them ends. */
void tb_http_swap_state(tb_http *h, tb_server_state *state);
/* Calls fn with the current state (kept alive for the call; fn must not keep it). */
void tb_http_with_state(tb_http *h, void (*fn)(const tb_server_state *state, void *ctx), void *ctx);
/* Counts a reload attempt for GET /metrics. */
void tb_http_count_reload(tb_http *h, int ok);
/* The port actually bound. */
uint16_t tb_http_port(const tb_http *h);
/* Stops accepting (the kernel refuses new connections), lets every request already received
 * get its whole reply, closes idle connections; returns 1 when all finished within timeout_s. */
int tb_http_drain(tb_http *h, double timeout_s);
/* Stops, closing whatever is still open, and frees (the state too). Accepts NULL. */
tb_http *tb_http_stop(tb_http *h);

#endif
