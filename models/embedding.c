/* Embedders and their blob format. */
#include "embedding.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
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

/* Measured on spotify_tracks_114k: a wide trunk and a narrow last layer embed best
 * (docs/performance.md, "Learned embeddings"). */
static void mlp_defaults(tb_train_params *p) {
    if (p->hidden.n == 0) {
        static const size_t widths[] = {512, 256, 64};
        p->hidden.n = 3;
        memcpy(p->hidden.v, widths, sizeof widths);
    }
    if (p->numeric_bins < 0)
        p->numeric_bins = 32;
}

static const tb_embedder_ops mlp_ops = {
    .kind = "mlp",
    .learned = 1,
    .family = "mlp",
    .defaults = mlp_defaults,
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

/* ---------- "genre": predicted genres beside the standardized features ---------- */

typedef struct genre_embed {
    tb_model *classifier; /* reads the pipeline's output; one probability per genre */
    double weight;        /* w: the genre block's share of the cosine */
    size_t k, d;
} genre_embed;

/* [√w · block / |block|, √(1 − w) · x / |x|] for a genre block of k values. */
static void genre_blocks(const genre_embed *g, const double *block, const double *x, double *out) {
    double nb = 0.0, nx = 0.0;
    for (size_t c = 0; c < g->k; c++)
        nb += block[c] * block[c];
    for (size_t j = 0; j < g->d; j++)
        nx += x[j] * x[j];
    double sb = nb > 0.0 ? sqrt(g->weight / nb) : 0.0, sx = nx > 0.0 ? sqrt((1.0 - g->weight) / nx) : 0.0;
    for (size_t c = 0; c < g->k; c++)
        out[c] = sb * block[c];
    for (size_t j = 0; j < g->d; j++)
        out[g->k + j] = sx * x[j];
}

/* A query keeps its most probable genres up to GENRE_MASS of the probability (at most
 * GENRE_KEEP of them): the rest weigh almost nothing, and a sparse genre block lets the index
 * visit only those genres' tracks (tb_index_set_label_dims). */
#define GENRE_MASS 0.99
#define GENRE_KEEP 16

static void genre_embed_query(const void *impl, const double *x, double *out) {
    const genre_embed *g = impl;
    double p[TB_EMBED_MAX_DIM], kept[TB_EMBED_MAX_DIM] = {0}, mass = 0.0;
    tb_model_predict(g->classifier, x, p);
    for (size_t n = 0; n < GENRE_KEEP && n < g->k && mass < GENRE_MASS; n++) {
        size_t best = 0;
        for (size_t c = 1; c < g->k; c++) /* the next most probable, ties to the lower index */
            if (kept[c] == 0.0 && (kept[best] != 0.0 || p[c] > p[best]))
                best = c;
        kept[best] = p[best];
        mass += p[best];
    }
    genre_blocks(g, kept, x, out);
}

static void genre_embed_known(const void *impl, const double *x, const size_t *classes, size_t n, double *out) {
    const genre_embed *g = impl;
    double h[TB_EMBED_MAX_DIM] = {0};
    for (size_t i = 0; i < n; i++)
        if (classes[i] < g->k)
            h[classes[i]] = 1.0;
    genre_blocks(g, h, x, out);
}

static void genre_save(const void *impl, tb_writer *w) {
    const genre_embed *g = impl;
    tb_write_f64(w, g->weight);
    tb_model_save(g->classifier, w);
}

static void genre_free(void *impl) {
    genre_embed *g = impl;
    if (g)
        tb_model_free(g->classifier);
    free(g);
}

static tb_status genre_check(const tb_model *m, double weight, size_t n_features, size_t dim) {
    if (m->task != TB_TASK_CLASSIFY || m->n_features != n_features || m->n_outputs + n_features != dim)
        return tb_error(TB_CORRUPT, "embedding blob: the genre classifier does not fit %zu features and %zu values",
                        n_features, dim);
    if (!(weight > 0.0 && weight < 1.0))
        return tb_error(TB_CORRUPT, "embedding blob: genre weight %g is not in (0, 1)", weight);
    return TB_OK;
}

static tb_status genre_load(tb_reader *r, size_t n_features, size_t dim, void **ret_impl) {
    genre_embed *g = calloc(1, sizeof *g);
    if (!g)
        return tb_error(TB_NOMEM, "out of memory");
    tb_status st = tb_read_f64(r, &g->weight, "genre weight");
    if (st == TB_OK)
        st = tb_model_load(r, &g->classifier);
    if (st == TB_OK)
        st = genre_check(g->classifier, g->weight, n_features, dim);
    if (st != TB_OK) {
        genre_free(g);
        return st;
    }
    g->k = g->classifier->n_outputs;
    g->d = n_features;
    *ret_impl = g;
    return TB_OK;
}

static size_t genre_label_dims(const void *impl) { return ((const genre_embed *)impl)->k; }

static const tb_embedder_ops genre_ops = {
    .kind = "genre",
    .learned = 1,
    .embed = genre_embed_query,
    .embed_known = genre_embed_known,
    .label_dims = genre_label_dims,
    .save = genre_save,
    .load = genre_load,
    .free = genre_free,
};

tb_status tb_embedder_genre_new(tb_pipeline *pipeline, tb_model *classifier, double weight, tb_embedder **ret) {
    size_t d = pipeline->n_features, dim = classifier->n_outputs + d;
    genre_embed *g = calloc(1, sizeof *g);
    tb_embedder *e = calloc(1, sizeof *e);
    tb_status st = !g || !e                           ? tb_error(TB_NOMEM, "out of memory")
                   : !(weight > 0.0 && weight < 1.0) ? tb_error(TB_INVALID, "genre weight %g is not in (0, 1)", weight)
                                                     : genre_check(classifier, weight, d, dim);
    if (st == TB_OK && dim > TB_EMBED_MAX_DIM)
        st = tb_error(TB_INVALID, "%zu genres and %zu features exceed %d embedding values", classifier->n_outputs, d,
                      TB_EMBED_MAX_DIM);
    if (st != TB_OK) {
        free(g);
        free(e);
        tb_pipeline_free(pipeline);
        tb_model_free(classifier);
        return st;
    }
    *g = (genre_embed){.classifier = classifier, .weight = weight, .k = classifier->n_outputs, .d = d};
    *e = (tb_embedder){.ops = &genre_ops, .impl = g, .pipeline = pipeline, .dim = dim};
    *ret = e;
    return TB_OK;
}

static const tb_embedder_ops *const embedder_kinds[] = {&standardized_ops, &mlp_ops, &genre_ops};

const tb_embedder_ops *tb_embedder_ops_find(const char *kind) {
    for (size_t i = 0; i < sizeof embedder_kinds / sizeof embedder_kinds[0]; i++)
        if (strcmp(embedder_kinds[i]->kind, kind) == 0)
            return embedder_kinds[i];
    return NULL;
}

static char kinds_text[96];
static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;

static void build_kinds(void) { /* from the registry, once */
    size_t len = 0;
    for (size_t i = 0; i < sizeof embedder_kinds / sizeof embedder_kinds[0] && len < sizeof kinds_text; i++)
        len += (size_t)snprintf(kinds_text + len, sizeof kinds_text - len, "%s%s", i ? ", " : "", embedder_kinds[i]->kind);
}

const char *tb_embedder_kinds(void) {
    pthread_once(&kinds_once, build_kinds);
    return kinds_text;
}

/* ---------- the embedder ---------- */

tb_embedder *tb_embedder_free(tb_embedder *e) {
    if (!e)
        return NULL;
    if (e->ops)
        e->ops->free(e->impl);
    tb_pipeline_free(e->pipeline);
    free(e->ann_blob);
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

void tb_embedder_embed_known(const tb_embedder *e, const double *raw, const size_t *classes, size_t n_classes,
                             float *out) {
    if (!e->ops->embed_known) {
        tb_embedder_embed(e, raw, out);
        return;
    }
    double x[256], v[TB_EMBED_MAX_DIM];
    size_t d = e->pipeline->n_features, k = e->dim;
    if (d > 256) { /* the genre embedder is built only for pipelines this narrow */
        memset(out, 0, k * sizeof *out);
        return;
    }
    tb_pipeline_transform(e->pipeline, raw, x);
    e->ops->embed_known(e->impl, x, classes, n_classes, v);
    for (size_t j = 0; j < k; j++)
        out[j] = (float)v[j];
}

size_t tb_embedder_label_dims(const tb_embedder *e) { return e->ops->label_dims ? e->ops->label_dims(e->impl) : 0; }

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
    at = tb_write_len_placeholder(&w); /* minor 1: the approximate index, empty when none */
    if (e->ann_len)
        tb_write_bytes(&w, e->ann_blob, e->ann_len);
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
    if (tb_reader_left(&sec) != 0) {
        st = tb_error(TB_CORRUPT, "embedding blob: unexpected bytes after the embedder");
        goto fail;
    }
    if (minor >= 1 && (st = tb_read_section(&r, &sec, "approximate index section")) == TB_OK &&
        tb_reader_left(&sec) > 0) {
        e->ann_len = tb_reader_left(&sec);
        if (!(e->ann_blob = malloc(e->ann_len))) {
            st = tb_error(TB_NOMEM, "out of memory");
            goto fail;
        }
        st = tb_read_bytes(&sec, e->ann_blob, e->ann_len, "approximate index");
    }
    if (st != TB_OK)
        goto fail;
    if (tb_reader_left(&r) != 0) {
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
    if (e)
        free(e->ann_blob);
    free(e);
    return st;
}
