/* Single requests and batches through one path. */
#include "batch.h"

#include <stdio.h>

#include "input.h"
#include "limits.h"
#include "reply.h"
#include "request.h"

enum MHD_Result tb_run_single_or_batch(struct tb_request *req, tb_one_fn one) {
    return tb_run_single_or_batch_max(req, one, req->limits->max_batch_rows);
}

enum MHD_Result tb_run_single_or_batch_max(struct tb_request *req, tb_one_fn one, size_t max_rows) {
    max_rows = max_rows < req->limits->max_batch_rows ? max_rows : req->limits->max_batch_rows;
    cJSON *root = NULL;
    if (tb_input_parse_object(req, &root))
        return req->result;
    const cJSON *instances = cJSON_GetObjectItemCaseSensitive(root, "instances");
    if (!instances) {
        cJSON *o = one(req, root);
        cJSON_Delete(root);
        return o ? tb_reply_json(req, MHD_HTTP_OK, o) : req->result;
    }
    static const char *const keys[] = {"instances", NULL};
    int n = cJSON_GetArraySize(instances);
    cJSON *out = NULL, *predictions = NULL;
    if (tb_input_only_keys(req, root, keys, ""))
        goto done;
    if (!cJSON_IsArray(instances) || n < 1 || (size_t)n > max_rows) {
        tb_reply_fail(req, TB_INVALID, "instances", "\"instances\" must be an array of 1 to %zu request objects%s",
                      max_rows, max_rows < req->limits->max_batch_rows ? " on this route" : "");
        goto done;
    }
    out = cJSON_CreateObject();
    predictions = cJSON_AddArrayToObject(out, "predictions");
    if (!predictions) {
        tb_reply_fail(req, TB_NOMEM, NULL, "out of memory");
        goto done;
    }
    int i = 0;
    const cJSON *obj;
    cJSON_ArrayForEach(obj, instances) {
        snprintf(req->error_prefix, sizeof req->error_prefix, "instances[%d]", i++);
        if (tb_input_check_object(req, obj))
            goto done;
        cJSON *o = one(req, obj);
        if (!o)
            goto done;
        cJSON_AddItemToArray(predictions, o);
    }
    req->error_prefix[0] = '\0';
    cJSON_Delete(root);
    return tb_reply_json(req, MHD_HTTP_OK, out);
done:
    cJSON_Delete(out);
    cJSON_Delete(root);
    return req->result;
}
