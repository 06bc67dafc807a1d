/* Path-dependent TreeSHAP (see treeshap.h). The path holds, for each split feature met on the
 * way down (the first element stands for none), the share of cover its cold side keeps (zero),
 * whether x follows it (one), and the weights of coalition sizes the path's features form. */
#include "treeshap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct path_el {
    int32_t feature;
    double zero, one, weight;
} path_el;

struct tb_shap_work {
    size_t max_depth, n_out;
    path_el *paths; /* one region per level: level l holds l + 2 elements */
    double *leaf;   /* n_out */
};

tb_shap_work *tb_shap_work_new(size_t max_depth, size_t n_out) {
    tb_shap_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->max_depth = max_depth;
    w->n_out = n_out;
    w->paths = malloc((max_depth + 2) * (max_depth + 3) / 2 * sizeof *w->paths);
    w->leaf = malloc((n_out ? n_out : 1) * sizeof *w->leaf);
    return w->paths && w->leaf ? w : tb_shap_work_free(w);
}

tb_shap_work *tb_shap_work_free(tb_shap_work *w) {
    if (w) {
        free(w->paths);
        free(w->leaf);
        free(w);
    }
    return NULL;
}

static long depth_from(const tb_shap_tree *t, uint32_t node, long depth) {
    const tb_tree_node *nd = &t->nodes[node];
    if (nd->feature < 0)
        return depth;
    if (nd->child <= (int32_t)node || (uint32_t)nd->child + 1 >= t->n_nodes || depth >= 4096)
        return -1;
    long l = depth_from(t, (uint32_t)nd->child, depth + 1), r = depth_from(t, (uint32_t)nd->child + 1, depth + 1);
    return l < 0 || r < 0 ? -1 : l > r ? l : r;
}

long tb_shap_tree_depth(const tb_shap_tree *t) { return t->n_nodes ? depth_from(t, 0, 0) : -1; }

static double cost_from(const tb_shap_tree *t, uint32_t node, double depth) {
    const tb_tree_node *nd = &t->nodes[node];
    if (nd->feature < 0)
        return (depth + 1) * (depth + 1);
    return cost_from(t, (uint32_t)nd->child, depth + 1) + cost_from(t, (uint32_t)nd->child + 1, depth + 1);
}

double tb_shap_tree_cost(const tb_shap_tree *t) { return tb_shap_tree_depth(t) < 0 ? 0.0 : cost_from(t, 0, 0); }

/* Appends a feature to the path p[0 .. len) and updates the coalition-size weights. */
static void extend(path_el *p, size_t len, double zero, double one, int32_t feature) {
    p[len] = (path_el){feature, zero, one, len == 0 ? 1.0 : 0.0};
    for (size_t i = len; i-- > 0;) {
        p[i + 1].weight += one * p[i].weight * (double)(i + 1) / (double)(len + 1);
        p[i].weight = zero * p[i].weight * (double)(len - i) / (double)(len + 1);
    }
}

/* Undoes extend for element at of p[0 .. last]: the path then ends at last - 1. */
static void unwind(path_el *p, size_t last, size_t at) {
    double one = p[at].one, zero = p[at].zero, next = p[last].weight;
    for (size_t i = last; i-- > 0;) {
        if (one != 0.0) {
            double tmp = p[i].weight;
            p[i].weight = next * (double)(last + 1) / ((double)(i + 1) * one);
            next = tmp - p[i].weight * zero * (double)(last - i) / (double)(last + 1);
        } else {
            p[i].weight = p[i].weight * (double)(last + 1) / (zero * (double)(last - i));
        }
    }
    for (size_t i = at; i < last; i++) {
        p[i].feature = p[i + 1].feature;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

/* The total weight of the path p[0 .. last] were element `at` unwound, without unwinding it. */
static double unwound_sum(const path_el *p, size_t last, size_t at) {
    double one = p[at].one, zero = p[at].zero, next = p[last].weight, total = 0.0;
    for (size_t i = last; i-- > 0;) {
        if (one != 0.0) {
            double tmp = next * (double)(last + 1) / ((double)(i + 1) * one);
            total += tmp;
            next = p[i].weight - tmp * zero * (double)(last - i) / (double)(last + 1);
        } else {
            total += p[i].weight / zero / ((double)(last - i) / (double)(last + 1));
        }
    }
    return total;
}

typedef struct walk {
    const tb_shap_tree *t;
    const double *x;
    size_t n_out;
    tb_shap_leaf_fn leaf;
    const void *ctx;
    double *leaf_value, *phi;
} walk;

/* The child x goes to (of the pair child, child + 1). */
static uint32_t next_node(const walk *k, const tb_tree_node *nd) {
    double v = k->x[nd->feature & k->t->feature_mask];
    int right = v > nd->threshold || (isnan(v) && (nd->feature & k->t->missing_right));
    return (uint32_t)nd->child + (uint32_t)right;
}

/* parent: the parent's path (parent_len elements, room for one more after them in this level's
 * region); this node's path starts right after the parent's region. */
static void recurse(const walk *k, uint32_t node, path_el *parent, size_t len, double zero, double one,
                    int32_t feature) {
    path_el *p = parent + len + 1;
    for (size_t i = 0; i < len; i++)
        p[i] = parent[i];
    extend(p, len, zero, one, feature);
    const tb_tree_node *nd = &k->t->nodes[node];
    if (nd->feature < 0) {
        k->leaf(k->ctx, (uint32_t)nd->child, k->leaf_value);
        for (size_t i = 1; i <= len; i++) {
            double w = unwound_sum(p, len, i) * (p[i].one - p[i].zero);
            double *phi = k->phi + (size_t)p[i].feature * k->n_out;
            for (size_t o = 0; o < k->n_out; o++)
                phi[o] += w * k->leaf_value[o];
        }
        return;
    }
    int32_t f = nd->feature & k->t->feature_mask;
    uint32_t hot = next_node(k, nd), cold = 2u * (uint32_t)nd->child + 1u - hot;
    double in_zero = 1.0, in_one = 1.0;
    size_t last = len;
    for (size_t i = 1; i <= len; i++)
        if (p[i].feature == f) { /* met before: undo it, and redo it here with both shares */
            in_zero = p[i].zero;
            in_one = p[i].one;
            unwind(p, last, i);
            last--;
            break;
        }
    const float *cover = k->t->cover;
    recurse(k, hot, p, last + 1, in_zero * cover[hot] / cover[node], in_one, f);
    recurse(k, cold, p, last + 1, in_zero * cover[cold] / cover[node], 0.0, f);
}

static void expected(const walk *k, uint32_t node, double share, double *base) {
    const tb_tree_node *nd = &k->t->nodes[node];
    if (nd->feature < 0) {
        k->leaf(k->ctx, (uint32_t)nd->child, k->leaf_value);
        for (size_t o = 0; o < k->n_out; o++)
            base[o] += share * k->leaf_value[o];
        return;
    }
    const float *cover = k->t->cover;
    for (uint32_t c = (uint32_t)nd->child; c <= (uint32_t)nd->child + 1; c++)
        expected(k, c, share * cover[c] / cover[node], base);
}

tb_status tb_treeshap_add(const tb_shap_tree *t, const double *x, size_t d, size_t n_out, tb_shap_leaf_fn leaf,
                          const void *ctx, tb_shap_work *w, double *phi, double *base, double *value) {
    long depth = tb_shap_tree_depth(t);
    if (depth < 0 || (size_t)depth > w->max_depth || n_out > w->n_out)
        return tb_error(TB_INVALID, "TreeSHAP: a tree %ld deep for work made for %zu", depth, w->max_depth);
    for (uint32_t i = 0; i < t->n_nodes; i++)
        if (t->nodes[i].feature >= 0 && ((size_t)(t->nodes[i].feature & t->feature_mask) >= d || !(t->cover[i] > 0.0f)))
            return tb_error(TB_INVALID, "TreeSHAP: node %u splits feature %d of %zu, cover %g", i,
                            t->nodes[i].feature & t->feature_mask, d, (double)t->cover[i]);
    walk k = {t, x, n_out, leaf, ctx, w->leaf, phi};
    /* The root's parent path is empty; its region is the first element of the buffer. */
    recurse(&k, 0, w->paths, 0, 1.0, 1.0, -1);
    expected(&k, 0, 1.0, base);
    if (value) {
        uint32_t node = 0;
        while (t->nodes[node].feature >= 0)
            node = next_node(&k, &t->nodes[node]);
        leaf(ctx, (uint32_t)t->nodes[node].child, w->leaf);
        for (size_t o = 0; o < n_out; o++)
            value[o] += w->leaf[o];
    }
    return TB_OK;
}

typedef struct ensemble_leaf {
    const tb_shap_ensemble *e;
    size_t t, n_out;
} ensemble_leaf;

static void ensemble_leaf_value(const void *ctx, uint32_t leaf, double *out) {
    const ensemble_leaf *l = ctx;
    l->e->leaf(l->e->ctx, l->t, leaf, l->n_out, out);
}

tb_status tb_treeshap_ensemble(const tb_shap_ensemble *e, const double *x, size_t n_out, double *phi, double *base,
                               double *value) {
    tb_shap_tree t;
    for (size_t i = 0; i < e->n_trees; i++) {
        e->tree(e->ctx, i, &t);
        if (!t.cover)
            return tb_error(TB_INVALID, "its trees were saved before they kept their covers: retrain it to explain "
                                        "its predictions");
    }
    tb_shap_work *w = tb_shap_work_new(e->max_depth, n_out);
    if (!w)
        return tb_error(TB_NOMEM, "out of memory");
    memset(phi, 0, e->n_features * n_out * sizeof *phi);
    for (size_t o = 0; o < n_out; o++)
        base[o] = value[o] = e->start ? e->start[o] : 0.0;
    tb_status st = TB_OK;
    for (size_t i = 0; i < e->n_trees && st == TB_OK; i++) {
        ensemble_leaf l = {e, i, n_out};
        e->tree(e->ctx, i, &t);
        st = tb_treeshap_add(&t, x, e->n_features, n_out, ensemble_leaf_value, &l, w, phi, base, value);
    }
    tb_shap_work_free(w);
    return st;
}
