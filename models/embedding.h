/* Track embeddings for the recommendation index. An embedder maps a track's raw features to a
 * dim-value vector; the index stores those vectors L2-normalized, so a dot product is the cosine.
 * The function is pluggable (tb_embedder_ops): "standardized" is the feature pipeline's output
 * times per-feature weights; a learned embedding (an MLP's penultimate layer) is another kind,
 * and the index and endpoint do not change. Saved as one blob (magic "TMBE"), like a predictor. */
#ifndef TB_EMBEDDING_H
#define TB_EMBEDDING_H

#include <stddef.h>

#include "codec.h"
#include "model.h"
#include "pipeline.h"
#include "status.h"

#define TB_EMBED_MAGIC "TMBE"
#define TB_EMBED_MAJOR 1
#define TB_EMBED_MINOR 1 /* 1: a section for an approximate index */
#define TB_EMBED_MAX_DIM 4096

typedef struct tb_embedder_ops {
    const char *kind;
    int learned;  /* 1: trained from genres (a model of `family`), 0: fitted by the pipeline */
    const char *family; /* learned: the model family it needs; NULL: any classifier */
    /* Optional, learned: the embedding's own defaults for parameters left at the family's. */
    void (*defaults)(tb_train_params *p);
    int weighted; /* 1: takes per-feature weights */
    /* x: the pipeline's output (n_features values); out: dim values, not yet normalized. */
    void (*embed)(const void *impl, const double *x, double *out);
    /* Optional: a catalog track's vector from x and its known genres (class indices), unit
     * length; the first label_dims values then stand for genres (a query's are predicted). */
    void (*embed_known)(const void *impl, const double *x, const size_t *classes, size_t n, double *out);
    size_t (*label_dims)(const void *impl);
    void (*save)(const void *impl, tb_writer *w);
    tb_status (*load)(tb_reader *r, size_t n_features, size_t dim, void **ret_impl);
    void (*free)(void *impl);
} tb_embedder_ops;

/* Owns the pipeline and the implementation. Immutable: share across threads. */
typedef struct tb_embedder {
    const tb_embedder_ops *ops;
    void *impl;
    tb_pipeline *pipeline;
    size_t dim;
    /* Optional: an approximate index over the published vectors (models/ann.h's blob), kept
     * beside the embedder in its blob; the server loads it against the index's rows. */
    void *ann_blob;
    size_t ann_len;
} tb_embedder;

/* The "standardized" embedder: standardized features times weights (NULL = all 1). Takes
 * ownership of the pipeline. Weights must be finite and >= 0, not all 0. */
tb_status tb_embedder_standardized_new(tb_pipeline *pipeline, const double *weights, tb_embedder **ret);
/* The "mlp" embedder: the last hidden layer of a trained neural network (models/mlp.c) that reads
 * the pipeline's output. Takes ownership of both, also on failure. */
tb_status tb_embedder_mlp_new(tb_pipeline *pipeline, struct tb_model *model, tb_embedder **ret);
/* The "genre" embedder: a genre classifier's probabilities (e.g. boosting's, over the pipeline's
 * output) beside the standardized features, each block of unit length, weighed √w and √(1 − w);
 * catalog tracks are embedded with their known genres in the first block
 * (tb_embedder_embed_known), so a query's cosine with a track is
 * w · (p̂ · ĥ) + (1 − w) · (x̂ · x̂'). Takes ownership of both, also on failure. */
tb_status tb_embedder_genre_new(tb_pipeline *pipeline, struct tb_model *classifier, double weight, tb_embedder **ret);
tb_embedder *tb_embedder_free(tb_embedder *e);
/* The embedder registered under kind, or NULL; the list of kinds, for messages. */
const tb_embedder_ops *tb_embedder_ops_find(const char *kind);
const char *tb_embedder_kinds(void);

/* raw: the pipeline's n_features raw values (NaN = missing, imputed); out: dim floats of unit
 * length (all zero when the embedding is the zero vector). No allocation for d, dim <= 256. */
void tb_embedder_embed(const tb_embedder *e, const double *raw, float *out);

/* A catalog track's vector: its raw features and known genres (indices into the classifier's
 * classes) for an embedder with label dimensions, else tb_embedder_embed's. Unit length. */
void tb_embedder_embed_known(const tb_embedder *e, const double *raw, const size_t *classes, size_t n_classes,
                             float *out);
/* How many leading values stand for genres (0 but for "genre"). */
size_t tb_embedder_label_dims(const tb_embedder *e);

tb_status tb_embedder_save(const tb_embedder *e, void **ret_blob, size_t *ret_len);
/* Refuses a wrong magic, an unknown kind or major version, and counts that disagree with the bytes. */
tb_status tb_embedder_load(const void *blob, size_t len, tb_embedder **ret);

#endif
