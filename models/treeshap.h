/* Exact path-dependent TreeSHAP (Lundberg et al., "From local explanations to global
 * understanding with explainable AI for trees", Nature Machine Intelligence 2020, Algorithm 2):
 * the Shapley values of one tree's output for one row, where a coalition's value is the tree's
 * expectation given the features in it, the others averaged over the training rows that reached
 * each node (its cover). O(leaves × depth²) per tree and output. Leaves may hold several outputs
 * (our multi-output trees): one pass serves them all. */
#ifndef TB_TREESHAP_H
#define TB_TREESHAP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tree.h"

typedef struct tb_shap_tree {
    const tb_tree_node *nodes;
    uint32_t n_nodes;
    const float *cover;       /* per node; a split's is its children's sum */
    int32_t feature_mask;     /* the feature's bits in a node's field (boosting keeps a flag above) */
    int32_t missing_right;    /* the flag bit sending a missing value right (0: missing goes left) */
} tb_shap_tree;

/* Writes leaf `leaf`'s n_out output values (those asked for) to out. */
typedef void (*tb_shap_leaf_fn)(const void *ctx, uint32_t leaf, double *out);

/* Scratch for trees up to max_depth deep (tb_shap_tree_depth). */
typedef struct tb_shap_work tb_shap_work;
tb_shap_work *tb_shap_work_new(size_t max_depth, size_t n_out);
tb_shap_work *tb_shap_work_free(tb_shap_work *w);

/* Depth of the deepest leaf (the root alone: 0); -1 when a split's children are not after it. */
long tb_shap_tree_depth(const tb_shap_tree *t);
/* What explaining one row costs in this tree, in path steps: Σ over leaves of (depth + 1)². */
double tb_shap_tree_cost(const tb_shap_tree *t);

/* Adds the tree's Shapley values for row x to phi (d features × n_out, phi[j * n_out + o]), its
 * expected output (the cover-weighted mean of its leaves) to base and its output for x (the
 * leaf x reaches) to value (n_out each; value may be NULL): base + Σ phi equals value. TB_INVALID
 * when the tree is deeper than the work was made for, or a split's feature or cover is invalid. */
tb_status tb_treeshap_add(const tb_shap_tree *t, const double *x, size_t d, size_t n_out, tb_shap_leaf_fn leaf,
                          const void *ctx, tb_shap_work *w, double *phi, double *base, double *value);

/* An ensemble whose output is a start value plus the sum of its trees' leaves (boosting; a forest
 * with leaves pre-divided by the tree count). */
typedef struct tb_shap_ensemble {
    size_t n_trees, n_features, max_depth;
    const double *start; /* n_out values added to base and value (NULL: 0) */
    void (*tree)(const void *ctx, size_t t, tb_shap_tree *out); /* tree t, cover NULL when it has none */
    void (*leaf)(const void *ctx, size_t t, uint32_t leaf, size_t n_out, double *out); /* its leaves' outputs */
    const void *ctx;
} tb_shap_ensemble;

/* phi (n_features × n_out), base and value (n_out) for row x, summed over the trees: base + Σ
 * phi = value. TB_INVALID when a tree has no covers (a model saved before they were kept). */
tb_status tb_treeshap_ensemble(const tb_shap_ensemble *e, const double *x, size_t n_out, double *phi, double *base,
                               double *value);

#endif
