/* Endpoint handlers, one file per endpoint group; wired up in server/route.c. */
#ifndef TB_SERVER_HANDLERS_H
#define TB_SERVER_HANDLERS_H

#include <microhttpd.h>

struct tb_request;

/* health.c */
enum MHD_Result tb_handle_healthz(struct tb_request *req);
enum MHD_Result tb_handle_readyz(struct tb_request *req);
/* models.c */
enum MHD_Result tb_handle_models(struct tb_request *req);
/* predict.c */
enum MHD_Result tb_handle_genre(struct tb_request *req);
enum MHD_Result tb_handle_popularity(struct tb_request *req);

#endif
