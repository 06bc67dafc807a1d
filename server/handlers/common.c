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

/* The (at most `limit`) genres whose probability is at least `at_least`, most probable first (ties
 * to the lower class index, the argmax rule), into order (limit slots); returns how many. */
size_t tb_rank_genres(const double *proba, size_t k, double at_least, size_t limit, size_t *order) {
    size_t n = 0;
    for (size_t c = 0; c < k && limit > 0; c++) {
        if (!(proba[c] >= at_least))
            continue;
        if (n == limit) { /* full: c enters only by beating the last */
            if (!(proba[c] > proba[order[n - 1]]))
                continue;
            n--;
        }
        size_t j = n++;
        for (; j > 0 && proba[order[j - 1]] < proba[c]; j--)
            order[j] = order[j - 1];
        order[j] = c;
    }
    return n;
}
