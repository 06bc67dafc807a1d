/* libmicrohttpd glue. The access handler is called several times per request: first with no
 * body (framing, route and header checks, rate limit, CORS, OPTIONS preflights), then with body
 * chunks (accumulated up to the route's limit, past which the rest is discarded and a 413 sent),
 * then once more to run the handler. A reply decided on the first call waits for that last call,
 * the body read and dropped, so the connection stays open (libmicrohttpd closes one whose reply
 * is queued before its request is read). The completion callback writes the access log line.
 * Threads, sockets and connection limits are server/loop.c's. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "access_log.h"
#include "api_keys.h"
#include "clients.h"
#include "clock.h"
#include "framing.h"
#include "log.h"
#include "loop.h"
#include "prometheus.h"
#include "reply.h"
#include "request.h"
#include "route.h"
#include "slice.h"
#include "utf8.h"

/* A served state with the count of its users: the server's "current" pointer is one, each request
 * that began on it another. */
typedef struct snapshot {
    tb_server_state *state;
    atomic_long users;
} snapshot;

struct tb_http {
    tb_loop *loop;
    tb_clients *clients;
    /* Guards current: requests take it shared for a few instructions (never blocking one another,
     * where a mutex sent one request in 16 to sleep in futex when both threads met); a reload
     * takes it exclusive to swap. */
    pthread_rwlock_t lock;
    snapshot *current;
    uint16_t port;
    char *cors_origins; /* copy of the option, or NULL */
    int access_log;
    tb_limits limits;
    struct tb_userdb *userdb;
    const tb_api_keys *api_keys;
    unsigned max_header_bytes;
    double shed_after_s;     /* 0: never shed */
    tb_client_addr trusted[TB_MAX_TRUSTED_PROXIES];
    size_t n_trusted;
    tb_metrics *metrics;
};

_Static_assert(sizeof(tb_request) < 1000, "tb_request stays under glibc's large-block size (request.h)");

static snapshot *acquire(tb_http *h) {
    pthread_rwlock_rdlock(&h->lock);
    snapshot *s = h->current;
    atomic_fetch_add_explicit(&s->users, 1, memory_order_relaxed); /* current holds one: never 0 here */
    pthread_rwlock_unlock(&h->lock);
    return s;
}

static void release(snapshot *s) {
    if (atomic_fetch_sub_explicit(&s->users, 1, memory_order_acq_rel) == 1) {
        tb_server_state_free(s->state);
        free(s);
    }
}

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The Access-Control-Allow-Origin value for this request's Origin: "*" when any origin is allowed,
 * the origin itself when listed, "" otherwise (no CORS headers: the browser refuses the reply). */
static void cors_origin(const char *allowed, const char *origin, char *out, size_t out_size) {
    out[0] = '\0';
    if (!allowed || !origin || !origin[0] || strlen(origin) >= out_size)
        return;
    if (strcmp(allowed, "*") == 0) {
        snprintf(out, out_size, "*");
        return;
    }
    size_t n = strlen(origin);
    for (const char *p = allowed; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, origin, n) == 0) {
            memcpy(out, origin, n + 1);
            return;
        }
        if (!end)
            break;
        p = end + 1;
    }
}

/* "application/json", optionally with parameters ("; charset=utf-8"). */
static int is_json_content_type(const char *ct) {
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum MHD_Result too_large(tb_request *req) {
    return tb_reply_fail(req, TB_LIMIT, NULL,
                          "request body exceeds the limit of %zu bytes", req->max_body);
}

/* The client a rate limit counts against: the peer, or whom a trusted proxy forwards for. */
static tb_client_addr rate_client(const tb_http *h, struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    tb_client_addr peer;
    if (!info || tb_client_addr_from_sockaddr(info->client_addr, &peer) != 0)
        memset(&peer, 0, sizeof peer);
    const char *xff = h->n_trusted ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For") : NULL;
    return tb_client_from_forwarded(&peer, xff, h->trusted, h->n_trusted);
}

/* Checks that need no route and close the connection: framing (400), header size (431). Returns 1
 * when it replied. */
static int connection_checks(const tb_http *h, struct MHD_Connection *conn, const char *version, tb_request *req) {
    const char *bad = tb_framing_check(conn, version);
    if (bad) {
        req->closing = 1;
        tb_metrics_count(h->metrics, TB_EVENT_FRAMING);
        tb_reply_fail(req, TB_BAD_FRAMING, NULL,
                       "ambiguous request framing: %s (RFC 9112); the connection is closed", bad);
        return 1;
    }
    const union MHD_ConnectionInfo *size = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (size && size->header_size > h->max_header_bytes) {
        req->closing = 1;
        tb_reply_fail(req, TB_HEADERS_TOO_LARGE, NULL,
                       "request line and headers hold %zu bytes, over the limit of %u (--max-header-bytes)",
                       size->header_size, h->max_header_bytes);
        return 1;
    }
    return 0;
}

static enum MHD_Result first_call(const tb_http *h, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, tb_request *req) {
    char allow[sizeof req->allow];
    size_t method_len = strnlen(method, sizeof req->method - 1); /* a copy, not a printf, every request */
    memcpy(req->method, method, method_len);
    req->method[method_len] = '\0';
    req->v2_errors = strncmp(url, "/v2/", 4) == 0;
    if (h->access_log) { /* kept for the log line only, which must stay valid UTF-8 JSON */
        tb_utf8_sanitize(req->path, sizeof req->path, url);
        const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
        tb_utf8_sanitize(req->forwarded_for, sizeof req->forwarded_for, xff ? xff : "");
    }
    cors_origin(h->cors_origins, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"), req->cors_origin,
                sizeof req->cors_origin);
    if (connection_checks(h, conn, version, req))
        return req->result;
    const char *len_header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = len_header ? strtoull(len_header, NULL, 10) : 0;
    /* A client that sent "Expect: 100-continue" waits for our word before sending the body: an
     * error then goes out at once (and the connection closes) rather than after a body we would
     * drop; so does one whose declared body is more than we read to drop. */
    req->defer = !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) &&
                 declared <= TB_MAX_DROPPED_BODY_BYTES;
    tb_route_match m = tb_route_find(method, url, &req->route, req->param, sizeof req->param, allow, sizeof allow);
    unsigned retry;
    if (tb_clients_rate_limited(h->clients) && !(m == TB_ROUTE_FOUND && req->route->probe)) {
        tb_client_addr who = rate_client(h, conn);
        if (tb_clients_take(h->clients, &who, tb_now_seconds(), &retry)) {
            req->retry_after = retry;
            req->route = NULL;
            tb_metrics_count(h->metrics, TB_EVENT_RATE_LIMITED);
            return tb_reply_fail(req, TB_RATE_LIMITED, NULL,
                                  "this client is over its rate limit (--rate-limit); retry after %u s", retry);
        }
    }
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
        /* A CORS preflight (or a client asking what a path takes): the path's methods. */
        req->route = NULL;
        if (m == TB_ROUTE_NO_PATH)
            return tb_reply_fail(req, TB_NOT_FOUND, NULL, "no route %.200s", url);
        size_t n = strlen(allow); /* no row takes OPTIONS: the path's methods */
        if (n + sizeof ", OPTIONS" <= sizeof req->allow) { /* the table's method lists are short */
            memcpy(req->allow, allow, n);
            memcpy(req->allow + n, ", OPTIONS", sizeof ", OPTIONS");
        }
        return tb_reply_preflight(req, req->allow);
    }
    if (m == TB_ROUTE_NO_PATH)
        return tb_reply_fail(req, TB_NOT_FOUND, NULL, "no route %.200s", url);
    req->scopes = TB_SCOPE_PREDICT | TB_SCOPE_WRITE | TB_SCOPE_ADMIN;
    if (h->api_keys && m == TB_ROUTE_FOUND && req->route->scope != TB_SCOPE_NONE) {
        const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
        req->scopes = tb_api_keys_scopes(h->api_keys, key);
        if (!req->scopes) {
            req->route = NULL;
            return tb_reply_fail(req, TB_UNAUTHORIZED, NULL,
                                  key ? "unknown API key" : "this server needs an API key: send it as X-API-Key");
        }
        if (!(req->scopes & req->route->scope)) {
            const char *need = req->route->scope == TB_SCOPE_WRITE   ? "write"
                               : req->route->scope == TB_SCOPE_ADMIN ? "admin"
                                                                     : "predict";
            req->route = NULL;
            return tb_reply_fail(req, TB_FORBIDDEN, NULL, "this API key lacks the %s scope", need);
        }
    }
    if (m == TB_ROUTE_NO_METHOD) {
        memcpy(req->allow, allow, sizeof allow);
        return tb_reply_fail(req, TB_METHOD, NULL,
                              "%.16s is not allowed on %.200s (allowed: %s)", method, url, allow);
    }
    req->max_body = req->route->body == TB_BODY_BATCH    ? h->limits.max_batch_body
                    : req->route->body == TB_BODY_SINGLE ? h->limits.max_body
                                                         : 0;
    if (req->max_body == 0) {
        if (declared > 0)
            return tb_reply_fail(req, TB_INVALID, NULL, "%s %s takes no request body",
                                  method, req->route->path);
        return MHD_YES;
    }
    if (!is_json_content_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return tb_reply_fail(req, TB_MEDIA_TYPE, NULL,
                              "send the body as Content-Type: application/json");
    if (declared > req->max_body) {
        /* Read and drop a body of moderate size, then answer (limits.h says why). */
        if (req->defer) {
            req->body_too_large = 1;
            return MHD_YES;
        }
        return too_large(req);
    }
    return MHD_YES;
}

/* Queues the reply the first call decided on, now that the request has been read. */
static enum MHD_Result send_pending(tb_request *req) {
    enum MHD_Result r = MHD_queue_response(req->conn, req->status, req->pending);
    MHD_destroy_response(req->pending);
    req->pending = NULL;
    return req->result = r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    tb_http *h = cls;
    tb_request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->conn = conn;
        req->snapshot = acquire(h);
        req->state = ((snapshot *)req->snapshot)->state;
        req->metrics = h->metrics;
        req->limits = &h->limits;
        req->loop = h->loop;
        req->userdb = h->userdb;
        tb_metrics_start(h->metrics);
        req->start = tb_now_seconds();
        req->wall_start = wall_seconds();
        *con_cls = req;
        enum MHD_Result r = first_call(h, conn, url, method, version, req);
        req->defer = 0;
        return r;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->replied) { /* a reply waits: drop the body, up to the cap */
            req->dropped += n;
            return req->pending && req->dropped > TB_MAX_DROPPED_BODY_BYTES ? send_pending(req) : MHD_YES;
        }
        if (!req->body_too_large && req->body_len + n > req->max_body) {
            req->body_too_large = 1;
            req->dropped = req->body_len;
            free(req->body);
            req->body = NULL;
            req->body_len = req->body_cap = 0;
        }
        if (req->body_too_large) { /* drop it; past the cap, answer now and let the connection close */
            req->dropped += n;
            return req->dropped > TB_MAX_DROPPED_BODY_BYTES ? too_large(req) : MHD_YES;
        }
        if (req->body_len + n + 1 > req->body_cap) {
            size_t cap = req->body_cap ? req->body_cap : 512; /* under 1 KiB: see request.h */
            while (cap < req->body_len + n + 1)
                cap *= 2;
            char *p = realloc(req->body, cap);
            if (!p)
                return MHD_NO;
            req->body = p;
            req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, upload_data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
    }
    if (req->pending)
        return send_pending(req);
    if (req->replied)
        return req->result;
    if (!req->route) /* a preflight whose reply could not be queued */
        return MHD_NO;
    if (req->body_too_large)
        return too_large(req);
    if (h->shed_after_s > 0 && !req->route->probe && tb_loop_queued_seconds() > h->shed_after_s) {
        req->retry_after = 1;
        tb_metrics_count(h->metrics, TB_EVENT_SHED_OVERLOAD);
        return tb_reply_fail(req, TB_OVERLOADED, NULL,
                              "the server is overloaded (this request waited %.0f ms, over --shed-after-ms %.0f); "
                              "retry shortly",
                              tb_loop_queued_seconds() * 1e3, h->shed_after_s * 1e3);
    }
    enum MHD_Result r = req->route->handler(req);
    if (!req->replied)
        return tb_reply_fail(req, TB_INTERNAL, NULL, "handler sent no reply");
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    tb_http *h = cls;
    tb_request *req = *con_cls;
    if (!req)
        return;
    double seconds = tb_now_seconds() - req->start;
    tb_metrics_finish(h->metrics, req->route ? (long)(req->route - tb_routes) : -1, req->status, seconds);
    if (h->access_log) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        tb_access_log_write(info ? info->client_addr : NULL, req, seconds * 1e6,
                            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    }
    if (req->pending) /* the client left before its request was read */
        MHD_destroy_response(req->pending);
    release(req->snapshot);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

tb_status tb_http_start(const tb_http_options *opt, tb_server_state *state, tb_http **ret) {
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    socklen_t addr_len;
    if (inet_pton(AF_INET, opt->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(opt->port);
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, opt->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(opt->port);
        addr_len = sizeof *v6;
    } else {
        tb_server_state_free(state);
        return tb_error(TB_INVALID, "--listen: '%s' is not a numeric IPv4 or IPv6 address", opt->host);
    }
    tb_http *h = calloc(1, sizeof *h);
    if (!h || !(h->current = calloc(1, sizeof *h->current))) {
        free(h);
        tb_server_state_free(state);
        return tb_error(TB_NOMEM, "out of memory");
    }
    pthread_rwlock_init(&h->lock, NULL);
    h->current->state = state;
    h->current->users = 1;
    h->access_log = opt->access_log;
    h->limits = opt->limits;
    h->max_header_bytes = opt->max_header_bytes;
    h->userdb = opt->userdb;
    h->api_keys = opt->api_keys;
    h->shed_after_s = opt->shed_after_ms * 1e-3;
    for (size_t i = 0; i < opt->n_trusted_proxies && i < TB_MAX_TRUSTED_PROXIES; i++)
        if (tb_client_addr_parse(opt->trusted_proxies[i], strlen(opt->trusted_proxies[i]), &h->trusted[h->n_trusted]) == 0)
            h->n_trusted++;
    if ((opt->cors_origins && !(h->cors_origins = strdup(opt->cors_origins))) || !(h->metrics = tb_metrics_new()) ||
        !(h->clients = tb_clients_new(opt->per_ip_limit, opt->rate_limit, opt->rate_burst, TB_MAX_RATE_CLIENTS))) {
        tb_http_stop(h);
        return tb_error(TB_NOMEM, "out of memory");
    }
    /* The request threads inherit this thread's slice; this thread gets the default back. */
    int slice = opt->slice_us ? tb_thread_slice_set(opt->slice_us) : TB_SLICE_REFUSED, slice_set = slice == 0;
    if (slice == TB_SLICE_REFUSED && opt->slice_us)
        tb_log(TB_LOG_INFO, "the kernel refused a %u us scheduler slice: the request threads keep its default",
               opt->slice_us);
    else if (slice == TB_SLICE_OTHER_POLICY)
        tb_log(TB_LOG_INFO, "the server runs under a scheduling policy other than SCHED_OTHER: no slice asked");
    tb_loop_options lo = {
        .addr = (struct sockaddr *)&addr,
        .addr_len = addr_len,
        .threads = opt->threads,
        .connection_limit = opt->connection_limit,
        .idle_timeout_s = opt->timeout_s,
        .request_timeout_s = opt->request_timeout_s,
        /* The per-connection buffer holds the request line and headers, their index and the
         * reply's headers: room above --max-header-bytes, which the first call checks itself
         * (a buffer of exactly the limit cut 7.9 KB of headers off silently). libmicrohttpd
         * clears it for every request, so no larger than that. */
        .memory_limit = (size_t)opt->max_header_bytes + TB_HEADER_BUFFER_SLACK,
        .on_request = on_request,
        .on_completed = on_completed,
        .cls = h,
        .clients = h->clients,
        .metrics = h->metrics,
    };
    tb_status st = tb_loop_start(&lo, &h->loop);
    if (slice_set)
        tb_thread_slice_set(0);
    if (st != TB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tb_error_message());
        tb_http_stop(h);
        return tb_error(st, "%s port %u: %s", opt->host, opt->port, msg);
    }
    h->port = tb_loop_port(h->loop);
    *ret = h;
    return TB_OK;
}

uint16_t tb_http_port(const tb_http *h) { return h->port; }

int tb_http_drain(tb_http *h, double timeout_s) { return tb_loop_drain(h->loop, timeout_s); }

tb_http *tb_http_stop(tb_http *h) {
    if (!h)
        return NULL;
    h->loop = tb_loop_free(h->loop); /* closes what is left; its requests release their snapshots */
    release(h->current);
    pthread_rwlock_destroy(&h->lock);
    free(h->cors_origins);
    tb_metrics_free(h->metrics);
    tb_clients_free(h->clients);
    free(h);
    return NULL;
}

void tb_http_swap_state(tb_http *h, tb_server_state *state) {
    snapshot *fresh = calloc(1, sizeof *fresh);
    if (!fresh) { /* keep serving the old state rather than fail the server */
        tb_server_state_free(state);
        return;
    }
    fresh->state = state;
    fresh->users = 1;
    pthread_rwlock_wrlock(&h->lock);
    snapshot *old = h->current;
    h->current = fresh;
    pthread_rwlock_unlock(&h->lock);
    release(old);
}

void tb_http_with_state(tb_http *h, void (*fn)(const tb_server_state *state, void *ctx), void *ctx) {
    snapshot *s = acquire(h);
    fn(s->state, ctx);
    release(s);
}

void tb_http_count_reload(tb_http *h, int ok) { tb_metrics_count_reload(h->metrics, ok); }
