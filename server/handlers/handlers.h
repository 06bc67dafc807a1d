/* Endpoint handlers, one file per endpoint group; wired up in server/route.c. */
#ifndef TB_SERVER_HANDLERS_H
#define TB_SERVER_HANDLERS_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>

#include "catalog.h"
#include "index.h"
#include "nearest.h"

struct tb_request;

/* health.c */
enum MHD_Result tb_handle_healthz(struct tb_request *req);
enum MHD_Result tb_handle_readyz(struct tb_request *req);
/* models.c */
enum MHD_Result tb_handle_models(struct tb_request *req);
/* page.c */
enum MHD_Result tb_handle_page(struct tb_request *req);
extern const char tb_index_html[];
/* common.c */
struct tb_served;
/* The fields every prediction reply ends with: track_id (when given), imputed (consumed), model. */
void tb_add_common(cJSON *o, const struct tb_served *m, cJSON *imputed, const char *track_id);
/* The (at most `limit`) genres whose probability is at least `at_least`, most probable first (ties
 * to the lower class index, the argmax rule), into order (limit slots); returns how many. */
size_t tb_rank_genres(const double *proba, size_t k, double at_least, size_t limit, size_t *order);
/* predict.c */
enum MHD_Result tb_handle_genre(struct tb_request *req);
enum MHD_Result tb_handle_popularity(struct tb_request *req);

/* conformal.c */
enum MHD_Result tb_handle_genre_set(struct tb_request *req);
/* explain.c */
enum MHD_Result tb_handle_genre_explain(struct tb_request *req);
enum MHD_Result tb_handle_popularity_explain(struct tb_request *req);
/* kserve.c (Open Inference Protocol) */
enum MHD_Result tb_handle_v2_live(struct tb_request *req);
enum MHD_Result tb_handle_v2_ready(struct tb_request *req);
enum MHD_Result tb_handle_v2_model(struct tb_request *req);
enum MHD_Result tb_handle_v2_model_ready(struct tb_request *req);
enum MHD_Result tb_handle_v2_infer(struct tb_request *req);
/* metrics.c */
enum MHD_Result tb_handle_metrics(struct tb_request *req);
/* openapi.c */
enum MHD_Result tb_handle_openapi(struct tb_request *req);
extern const char tb_openapi_json[];
/* recommend.c */
enum MHD_Result tb_handle_recommend(struct tb_request *req);
enum MHD_Result tb_handle_recommendations_get(struct tb_request *req);
enum MHD_Result tb_handle_recommendations_post(struct tb_request *req);
struct tb_served;
/* The k best index rows for query q among accepted rows (accept may be NULL), at most one per
 * song (releases of one song are repeats), best first, into out (k slots); from the HNSW graph
 * when the served index has one and it finds them (*path says). -1: out of memory. */
long tb_recommend_top(const struct tb_served *x, const tb_catalog *c, const float *q, size_t k,
                      tb_index_accept accept, void *ctx, tb_hit *out, tb_nearest_path *path);
/* taste.c */
enum MHD_Result tb_handle_taste(struct tb_request *req);
enum MHD_Result tb_handle_taste_get(struct tb_request *req);
enum MHD_Result tb_handle_taste_delete(struct tb_request *req);
/* tracks.c */
enum MHD_Result tb_handle_track(struct tb_request *req);
enum MHD_Result tb_handle_tracks_search(struct tb_request *req);
/* A catalog track as {track_id, track_name, artists, genres, popularity}. */
cJSON *tb_track_json(const tb_catalog *c, size_t t);

#endif
