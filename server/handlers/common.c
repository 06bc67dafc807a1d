/* Reply pieces the prediction handlers share (predict.c, conformal.c). */
#include <cjson/cJSON.h>

#include "../reply.h"
#include "../state.h"
#include "handlers.h"

/* Keys are literals and names live in the served state the request holds, so replies reference
 * them (cJSON's *CS and Reference forms) instead of copying: a third of a reply's allocations. */
void tb_add_common(cJSON *o, const tb_served *m, cJSON *imputed, const char *track_id) {
    if (track_id[0])
        cJSON_AddStringToObject(o, "track_id", track_id);
    cJSON_AddItemToObjectCS(o, "imputed", imputed);
    cJSON *model = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "model", model);
    cJSON_AddItemToObjectCS(model, "name", cJSON_CreateStringReference(m->name));
    cJSON_AddItemToObjectCS(model, "version", tb_json_number((double)m->version)); /* cJSON prints with sprintf + sscanf */
}
