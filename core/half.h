/* IEEE 754 binary16 ("half") conversions, exact and the same on every processor: float → half rounds
 * to nearest, ties to even, as F16C's vcvtps2ph does; half → float is exact. */
#ifndef TIMBRE_HALF_H
#define TIMBRE_HALF_H

#include <stdint.h>

#define TB_HALF_MAX 65504.0f /* the largest finite half */

uint16_t tb_float_to_half(float f);
float tb_half_to_float(uint16_t h);

#endif
