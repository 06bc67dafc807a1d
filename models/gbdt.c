/* Histogram gradient boosting. Features are binned once (tree.c); each round computes gradients,
 * grows one tree best-first (the leaf with the largest gain splits next) on gradient histograms,
 * building only the smaller child's histogram and deriving the larger one by subtraction.
 * Multi-class uses one multi-output tree per round whose leaves hold a value per class, instead
 * of one tree per class: with 114 genres that is 114× fewer trees to grow and to walk. When there
 * are many classes, splits are searched on the gradients of the classes that currently carry the
 * largest gradient mass (a sketch, as in SketchBoost), while leaf values use every class. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gbdt_walk.h"
#include "half.h"
#include "model.h"
#include "rng.h"
#include "split.h"
#include "tree.h"
#include "treeshap.h"

#define GBDT_FORMAT 1
#define GBDT_MAX_TREES 100000
#define GBDT_MAX_LEAVES 4096
#define GBDT_SKETCH_AUTO 16

typedef struct gbdt {
    tb_task task;
    size_t n_features, k; /* outputs: classes, or 1 */
    double *base;         /* k initial raw scores */
    size_t n_trees;
    tb_boosted_tree *trees;
    tb_gbdt_walk *walk; /* the trees as prediction walks them */
    int half;           /* the walk keeps leaf values as binary16 */
    size_t max_depth;   /* of the deepest tree (TreeSHAP's scratch) */
    double shap_cost;   /* TreeSHAP path steps a row (treeshap.h) */
} gbdt;

static void gbdt_free(void *impl) {
    gbdt *g = impl;
    if (!g)
        return;
    for (size_t t = 0; t < g->n_trees; t++) {
        free(g->trees[t].nodes);
        free(g->trees[t].values);
        free(g->trees[t].cover);
    }
    free(g->trees);
    free(g->base);
    tb_gbdt_walk_free(g->walk);
    free(g);
}

/* ---------- prediction ---------- */

#define MISSING_RIGHT TB_GBDT_MISSING_RIGHT /* in a node's feature field (gbdt_walk.h) */
#define FEATURE_MASK TB_GBDT_FEATURE_MASK
/* From this many classes on, prediction keeps the leaf values as binary16 (gbdt_walk.h). */
#define GBDT_HALF_FROM_CLASSES 16

static inline uint32_t leaf_of(const tb_tree_node *nodes, const double *x) {
    const tb_tree_node *nd = nodes;
    while (nd->feature >= 0) {
        double v = x[nd->feature & FEATURE_MASK];
        int right = v > nd->threshold || (v != v && (nd->feature & MISSING_RIGHT));
        nd = nodes + nd->child + right;
    }
    return (uint32_t)nd->child;
}

/* The walk form prediction uses, built after training and after loading. */
static tb_status gbdt_prepare(gbdt *g) {
    g->half = g->task == TB_TASK_CLASSIFY && g->k >= GBDT_HALF_FROM_CLASSES;
    g->max_depth = 0;
    g->shap_cost = 0.0;
    for (size_t t = 0; t < g->n_trees; t++) {
        tb_shap_tree st = {g->trees[t].nodes, g->trees[t].n_nodes, NULL, FEATURE_MASK, MISSING_RIGHT};
        long depth = tb_shap_tree_depth(&st);
        g->shap_cost += tb_shap_tree_cost(&st);
        if (depth < 0)
            return tb_error(TB_CORRUPT, "boosted tree %zu: a split's children come before it", t);
        g->max_depth = (size_t)depth > g->max_depth ? (size_t)depth : g->max_depth;
    }
    tb_gbdt_walk_free(g->walk);
    g->walk = NULL;
    return tb_gbdt_walk_new(g->trees, g->n_trees, g->k, g->n_features, g->half, &g->walk);
}

/* ---------- explanation ---------- */

typedef struct explained {
    const gbdt *g;
    const size_t *outputs;
} explained;

static void explained_tree(const void *ctx, size_t t, tb_shap_tree *out) {
    const tb_boosted_tree *tr = &((const explained *)ctx)->g->trees[t];
    *out = (tb_shap_tree){tr->nodes, tr->n_nodes, tr->cover, FEATURE_MASK, MISSING_RIGHT};
}

/* A leaf's values as prediction adds them (binary16-rounded when the walk keeps them so). */
static void explained_value(const void *ctx, size_t t, uint32_t leaf, size_t n_out, double *out) {
    const explained *e = ctx;
    const float *v = e->g->trees[t].values + (size_t)leaf * e->g->k;
    for (size_t o = 0; o < n_out; o++)
        out[o] = e->g->half ? tb_half_to_float(tb_float_to_half(v[e->outputs[o]])) : v[e->outputs[o]];
}

static double gbdt_explain_cost(const void *impl) { return ((const gbdt *)impl)->shap_cost; }

/* TreeSHAP in margin space: base = the base score plus every tree's expected output. */
static tb_status gbdt_explain(const void *impl, const double *x, const size_t *outputs, size_t n_out, double *phi,
                              double *base, double *value) {
    const gbdt *g = impl;
    double start[TB_GBDT_WALK_MAX_OUTPUTS];
    for (size_t o = 0; o < n_out && o < TB_GBDT_WALK_MAX_OUTPUTS; o++)
        start[o] = g->base[outputs[o]];
    explained e = {g, outputs};
    tb_shap_ensemble ens = {g->n_trees, g->n_features, g->max_depth, start, explained_tree, explained_value, &e};
    return n_out <= TB_GBDT_WALK_MAX_OUTPUTS ? tb_treeshap_ensemble(&ens, x, n_out, phi, base, value)
                                             : tb_error(TB_INVALID, "at most %d outputs", TB_GBDT_WALK_MAX_OUTPUTS);
}

static void gbdt_predict(const void *impl, const double *x, double *out) {
    const gbdt *g = impl;
    tb_gbdt_walk_row(g->walk, g->base, x, out);
    if (g->task == TB_TASK_CLASSIFY)
        tb_softmax(out, g->k);
}

static void gbdt_predict_block(const void *impl, const double *x, size_t n, double *out) {
    const gbdt *g = impl;
    size_t k = g->k;
    tb_gbdt_walk_rows(g->walk, g->base, x, n, out);
    if (g->task == TB_TASK_CLASSIFY)
        for (size_t i = 0; i < n; i++)
            tb_softmax(out + i * k, k);
}

/* ---------- training ---------- */

typedef struct open_leaf {
    uint32_t node, start, end, depth;
    double *hist;   /* total_bins × 2kk, or NULL once split */
    double *sum;    /* 2kk: G then H over the leaf's rows */
    int has_split;
    size_t feature;
    unsigned bin;
    int miss_right;  /* missing values of the split feature go right */
    double gain;
} open_leaf;

typedef struct booster {
    const tb_bins *bins;
    const tb_train_params *p;
    size_t n, d, k, kk, kk2; /* kk: channels searched (k or the sketch), kk2 = 2 kk */
    size_t *bin_offset;      /* d: first histogram row of each feature */
    size_t total_bins;
    double *gh;              /* n × kk2: searched gradients then hessians */
    float *g_full, *h_full;  /* n × k (classification with a sketch only) */
    size_t *active;          /* features this tree may use */
    size_t n_active;
    uint32_t *rows;          /* rows of this round, partitioned by the tree */
    double *ordered;         /* n × kk2 scratch: a node's gradients gathered in row order */
    double *parent_sum;      /* kk2 scratch */
    int threads;
} booster;

/* Histogram of rows[start, end) for the active features. The rows' gradients are first gathered
 * into one contiguous block ("ordered gradients"). Features are then taken a few at a time: one
 * pass over the block adds each row into the histograms of HIST_FEATURES features, so the block
 * (256 bytes a row with a 16-class sketch, megabytes near the root) streams from memory a few
 * times a node instead of once per feature, while those features' histograms stay in cache.
 * Every bin is still summed in row order by one thread: the result does not depend on the thread
 * count. */
#define HIST_FEATURES 4
static void build_hist(const booster *b, uint32_t start, uint32_t end, double *hist) {
    const size_t kk2 = b->kk2, n = b->n, n_rows = end - start;
    double *ordered = b->ordered;
    const uint32_t *rows = b->rows + start;
    int parallel = n_rows * kk2 > 16384;
    long n_rows_l = (long)n_rows;
#pragma omp parallel for schedule(static) num_threads(b->threads) if (parallel)
    for (long i = 0; i < n_rows_l; i++)
        memcpy(ordered + (size_t)i * kk2, b->gh + (size_t)rows[i] * kk2, kk2 * sizeof *ordered);
    long n_groups = (long)((b->n_active + HIST_FEATURES - 1) / HIST_FEATURES);
#pragma omp parallel for schedule(dynamic, 1) num_threads(b->threads) if (parallel)
    for (long grp = 0; grp < n_groups; grp++) {
        size_t a0 = (size_t)grp * HIST_FEATURES, m = b->n_active - a0 < HIST_FEATURES ? b->n_active - a0 : HIST_FEATURES;
        double *hb[HIST_FEATURES];
        const uint8_t *codes[HIST_FEATURES];
        unsigned nb[HIST_FEATURES]; /* slot nb holds the missing values */
        for (size_t q = 0; q < m; q++) {
            size_t j = b->active[a0 + q];
            hb[q] = hist + b->bin_offset[j] * kk2;
            nb[q] = b->bins->n_bins[j];
            codes[q] = b->bins->codes + j * n;
            memset(hb[q], 0, (size_t)(nb[q] + 1) * kk2 * sizeof *hb[q]);
        }
        const double *src = ordered;
        for (size_t i = 0; i < n_rows; i++, src += kk2) {
            uint32_t r = rows[i];
            for (size_t q = 0; q < m; q++) {
                unsigned code = codes[q][r];
                double *dst = hb[q] + (size_t)(code < nb[q] ? code : nb[q]) * kk2;
                for (size_t c = 0; c < kk2; c++)
                    dst[c] += src[c];
            }
        }
    }
}

static double leaf_score(const double *G, const double *H, size_t kk, double lambda) {
    double s = 0.0;
    for (size_t c = 0; c < kk; c++)
        s += G[c] * G[c] / (H[c] + lambda);
    return s;
}

/* Best split of a leaf over the active features (deterministic: ties go to the lower feature). */
static void find_split(const booster *b, open_leaf *lf) {
    const size_t kk = b->kk, kk2 = b->kk2;
    const double lambda = b->p->lambda, mcw = b->p->min_child_weight;
    const double parent = leaf_score(lf->sum, lf->sum + kk, kk, lambda);
    double h_total = 0.0;
    for (size_t c = 0; c < kk; c++)
        h_total += lf->sum[kk + c];
    lf->has_split = 0;
    if (h_total < 2.0 * mcw || lf->end - lf->start < 2)
        return;
    long n_active = (long)b->n_active;
    double *gains = tb_malloc_n(b->n_active, sizeof *gains);
    unsigned *cuts = tb_malloc_n(b->n_active, sizeof *cuts);
    int *rights = tb_malloc_n(b->n_active, sizeof *rights);
    if (!gains || !cuts || !rights) {
        free(gains);
        free(cuts);
        free(rights);
        return; /* no split: the leaf stays a leaf */
    }
#pragma omp parallel num_threads(b->threads) if ((size_t)n_active * b->bins->n_bins[0] * kk2 > 65536)
    {
        double *acc = malloc(kk2 * sizeof *acc);
#pragma omp for schedule(dynamic, 1)
        for (long a = 0; a < n_active; a++) {
            size_t j = b->active[a];
            const double *hb = lf->hist + b->bin_offset[j] * kk2;
            unsigned nb = b->bins->n_bins[j];
            double best = 0.0;
            unsigned best_bin = 0;
            int best_right = 0;
            if (acc) {
                /* Missing values (slot nb) try both sides of every cut, and a cut of their own. */
                const double *miss = hb + (size_t)nb * kk2;
                double h_miss = 0.0;
                for (size_t c = kk; c < kk2; c++)
                    h_miss += miss[c];
                memset(acc, 0, kk2 * sizeof *acc);
                double hl = 0.0;
                unsigned last = h_miss > 0.0 ? nb : nb - 1;
                for (unsigned bin = 0; bin < last; bin++) {
                    const double *row = hb + (size_t)bin * kk2;
                    double added = 0.0;
                    for (size_t c = 0; c < kk2; c++)
                        acc[c] += row[c];
                    for (size_t c = kk; c < kk2; c++)
                        added += row[c];
                    if (added == 0.0 && bin + 1 < nb)
                        continue; /* empty bin: same cut as before */
                    hl += added;
                    for (int right = 0; right <= (h_miss > 0.0); right++) {
                        /* right = 0: missing join the left side; 1: the right side. */
                        double hl_side = hl + (right ? 0.0 : h_miss);
                        if (hl_side < mcw || h_total - hl_side < mcw)
                            continue;
                        if (!right && bin + 1 == nb)
                            continue; /* everything left: not a split */
                        double gain = -parent;
                        for (size_t c = 0; c < kk; c++) {
                            double gl = acc[c] + (right ? 0.0 : miss[c]);
                            double hlc = acc[kk + c] + (right ? 0.0 : miss[kk + c]);
                            double gr = lf->sum[c] - gl, hr = lf->sum[kk + c] - hlc;
                            gain += gl * gl / (hlc + lambda) + gr * gr / (hr + lambda);
                        }
                        if (gain > best) {
                            best = gain;
                            best_bin = bin;
                            best_right = right;
                        }
                    }
                }
            }
            gains[a] = best;
            cuts[a] = best_bin;
            rights[a] = best_right;
        }
        free(acc);
    }
    for (size_t a = 0; a < b->n_active; a++) {
        if (gains[a] > 1e-12 && (!lf->has_split || gains[a] > lf->gain)) {
            lf->has_split = 1;
            lf->gain = gains[a];
            lf->feature = b->active[a];
            lf->bin = cuts[a];
            lf->miss_right = rights[a];
        }
    }
    free(gains);
    free(cuts);
    free(rights);
}

/* Growable node arrays for the tree being built; split_bin mirrors thresholds in bin space. */
typedef struct grow_tree {
    tb_tree_node *nodes;
    unsigned *split_bin;
    float *cover; /* rows reaching each node */
    size_t n_nodes, cap;
} grow_tree;

static int add_nodes(grow_tree *t, size_t count) {
    if (t->n_nodes + count > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        while (cap < t->n_nodes + count)
            cap *= 2;
        tb_tree_node *n = realloc(t->nodes, cap * sizeof *n);
        if (!n)
            return -1;
        t->nodes = n;
        unsigned *s = realloc(t->split_bin, cap * sizeof *s);
        if (!s)
            return -1;
        t->split_bin = s;
        float *c = realloc(t->cover, cap * sizeof *c);
        if (!c)
            return -1;
        t->cover = c;
        t->cap = cap;
    }
    t->n_nodes += count;
    return 0;
}

/* Grows one tree on rows[0, n_rows) and returns its leaves (row ranges) in *ret_leaves. The
 * leaves' G/H sums live in one block that leaves[0].sum points to: free it, then the array. */
static tb_status grow(booster *b, uint32_t n_rows, double **pool, grow_tree *t, open_leaf **ret_leaves,
                      size_t *ret_n_leaves) {
    const tb_train_params *p = b->p;
    size_t max_leaves = p->max_leaves;
    open_leaf *leaves = tb_calloc_n(max_leaves, sizeof *leaves);
    double *sums = tb_calloc_n(max_leaves * b->kk2, sizeof *sums);
    size_t n_leaves = 1, pool_used = 1;
    if (!leaves || !sums || add_nodes(t, 1)) {
        free(leaves);
        free(sums);
        return tb_error(TB_NOMEM, "out of memory growing a boosted tree");
    }
    for (size_t i = 0; i < max_leaves; i++)
        leaves[i].sum = sums + i * b->kk2;
    open_leaf *root = &leaves[0];
    *root = (open_leaf){.node = 0, .start = 0, .end = n_rows, .depth = 0, .hist = pool[0], .sum = root->sum};
    t->cover[0] = (float)n_rows;
    for (uint32_t i = 0; i < n_rows; i++) {
        const double *src = b->gh + (size_t)b->rows[i] * b->kk2;
        for (size_t c = 0; c < b->kk2; c++)
            root->sum[c] += src[c];
    }
    build_hist(b, 0, n_rows, root->hist);
    find_split(b, root);
    while (n_leaves < max_leaves) {
        open_leaf *best = NULL;
        for (size_t i = 0; i < n_leaves; i++) {
            open_leaf *lf = &leaves[i];
            if (lf->has_split && (p->max_depth == 0 || lf->depth < p->max_depth) && (!best || lf->gain > best->gain))
                best = lf;
        }
        if (!best)
            break;
        /* Partition the leaf's rows: bin <= cut first. */
        const uint8_t *codes = b->bins->codes + best->feature * b->n;
        uint32_t lo = best->start, hi = best->end;
        const int may_miss = b->bins->has_missing[best->feature]; /* else code 255 is a real bin */
        while (lo < hi) {
            unsigned code = codes[b->rows[lo]];
            if (may_miss && code == TB_MISSING_BIN ? !best->miss_right : code <= best->bin) {
                lo++;
            } else {
                uint32_t tmp = b->rows[lo];
                b->rows[lo] = b->rows[--hi];
                b->rows[hi] = tmp;
            }
        }
        uint32_t child = (uint32_t)t->n_nodes;
        if (add_nodes(t, 2)) {
            free(leaves);
            free(sums);
            return tb_error(TB_NOMEM, "out of memory growing a boosted tree");
        }
        unsigned nb_split = b->bins->n_bins[best->feature];
        /* A cut after the last real bin sends only the missing values right. */
        double threshold = best->bin + 1 < nb_split ? b->bins->cuts[best->feature][best->bin] : INFINITY;
        t->nodes[best->node] = (tb_tree_node){
            .feature = (int32_t)best->feature | (best->miss_right ? MISSING_RIGHT : 0),
            .child = (int32_t)child,
            .threshold = threshold,
        };
        t->split_bin[best->node] = best->bin;
        t->cover[child] = (float)(lo - best->start);
        t->cover[child + 1] = (float)(best->end - lo);
        open_leaf *right = &leaves[n_leaves++];
        double *right_sum = right->sum;
        *right = (open_leaf){.node = child + 1, .start = lo, .end = best->end, .depth = best->depth + 1,
                             .sum = right_sum};
        open_leaf left_copy = *best;
        left_copy.node = child;
        left_copy.end = lo;
        left_copy.depth = best->depth + 1;
        /* Left sums from the split feature's histogram, right = parent - left. */
        const double *hb = best->hist + b->bin_offset[best->feature] * b->kk2;
        double *left_sum = best->sum;
        double *psum = b->parent_sum;
        memcpy(psum, left_sum, b->kk2 * sizeof *psum);
        memset(left_sum, 0, b->kk2 * sizeof *left_sum);
        for (unsigned bin = 0; bin <= best->bin; bin++)
            for (size_t c = 0; c < b->kk2; c++)
                left_sum[c] += hb[(size_t)bin * b->kk2 + c];
        if (!best->miss_right)
            for (size_t c = 0; c < b->kk2; c++)
                left_sum[c] += hb[(size_t)nb_split * b->kk2 + c];
        for (size_t c = 0; c < b->kk2; c++)
            right->sum[c] = psum[c] - left_sum[c];
        *best = left_copy;
        open_leaf *left = best;
        /* Smaller child gets a fresh histogram; the larger one takes the parent's by subtraction. */
        open_leaf *small = (left->end - left->start) <= (right->end - right->start) ? left : right;
        open_leaf *large = small == left ? right : left;
        double *parent_hist = left->hist;
        small->hist = pool[pool_used++];
        large->hist = parent_hist;
        build_hist(b, small->start, small->end, small->hist);
        long n_active = (long)b->n_active;
        for (long a = 0; a < n_active; a++) {
            size_t j = b->active[a];
            size_t from = b->bin_offset[j] * b->kk2, len = ((size_t)b->bins->n_bins[j] + 1) * b->kk2;
            for (size_t i = 0; i < len; i++)
                large->hist[from + i] -= small->hist[from + i];
        }
        find_split(b, left);
        find_split(b, right);
    }
    *ret_leaves = leaves;
    *ret_n_leaves = n_leaves;
    return TB_OK;
}

/* exp(x) for x <= 0 in single precision, within a few ulp (Cephes' expf polynomial), branch-free
 * so that the loops calling it vectorize: with 114 genres the softmax gradients are 3·10⁹ exps. */
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return q * scale;
}

#define LANES 8
/* Softmax of one row's raw scores f (k classes, label y, row weight w) into the multi-class
 * gradients g and hessians h (floats). Lanes of partial maxima and sums keep every loop
 * vectorizable without reordering the arithmetic behind the compiler's back. e: k scratch. */
static void softmax_gradients(const double *f, size_t k, int32_t y, float w, float *e, float *g, float *h) {
    double lane_max[LANES];
    float lane_sum[LANES] = {0};
    for (size_t l = 0; l < LANES; l++)
        lane_max[l] = f[0];
    size_t c = 0;
    for (; c + LANES <= k; c += LANES)
        for (size_t l = 0; l < LANES; l++)
            lane_max[l] = f[c + l] > lane_max[l] ? f[c + l] : lane_max[l];
    double m = lane_max[0];
    for (size_t l = 1; l < LANES; l++)
        m = lane_max[l] > m ? lane_max[l] : m;
    for (; c < k; c++)
        m = f[c] > m ? f[c] : m;
    for (c = 0; c < k; c++)
        e[c] = exp_nonpositive((float)(f[c] - m));
    for (c = 0; c + LANES <= k; c += LANES)
        for (size_t l = 0; l < LANES; l++)
            lane_sum[l] += e[c + l];
    double sum = 0.0;
    for (size_t l = 0; l < LANES; l++)
        sum += lane_sum[l];
    for (; c < k; c++)
        sum += e[c];
    float inv = (float)(1.0 / sum);
    for (c = 0; c < k; c++) {
        float pc = e[c] * inv;
        float hc = pc * (1.0f - pc);
        g[c] = w * (pc - (y == (int32_t)c ? 1.0f : 0.0f));
        h[c] = w * (hc > 1e-16f ? hc : 1e-16f);
    }
}

/* Mean multi-class log-loss (or half squared error) of raw scores F, whose row i belongs to the
 * caller's row rows[i]. */
static double loss_of(const tb_train_data *data, const double *F, size_t k, const size_t *rows, size_t n) {
    double loss = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *f = F + i * k;
        if (data->task == TB_TASK_CLASSIFY) {
            double m = f[0], s = 0.0;
            for (size_t c = 1; c < k; c++)
                m = f[c] > m ? f[c] : m;
            for (size_t c = 0; c < k; c++)
                s += exp(f[c] - m);
            loss += log(s) + m - f[data->y[rows[i]]];
        } else {
            double e = f[0] - data->target[rows[i]];
            loss += 0.5 * e * e;
        }
    }
    return n ? loss / (double)n : 0.0;
}

typedef struct class_mass {
    double mass;
    size_t c;
} class_mass;

static int cmp_mass(const void *a, const void *b) {
    const class_mass *x = a, *y = b;
    if (x->mass != y->mass)
        return x->mass > y->mass ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

static void gbdt_resolve(tb_train_params *p, tb_task task, size_t n_outputs) {
    (void)task;
    if (p->max_leaves == 0)
        p->max_leaves = n_outputs <= GBDT_SKETCH_AUTO ? 31 : 127; /* measured: see docs/performance.md */
    if (p->learning_rate == 0.0)
        p->learning_rate = 0.1;
    if (p->early_stopping == TB_EARLY_STOPPING_AUTO)
        p->early_stopping = 20;
    if (p->class_weight_balanced < 0)
        p->class_weight_balanced = 0;
}

static tb_status check_params(const tb_train_data *data, const tb_train_params *p) {
    const size_t k = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1;
    if (p->n_rounds == 0 || p->n_rounds > GBDT_MAX_TREES)
        return tb_error_with_field(TB_INVALID, "rounds", "%zu rounds: choose 1 to %d", p->n_rounds, GBDT_MAX_TREES);
    if (!(p->learning_rate > 0.0 && p->learning_rate <= 1.0))
        return tb_error_with_field(TB_INVALID, "learning_rate", "learning rate %g is not in (0, 1]", p->learning_rate);
    if (p->max_leaves < 2 || p->max_leaves > GBDT_MAX_LEAVES)
        return tb_error_with_field(TB_INVALID, "max_leaves", "max_leaves %zu: choose 2 to %d", p->max_leaves,
                                   GBDT_MAX_LEAVES);
    if (!(p->subsample > 0.0 && p->subsample <= 1.0) || !(p->colsample > 0.0 && p->colsample <= 1.0))
        return tb_error_with_field(TB_INVALID, "subsample", "subsample and colsample must be in (0, 1]");
    if (!(p->lambda >= 0.0) || !(p->min_child_weight >= 0.0))
        return tb_error_with_field(TB_INVALID, "lambda", "lambda and min_child_weight must be >= 0");
    if (data->n > UINT32_MAX)
        return tb_error(TB_LIMIT, "%zu rows: boosting takes at most %u", data->n, UINT32_MAX);
    if (k > TB_GBDT_WALK_MAX_OUTPUTS || data->d > TB_GBDT_WALK_MAX_FEATURES)
        return tb_error(TB_LIMIT, "boosting takes at most %d classes and %d features (here %zu and %zu)",
                        TB_GBDT_WALK_MAX_OUTPUTS, TB_GBDT_WALK_MAX_FEATURES, k, data->d);
    return TB_OK;
}

/* One boosting run: the booster's split-search buffers and everything the rounds update. */
typedef struct boost_run {
    const tb_train_data *data;
    const tb_train_params *p;
    booster b;
    gbdt *g;
    size_t n_fit, n_val, k, d;
    size_t *fit_rows, *val_rows; /* fit_rows NULL: every row trains; val_rows: early stopping's */
    size_t *fit_rows_or_all;     /* the rows the loss trace scores */
    tb_bins *bins;               /* of the training rows */
    int32_t *y;                  /* per training row: class, or target; weight */
    double *target, *weight;
    double *F, *Fval, *Xval;     /* scores of training and validation rows; validation inputs */
    int sketched;                /* more classes than the sketch: search on the kk heaviest */
    double **pool;               /* max_leaves histograms */
    class_mass *mass;
    size_t *channel;
    double *leaf_acc, *block_mass;
    float *exp_scratch;
} boost_run;

/* Hold out a validation share (stratified, grouped when ids are known) for early stopping, then
 * bin the training rows. */
static tb_status hold_out(boost_run *r) {
    const tb_train_data *data = r->data;
    const tb_train_params *p = r->p;
    const size_t n_all = data->n, d = data->d;
    tb_status st = TB_OK;
    r->n_fit = n_all;
    if (data->val_rows && data->n_val > 0 && data->n_val < n_all) {
        /* The caller chose the hold-out (the blend reuses it to weigh its members). */
        if ((st = tb_split_named(n_all, data->val_rows, data->n_val, &r->fit_rows, &r->n_fit, &r->val_rows,
                                 &r->n_val)) != TB_OK)
            return st;
    } else if (p->early_stopping > 0 && p->validation_fraction > 0.0 && n_all >= 20) {
        size_t *group = tb_malloc_n(n_all, sizeof *group);
        if (!group)
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n_all; i++)
            group[i] = data->group ? data->group[i] : i;
        st = tb_split_train_test(data->task == TB_TASK_CLASSIFY ? data->y : NULL, group, n_all,
                                 p->validation_fraction, p->seed ^ 0x5eedULL, &r->fit_rows, &r->n_fit, &r->val_rows,
                                 &r->n_val);
        free(group);
        if (st != TB_OK)
            return st;
    }
    double *Xfit = NULL;
    if (r->fit_rows) {
        if (!(Xfit = tb_malloc_n(r->n_fit * d, sizeof *Xfit)))
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < r->n_fit; i++)
            memcpy(Xfit + i * d, data->X + r->fit_rows[i] * d, d * sizeof *Xfit);
    }
    st = tb_bins_build(Xfit ? Xfit : data->X, r->n_fit, d, &r->bins);
    free(Xfit);
    return st;
}

static tb_status run_alloc(boost_run *r) {
    const tb_train_params *p = r->p;
    const size_t n_fit = r->n_fit, n_val = r->n_val, d = r->d, k = r->k;
    booster *b = &r->b;
    *b = (booster){.bins = r->bins, .p = p, .n = n_fit, .d = d, .k = k};
    b->threads = p->threads > 0 ? p->threads : omp_get_max_threads();
    size_t sketch = p->sketch ? p->sketch : GBDT_SKETCH_AUTO;
    b->kk = k <= sketch ? k : sketch;
    b->kk2 = 2 * b->kk;
    r->weight = tb_malloc_n(n_fit, sizeof *r->weight);
    if (r->data->task == TB_TASK_CLASSIFY)
        r->y = tb_malloc_n(n_fit, sizeof *r->y);
    else
        r->target = tb_malloc_n(n_fit, sizeof *r->target);
    r->g = calloc(1, sizeof *r->g);
    r->F = tb_calloc_n(n_fit * k, sizeof *r->F);
    r->Fval = tb_calloc_n(n_val * k, sizeof *r->Fval);
    r->Xval = tb_malloc_n(n_val * d, sizeof *r->Xval);
    b->bin_offset = tb_malloc_n(d, sizeof *b->bin_offset);
    b->active = tb_malloc_n(d, sizeof *b->active);
    b->rows = tb_malloc_n(n_fit, sizeof *b->rows);
    b->gh = tb_malloc_n(n_fit * b->kk2, sizeof *b->gh);
    b->ordered = tb_malloc_n(n_fit * b->kk2, sizeof *b->ordered);
    b->parent_sum = tb_malloc_n(b->kk2, sizeof *b->parent_sum);
    r->sketched = b->kk < k;
    if (r->sketched) {
        b->g_full = tb_malloc_n(n_fit * k, sizeof *b->g_full);
        b->h_full = tb_malloc_n(n_fit * k, sizeof *b->h_full);
    }
    r->pool = tb_calloc_n(p->max_leaves, sizeof *r->pool);
    r->mass = tb_malloc_n(k, sizeof *r->mass);
    r->channel = tb_malloc_n(b->kk, sizeof *r->channel);
    r->leaf_acc = tb_malloc_n(2 * k * (p->max_leaves > 1 ? p->max_leaves : 1), sizeof *r->leaf_acc);
    r->block_mass = tb_malloc_n(64 * k, sizeof *r->block_mass);
    r->exp_scratch = tb_malloc_n(64 * 3 * k, sizeof *r->exp_scratch);
    int ok = r->weight && (r->y || r->target) && r->g && r->F && r->Fval && r->Xval && b->bin_offset && b->active &&
             b->rows && b->gh && b->ordered && b->parent_sum && (!r->sketched || (b->g_full && b->h_full)) &&
             r->pool && r->mass && r->channel && r->leaf_acc && r->block_mass && r->exp_scratch;
    if (ok) {
        for (size_t j = 0; j < d; j++) {
            b->bin_offset[j] = b->total_bins;
            b->total_bins += r->bins->n_bins[j] + 1u; /* + the missing-value slot */
        }
        for (size_t i = 0; i < p->max_leaves && ok; i++)
            ok = (r->pool[i] = tb_malloc_n(b->total_bins * b->kk2, sizeof **r->pool)) != NULL;
        r->g->trees = tb_calloc_n(p->n_rounds, sizeof *r->g->trees);
        r->g->base = tb_calloc_n(k, sizeof *r->g->base);
        ok = ok && r->g->trees && r->g->base;
    }
    if (!ok)
        return tb_error(TB_NOMEM, "out of memory for boosting %zu rows x %zu outputs", n_fit, k);
    r->g->task = r->data->task;
    r->g->n_features = d;
    r->g->k = k;
    return TB_OK;
}

/* Class weights (balanced only when asked: boosting defaults to none), targets, base scores. */
static tb_status run_start(boost_run *r) {
    const tb_train_data *data = r->data;
    const size_t n_fit = r->n_fit, k = r->k, d = r->d;
    gbdt *g = r->g;
    double *cw = r->leaf_acc; /* k scratch values, reused by the rounds */
    for (size_t c = 0; c < k; c++)
        cw[c] = 0.0;
    for (size_t i = 0; i < n_fit; i++) {
        size_t row = r->fit_rows ? r->fit_rows[i] : i;
        if (r->y) {
            r->y[i] = data->y[row];
            cw[r->y[i]] += 1.0;
        } else {
            r->target[i] = data->target[row];
        }
    }
    for (size_t i = 0; i < n_fit; i++)
        r->weight[i] = (r->y && r->p->class_weight_balanced > 0) ? (double)n_fit / ((double)k * cw[r->y[i]]) : 1.0;
    if (data->task == TB_TASK_CLASSIFY) {
        double total = 0.0;
        double *wsum = r->leaf_acc + k;
        for (size_t c = 0; c < k; c++)
            wsum[c] = 0.0;
        for (size_t i = 0; i < n_fit; i++) {
            wsum[r->y[i]] += r->weight[i];
            total += r->weight[i];
        }
        for (size_t c = 0; c < k; c++)
            g->base[c] = log(fmax(wsum[c] / total, 1e-6));
    } else {
        double s = 0.0, w = 0.0;
        for (size_t i = 0; i < n_fit; i++) {
            s += r->weight[i] * r->target[i];
            w += r->weight[i];
        }
        g->base[0] = s / w;
    }
    for (size_t i = 0; i < n_fit; i++)
        memcpy(r->F + i * k, g->base, k * sizeof *r->F);
    for (size_t i = 0; i < r->n_val; i++) {
        memcpy(r->Fval + i * k, g->base, k * sizeof *r->Fval);
        memcpy(r->Xval + i * d, data->X + r->val_rows[i] * d, d * sizeof *r->Xval);
    }
    r->fit_rows_or_all = r->fit_rows;
    if (r->p->loss_trace && !r->fit_rows) {
        if (!(r->fit_rows_or_all = tb_malloc_n(n_fit, sizeof *r->fit_rows_or_all)))
            return tb_error(TB_NOMEM, "out of memory");
        for (size_t i = 0; i < n_fit; i++)
            r->fit_rows_or_all[i] = i;
    }
    return TB_OK;
}

/* Gradients and hessians of every training row; for a sketch, also each class's gradient mass,
 * summed per fixed block of rows and then in block order, so the choice does not depend on the
 * thread count. */
static void round_gradients(boost_run *r) {
    booster *b = &r->b;
    const size_t n_fit = r->n_fit, k = r->k;
    const int sketched = r->sketched, regress = r->data->task == TB_TASK_REGRESS;
    const long n_blocks = 64;
    if (sketched)
        memset(r->block_mass, 0, (size_t)n_blocks * k * sizeof *r->block_mass);
#pragma omp parallel for schedule(static) num_threads(b->threads)
    for (long blk = 0; blk < n_blocks; blk++) {
        size_t lo = (size_t)blk * n_fit / (size_t)n_blocks, hi = (size_t)(blk + 1) * n_fit / (size_t)n_blocks;
        double *bm = sketched ? r->block_mass + (size_t)blk * k : NULL;
        for (size_t i = lo; i < hi; i++) {
            const double *f = r->F + i * k;
            double *gh = b->gh + i * b->kk2;
            if (regress) {
                gh[0] = r->weight[i] * (f[0] - r->target[i]);
                gh[1] = r->weight[i];
                continue;
            }
            float *e = r->exp_scratch + (size_t)blk * 3 * k;
            float *go = sketched ? b->g_full + i * k : e + k, *ho = sketched ? b->h_full + i * k : e + 2 * k;
            softmax_gradients(f, k, r->y[i], (float)r->weight[i], e, go, ho);
            if (sketched)
                for (size_t c = 0; c < k; c++)
                    bm[c] += (double)go[c] * (double)go[c];
            else
                for (size_t c = 0; c < k; c++) {
                    gh[c] = go[c];
                    gh[k + c] = ho[c];
                }
        }
    }
    if (!sketched)
        return;
    /* The classes with the largest gradient mass this round steer the split search. */
    for (size_t c = 0; c < k; c++)
        r->mass[c] = (class_mass){0.0, c};
    for (long blk = 0; blk < n_blocks; blk++)
        for (size_t c = 0; c < k; c++)
            r->mass[c].mass += r->block_mass[(size_t)blk * k + c];
    qsort(r->mass, k, sizeof *r->mass, cmp_mass);
    for (size_t c = 0; c < b->kk; c++)
        r->channel[c] = r->mass[c].c;
    long nf = (long)n_fit;
#pragma omp parallel for schedule(static) num_threads(b->threads)
    for (long ii = 0; ii < nf; ii++) {
        size_t i = (size_t)ii;
        double *gh = b->gh + i * b->kk2;
        for (size_t c = 0; c < b->kk; c++) {
            gh[c] = b->g_full[i * k + r->channel[c]];
            gh[b->kk + c] = b->h_full[i * k + r->channel[c]];
        }
    }
}

/* Rows and features of this round; returns the row count. */
static uint32_t round_sample(boost_run *r, tb_rng *rng) {
    booster *b = &r->b;
    const tb_train_params *p = r->p;
    const size_t d = r->d;
    uint32_t n_rows = 0;
    for (size_t i = 0; i < r->n_fit; i++)
        if (p->subsample >= 1.0 || tb_rng_uniform(rng) < p->subsample)
            b->rows[n_rows++] = (uint32_t)i;
    size_t want = (size_t)ceil(p->colsample * (double)d);
    for (size_t j = 0; j < d; j++)
        b->active[j] = j;
    for (size_t j = 0; j < want && j < d; j++) {
        size_t x = j + (size_t)tb_rng_below(rng, d - j);
        size_t t = b->active[j];
        b->active[j] = b->active[x];
        b->active[x] = t;
    }
    b->n_active = want < 1 ? 1 : want > d ? d : want;
    /* Keep feature order stable so results do not depend on the draw order. */
    for (size_t a = 1; a < b->n_active; a++)
        for (size_t z = a; z > 0 && b->active[z - 1] > b->active[z]; z--) {
            size_t t = b->active[z];
            b->active[z] = b->active[z - 1];
            b->active[z - 1] = t;
        }
    return n_rows;
}

/* Grows this round's tree on the sampled rows and sets its leaf values (Newton steps, shrunk);
 * the tree joins the model. gt keeps the split bins for the update. */
static tb_status round_tree(boost_run *r, uint32_t n_rows, grow_tree *gt, tb_boosted_tree **ret) {
    booster *b = &r->b;
    const size_t k = r->k;
    gbdt *g = r->g;
    open_leaf *leaves = NULL;
    size_t n_leaves = 0;
    tb_status st = TB_OK;
    if (n_rows == 0 || (st = grow(b, n_rows, r->pool, gt, &leaves, &n_leaves)) != TB_OK) {
        free(gt->nodes);
        free(gt->cover);
        return n_rows == 0 ? tb_error(TB_INVALID, "a boosting round sampled no rows") : st;
    }
    tb_boosted_tree *tree = &g->trees[g->n_trees];
    tree->cover = gt->cover;
    gt->cover = NULL;
    tree->nodes = gt->nodes;
    tree->n_nodes = (uint32_t)gt->n_nodes;
    tree->n_leaves = (uint32_t)n_leaves;
    tree->values = tb_malloc_n(n_leaves * k, sizeof *tree->values);
    if (!tree->values) {
        free(leaves[0].sum);
        free(leaves);
        free(gt->nodes);
        free(tree->cover);
        tree->nodes = NULL;
        tree->cover = NULL;
        return tb_error(TB_NOMEM, "out of memory");
    }
    g->n_trees++;
    long n_leaves_l = (long)n_leaves;
    const int sketched = r->sketched;
    const double learning_rate = r->p->learning_rate, lambda = r->p->lambda;
#pragma omp parallel for schedule(dynamic, 1) num_threads(b->threads)
    for (long l = 0; l < n_leaves_l; l++) {
        const open_leaf *lf = &leaves[l];
        tree->nodes[lf->node] = (tb_tree_node){.feature = -1, .child = (int32_t)l, .threshold = 0.0};
        const double *G = lf->sum, *H = lf->sum + b->kk;
        double *acc = r->leaf_acc + (size_t)l * 2 * k;
        if (sketched) {
            memset(acc, 0, 2 * k * sizeof *acc);
            for (uint32_t i = lf->start; i < lf->end; i++) {
                const float *gr = b->g_full + (size_t)b->rows[i] * k, *hr = b->h_full + (size_t)b->rows[i] * k;
                for (size_t c = 0; c < k; c++) {
                    acc[c] += gr[c];
                    acc[k + c] += hr[c];
                }
            }
            G = acc;
            H = acc + k;
        }
        for (size_t c = 0; c < k; c++)
            tree->values[(size_t)l * k + c] = (float)(-learning_rate * G[c] / (H[c] + lambda));
    }
    free(leaves[0].sum);
    free(leaves);
    *ret = tree;
    return TB_OK;
}

/* Updates every training row (sampled or not) by walking the tree in bin space, and the
 * validation rows exactly as prediction will. */
static void round_update(boost_run *r, const tb_boosted_tree *tree, const grow_tree *gt) {
    const size_t n_fit = r->n_fit, k = r->k, d = r->d;
    const tb_bins *bins = r->bins;
    long nf = (long)n_fit;
#pragma omp parallel for schedule(static) num_threads(r->b.threads)
    for (long ii = 0; ii < nf; ii++) {
        size_t i = (size_t)ii;
        const tb_tree_node *nd = tree->nodes;
        uint32_t at = 0;
        while (nd[at].feature >= 0) {
            int32_t f = nd[at].feature;
            unsigned code = bins->codes[(size_t)(f & FEATURE_MASK) * n_fit + i];
            int missing = code == TB_MISSING_BIN && bins->has_missing[f & FEATURE_MASK];
            int right = missing ? (f & MISSING_RIGHT) != 0 : code > gt->split_bin[at];
            at = (uint32_t)nd[at].child + (uint32_t)right;
        }
        const float *v = tree->values + (size_t)nd[at].child * k;
        for (size_t c = 0; c < k; c++)
            r->F[i * k + c] += (double)v[c];
    }
    long nv = (long)r->n_val;
#pragma omp parallel for schedule(static) num_threads(r->b.threads)
    for (long ii = 0; ii < nv; ii++) {
        size_t i = (size_t)ii;
        const float *v = tree->values + (size_t)leaf_of(tree->nodes, r->Xval + i * d) * k;
        for (size_t c = 0; c < k; c++)
            r->Fval[i * k + c] += (double)v[c];
    }
}

/* The rounds, until n_rounds or early stopping; keeps the trees up to the best validation round. */
static tb_status run_rounds(boost_run *r) {
    const tb_train_params *p = r->p;
    gbdt *g = r->g;
    tb_rng rng;
    tb_rng_seed(&rng, p->seed);
    double best_loss = INFINITY;
    size_t best_round = 0, rounds_done = 0;
    for (size_t round = 0; round < p->n_rounds; round++) {
        round_gradients(r);
        uint32_t n_rows = round_sample(r, &rng);
        grow_tree gt = {0};
        tb_boosted_tree *tree = NULL;
        tb_status st = round_tree(r, n_rows, &gt, &tree);
        if (st == TB_OK)
            round_update(r, tree, &gt);
        free(gt.split_bin);
        if (st != TB_OK)
            return st;
        rounds_done = round + 1;
        if (p->loss_trace)
            p->loss_trace[round] = loss_of(r->data, r->F, r->k, r->fit_rows_or_all, r->n_fit);
        if (p->progress)
            p->progress(p->progress_ctx, rounds_done, p->n_rounds);
        if (r->n_val) {
            double loss = loss_of(r->data, r->Fval, r->k, r->val_rows, r->n_val);
            if (loss < best_loss - 1e-12) {
                best_loss = loss;
                best_round = rounds_done;
            } else if (rounds_done - best_round >= p->early_stopping) {
                break;
            }
        }
    }
    if (r->n_val && best_round > 0) {
        for (size_t t = best_round; t < g->n_trees; t++) {
            free(g->trees[t].nodes);
            free(g->trees[t].values);
            free(g->trees[t].cover);
        }
        g->n_trees = best_round;
    }
    if (p->progress && rounds_done < p->n_rounds)
        p->progress(p->progress_ctx, p->n_rounds, p->n_rounds);
    return TB_OK;
}

static void run_free(boost_run *r) {
    booster *b = &r->b;
    if (r->fit_rows_or_all != r->fit_rows)
        free(r->fit_rows_or_all);
    if (r->pool)
        for (size_t i = 0; i < r->p->max_leaves; i++)
            free(r->pool[i]);
    free(r->pool);
    free(r->mass);
    free(r->channel);
    free(r->leaf_acc);
    free(r->block_mass);
    free(r->exp_scratch);
    free(b->bin_offset);
    free(b->active);
    free(b->rows);
    free(b->gh);
    free(b->ordered);
    free(b->parent_sum);
    free(b->g_full);
    free(b->h_full);
    free(r->F);
    free(r->Fval);
    free(r->Xval);
    free(r->weight);
    free(r->y);
    free(r->target);
    free(r->fit_rows);
    free(r->val_rows);
    tb_bins_free(r->bins);
}

static tb_status gbdt_train(const tb_train_data *data, const tb_train_params *p, void **ret_impl) {
    tb_status st = check_params(data, p);
    if (st != TB_OK)
        return st;
    boost_run r = {.data = data, .p = p, .d = data->d, .k = data->task == TB_TASK_CLASSIFY ? data->n_classes : 1};
    if ((st = hold_out(&r)) == TB_OK && (st = run_alloc(&r)) == TB_OK && (st = run_start(&r)) == TB_OK)
        st = run_rounds(&r);
    run_free(&r);
    if (st == TB_OK)
        st = gbdt_prepare(r.g);
    if (st != TB_OK) {
        gbdt_free(r.g);
        return st;
    }
    *ret_impl = r.g;
    return TB_OK;
}

static size_t gbdt_n_trees(const void *impl) { return ((const gbdt *)impl)->n_trees; }

/* ---------- serialization ---------- */

static void gbdt_save(const void *impl, tb_writer *w) {
    const gbdt *g = impl;
    tb_write_f64s(w, g->base, g->k);
    tb_write_u32(w, (uint32_t)g->n_trees);
    for (size_t t = 0; t < g->n_trees; t++) {
        const tb_boosted_tree *tr = &g->trees[t];
        tb_write_u32(w, tr->n_nodes);
        tb_write_u32(w, tr->n_leaves);
        tb_tree_nodes_write(w, tr->nodes, tr->n_nodes);
        tb_write_f32s(w, tr->values, (size_t)tr->n_leaves * g->k);
    }
    /* Covers trail the trees: a model saved without them still loads (and cannot explain). */
    int covered = g->n_trees > 0;
    for (size_t t = 0; t < g->n_trees; t++)
        covered &= g->trees[t].cover != NULL;
    for (size_t t = 0; covered && t < g->n_trees; t++)
        tb_write_f32s(w, g->trees[t].cover, g->trees[t].n_nodes);
}

/* The optional covers after the trees: all or none (tree.h's rule for forests too). */
static tb_status read_covers(tb_reader *r, gbdt *g) {
    if (tb_reader_left(r) == 0)
        return TB_OK;
    for (size_t t = 0; t < g->n_trees; t++) {
        tb_boosted_tree *tr = &g->trees[t];
        tb_status st = tb_read_f32s(r, &tr->cover, tr->n_nodes, "tree covers");
        if (st == TB_OK)
            st = tb_tree_covers_check(tr->nodes, tr->n_nodes, tr->cover);
        if (st != TB_OK)
            return tb_error_prefix(st, "boosted tree %zu", t);
    }
    return TB_OK;
}

static tb_status gbdt_load(tb_reader *r, tb_task task, size_t n_features, size_t n_outputs, void **ret_impl) {
    gbdt *g = calloc(1, sizeof *g);
    if (!g)
        return tb_error(TB_NOMEM, "out of memory");
    g->task = task;
    g->n_features = n_features;
    g->k = n_outputs;
    uint32_t n_trees;
    tb_status st = tb_read_f64s(r, &g->base, n_outputs, "boosting base scores");
    if (st == TB_OK)
        st = tb_read_u32(r, &n_trees, "boosting tree count");
    if (st == TB_OK && n_trees > GBDT_MAX_TREES)
        st = tb_error(TB_CORRUPT, "boosting: %u trees exceeds %d", n_trees, GBDT_MAX_TREES);
    if (st == TB_OK)
        st = tb_reader_expect(r, n_trees, 8 + 16 + 4 * n_outputs, "boosted trees");
    if (st == TB_OK && !(g->trees = tb_calloc_n(n_trees, sizeof *g->trees)))
        st = tb_error(TB_NOMEM, "out of memory");
    for (size_t c = 0; st == TB_OK && c < n_outputs; c++)
        if (!isfinite(g->base[c]))
            st = tb_error(TB_CORRUPT, "boosting: non-finite base score");
    for (uint32_t t = 0; st == TB_OK && t < n_trees; t++) {
        tb_boosted_tree *tr = &g->trees[t];
        g->n_trees = t + 1;
        if ((st = tb_read_u32(r, &tr->n_nodes, "tree node count")) != TB_OK ||
            (st = tb_read_u32(r, &tr->n_leaves, "tree leaf count")) != TB_OK)
            break;
        if (tr->n_nodes == 0 || tr->n_nodes % 2 == 0 || (tr->n_nodes + 1) / 2 != tr->n_leaves) {
            st = tb_error(TB_CORRUPT, "boosted tree %u: %u nodes and %u leaves do not form a binary tree", t,
                          tr->n_nodes, tr->n_leaves);
            break;
        }
        if ((st = tb_tree_nodes_read(r, tr->n_nodes, tr->n_leaves, n_features, MISSING_RIGHT, &tr->nodes)) != TB_OK)
            break;
        if (st == TB_OK)
            st = tb_read_f32s(r, &tr->values, (size_t)tr->n_leaves * n_outputs, "leaf values");
        for (size_t v = 0; st == TB_OK && v < (size_t)tr->n_leaves * n_outputs; v++)
            if (!isfinite(tr->values[v]))
                st = tb_error(TB_CORRUPT, "boosted tree %u: non-finite leaf value", t);
    }
    if (st == TB_OK)
        st = read_covers(r, g);
    if (st == TB_OK)
        st = gbdt_prepare(g);
    if (st != TB_OK) {
        gbdt_free(g);
        return st;
    }
    *ret_impl = g;
    return TB_OK;
}

static const tb_opt gbdt_params[] = {
    TB_PARAM("rounds", "N", TB_OPT_SIZE, n_rounds, 1, GBDT_MAX_TREES, 0, "rounds",
             "boosting rounds, an upper bound with early stopping (500)"),
    TB_PARAM_MAX_DEPTH,
    TB_PARAM("learning-rate", "X", TB_OPT_DOUBLE, learning_rate, 0, 1, TB_OPT_MIN_OPEN, "learning_rate",
             "shrinkage (0.1)"),
    TB_PARAM("max-leaves", "N", TB_OPT_SIZE, max_leaves, 2, GBDT_MAX_LEAVES, 0, "max_leaves",
             "leaves per tree, grown best-first (31 up to 16 genres,\n127 above)"),
    TB_PARAM("min-child-weight", "X", TB_OPT_DOUBLE, min_child_weight, 0, 1e9, 0, "min_child_weight",
             "least hessian sum in a child (1)"),
    TB_PARAM("lambda", "X", TB_OPT_DOUBLE, lambda, 0, 1e9, 0, "lambda", "L2 penalty on leaf values (1)"),
    TB_PARAM("subsample", "X", TB_OPT_DOUBLE, subsample, 0, 1, TB_OPT_MIN_OPEN, "subsample",
             "share of rows per round (1)"),
    TB_PARAM("colsample", "X", TB_OPT_DOUBLE, colsample, 0, 1, TB_OPT_MIN_OPEN, "colsample",
             "share of features per tree (1)"),
    TB_PARAM("early-stopping", "N", TB_OPT_SIZE, early_stopping, 0, 100000, 0, "early_stopping",
             "stop after N rounds without validation gain (20); 0 = off"),
    TB_PARAM("validation-fraction", "X", TB_OPT_DOUBLE, validation_fraction, 0, 1, TB_OPT_MAX_OPEN,
             "validation_fraction", "training share held out for early stopping (0.1)"),
    TB_PARAM("sketch", "N", TB_OPT_SIZE, sketch, 0, 65535, 0, "sketch",
             "classes that steer the split search (all up to 16, else 16)"),
    TB_PARAM_CLASS_WEIGHT,
};

const tb_model_ops tb_gbdt_ops = {
    .kind = "gbdt",
    .early_stops = 1,
    .params_title = "gbdt (gradient-boosted trees):",
    .params = gbdt_params,
    .n_params = sizeof gbdt_params / sizeof gbdt_params[0],
    .steps = "rounds",
    .steps_bound = offsetof(tb_train_params, n_rounds),
    .format_version = GBDT_FORMAT,
    .handles_missing = 1,
    .resolve = gbdt_resolve,
    .train = gbdt_train,
    .predict = gbdt_predict,
    .predict_block = gbdt_predict_block,
    .n_steps = gbdt_n_trees,
    .explain = gbdt_explain,
    .explain_cost = gbdt_explain_cost,
    .explain_space = "margin",
    .save = gbdt_save,
    .load = gbdt_load,
    .free = gbdt_free,
};
