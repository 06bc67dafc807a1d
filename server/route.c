/* The routing table and path matching. */
#include "route.h"

#include <stdio.h>
#include <string.h>

#include "handlers/handlers.h"
#include "limits.h"

const tb_route tb_routes[] = {
    {"GET", "/", tb_handle_page, TB_BODY_NONE, 0, TB_SCOPE_NONE},
    {"GET", "/healthz", tb_handle_healthz, TB_BODY_NONE, 1, TB_SCOPE_NONE},
    {"GET", "/readyz", tb_handle_readyz, TB_BODY_NONE, 1, TB_SCOPE_NONE},
    {"GET", "/openapi.json", tb_handle_openapi, TB_BODY_NONE, 0, TB_SCOPE_NONE},
    {"GET", "/metrics", tb_handle_metrics, TB_BODY_NONE, 1, TB_SCOPE_ADMIN},
    {"GET", "/v1/models", tb_handle_models, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/genre", tb_handle_genre, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/genre/set", tb_handle_genre_set, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/genre/explain", tb_handle_genre_explain, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/popularity", tb_handle_popularity, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/popularity/explain", tb_handle_popularity_explain, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/recommend", tb_handle_recommend, TB_BODY_SINGLE, 0, TB_SCOPE_PREDICT},
    {"GET", "/v1/recommendations", tb_handle_recommendations_get, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/recommendations", tb_handle_recommendations_post, TB_BODY_SINGLE, 0, TB_SCOPE_PREDICT},
    {"POST", "/v1/taste", tb_handle_taste, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT}, /* up to 1,000 ratings: the batch body limit */
    {"GET", "/v1/taste/{name}", tb_handle_taste_get, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"DELETE", "/v1/taste/{name}", tb_handle_taste_delete, TB_BODY_NONE, 0, TB_SCOPE_WRITE},
    {"GET", "/v1/tracks", tb_handle_tracks_search, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"GET", "/v1/tracks/{id}", tb_handle_track, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"GET", "/v2/health/live", tb_handle_v2_live, TB_BODY_NONE, 1, TB_SCOPE_NONE},
    {"GET", "/v2/health/ready", tb_handle_v2_ready, TB_BODY_NONE, 1, TB_SCOPE_NONE},
    {"GET", "/v2/models/{name}", tb_handle_v2_model, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"GET", "/v2/models/{name}/ready", tb_handle_v2_model_ready, TB_BODY_NONE, 0, TB_SCOPE_PREDICT},
    {"POST", "/v2/models/{name}/infer", tb_handle_v2_infer, TB_BODY_BATCH, 0, TB_SCOPE_PREDICT},
};
const size_t tb_n_routes = sizeof tb_routes / sizeof tb_routes[0];

/* Matches url against pattern; a "{...}" segment matches one non-empty segment, copied to param. */
static int path_matches(const char *pattern, const char *url, char *param, size_t param_size) {
    while (*pattern && *url) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            const char *seg_end = strchr(url, '/');
            size_t len = seg_end ? (size_t)(seg_end - url) : strlen(url);
            if (!close || len == 0 || len >= param_size)
                return 0;
            memcpy(param, url, len);
            param[len] = '\0';
            pattern = close + 1;
            url += len;
            continue;
        }
        if (*pattern != *url)
            return 0;
        pattern++;
        url++;
    }
    return *pattern == '\0' && *url == '\0';
}

tb_route_match tb_route_find(const char *method, const char *url, const tb_route **ret, char *param,
                             size_t param_size, char *allow, size_t allow_size) {
    int path_seen = 0;
    size_t allow_len = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < tb_n_routes; i++) {
        const tb_route *r = &tb_routes[i];
        if (!path_matches(r->path, url, param, param_size))
            continue;
        /* HEAD is GET without the body, which libmicrohttpd leaves out of the reply (health
         * checkers and link checkers send it). */
        int get = strcmp(r->method, "GET") == 0;
        if (strcmp(r->method, method) == 0 || (get && strcmp(method, "HEAD") == 0)) {
            *ret = r;
            return TB_ROUTE_FOUND;
        }
        path_seen = 1;
        int n = snprintf(allow + allow_len, allow_size - allow_len, "%s%s%s", allow_len ? ", " : "", r->method,
                         get ? ", HEAD" : "");
        if (n > 0 && (size_t)n < allow_size - allow_len)
            allow_len += (size_t)n;
    }
    param[0] = '\0';
    return path_seen ? TB_ROUTE_NO_METHOD : TB_ROUTE_NO_PATH;
}
