/* Exact JSON numbers: see json_number.h. */
#include "json_number.h"

#include <math.h>

#include "number_text.h"

cJSON *tb_json_number(double v) {
    if (!isfinite(v))
        return NULL;
    char buf[32];
    tb_format_double(v, buf);
    return cJSON_CreateRaw(buf);
}

cJSON *tb_json_float(float v) {
    if (!isfinite(v))
        return NULL;
    char buf[32];
    tb_format_float(v, buf);
    return cJSON_CreateRaw(buf);
}
