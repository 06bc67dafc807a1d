/* The embedded OpenAPI document and the routing table name the same routes: a route the document
 * lacks, or a documented route the server does not have, fails here. */
#include <cjson/cJSON.h>
#include <ctype.h>

#include "check.h"
#include "handlers/handlers.h"
#include "route.h"

int main(void) {
    cJSON *doc = cJSON_Parse(tb_openapi_json);
    CHECK(doc != NULL);
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    CHECK(cJSON_IsObject(paths));
    /* Every route is documented, with its method. */
    for (size_t i = 0; i < tb_n_routes; i++) {
        const tb_route *r = &tb_routes[i];
        char method[16];
        size_t n = 0;
        for (; r->method[n] && n + 1 < sizeof method; n++)
            method[n] = (char)tolower((unsigned char)r->method[n]);
        method[n] = '\0';
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, r->path);
        int documented = item && cJSON_GetObjectItemCaseSensitive(item, method);
        if (!documented)
            fprintf(stderr, "route %s %s is not in openapi.json\n", r->method, r->path);
        CHECK(documented);
    }
    /* Every documented operation is a route. */
    const cJSON *path;
    cJSON_ArrayForEach(path, paths) {
        const cJSON *op;
        cJSON_ArrayForEach(op, path) {
            int found = 0;
            for (size_t i = 0; i < tb_n_routes && !found; i++) {
                const tb_route *r = &tb_routes[i];
                if (strcmp(r->path, path->string) != 0 || strlen(r->method) != strlen(op->string))
                    continue;
                found = 1;
                for (size_t c = 0; r->method[c]; c++)
                    found &= tolower((unsigned char)r->method[c]) == op->string[c];
            }
            if (!found)
                fprintf(stderr, "openapi.json documents %s %s, which no route serves\n", op->string, path->string);
            CHECK(found);
        }
    }
    cJSON_Delete(doc);
    return tb_test_done();
}
