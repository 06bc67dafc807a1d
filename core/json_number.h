/* JSON numbers that read back exactly. cJSON's own printer tries %.15g and accepts it when it
 * reads back within a relative DBL_EPSILON, so it can drop the last bit (0.8059999999999999
 * prints as 0.806); anything that must round-trip (stored features, served predictions) goes
 * through here instead. */
#ifndef TB_JSON_NUMBER_H
#define TB_JSON_NUMBER_H

#include <cjson/cJSON.h>

/* A JSON number that parses back to exactly v (cJSON's own printer may drop the last bit): 16
 * significant digits when they read back to v, else 17, trailing zeros dropped (0.1 is "0.1").
 * NULL for a non-finite v. */
cJSON *tb_json_number(double v);
/* The text of that number for a finite v (at most 25 characters). */
void tb_format_double(double v, char out[32]);

/* The same for an FP32 value: the shortest of %.6g..%.9g that reads back to exactly v. */
cJSON *tb_json_float(float v);

#endif
