/* CART on binned features. Split search sorts a node's rows by bin with a counting sort (O(rows +
 * bins)), then scans once keeping running class weights, so the cost does not grow with the
 * number of classes; gini uses the identity impurity ∝ -Σ_c w_c² / W. */
#include "tree.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---------- binning ---------- */

tb_bins *tb_bins_free(tb_bins *b) {
    if (!b)
        return NULL;
    if (b->cuts)
        for (size_t j = 0; j < b->d; j++)
            free(b->cuts[j]);
    free(b->cuts);
    free(b->codes);
    free(b->n_bins);
    free(b->has_missing);
    free(b);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A threshold t with a <= t < b, as close to the middle as doubles allow. */
static double midpoint(double a, double b) {
    double m = a + (b - a) / 2.0;
    return (m >= b || m < a) ? a : m;
}

/* Number of cuts strictly below x: the bin of x. */
static uint8_t bin_of(const double *cuts, size_t n_cuts, double x) {
    size_t lo = 0, hi = n_cuts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cuts[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t)lo;
}

tb_status tb_bins_build(const double *X, size_t n, size_t d, tb_bins **ret_bins) {
    tb_bins *b = calloc(1, sizeof *b);
    double *col = tb_malloc_n(n, sizeof *col);
    if (!b || !col)
        goto nomem;
    b->n = n;
    b->d = d;
    b->codes = tb_malloc_n(n * d, 1);
    b->n_bins = tb_calloc_n(d, sizeof *b->n_bins);
    b->has_missing = tb_calloc_n(d, sizeof *b->has_missing);
    b->cuts = tb_calloc_n(d, sizeof *b->cuts);
    if (!b->codes || !b->n_bins || !b->has_missing || !b->cuts)
        goto nomem;
    for (size_t j = 0; j < d; j++) {
        size_t n_obs = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(X[i * d + j]))
                col[n_obs++] = X[i * d + j];
        b->has_missing[j] = n_obs < n;
        size_t max_bins = b->has_missing[j] ? TB_MAX_BINS - 1 : TB_MAX_BINS;
        qsort(col, n_obs, sizeof *col, cmp_double);
        size_t n_unique = 0;
        for (size_t i = 0; i < n_obs; i++)
            if (i == 0 || col[i] != col[i - 1])
                n_unique++;
        double *cuts = tb_malloc_n(TB_MAX_BINS - 1, sizeof *cuts);
        if (!cuts)
            goto nomem;
        b->cuts[j] = cuts;
        size_t n_cuts = 0;
        if (n_unique <= max_bins) {
            for (size_t i = 1; i < n_obs; i++)
                if (col[i] != col[i - 1])
                    cuts[n_cuts++] = midpoint(col[i - 1], col[i]);
        } else {
            /* Close a bin once it holds its share of rows, cutting only between distinct values. */
            for (size_t i = 1; i < n_obs && n_cuts < max_bins - 1; i++) {
                if (col[i] == col[i - 1])
                    continue;
                double share = (double)(n_cuts + 1) * (double)n_obs / (double)max_bins;
                if ((double)i >= share)
                    cuts[n_cuts++] = midpoint(col[i - 1], col[i]);
            }
        }
        b->n_bins[j] = (uint16_t)(n_cuts + 1);
        uint8_t *codes = b->codes + j * n;
        for (size_t i = 0; i < n; i++)
            codes[i] = isnan(X[i * d + j]) ? TB_MISSING_BIN : bin_of(cuts, n_cuts, X[i * d + j]);
    }
    free(col);
    *ret_bins = b;
    return TB_OK;
nomem:
    free(col);
    tb_bins_free(b);
    return tb_error(TB_NOMEM, "out of memory binning %zu x %zu features", n, d);
}

/* ---------- tree growth ---------- */

struct tb_tree_work {
    const tb_bins *bins;
    size_t k;          /* classes (1 for regression) */
    uint32_t *rows;    /* in-bag rows, partitioned node by node */
    uint32_t *sorted;  /* a node's rows ordered by bin */
    uint32_t *count;   /* TB_MAX_BINS + 1 counting-sort buckets */
    double *total;     /* node class weights (k) */
    double *left;      /* running left class weights (k) */
    size_t *features;  /* permutation for feature sampling */
};

tb_tree_work *tb_tree_work_free(tb_tree_work *w) {
    if (!w)
        return NULL;
    free(w->rows);
    free(w->sorted);
    free(w->count);
    free(w->total);
    free(w->left);
    free(w->features);
    free(w);
    return NULL;
}

tb_tree_work *tb_tree_work_new(const tb_bins *bins, size_t n_classes) {
    tb_tree_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->bins = bins;
    w->k = n_classes ? n_classes : 1;
    w->rows = tb_malloc_n(bins->n, sizeof *w->rows);
    w->sorted = tb_malloc_n(bins->n, sizeof *w->sorted);
    w->count = tb_calloc_n(TB_MAX_BINS + 1, sizeof *w->count);
    w->total = tb_malloc_n(w->k, sizeof *w->total);
    w->left = tb_malloc_n(w->k, sizeof *w->left);
    w->features = tb_malloc_n(bins->d, sizeof *w->features);
    if (!w->rows || !w->sorted || !w->count || !w->total || !w->left || !w->features)
        return tb_tree_work_free(w);
    return w;
}

void tb_tree_clear(tb_tree *t) {
    free(t->nodes);
    free(t->leaf_start);
    free(t->leaf_class);
    free(t->leaf_prob);
    free(t->leaf_value);
    free(t->cover);
    memset(t, 0, sizeof *t);
}

/* Growable arrays of the tree under construction. */
typedef struct builder {
    tb_tree *t;
    size_t node_cap, leaf_cap, entry_cap;
} builder;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int reserve_nodes(builder *b, size_t need) {
    size_t cap = b->node_cap;
    tb_tree *t = b->t;
    if (need <= cap)
        return 0;
    size_t cover_cap = cap; /* grows in step with the nodes */
    if (grow((void **)&t->nodes, &cap, need, sizeof *t->nodes) ||
        grow((void **)&t->cover, &cover_cap, need, sizeof *t->cover))
        return -1;
    b->node_cap = cap;
    return 0;
}

typedef struct frame {
    uint32_t node, start, end, depth;
} frame;

typedef struct best_split {
    int found;
    size_t feature;
    unsigned bin;   /* rows with bin <= this go left */
    double score;
} best_split;

/* Extra trees: scores one cut drawn uniformly between the node's lowest and highest occupied bins
 * of feature j. Returns 1 if the feature is constant in the node. */
static int random_cut(tb_tree_work *w, const tb_tree_spec *s, const double *weight, size_t j, uint32_t start,
                      uint32_t end, double w_total, double total_stat, tb_rng *rng, best_split *best) {
    const uint8_t *codes = w->bins->codes + j * w->bins->n;
    unsigned lo = TB_MAX_BINS, hi = 0;
    for (uint32_t i = start; i < end; i++) {
        unsigned c = codes[w->rows[i]];
        lo = c < lo ? c : lo;
        hi = c > hi ? c : hi;
    }
    if (lo == hi)
        return 1;
    unsigned cut = lo + (unsigned)tb_rng_below(rng, hi - lo); /* left: bins <= cut */
    uint32_t n_left = 0;
    double wl = 0.0, stat_l = 0.0;
    if (s->task == TB_TASK_CLASSIFY)
        memset(w->left, 0, w->k * sizeof *w->left);
    for (uint32_t i = start; i < end; i++) {
        uint32_t r = w->rows[i];
        if (codes[r] > cut)
            continue;
        n_left++;
        wl += weight[r];
        if (s->task == TB_TASK_CLASSIFY)
            w->left[s->y[r]] += weight[r];
        else
            stat_l += weight[r] * s->target[r];
    }
    uint32_t n_right = end - start - n_left;
    double wr = w_total - wl;
    if (n_left < s->min_samples_leaf || n_right < s->min_samples_leaf || wl <= 0.0 || wr <= 0.0)
        return 0;
    double score;
    if (s->task == TB_TASK_CLASSIFY) {
        double sql = 0.0, sqr = 0.0;
        for (size_t c = 0; c < w->k; c++) {
            double r = w->total[c] - w->left[c];
            sql += w->left[c] * w->left[c];
            sqr += r * r;
        }
        score = sql / wl + sqr / wr;
    } else {
        double stat_r = total_stat - stat_l;
        score = stat_l * stat_l / wl + stat_r * stat_r / wr;
    }
    if (!best->found || score > best->score)
        *best = (best_split){1, j, cut, score};
    return 0;
}

/* Scans feature j over rows[start, end); updates *best. total_stat is Σ_c w_c² (classify) or
 * Σ w·y (regress) over the node. Returns 1 if the feature is constant in
 * the node (so it does not count toward mtry). */
static int scan_feature(tb_tree_work *w, const tb_tree_spec *s, const double *weight, size_t j, uint32_t start,
                        uint32_t end, double w_total, double total_stat, best_split *best) {
    const tb_bins *bins = w->bins;
    const uint8_t *codes = bins->codes + j * bins->n;
    uint32_t n_node = end - start;
    uint32_t *count = w->count; /* all zero between calls: cleared over [lo, hi + 1] below */
    unsigned lo = TB_MAX_BINS, hi = 0;
    for (uint32_t i = start; i < end; i++) {
        unsigned c = codes[w->rows[i]];
        count[c + 1]++;
        lo = c < lo ? c : lo;
        hi = c > hi ? c : hi;
    }
    if (lo == hi) {
        count[lo + 1] = 0;
        return 1;
    }
    unsigned first = lo, last = hi;
    for (unsigned b = lo; b < hi; b++)
        count[b + 1] += count[b];
    for (uint32_t i = start; i < end; i++) {
        uint32_t r = w->rows[i];
        w->sorted[count[codes[r]]++] = r;
    }
    /* count[b] now is the end of bin b in sorted. */
    size_t msl = s->min_samples_leaf;
    double wl = 0.0;
    uint32_t pos = 0;
    if (s->task == TB_TASK_CLASSIFY) {
        double *left = w->left;
        const double *total = w->total;
        memset(left, 0, w->k * sizeof *left);
        double sql = 0.0, sqr = total_stat;
        for (unsigned b = first; b < last; b++) {
            uint32_t stop = count[b];
            if (stop == pos)
                continue; /* empty bin: same split as the previous boundary */
            for (; pos < stop; pos++) {
                uint32_t r = w->sorted[pos];
                int32_t c = s->y[r];
                double wr = weight[r];
                double l = left[c], rr = total[c] - l;
                sql += wr * (2.0 * l + wr);
                sqr += wr * (wr - 2.0 * rr);
                left[c] = l + wr;
                wl += wr;
            }
            if (pos < msl || n_node - pos < msl)
                continue;
            double wr_side = w_total - wl;
            if (wl <= 0.0 || wr_side <= 0.0)
                continue;
            double score = sql / wl + sqr / wr_side;
            if (!best->found || score > best->score) {
                *best = (best_split){1, j, b, score};
            }
        }
    } else {
        double sl = 0.0;
        for (unsigned b = first; b < last; b++) {
            uint32_t stop = count[b];
            if (stop == pos)
                continue;
            for (; pos < stop; pos++) {
                uint32_t r = w->sorted[pos];
                sl += weight[r] * s->target[r];
                wl += weight[r];
            }
            if (pos < msl || n_node - pos < msl)
                continue;
            double wr_side = w_total - wl;
            if (wl <= 0.0 || wr_side <= 0.0)
                continue;
            double sr = total_stat - sl;
            double score = sl * sl / wl + sr * sr / wr_side;
            if (!best->found || score > best->score)
                *best = (best_split){1, j, b, score};
        }
    }
    memset(count + first, 0, (last - first + 2) * sizeof *count);
    return 0;
}

/* Makes node `f->node` a leaf holding the node's class distribution or mean. */
static int make_leaf(builder *b, tb_tree_work *w, const tb_tree_spec *s, uint32_t node, double w_total,
                     double sum_y) {
    tb_tree *t = b->t;
    uint32_t leaf = t->n_leaves++;
    t->nodes[node] = (tb_tree_node){.feature = -1, .child = (int32_t)leaf, .threshold = 0.0};
    if (s->task == TB_TASK_CLASSIFY) {
        size_t c1 = b->leaf_cap;
        if (grow((void **)&t->leaf_start, &c1, (size_t)leaf + 2, sizeof *t->leaf_start))
            return -1;
        b->leaf_cap = c1;
        size_t nz = 0;
        for (size_t c = 0; c < w->k; c++)
            nz += w->total[c] > 0.0;
        size_t e1 = b->entry_cap, e2 = b->entry_cap;
        if (grow((void **)&t->leaf_class, &e1, t->n_entries + nz, sizeof *t->leaf_class) ||
            grow((void **)&t->leaf_prob, &e2, t->n_entries + nz, sizeof *t->leaf_prob))
            return -1;
        b->entry_cap = e1;
        t->leaf_start[leaf] = t->n_entries;
        for (size_t c = 0; c < w->k; c++) {
            if (w->total[c] > 0.0) {
                t->leaf_class[t->n_entries] = (uint16_t)c;
                t->leaf_prob[t->n_entries] = (float)(w->total[c] / w_total);
                t->n_entries++;
            }
        }
        t->leaf_start[leaf + 1] = t->n_entries;
    } else {
        size_t c1 = b->leaf_cap;
        if (grow((void **)&t->leaf_value, &c1, (size_t)leaf + 1, sizeof *t->leaf_value))
            return -1;
        b->leaf_cap = c1;
        t->leaf_value[leaf] = w_total > 0.0 ? sum_y / w_total : 0.0;
    }
    return 0;
}

tb_status tb_tree_grow(tb_tree_work *w, const tb_tree_spec *s, const double *weight, tb_rng *rng,
                       tb_tree *ret_tree) {
    const tb_bins *bins = w->bins;
    memset(ret_tree, 0, sizeof *ret_tree);
    builder b = {.t = ret_tree};
    frame *stack = NULL;
    size_t stack_len = 0, stack_cap = 0;
    uint32_t n_in = 0;
    for (size_t i = 0; i < bins->n; i++)
        if (weight[i] > 0.0)
            w->rows[n_in++] = (uint32_t)i;
    if (n_in == 0 || reserve_nodes(&b, 1) || grow((void **)&stack, &stack_cap, 1, sizeof *stack))
        goto nomem_or_empty;
    ret_tree->n_nodes = 1;
    stack[stack_len++] = (frame){0, 0, n_in, 0};
    while (stack_len) {
        frame f = stack[--stack_len];
        uint32_t n_node = f.end - f.start;
        /* Node totals: class weights (classify) or Σw, Σw·y and the y range (regress). */
        double w_total = 0.0, sum_y = 0.0, sumsq = 0.0;
        int pure;
        if (s->task == TB_TASK_CLASSIFY) {
            memset(w->total, 0, w->k * sizeof *w->total);
            for (uint32_t i = f.start; i < f.end; i++) {
                uint32_t r = w->rows[i];
                w->total[s->y[r]] += weight[r];
            }
            size_t nz = 0;
            for (size_t c = 0; c < w->k; c++) {
                w_total += w->total[c];
                sumsq += w->total[c] * w->total[c];
                nz += w->total[c] > 0.0;
            }
            pure = nz <= 1;
        } else {
            double lo = INFINITY, hi = -INFINITY;
            for (uint32_t i = f.start; i < f.end; i++) {
                uint32_t r = w->rows[i];
                w_total += weight[r];
                sum_y += weight[r] * s->target[r];
                lo = fmin(lo, s->target[r]);
                hi = fmax(hi, s->target[r]);
            }
            sumsq = sum_y;
            pure = lo == hi;
        }
        ret_tree->cover[f.node] = (float)w_total;
        best_split best = {0};
        if (!pure && n_node >= 2 * s->min_samples_leaf && n_node >= 2 &&
            (s->max_depth == 0 || f.depth < s->max_depth)) {
            size_t d = bins->d, remaining = d, tried = 0;
            for (size_t j = 0; j < d; j++)
                w->features[j] = j;
            while (remaining > 0 && tried < s->mtry) {
                size_t pick = (size_t)tb_rng_below(rng, remaining);
                size_t j = w->features[pick];
                w->features[pick] = w->features[remaining - 1];
                w->features[remaining - 1] = j;
                remaining--;
                int constant = s->random_splits
                                   ? random_cut(w, s, weight, j, f.start, f.end, w_total, sumsq, rng, &best)
                                   : scan_feature(w, s, weight, j, f.start, f.end, w_total, sumsq, &best);
                if (!constant)
                    tried++;
            }
        }
        if (!best.found) {
            if (make_leaf(&b, w, s, f.node, w_total, sum_y))
                goto nomem_or_empty;
            continue;
        }
        /* Partition rows: bin <= best.bin first. */
        const uint8_t *codes = bins->codes + best.feature * bins->n;
        uint32_t lo = f.start, hi = f.end;
        while (lo < hi) {
            if (codes[w->rows[lo]] <= best.bin) {
                lo++;
            } else {
                uint32_t tmp = w->rows[lo];
                w->rows[lo] = w->rows[--hi];
                w->rows[hi] = tmp;
            }
        }
        uint32_t left_id = ret_tree->n_nodes;
        if (reserve_nodes(&b, (size_t)left_id + 2) || grow((void **)&stack, &stack_cap, stack_len + 2, sizeof *stack))
            goto nomem_or_empty;
        ret_tree->n_nodes += 2;
        ret_tree->nodes[f.node] = (tb_tree_node){
            .feature = (int32_t)best.feature,
            .child = (int32_t)left_id,
            .threshold = bins->cuts[best.feature][best.bin],
        };
        /* Right pushed first so the left subtree is built first (depth-first, left to right). */
        stack[stack_len++] = (frame){left_id + 1, lo, f.end, f.depth + 1};
        stack[stack_len++] = (frame){left_id, f.start, lo, f.depth + 1};
    }
    free(stack);
    return TB_OK;
nomem_or_empty:
    free(stack);
    tb_tree_clear(ret_tree);
    return n_in == 0 ? tb_error(TB_INVALID, "a tree got no rows with positive weight")
                     : tb_error(TB_NOMEM, "out of memory growing a tree");
}

/* ---------- serialization ---------- */

void tb_tree_nodes_write(tb_writer *w, const tb_tree_node *nodes, uint32_t n_nodes) {
    for (uint32_t k = 0; k < n_nodes; k++) {
        tb_write_i32(w, nodes[k].feature);
        tb_write_i32(w, nodes[k].child);
        tb_write_f64(w, nodes[k].threshold);
    }
}

tb_status tb_tree_nodes_read(tb_reader *r, uint32_t n_nodes, uint32_t n_leaves, size_t n_features, int32_t flag_bits,
                             tb_tree_node **ret_nodes) {
    tb_status st = tb_reader_expect(r, n_nodes, 16, "tree nodes");
    if (st != TB_OK)
        return st;
    tb_tree_node *nodes = tb_malloc_n(n_nodes, sizeof *nodes);
    if (!nodes)
        return tb_error(TB_NOMEM, "out of memory loading a tree");
    for (uint32_t k = 0; k < n_nodes; k++) {
        tb_tree_node *nd = &nodes[k];
        tb_read_i32(r, &nd->feature, "tree node feature"); /* sizes checked above */
        tb_read_i32(r, &nd->child, "tree node child");
        tb_read_f64(r, &nd->threshold, "tree node threshold");
        int bad = nd->feature >= 0 ? (size_t)(nd->feature & ~flag_bits) >= n_features || nd->child <= (int32_t)k ||
                                         (uint32_t)nd->child + 1 >= n_nodes || isnan(nd->threshold)
                                   : nd->feature != -1 || nd->child < 0 || (uint32_t)nd->child >= n_leaves;
        if (bad) {
            free(nodes);
            return tb_error(TB_CORRUPT, "tree: node %u has an invalid feature, child or threshold", k);
        }
    }
    *ret_nodes = nodes;
    return TB_OK;
}

void tb_tree_covers_write(tb_writer *w, const tb_tree *trees, size_t n_trees) {
    int covered = n_trees > 0;
    for (size_t t = 0; t < n_trees; t++)
        covered &= trees[t].cover != NULL;
    for (size_t t = 0; covered && t < n_trees; t++)
        tb_write_f32s(w, trees[t].cover, trees[t].n_nodes);
}

tb_status tb_tree_covers_read(tb_reader *r, tb_tree *trees, size_t n_trees) {
    if (tb_reader_left(r) == 0)
        return TB_OK;
    for (size_t t = 0; t < n_trees; t++) {
        tb_tree *tr = &trees[t];
        tb_status st = tb_read_f32s(r, &tr->cover, tr->n_nodes, "tree covers");
        if (st == TB_OK)
            st = tb_tree_covers_check(tr->nodes, tr->n_nodes, tr->cover);
        if (st != TB_OK)
            return tb_error_prefix(st, "tree %zu", t);
    }
    return TB_OK;
}

tb_status tb_tree_covers_check(const tb_tree_node *nodes, uint32_t n_nodes, const float *cover) {
    for (uint32_t i = 0; i < n_nodes; i++) {
        const tb_tree_node *nd = &nodes[i];
        float c = cover[i];
        if (!(c >= 0.0f) || !isfinite(c) ||
            (nd->feature >= 0 && fabsf(c - cover[nd->child] - cover[nd->child + 1]) > 1e-5f * c))
            return tb_error(TB_CORRUPT, "node %u's cover is not its children's sum", i);
    }
    return TB_OK;
}

void tb_tree_save(const tb_tree *t, tb_task task, tb_writer *w) {
    tb_write_u32(w, t->n_nodes);
    tb_write_u32(w, t->n_leaves);
    tb_write_u32(w, task == TB_TASK_CLASSIFY ? t->n_entries : 0);
    tb_tree_nodes_write(w, t->nodes, t->n_nodes);
    if (task == TB_TASK_CLASSIFY) {
        for (uint32_t i = 0; i <= t->n_leaves; i++)
            tb_write_u32(w, t->leaf_start[i]);
        for (uint32_t i = 0; i < t->n_entries; i++)
            tb_write_u16(w, t->leaf_class[i]);
        tb_write_f32s(w, t->leaf_prob, t->n_entries);
    } else {
        tb_write_f64s(w, t->leaf_value, t->n_leaves);
    }
}

tb_status tb_tree_load(tb_reader *r, tb_task task, size_t n_features, size_t n_classes, tb_tree *t) {
    memset(t, 0, sizeof *t);
    tb_status st;
    if ((st = tb_read_u32(r, &t->n_nodes, "tree node count")) != TB_OK ||
        (st = tb_read_u32(r, &t->n_leaves, "tree leaf count")) != TB_OK ||
        (st = tb_read_u32(r, &t->n_entries, "tree leaf entry count")) != TB_OK)
        return st;
    if (t->n_nodes == 0 || t->n_leaves == 0 || t->n_leaves > t->n_nodes || (t->n_nodes + 1) / 2 != t->n_leaves ||
        t->n_nodes % 2 == 0)
        return tb_error(TB_CORRUPT, "tree: %u nodes and %u leaves do not form a binary tree", t->n_nodes,
                        t->n_leaves);
    if ((st = tb_tree_nodes_read(r, t->n_nodes, t->n_leaves, n_features, 0, &t->nodes)) != TB_OK)
        return st;
    if (task == TB_TASK_CLASSIFY) {
        if ((st = tb_reader_expect(r, (size_t)t->n_leaves + 1, 4, "tree leaf offsets")) != TB_OK ||
            (st = tb_reader_expect(r, t->n_entries, 6, "tree leaf entries")) != TB_OK)
            goto fail;
        t->leaf_start = tb_malloc_n((size_t)t->n_leaves + 1, sizeof *t->leaf_start);
        t->leaf_class = tb_malloc_n(t->n_entries, sizeof *t->leaf_class);
        if (!t->leaf_start || !t->leaf_class) {
            st = tb_error(TB_NOMEM, "out of memory loading a tree");
            goto fail;
        }
        for (uint32_t i = 0; i <= t->n_leaves; i++) {
            tb_read_u32(r, &t->leaf_start[i], "tree leaf offset");
            if ((i == 0 && t->leaf_start[0] != 0) || (i > 0 && t->leaf_start[i] < t->leaf_start[i - 1]) ||
                t->leaf_start[i] > t->n_entries || (i == t->n_leaves && t->leaf_start[i] != t->n_entries)) {
                st = tb_error(TB_CORRUPT, "tree: leaf offsets are not ascending within the %u entries", t->n_entries);
                goto fail;
            }
        }
        for (uint32_t i = 0; i < t->n_entries; i++) {
            tb_read_u16(r, &t->leaf_class[i], "tree leaf class");
            if (t->leaf_class[i] >= n_classes) {
                st = tb_error(TB_CORRUPT, "tree: leaf class %u outside the %zu classes", t->leaf_class[i], n_classes);
                goto fail;
            }
        }
        if ((st = tb_read_f32s(r, &t->leaf_prob, t->n_entries, "tree leaf probabilities")) != TB_OK)
            goto fail;
        for (uint32_t i = 0; i < t->n_entries; i++) {
            if (!(t->leaf_prob[i] >= 0.0f && t->leaf_prob[i] <= 1.0f)) {
                st = tb_error(TB_CORRUPT, "tree: leaf probability outside [0, 1]");
                goto fail;
            }
        }
    } else {
        if ((st = tb_read_f64s(r, &t->leaf_value, t->n_leaves, "tree leaf values")) != TB_OK)
            goto fail;
        for (uint32_t i = 0; i < t->n_leaves; i++) {
            if (!isfinite(t->leaf_value[i])) {
                st = tb_error(TB_CORRUPT, "tree: non-finite leaf value");
                goto fail;
            }
        }
    }
    return TB_OK;
fail:
    tb_tree_clear(t);
    return st;
}
