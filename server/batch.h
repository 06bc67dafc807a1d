/* One request object or a batch of them: {"instances": [obj, ...]} → {"predictions": [reply, ...]}.
 * A bad instance stops the batch with a 400 whose field and message start with "instances[i]". */
#ifndef TB_SERVER_BATCH_H
#define TB_SERVER_BATCH_H

#include <cjson/cJSON.h>
#include <microhttpd.h>

struct tb_request;

/* Answers one request object: the reply object, or NULL after sending an error reply. */
typedef cJSON *(*tb_one_fn)(struct tb_request *req, const cJSON *obj);

/* Parses the body and replies: one's object for a single request, or the predictions of a batch of
 * at most --max-batch-rows instances. */
enum MHD_Result tb_run_single_or_batch(struct tb_request *req, tb_one_fn one);
/* The same with batches of at most max_rows (and --max-batch-rows), for costly routes. */
enum MHD_Result tb_run_single_or_batch_max(struct tb_request *req, tb_one_fn one, size_t max_rows);

#endif
