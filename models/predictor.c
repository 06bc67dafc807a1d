/* Blob layout (little-endian):
 *   "TMBR" u16 major u16 minor str kind u32 n_features u8 task
 *   section pipeline | section labels (u32 n, n × str) | section model
 *   [1.1+] section calibration (empty when not calibrated)
 *   [1.2+] section twins (empty when none)
 * where a section is a u32 byte length followed by its bytes. */
#include "predictor.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define PREDICTOR_MAX_CLASSES 65535
#define PREDICTOR_MAX_LABEL 256

tb_predictor *tb_predictor_free(tb_predictor *p) {
    if (!p)
        return NULL;
    tb_pipeline_free(p->pipeline);
    tb_model_free(p->model);
    tb_calibration_free(p->calibration);
    tb_twins_free(p->twins);
    if (p->class_names)
        for (size_t i = 0; i < p->n_classes; i++)
            free(p->class_names[i]);
    free(p->class_names);
    free(p);
    return NULL;
}

tb_status tb_predictor_new(tb_pipeline *pipeline, tb_model *model, char *const *class_names, size_t n_classes,
                           tb_predictor **ret) {
    if (pipeline->n_features > TB_PREDICTOR_MAX_INPUTS)
        return tb_error(TB_INVALID, "%zu inputs: a model takes at most %d", pipeline->n_features,
                        TB_PREDICTOR_MAX_INPUTS);
    if (pipeline->n_outputs != model->n_features ||
        (model->task != TB_TASK_REGRESS ? n_classes != model->n_outputs : n_classes != 0))
        return tb_error(TB_INVALID, "pipeline, model and labels disagree (%zu/%zu features, %zu/%zu outputs)",
                        pipeline->n_outputs, model->n_features, n_classes, model->n_outputs);
    tb_predictor *p = calloc(1, sizeof *p);
    if (!p)
        return tb_error(TB_NOMEM, "out of memory");
    if (n_classes) {
        p->class_names = tb_calloc_n(n_classes, sizeof *p->class_names);
        if (!p->class_names) {
            free(p);
            return tb_error(TB_NOMEM, "out of memory");
        }
        p->n_classes = n_classes;
        for (size_t i = 0; i < n_classes; i++) {
            if (!(p->class_names[i] = strdup(class_names[i]))) {
                tb_predictor_free(p);
                return tb_error(TB_NOMEM, "out of memory");
            }
        }
    }
    p->pipeline = pipeline;
    p->model = model;
    *ret = p;
    return TB_OK;
}

tb_status tb_predictor_set_calibration(tb_predictor *p, tb_calibration *c) {
    const tb_model *m = p->model;
    if (c->task != m->task || (c->task == TB_TASK_CLASSIFY && c->k != m->n_outputs) ||
        (c->difficulty && c->difficulty->n_features != m->n_features)) {
        tb_calibration_free(c);
        return tb_error(TB_INVALID, "the calibration does not fit the model");
    }
    tb_calibration_free(p->calibration);
    p->calibration = c;
    return TB_OK;
}

tb_status tb_predictor_set_twins(tb_predictor *p, tb_twins *t) {
    if (p->model->task != TB_TASK_CLASSIFY || tb_twins_n_features(t) != p->pipeline->n_features ||
        tb_twins_n_classes(t) != p->model->n_outputs) {
        tb_twins_free(t);
        return tb_error(TB_INVALID, "the twins do not fit the model");
    }
    tb_twins_free(p->twins);
    p->twins = t;
    return TB_OK;
}

size_t tb_predictor_predict(const tb_predictor *p, const double *raw, double *out) {
    double x[1024]; /* MODEL_MAX_FEATURES: models refuse more at train and load time */
    tb_pipeline_transform(p->pipeline, raw, x);
    tb_model_predict(p->model, x, out);
    return tb_predictor_finish(p, raw, out);
}

tb_status tb_predictor_explain(const tb_predictor *p, const double *raw, const size_t *outputs, size_t n_out,
                               double *phi, double *base, double *value) {
    const tb_model_ops *ops = p->model->ops;
    if (!ops->explain)
        return tb_error(TB_INVALID, "the model is '%s', which has no exact explanation yet (gbdt, rf and extra have: "
                                    "TreeSHAP; linear: its weights)",
                        ops->kind);
    if (p->pipeline->components)
        return tb_error(TB_INVALID, "the model reads %zu PCA components, not the features: its contributions would "
                                    "not name a feature", p->pipeline->n_outputs);
    double x[1024]; /* MODEL_MAX_FEATURES */
    tb_pipeline_transform(p->pipeline, raw, x);
    return ops->explain(p->model->impl, x, outputs, n_out, phi, base, value);
}

double tb_predictor_sigma(const tb_predictor *p, const double *raw) {
    const tb_calibration *c = p->calibration;
    return c && c->difficulty ? tb_difficulty_sigma(p->pipeline, c->difficulty, c->sigma_floor, raw) : 1.0;
}

tb_status tb_predictor_save(const tb_predictor *p, void **ret_blob, size_t *ret_len) {
    tb_writer w;
    tb_writer_init(&w);
    tb_write_bytes(&w, TB_BLOB_MAGIC, 4);
    tb_write_u16(&w, TB_BLOB_MAJOR);
    tb_write_u16(&w, TB_BLOB_MINOR);
    tb_write_str(&w, p->model->ops->kind);
    tb_write_u32(&w, (uint32_t)p->pipeline->n_features);
    tb_write_u8(&w, (uint8_t)p->model->task);
    size_t at = tb_write_len_placeholder(&w);
    tb_pipeline_save(p->pipeline, &w);
    tb_write_patch_len(&w, at);
    at = tb_write_len_placeholder(&w);
    tb_write_u32(&w, (uint32_t)p->n_classes);
    for (size_t i = 0; i < p->n_classes; i++)
        tb_write_str(&w, p->class_names[i]);
    tb_write_patch_len(&w, at);
    at = tb_write_len_placeholder(&w);
    tb_model_save(p->model, &w);
    tb_write_patch_len(&w, at);
    at = tb_write_len_placeholder(&w);
    if (p->calibration)
        tb_calibration_save(p->calibration, &w);
    tb_write_patch_len(&w, at);
    at = tb_write_len_placeholder(&w);
    if (p->twins)
        tb_twins_save(p->twins, &w);
    tb_write_patch_len(&w, at);
    return tb_writer_finish(&w, ret_blob, ret_len);
}

tb_status tb_predictor_load(const void *blob, size_t len, tb_predictor **ret) {
    tb_reader r, sec;
    tb_reader_init(&r, blob, len);
    uint16_t minor;
    uint32_t n_features, n_classes = 0;
    uint8_t task;
    char *kind = NULL;
    tb_pipeline *pipeline = NULL;
    tb_model *model = NULL;
    tb_predictor *p = NULL;
    tb_status st = tb_read_header(&r, TB_BLOB_MAGIC, TB_BLOB_MAJOR, "model blob", &minor);
    if (st != TB_OK)
        return st;
    if ((st = tb_read_str(&r, &kind, 32, "model kind")) != TB_OK)
        return st;
    if ((st = tb_read_u32(&r, &n_features, "feature count")) != TB_OK || (st = tb_read_u8(&r, &task, "task")) != TB_OK)
        goto fail;
    if ((st = tb_read_section(&r, &sec, "pipeline section")) != TB_OK || (st = tb_pipeline_load(&sec, &pipeline)) != TB_OK)
        goto fail;
    if (pipeline->n_features != n_features) {
        st = tb_error(TB_CORRUPT, "model blob: header says %u features, pipeline has %zu", n_features,
                      pipeline->n_features);
        goto fail;
    }
    if ((st = tb_read_section(&r, &sec, "labels section")) != TB_OK ||
        (st = tb_read_u32(&sec, &n_classes, "class count")) != TB_OK)
        goto fail;
    if (n_classes > PREDICTOR_MAX_CLASSES || (st = tb_reader_expect(&sec, n_classes, 4, "class names")) != TB_OK) {
        if (st == TB_OK)
            st = tb_error(TB_CORRUPT, "model blob: %u classes exceeds %d", n_classes, PREDICTOR_MAX_CLASSES);
        goto fail;
    }
    char **names = tb_calloc_n(n_classes, sizeof *names);
    if (!names) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < n_classes && st == TB_OK; i++)
        st = tb_read_str(&sec, &names[i], PREDICTOR_MAX_LABEL, "class name");
    if (st == TB_OK && (st = tb_read_section(&r, &sec, "model section")) == TB_OK)
        st = tb_model_load(&sec, &model);
    if (st == TB_OK && (tb_model_ops_find(kind) != model->ops || model->task != task))
        st = tb_error(TB_CORRUPT, "model blob: header (%s) and model section (%s) disagree", kind, model->ops->kind);
    tb_calibration *cal = NULL;
    if (st == TB_OK && minor >= 1 && (st = tb_read_section(&r, &sec, "calibration section")) == TB_OK &&
        tb_reader_left(&sec) > 0) {
        st = tb_calibration_load(&sec, model->task, model->n_features, model->n_outputs, &cal);
        if (st == TB_OK && tb_reader_left(&sec) != 0)
            st = tb_error(TB_CORRUPT, "model blob: %zu unexpected bytes after the calibration", tb_reader_left(&sec));
    }
    tb_twins *twins = NULL;
    if (st == TB_OK && minor >= 2 && (st = tb_read_section(&r, &sec, "twins section")) == TB_OK &&
        tb_reader_left(&sec) > 0) {
        if (model->task != TB_TASK_CLASSIFY)
            st = tb_error(TB_CORRUPT, "model blob: twins on a model that is not a genre model");
        else
            st = tb_twins_load(&sec, n_features, model->n_outputs, &twins);
        if (st == TB_OK && tb_reader_left(&sec) != 0)
            st = tb_error(TB_CORRUPT, "model blob: %zu unexpected bytes after the twins", tb_reader_left(&sec));
    }
    if (st == TB_OK && tb_reader_left(&r) != 0)
        st = tb_error(TB_CORRUPT, "model blob: %zu unexpected trailing bytes", tb_reader_left(&r));
    if (st == TB_OK) {
        st = tb_predictor_new(pipeline, model, names, n_classes, &p);
        if (st == TB_OK) {
            pipeline = NULL; /* owned by p now */
            model = NULL;
            p->calibration = cal;
            cal = NULL;
            p->twins = twins;
            twins = NULL;
        } else if (st == TB_INVALID) {
            st = tb_error(TB_CORRUPT, "model blob: %s", tb_error_message());
        }
    }
    for (uint32_t i = 0; i < n_classes; i++)
        free(names[i]);
    free(names);
    tb_calibration_free(cal);
    tb_twins_free(twins);
    if (st != TB_OK)
        goto fail;
    free(kind);
    *ret = p;
    return TB_OK;
fail:
    free(kind);
    tb_pipeline_free(pipeline);
    tb_model_free(model);
    return st;
}
