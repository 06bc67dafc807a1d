/* Embedders and their blob format. */
#include "embedding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mlp.h"
#include "predictor.h"

/* ---------- "standardized": weighted standardized features ---------- */

typedef struct standardized {
    size_t d;
    double *weight;
} standardized;

static void standardized_embed(const void *impl, const double *x, double *out) {
    const standardized *s = impl;
    for (size_t j = 0; j < s->d; j++)
        out[j] = s->weight[j] * x[j];
}

static void standardized_save(const void *impl, tb_writer *w) {
    const standardized *s = impl;
    tb_write_f64s(w, s->weight, s->d);
}

static void standardized_free(void *impl) {
    standardized *s = impl;
    if (s)
        free(s->weight);
    free(s);
}

static tb_status check_weights(const double *w, size_t d) {
    double total = 0.0;
    for (size_t j = 0; j < d; j++) {
        if (!isfinite(w[j]) || w[j] < 0.0)
            return tb_error(TB_INVALID, "feature weight %g: weights must be finite and >= 0", w[j]);
        total += w[j];
    }
    if (total <= 0.0)
        return tb_error(TB_INVALID, "every feature weight is 0");
    return TB_OK;
}

static tb_status standardized_load(tb_reader *r, size_t n_features, size_t dim, void **ret_impl) {
    if (dim != n_features)
        return tb_error(TB_CORRUPT, "embedding blob: standardized embedder of %zu values over %zu features", dim,
                        n_features);
    standardized *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error(TB_NOMEM, "out of memory");
    s->d = n_features;
    tb_status st = tb_read_f64s(r, &s->weight, n_features, "feature weights");
    if (st == TB_OK && (st = check_weights(s->weight, n_features)) != TB_OK)
        st = tb_error(TB_CORRUPT, "embedding blob: %s", tb_error_message());
    if (st != TB_OK) {
        standardized_free(s);
        return st;
    }
    *ret_impl = s;
    return TB_OK;
}

static const tb_embedder_ops standardized_ops = {
    .kind = "standardized",
    .weighted = 1,
    .embed = standardized_embed,
    .save = standardized_save,
    .load = standardized_load,
    .free = standardized_free,
};

/* ---------- "mlp": a neural network's last hidden layer ---------- */

static void mlp_embed(const void *impl, const double *x, double *out) { tb_mlp_embed(impl, x, out); }

static void mlp_save(const void *impl, tb_writer *w) { tb_model_save(impl, w); }

static void mlp_free(void *impl) { tb_model_free(impl); }

static tb_status mlp_load(tb_reader *r, size_t n_features, size_t dim, void **ret_impl) {
    tb_model *m = NULL;
    tb_status st = tb_model_load(r, &m);
    if (st != TB_OK)
        return st;
    if (m->n_features != n_features || tb_mlp_embedding_dim(m) != dim) {
        tb_model_free(m);
        return tb_error(TB_CORRUPT, "embedding blob: the network does not give %zu values from %zu features", dim,
                        n_features);
    }
    *ret_impl = m;
    return TB_OK;
}

static const tb_embedder_ops mlp_ops = {
    .kind = "mlp",
    .learned = 1,
    .embed = mlp_embed,
    .save = mlp_save,
    .load = mlp_load,
    .free = mlp_free,
};

tb_status tb_embedder_mlp_new(tb_pipeline *pipeline, tb_model *model, tb_embedder **ret) {
    size_t dim = tb_mlp_embedding_dim(model);
    tb_embedder *e = NULL;
    tb_status st = TB_OK;
    if (dim == 0 || dim > TB_EMBED_MAX_DIM || model->n_features != pipeline->n_features)
        st = tb_error(TB_INVALID, "a learned embedding needs a neural network over the pipeline's features");
    else if (!(e = calloc(1, sizeof *e)))
        st = tb_error(TB_NOMEM, "out of memory");
    if (st != TB_OK) {
        tb_pipeline_free(pipeline);
        tb_model_free(model);
        return st;
    }
    *e = (tb_embedder){.ops = &mlp_ops, .impl = model, .pipeline = pipeline, .dim = dim};
    *ret = e;
    return TB_OK;
}

static const tb_embedder_ops *const embedder_kinds[] = {&standardized_ops, &mlp_ops};

const tb_embedder_ops *tb_embedder_ops_find(const char *kind) {
    for (size_t i = 0; i < sizeof embedder_kinds / sizeof embedder_kinds[0]; i++)
        if (strcmp(embedder_kinds[i]->kind, kind) == 0)
            return embedder_kinds[i];
    return NULL;
}

const char *tb_embedder_kinds(void) { return "standardized, mlp"; }

/* ---------- the embedder ---------- */

tb_embedder *tb_embedder_free(tb_embedder *e) {
    if (!e)
        return NULL;
    if (e->ops)
        e->ops->free(e->impl);
    tb_pipeline_free(e->pipeline);
    free(e);
    return NULL;
}

tb_status tb_embedder_standardized_new(tb_pipeline *pipeline, const double *weights, tb_embedder **ret) {
    size_t d = pipeline->n_features;
    standardized *s = calloc(1, sizeof *s);
    tb_embedder *e = calloc(1, sizeof *e);
    if (!s || !e || !(s->weight = tb_malloc_n(d, sizeof *s->weight))) {
        standardized_free(s);
        free(e);
        return tb_error(TB_NOMEM, "out of memory");
    }
    s->d = d;
    for (size_t j = 0; j < d; j++)
        s->weight[j] = weights ? weights[j] : 1.0;
    tb_status st = check_weights(s->weight, d);
    if (st != TB_OK) {
        standardized_free(s);
        free(e);
        return st;
    }
    *e = (tb_embedder){.ops = &standardized_ops, .impl = s, .pipeline = pipeline, .dim = d};
    *ret = e;
    return TB_OK;
}

void tb_embedder_embed(const tb_embedder *e, const double *raw, float *out) {
    double xs[256], vs[256];
    size_t d = e->pipeline->n_features, k = e->dim;
    double *x = d <= 256 ? xs : tb_malloc_n(d, sizeof *x), *v = k <= 256 ? vs : tb_malloc_n(k, sizeof *v);
    if (!x || !v) { /* only for very wide embeddings; a zero vector matches nothing */
        memset(out, 0, k * sizeof *out);
    } else {
        tb_pipeline_transform(e->pipeline, raw, x);
        e->ops->embed(e->impl, x, v);
        double norm = 0.0;
        for (size_t j = 0; j < k; j++)
            norm += v[j] * v[j];
        norm = sqrt(norm);
        for (size_t j = 0; j < k; j++)
            out[j] = norm > 0.0 ? (float)(v[j] / norm) : 0.0f;
    }
    if (x != xs)
        free(x);
    if (v != vs)
        free(v);
}

tb_status tb_embedder_save(const tb_embedder *e, void **ret_blob, size_t *ret_len) {
    tb_writer w;
    tb_writer_init(&w);
    tb_write_bytes(&w, TB_EMBED_MAGIC, 4);
    tb_write_u16(&w, TB_EMBED_MAJOR);
    tb_write_u16(&w, TB_EMBED_MINOR);
    tb_write_str(&w, e->ops->kind);
    tb_write_u32(&w, (uint32_t)e->dim);
    size_t at = tb_write_len_placeholder(&w);
    tb_pipeline_save(e->pipeline, &w);
    tb_write_patch_len(&w, at);
    at = tb_write_len_placeholder(&w);
    e->ops->save(e->impl, &w);
    tb_write_patch_len(&w, at);
    return tb_writer_finish(&w, ret_blob, ret_len);
}

tb_status tb_embedder_load(const void *blob, size_t len, tb_embedder **ret) {
    tb_reader r, sec;
    tb_reader_init(&r, blob, len);
    char *kind = NULL;
    uint16_t minor;
    uint32_t dim;
    tb_pipeline *pipeline = NULL;
    tb_embedder *e = NULL;
    tb_status st = tb_read_header(&r, TB_EMBED_MAGIC, TB_EMBED_MAJOR, "embedding blob", &minor);
    if (st != TB_OK)
        return st;
    if ((st = tb_read_str(&r, &kind, 32, "embedding kind")) != TB_OK)
        return st;
    const tb_embedder_ops *ops = tb_embedder_ops_find(kind);
    if (!ops) {
        st = tb_error(TB_VERSION, "embedding kind '%s' is unknown to this binary", kind);
        goto fail;
    }
    if ((st = tb_read_u32(&r, &dim, "embedding dimension")) != TB_OK)
        goto fail;
    if (dim < 1 || dim > TB_EMBED_MAX_DIM) {
        st = tb_error(TB_CORRUPT, "embedding blob: dimension %u is not in 1..%d", dim, TB_EMBED_MAX_DIM);
        goto fail;
    }
    if ((st = tb_read_section(&r, &sec, "pipeline section")) != TB_OK || (st = tb_pipeline_load(&sec, &pipeline)) != TB_OK)
        goto fail;
    if (pipeline->n_features > TB_PREDICTOR_MAX_INPUTS) {
        st = tb_error(TB_CORRUPT, "embedding blob: %zu inputs, at most %d", pipeline->n_features,
                      TB_PREDICTOR_MAX_INPUTS);
        goto fail;
    }
    if (!(e = calloc(1, sizeof *e))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = tb_read_section(&r, &sec, "embedder section")) != TB_OK ||
        (st = ops->load(&sec, pipeline->n_features, dim, &e->impl)) != TB_OK)
        goto fail;
    e->ops = ops;
    if (tb_reader_left(&sec) != 0 || tb_reader_left(&r) != 0) {
        st = tb_error(TB_CORRUPT, "embedding blob: unexpected trailing bytes");
        goto fail;
    }
    e->pipeline = pipeline;
    e->dim = dim;
    free(kind);
    *ret = e;
    return TB_OK;
fail:
    free(kind);
    tb_pipeline_free(pipeline);
    if (e && e->ops)
        e->ops->free(e->impl);
    free(e);
    return st;
}
