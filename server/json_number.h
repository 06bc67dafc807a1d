/* cJSON numbers that read back exactly (core/number_text.h prints them). */
#ifndef TB_JSON_NUMBER_H
#define TB_JSON_NUMBER_H

#include <cjson/cJSON.h>

/* A JSON number that parses back to exactly v; NULL for a non-finite v. */
cJSON *tb_json_number(double v);
/* The same for an FP32 value (the shortest text that reads back to v). */
cJSON *tb_json_float(float v);

#endif
