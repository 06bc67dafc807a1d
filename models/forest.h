/* What other model families may use of a trained forest (the blend). */
#ifndef TB_FOREST_H
#define TB_FOREST_H

/* out += scale × the forest's prediction for x (class probabilities or the value). `impl` is the
 * impl of a model of kind "rf" or "extra". No allocation; thread-safe. */
void tb_forest_accumulate(const void *impl, const double *x, double scale, double *out);

#endif
