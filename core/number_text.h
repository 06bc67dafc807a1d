/* Numbers as JSON text that reads back exactly. cJSON's own printer tries %.15g and accepts it
 * when it reads back within a relative DBL_EPSILON, so it can drop the last bit
 * (0.8059999999999999 prints as 0.806); anything that must round-trip (stored features, served
 * predictions) is printed here instead (server/json_number.h wraps it for cJSON). */
#ifndef TB_NUMBER_TEXT_H
#define TB_NUMBER_TEXT_H

/* The text of a finite v that parses back to exactly v: 16 significant digits when they read
 * back to v, else 17, trailing zeros dropped (0.1 is "0.1"); at most 25 characters. */
void tb_format_double(double v, char out[32]);
/* The same for an FP32 value: the shortest of %.6g..%.9g that reads back to exactly v. */
void tb_format_float(float v, char out[32]);

#endif
