/* The routing table: one row a route, {method, path, handler, body}. The dispatcher checks
 * path (404), method (405 with Allow), content type (415) and body size (413) before a handler
 * runs; paths may hold one "{param}" segment. */
#ifndef TB_SERVER_ROUTE_H
#define TB_SERVER_ROUTE_H

#include <microhttpd.h>
#include <stddef.h>

struct tb_request;
typedef enum MHD_Result (*tb_handler)(struct tb_request *req);

/* Which body a route takes; its size limit is the operator's (tb_limits). */
typedef enum tb_body_kind { TB_BODY_NONE, TB_BODY_SINGLE, TB_BODY_BATCH } tb_body_kind;

/* What an API key must grant to call a route (--api-keys; without it every route is open). */
typedef enum tb_scope {
    TB_SCOPE_NONE = 0,    /* health checks, the page, the API document: never a key */
    TB_SCOPE_PREDICT = 1, /* predictions, recommendations, models, tracks */
    TB_SCOPE_WRITE = 2,   /* saving and deleting tastes */
    TB_SCOPE_ADMIN = 4,   /* /metrics */
} tb_scope;

typedef struct tb_route {
    const char *method;
    const char *path;     /* "/v1/genre", or "/v1/tracks/{id}" */
    tb_handler handler;
    tb_body_kind body;
    int probe; /* health checks and metrics: never rate-limited or shed, so monitors see the truth */
    tb_scope scope;
} tb_route;

extern const tb_route tb_routes[];
extern const size_t tb_n_routes;

typedef enum tb_route_match {
    TB_ROUTE_FOUND,
    TB_ROUTE_NO_PATH,     /* 404 */
    TB_ROUTE_NO_METHOD,   /* 405: the path exists with other methods */
} tb_route_match;

/* Finds the route; on TB_ROUTE_FOUND fills *ret and copies a {param} segment into param (up to
 * param_size bytes, NUL-terminated). On TB_ROUTE_NO_METHOD, allow gets "GET, POST"-style text. */
tb_route_match tb_route_find(const char *method, const char *url, const tb_route **ret, char *param,
                             size_t param_size, char *allow, size_t allow_size);

#endif
