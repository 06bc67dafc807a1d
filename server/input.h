/* Request-body validation. Each helper either succeeds and returns 0, or sends the 400/404 error
 * reply itself (naming the bad field) and returns nonzero, so handlers read as a flat column of
 * checks: `if (tb_input_...(req, ...)) return req->result;`. */
#ifndef TB_SERVER_INPUT_H
#define TB_SERVER_INPUT_H

#include <cjson/cJSON.h>

#include "request.h"

/* Sends an error reply and returns 1, so a check reads `if (...) return tb_input_bad(...)`. */
int tb_input_fail(tb_request *req, tb_status st, const char *field, const char *message);
/* The same as a 400 "bad_request". */
int tb_input_bad(tb_request *req, const char *field, const char *message);

/* The body as one JSON object (trailing bytes, other types, duplicate keys are errors). */
int tb_input_parse_object(tb_request *req, cJSON **ret_root);
/* An object within the key limit and without duplicate keys. */
int tb_input_check_object(tb_request *req, const cJSON *obj);
/* Rejects any key of obj not in `allowed` (NULL-terminated). `where` prefixes the field name. */
int tb_input_only_keys(tb_request *req, const cJSON *obj, const char *const *allowed, const char *where);

/* The model input from {"features": {...}} or {"track_id": "..."} (exactly one; other keys are
 * the caller's to check): raw gets one value per feature of the pipeline pl, NaN where missing;
 * *ret_imputed a new JSON array of the missing names (caller deletes); track_id (129 bytes) the
 * id when given, else "". */
int tb_input_features(tb_request *req, const cJSON *root, const tb_pipeline *pl, double *raw, cJSON **ret_imputed,
                      char *track_id);
/* A "track_id" value: a non-empty string within TB_MAX_TRACK_ID_BYTES. */
int tb_input_track_id(tb_request *req, const cJSON *id);

/* "alpha" of a request (default TB_DEFAULT_ALPHA): a number in (0, 1), else a 400 reply and 1. */
int tb_input_alpha(tb_request *req, const cJSON *root, double *alpha);

#endif
