/* Per-request context: created on a request's first callback, freed in libmicrohttpd's completion
 * callback and nowhere else. */
#ifndef TB_SERVER_REQUEST_H
#define TB_SERVER_REQUEST_H

#include <microhttpd.h>
#include <stddef.h>

#include "route.h"
#include "state.h"

struct tb_metrics;
struct tb_loop;
struct tb_userdb;

/* Kept under 1 KiB: glibc serves smaller blocks from its fast lists, and a larger one would sweep
 * them (malloc_consolidate) on every request. */
typedef struct tb_request {
    struct MHD_Connection *conn;
    const tb_server_state *state;
    struct tb_metrics *metrics;
    void *snapshot;        /* the served state this request holds (http.c) */
    const struct tb_limits *limits;
    size_t max_body;       /* this route's body limit, 0 when it takes none */
    const tb_route *route;
    char param[160];       /* the {param} path segment, if the route has one (ids are ≤ 128 bytes) */
    char allow[64];        /* Allow header for a 405, else "" */
    char *body;            /* NUL-terminated request body */
    size_t body_len, body_cap;
    int body_too_large;    /* over max_body: read on and dropped (limits.h), then a 413 */
    size_t dropped;        /* bytes of it read and dropped */
    int replied;
    enum MHD_Result result; /* of queueing the reply; what the access handler returns */
    int defer;             /* on the first callback: a reply waits in `pending` until the request is read */
    struct MHD_Response *pending; /* that reply (owned here until queued) */
    int closing;           /* the reply says Connection: close (bad framing, a drain) */
    unsigned retry_after;  /* seconds for a Retry-After header, 0 for none */
    const struct tb_loop *loop; /* its draining flag */
    struct tb_userdb *userdb;   /* saved tastes (--user-db), NULL without */
    unsigned scopes;            /* what the request's API key grants (all when keys are off) */
    unsigned status;       /* HTTP status sent, for the access log */
    size_t bytes;          /* response body bytes, for the access log */
    double start;          /* monotonic seconds at the first callback */
    double wall_start;     /* epoch seconds at the first callback, for the access log */
    char method[16];       /* for the access log */
    char path[200];        /* for the access log; longer paths are cut */
    char forwarded_for[128]; /* X-Forwarded-For as received, "" when absent */
    char cors_origin[200]; /* Access-Control-Allow-Origin to send ("" = none; longer origins get none) */
    int v2_errors;         /* Open Inference Protocol route: errors as {"error": "message"} */
    char error_prefix[32]; /* "instances[3]" while a batch instance runs: errors name it */
} tb_request;

#endif
