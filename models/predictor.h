/* A servable unit: the feature pipeline, the model and the class names, saved together as one
 * self-describing blob (magic "TMBR", format version, kind, feature count, sized sections). */
#ifndef TB_PREDICTOR_H
#define TB_PREDICTOR_H

#include <stddef.h>

#include "conformal.h"
#include "model.h"
#include "pipeline.h"
#include "status.h"
#include "twins.h"

#define TB_BLOB_MAGIC "TMBR"
#define TB_BLOB_MAJOR 1
#define TB_BLOB_MINOR 2 /* 1.1: an optional calibration section (conformal.h); 1.2: optional twins (twins.h) */

/* Raw inputs a predictor takes at most (refused beyond): callers size their buffers by it. */
#define TB_PREDICTOR_MAX_INPUTS 1024

/* Owns pipeline, model and class names. Immutable once built or loaded: share across threads. */
typedef struct tb_predictor {
    tb_pipeline *pipeline;
    tb_model *model;
    size_t n_classes;  /* 0 for regression */
    char **class_names;
    tb_calibration *calibration; /* conformal sets / intervals; NULL when not calibrated */
    tb_twins *twins;             /* genres of training rows with the same inputs; NULL when none */
} tb_predictor;

/* Takes ownership of pipeline and model; copies class_names (n_classes of them, none to regress). */
tb_status tb_predictor_new(tb_pipeline *pipeline, tb_model *model, char *const *class_names, size_t n_classes,
                           tb_predictor **ret);
tb_predictor *tb_predictor_free(tb_predictor *p);

/* Takes ownership of c (its task and sizes must fit the model; else TB_INVALID and c is freed). */
tb_status tb_predictor_set_calibration(tb_predictor *p, tb_calibration *c);

/* Takes ownership of t (a genre model's, with its feature and class counts; else TB_INVALID and t
 * is freed). Set it before calibrating: the sets must see what predict returns. */
tb_status tb_predictor_set_twins(tb_predictor *p, tb_twins *t);

/* raw: n_features raw values in pipeline order (NaN = missing, imputed); out: n_outputs values.
 * Returns the training rows with these inputs whose genres were mixed in (0 for most rows and
 * every model without twins). No allocation; thread-safe. */
size_t tb_predictor_predict(const tb_predictor *p, const double *raw, double *out);
/* The last step of predict, for callers that ran the model on many rows at once: out holds the
 * model's outputs for this raw row. Returns as predict does. */
static inline size_t tb_predictor_finish(const tb_predictor *p, const double *raw, double *out) {
    return p->twins ? tb_twins_apply(p->twins, raw, out) : 0;
}

/* Per-feature contributions of the model's outputs[0 .. n_out) for a raw row (models/model.h's
 * explain: phi n_features × n_out, base and value n_out, base + Σ phi = value in the family's
 * explain_space). TB_INVALID naming the family when it has no exact method, or when the model
 * reads PCA components rather than the features. */
tb_status tb_predictor_explain(const tb_predictor *p, const double *raw, const size_t *outputs, size_t n_out,
                               double *phi, double *base, double *value);
/* Popularity: the calibration's difficulty σ for a raw row (1 when there is none). */
double tb_predictor_sigma(const tb_predictor *p, const double *raw);

/* A new blob (caller frees *ret_blob). */
tb_status tb_predictor_save(const tb_predictor *p, void **ret_blob, size_t *ret_len);
/* Refuses a wrong magic, an unknown major version (naming both versions), and any count that
 * disagrees with the bytes present. */
tb_status tb_predictor_load(const void *blob, size_t len, tb_predictor **ret);

#endif
