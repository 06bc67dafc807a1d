/* The form in which boosted trees are walked at prediction time, built once from the trees after
 * training or loading (models/gbdt.c keeps the trees themselves, for training and saving). */
#ifndef TIMBRE_GBDT_WALK_H
#define TIMBRE_GBDT_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tree.h"

/* An internal node's feature field carries, in bit 30, where missing (NaN) values go: set = right.
 * NaN compares false, so without the bit they go left. */
#define TB_GBDT_MISSING_RIGHT 0x40000000
#define TB_GBDT_FEATURE_MASK 0x3fffffff

typedef struct tb_boosted_tree {
    uint32_t n_nodes, n_leaves;
    tb_tree_node *nodes;
    float *values; /* n_leaves × k: added to the raw scores */
    float *cover;  /* n_nodes: training rows of the round that reached each node (for TreeSHAP's
                      expectations); NULL in models saved before covers were kept */
} tb_boosted_tree;

typedef struct tb_gbdt_walk tb_gbdt_walk;

#define TB_GBDT_WALK_MAX_OUTPUTS 1024
#define TB_GBDT_WALK_MAX_FEATURES 256

/* k: outputs (classes, or 1), at most TB_GBDT_WALK_MAX_OUTPUTS; d: features, at most
 * TB_GBDT_WALK_MAX_FEATURES; at most 65535 distinct thresholds per feature over all trees. `half`: keep the leaf values as
 * binary16 (rounded to nearest), half the bytes a row reads; for many classes, where those bytes
 * are much of a prediction's cost. */
tb_status tb_gbdt_walk_new(const tb_boosted_tree *trees, size_t n_trees, size_t k, size_t d, int half,
                           tb_gbdt_walk **ret_walk);
void tb_gbdt_walk_free(tb_gbdt_walk *w);

/* out = base + the sum of every tree's leaf values for the row x (raw scores). */
void tb_gbdt_walk_row(const tb_gbdt_walk *w, const double *base, const double *x, double *out);
/* The same for n rows, tree by tree over groups of rows, with the same additions in the same
 * order as tb_gbdt_walk_row, so the numbers are identical. */
void tb_gbdt_walk_rows(const tb_gbdt_walk *w, const double *base, const double *x, size_t n, double *out);

#endif
