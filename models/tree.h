/* CART engine shared by the tree ensembles: feature binning (≤ 256 bins a feature, cut between
 * distinct training values) and one decision tree grown on the bins, stored as flat arrays. */
#ifndef TB_TREE_H
#define TB_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "model.h"
#include "rng.h"
#include "status.h"

#define TB_MAX_BINS 256
/* Code of a missing (NaN) value; a feature with missing values has at most TB_MAX_BINS - 1
 * real bins (without, 255 is an ordinary bin: check has_missing). */
#define TB_MISSING_BIN 255

/* Quantized training matrix. Owned by the trainer; read-only while trees grow. */
typedef struct tb_bins {
    size_t n, d;
    uint8_t *codes;    /* d × n, column-major: codes[j * n + i] */
    uint16_t *n_bins;  /* per feature, 1..256 real bins (1..255 when it has missing values) */
    uint8_t *has_missing; /* per feature: some value was NaN (coded TB_MISSING_BIN) */
    double **cuts;     /* per feature, n_bins - 1 ascending thresholds: x <= cuts[b] ⇔ bin(x) <= b */
} tb_bins;

/* Exact bins when a feature has ≤ 256 distinct values, equal-count quantile bins otherwise.
 * NaN values get the code TB_MISSING_BIN (the feature then keeps at most 255 real bins). */
tb_status tb_bins_build(const double *X, size_t n, size_t d, tb_bins **ret_bins);
tb_bins *tb_bins_free(tb_bins *b);

/* One fitted tree. Internal node k: feature ≥ 0, go to child when x <= threshold, else child + 1
 * (children are allocated in pairs after their parent). Leaf: feature = -1 and child is the leaf
 * index. */
/* One node in 16 bytes, so a traversal step touches one cache line. */
typedef struct tb_tree_node {
    int32_t feature;
    int32_t child;
    double threshold;
} tb_tree_node;

typedef struct tb_tree {
    uint32_t n_nodes, n_leaves, n_entries;
    tb_tree_node *nodes;
    /* classify: leaf L's distribution is entries leaf_start[L] .. leaf_start[L+1] (sparse) */
    uint32_t *leaf_start;
    uint16_t *leaf_class;
    float *leaf_prob;
    /* regress: one value per leaf */
    double *leaf_value;
    /* per node: the training weight that reached it (bag counts × class weights), TreeSHAP's
       expectations; NULL in models saved before covers were kept */
    float *cover;
} tb_tree;

void tb_tree_clear(tb_tree *t);
/* Covers trail a family's trees in its blob: every tree's or none (written only when all have
 * them); reading finds none in a model saved before them, and checks each split's cover is its
 * children's sum. */
void tb_tree_covers_write(tb_writer *w, const tb_tree *trees, size_t n_trees);
tb_status tb_tree_covers_read(tb_reader *r, tb_tree *trees, size_t n_trees);
/* Each split's cover is its children's sum, every cover finite and >= 0 (nodes already checked). */
tb_status tb_tree_covers_check(const tb_tree_node *nodes, uint32_t n_nodes, const float *cover);

static inline uint32_t tb_tree_leaf(const tb_tree *t, const double *x) {
    const tb_tree_node *nodes = t->nodes, *nd = nodes;
    while (nd->feature >= 0)
        nd = nodes + nd->child + (x[nd->feature] > nd->threshold);
    return (uint32_t)nd->child;
}

/* Grows one tree. `weight` holds each row's weight (0 = not in the bag); `mtry` features are tried
 * per node (constant ones not counted, as scikit-learn). Deterministic for a given rng state.
 * `work` is per-thread scratch from tb_tree_work_new. */
typedef struct tb_tree_work tb_tree_work;
tb_tree_work *tb_tree_work_new(const tb_bins *bins, size_t n_classes);
tb_tree_work *tb_tree_work_free(tb_tree_work *w);

typedef struct tb_tree_spec {
    tb_task task;
    const int32_t *y;       /* classify */
    size_t n_classes;
    const double *target;   /* regress */
    size_t max_depth;       /* 0 = unlimited */
    size_t min_samples_leaf;
    size_t mtry;
    int random_splits;      /* extra trees: one random cut per feature instead of the best */
} tb_tree_spec;

tb_status tb_tree_grow(tb_tree_work *work, const tb_tree_spec *spec, const double *weight, tb_rng *rng,
                       tb_tree *ret_tree);

/* Node arrays in blobs, shared by every tree family: write n nodes; read and validate n nodes
 * (internal: feature, after clearing `flag_bits`, below n_features, children strictly after the
 * parent and in range, threshold not NaN; leaf: feature -1 and index below n_leaves), so a hostile
 * blob cannot send a traversal out of bounds or into a loop. */
void tb_tree_nodes_write(tb_writer *w, const tb_tree_node *nodes, uint32_t n_nodes);
tb_status tb_tree_nodes_read(tb_reader *r, uint32_t n_nodes, uint32_t n_leaves, size_t n_features, int32_t flag_bits,
                             tb_tree_node **ret_nodes);

void tb_tree_save(const tb_tree *t, tb_task task, tb_writer *w);
/* Validates structure (children after parents and in range, features < n_features, finite values,
 * classes < n_classes) so a hostile blob cannot send prediction out of bounds. */
tb_status tb_tree_load(tb_reader *r, tb_task task, size_t n_features, size_t n_classes, tb_tree *ret_tree);

#endif
