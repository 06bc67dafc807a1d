/* Model registry and the family-independent parts of the interface. */
#include "model.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

extern const tb_model_ops tb_forest_ops;
extern const tb_model_ops tb_extra_ops;
extern const tb_model_ops tb_gbdt_ops;
extern const tb_model_ops tb_blend_ops;
extern const tb_model_ops tb_knn_ops;
extern const tb_model_ops tb_linear_ops;
extern const tb_model_ops tb_mlp_ops;

/* Every family, once. Adding a family means one line here and one file in models/. */
static const tb_model_ops *const registry[] = {
    &tb_forest_ops,
    &tb_extra_ops,
    &tb_gbdt_ops,
    &tb_blend_ops,
    &tb_knn_ops,
    &tb_linear_ops,
    &tb_mlp_ops,
};
#define N_FAMILIES (sizeof registry / sizeof registry[0])

#define MODEL_MAX_FEATURES 1024
#define MODEL_MAX_OUTPUTS 65535

void tb_train_params_default(tb_train_params *p) {
    memset(p, 0, sizeof *p);
    p->n_trees = 100;
    p->max_depth = 0;
    p->min_samples_leaf = 1;
    p->max_features = 0.0;
    p->class_weight_balanced = -1;
    p->bootstrap = -1;
    p->n_rounds = 500;
    p->learning_rate = 0.0;
    p->dropout = 0.1;
    p->weight_decay = 1e-4;
    p->numeric_bins = -1;
    p->max_leaves = 0;
    p->min_child_weight = 1.0;
    p->lambda = 1.0;
    p->subsample = 1.0;
    p->colsample = 1.0;
    p->early_stopping = TB_EARLY_STOPPING_AUTO;
    p->validation_fraction = 0.1;
    p->sketch = 0;
    p->seed = 42;
    p->threads = 0;
}

const tb_model_ops *tb_model_ops_find(const char *kind) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(registry[i]->kind, kind) == 0)
            return registry[i];
    return NULL;
}

static char kinds_text[128];
static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;

const tb_model_ops *tb_model_ops_at(size_t i) { return i < N_FAMILIES ? registry[i] : NULL; }

static void build_kinds(void) {
    size_t len = 0;
    for (size_t i = 0; i < N_FAMILIES && len < sizeof kinds_text; i++)
        len += (size_t)snprintf(kinds_text + len, sizeof kinds_text - len, "%s%s", i ? ", " : "", registry[i]->kind);
}

const char *tb_model_kinds(void) {
    pthread_once(&kinds_once, build_kinds); /* derived from the registry, once */
    return kinds_text;
}

tb_status tb_model_train(const char *kind, const tb_train_data *data, const tb_train_params *params,
                         tb_model **ret_model) {
    const tb_model_ops *ops = tb_model_ops_find(kind);
    if (!ops)
        return tb_error_with_field(TB_INVALID, "model", "unknown model '%s' (known: %s)", kind, tb_model_kinds());
    if (data->n == 0)
        return tb_error(TB_INVALID, "no training rows");
    if (data->d == 0 || data->d > MODEL_MAX_FEATURES)
        return tb_error(TB_INVALID, "%zu features: a model takes 1 to %d", data->d, MODEL_MAX_FEATURES);
    if (data->task == TB_TASK_MULTILABEL && (!ops->multilabel || !data->labels))
        return tb_error_with_field(TB_INVALID, "model", "model '%s' does not learn several genres per track%s", kind,
                                   ops->multilabel ? " without labels" : " (mlp does)");
    if (data->task != TB_TASK_REGRESS && (data->n_classes < 2 || data->n_classes > MODEL_MAX_OUTPUTS))
        return tb_error(TB_INVALID, "%zu classes: classification needs 2 to %d", data->n_classes,
                        MODEL_MAX_OUTPUTS);
    tb_model *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    m->ops = ops;
    m->task = data->task;
    m->n_features = data->d;
    m->n_outputs = data->task == TB_TASK_REGRESS ? 1 : data->n_classes;
    tb_train_params resolved = *params;
    tb_model_resolve_params(ops, data->task, m->n_outputs, &resolved);
    tb_status st = ops->train(data, &resolved, &m->impl);
    if (st != TB_OK) {
        free(m);
        return st;
    }
    *ret_model = m;
    return TB_OK;
}

void tb_model_resolve_params(const tb_model_ops *ops, tb_task task, size_t n_outputs, tb_train_params *p) {
    if (ops->resolve)
        ops->resolve(p, task, n_outputs);
}

size_t tb_model_steps(const tb_model *m) { return m->ops->n_steps ? m->ops->n_steps(m->impl) : 0; }

double tb_model_threshold(const tb_model *m) { return m->ops->threshold ? m->ops->threshold(m->impl) : 0.5; }

tb_model *tb_model_free(tb_model *m) {
    if (!m)
        return NULL;
    if (m->impl)
        m->ops->free(m->impl);
    free(m);
    return NULL;
}

void tb_model_predict_batch(const tb_model *m, const double *X, size_t n, int threads, double *out) {
    /* Blocks of rows small enough that a block's trees stay cache-hot while all its rows pass. */
    const size_t block = 256;
    long n_blocks = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (long b = 0; b < n_blocks; b++) {
        size_t lo = (size_t)b * block, len = n - lo < block ? n - lo : block;
        const double *x = X + lo * m->n_features;
        double *o = out + lo * m->n_outputs;
        if (m->ops->predict_block) {
            m->ops->predict_block(m->impl, x, len, o);
        } else {
            for (size_t i = 0; i < len; i++)
                m->ops->predict(m->impl, x + i * m->n_features, o + i * m->n_outputs);
        }
    }
}

tb_status tb_model_save(const tb_model *m, tb_writer *w) {
    tb_write_str(w, m->ops->kind);
    tb_write_u16(w, m->ops->format_version);
    tb_write_u8(w, (uint8_t)m->task);
    tb_write_u32(w, (uint32_t)m->n_features);
    tb_write_u32(w, (uint32_t)m->n_outputs);
    size_t at = tb_write_len_placeholder(w);
    m->ops->save(m->impl, w);
    tb_write_patch_len(w, at);
    return tb_writer_status(w);
}

tb_status tb_model_load(tb_reader *r, tb_model **ret_model) {
    char *kind = NULL;
    uint16_t fmt;
    uint8_t task;
    uint32_t n_features, n_outputs;
    tb_reader body;
    tb_status st = tb_read_str(r, &kind, 32, "model kind");
    if (st != TB_OK)
        return st;
    const tb_model_ops *ops = tb_model_ops_find(kind);
    if (!ops) {
        st = tb_error(TB_VERSION, "model kind '%s' is unknown to this binary (known: %s)", kind, tb_model_kinds());
        free(kind);
        return st;
    }
    free(kind);
    if ((st = tb_read_u16(r, &fmt, "model format version")) != TB_OK || (st = tb_read_u8(r, &task, "model task")) != TB_OK ||
        (st = tb_read_u32(r, &n_features, "model feature count")) != TB_OK ||
        (st = tb_read_u32(r, &n_outputs, "model output count")) != TB_OK ||
        (st = tb_read_section(r, &body, "model body")) != TB_OK)
        return st;
    if (fmt != ops->format_version)
        return tb_error(TB_VERSION, "model '%s' has format version %u; this binary reads version %u", ops->kind, fmt,
                        ops->format_version);
    if (task != TB_TASK_CLASSIFY && task != TB_TASK_REGRESS && !(task == TB_TASK_MULTILABEL && ops->multilabel))
        return tb_error(TB_CORRUPT, "model task %u is not one model '%s' learns", task, ops->kind);
    if (n_features == 0 || n_features > MODEL_MAX_FEATURES || n_outputs == 0 || n_outputs > MODEL_MAX_OUTPUTS ||
        (task == TB_TASK_REGRESS && n_outputs != 1) || (task != TB_TASK_REGRESS && n_outputs < 2))
        return tb_error(TB_CORRUPT, "model has %u features and %u outputs, outside the valid range", n_features,
                        n_outputs);
    tb_model *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error(TB_NOMEM, "out of memory");
    m->ops = ops;
    m->task = (tb_task)task;
    m->n_features = n_features;
    m->n_outputs = n_outputs;
    if ((st = ops->load(&body, m->task, n_features, n_outputs, &m->impl)) != TB_OK) {
        free(m);
        return st;
    }
    if (tb_reader_left(&body) != 0) {
        tb_model_free(m);
        return tb_error(TB_CORRUPT, "model '%s': %zu unexpected bytes after the model body", ops->kind,
                        tb_reader_left(&body));
    }
    *ret_model = m;
    return TB_OK;
}
