/* GET /v1/tracks/{id} (one stored track) and GET /v1/tracks?q=TEXT&limit=N (search by name or
 * artist), so a frontend can find a track to start recommendations from. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../limits.h"
#include "../reply.h"
#include "../request.h"
#include "handlers.h"

cJSON *tb_track_json(const tb_catalog *c, size_t t) {
    const tb_catalog_track *tr = &c->tracks[t];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "track_id", tr->id);
    cJSON_AddStringToObject(o, "track_name", tr->name);
    cJSON_AddStringToObject(o, "artists", tr->artists);
    cJSON *genres = cJSON_AddArrayToObject(o, "genres");
    for (uint16_t g = 0; g < tr->n_genres; g++)
        cJSON_AddItemToArray(genres, cJSON_CreateString(c->genres[c->genre_ids[tr->genre_start + g]]));
    if (isnan(tr->popularity))
        cJSON_AddNullToObject(o, "popularity");
    else
        cJSON_AddItemToObject(o, "popularity", tb_json_number(tr->popularity));
    return o;
}

enum MHD_Result tb_handle_track(struct tb_request *req) {
    const tb_catalog *c = req->state->catalog;
    if (strlen(req->param) > TB_MAX_TRACK_ID_BYTES)
        return tb_reply_fail(req, TB_INVALID, "track_id",
                              "track id is longer than the limit of %d bytes", TB_MAX_TRACK_ID_BYTES);
    long t = tb_catalog_find(c, req->param);
    if (t < 0)
        return tb_reply_fail(req, TB_NOT_FOUND, "track_id", "no track with id '%.100s'", req->param);
    cJSON *o = tb_track_json(c, (size_t)t);
    /* The stored raw features too, as the trainer recorded them. */
    tb_track stored;
    if (tb_store_get_track(req->state->store, req->param, &stored) == TB_OK) {
        cJSON *features = cJSON_Parse(stored.features);
        cJSON_AddItemToObject(o, "features", features ? features : cJSON_CreateObject());
        tb_track_clear(&stored);
    }
    return tb_reply_json(req, MHD_HTTP_OK, o);
}

typedef struct search_args {
    const char *q, *limit, *unknown;
} search_args;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    search_args *a = cls;
    if (strcmp(key, "q") == 0)
        a->q = value ? value : "";
    else if (strcmp(key, "limit") == 0)
        a->limit = value ? value : "";
    else if (!a->unknown)
        a->unknown = key;
    return MHD_YES;
}

enum MHD_Result tb_handle_tracks_search(struct tb_request *req) {
    search_args a = {0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
    if (a.unknown)
        return tb_reply_fail(req, TB_INVALID, a.unknown,
                              "unknown query parameter '%.64s' (this route takes q and limit)", a.unknown);
    if (!a.q || !a.q[0])
        return tb_reply_fail(req, TB_INVALID, "q",
                              "give the text to search for as ?q=TEXT (track name or artist)");
    size_t qlen = strlen(a.q);
    if (qlen > TB_MAX_SEARCH_BYTES)
        return tb_reply_fail(req, TB_INVALID, "q", "q is longer than the limit of %d bytes",
                              TB_MAX_SEARCH_BYTES);
    for (size_t i = 0; i < qlen; i++)
        if ((unsigned char)a.q[i] < 0x20)
            return tb_reply_fail(req, TB_INVALID, "q", "q holds a control character");
    long limit = TB_DEFAULT_SEARCH_LIMIT;
    if (a.limit) {
        char *end;
        limit = strtol(a.limit, &end, 10);
        if (end == a.limit || *end || limit < 1 || limit > TB_MAX_SEARCH_LIMIT)
            return tb_reply_fail(req, TB_INVALID, "limit",
                                  "limit must be an integer from 1 to %d", TB_MAX_SEARCH_LIMIT);
    }
    const tb_catalog *c = req->state->catalog;
    size_t found[TB_MAX_SEARCH_LIMIT], total = 0;
    size_t n = tb_catalog_search(c, a.q, (size_t)limit, found, &total);
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "tracks");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(list, tb_track_json(c, found[i]));
    cJSON_AddNumberToObject(o, "total", (double)total);
    cJSON_AddNumberToObject(o, "limit", (double)limit);
    return tb_reply_json(req, MHD_HTTP_OK, o);
}
