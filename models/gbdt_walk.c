/* Boosted trees as prediction walks them: every tree's nodes in one array, children numbered
 * across it; every leaf's values in one aligned block, a row per leaf (binary16 in whole cache
 * lines for many classes: half the bytes a prediction reads).
 *
 * Thresholds become ranks: each feature's distinct thresholds over all trees are sorted, a row's
 * value becomes the number of them below it (one binary search per feature per row), and
 * "x > threshold j" is exactly "rank > j". A node is then 8 bytes and a step a handful of
 * integer instructions.
 *
 * One row walks WALK_LANES trees at once (walk_trees): the lanes' loads are independent, so they
 * overlap in the memory system and the pipeline, where one tree's walk would wait on each level in
 * turn; a lane whose tree has reached its leaf takes the next tree, so no lane idles while
 * another's path is longer (best-first trees are lopsided). The values are summed in float (8 to
 * an AVX instruction) in tree order, then added to the base scores in double; the batch path does
 * the same additions in the same order, so the two give identical numbers. */
#include "gbdt_walk.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "half.h"

#define WALK_LANES 16 /* at most 32: a bit each in walk_trees' masks */
#define ROW_CHUNK 128 /* trees walked before their values are added */
#define NODE_FEATURE 0x3fffu
#define NODE_MISSING_RIGHT 0x4000u
#define NODE_LEAF 0x8000u
#define MAX_RANK 0xffffu

_Static_assert(WALK_LANES <= 32, "lanes are bits of a uint32_t");

typedef struct walk_node {
    uint32_t child;   /* left child's index among all nodes (right is child + 1); a leaf: itself */
    uint16_t feature; /* with NODE_MISSING_RIGHT; a leaf: NODE_LEAF (and feature 0) */
    uint16_t rank;    /* of the threshold among the feature's; right when the row's rank is greater.
                       * A leaf: MAX_RANK, which no rank exceeds, so a leaf's step stays on it. */
} walk_node;

typedef struct tb_gbdt_walk walk;
/* Adds the values of leaf rows row[0 .. m) to acc, in that order. */
typedef void (*add_fn)(const walk *w, const uint32_t *row, size_t m, float *acc);

struct tb_gbdt_walk {
    size_t n_trees, k, width; /* width: values in a leaf's row, k rounded up (zeros after k) */
    size_t d;
    double *cuts;             /* every feature's distinct thresholds, ascending */
    size_t *cut_start;        /* d + 1: feature f's are cuts[cut_start[f] .. cut_start[f + 1]) */
    walk_node *nodes;         /* every tree's, then one idle leaf */
    uint32_t *leaf_row;       /* per node: a leaf's row of values */
    uint32_t *root;           /* per tree: its first node */
    uint32_t idle;            /* a leaf where lanes without a tree wait */
    int missing_right;        /* some node sends missing values right */
    size_t value_bytes;       /* of one leaf's row: width × 2 (binary16) or width × 4 (float) */
    void *values;             /* every leaf's row, 64-byte aligned */
    add_fn add;
};

/* ---------- adding leaves' values ----------
 * Every variant does the same float additions, each element's in tree order (binary16 converts
 * exactly to float), so they give the same numbers; the vector ones only do more at a time. */

static inline const char *values_of(const walk *w, uint32_t row) {
    return (const char *)w->values + (size_t)row * w->value_bytes;
}

static void add_half(const walk *w, const uint32_t *row, size_t m, float *acc) {
    for (size_t t = 0; t < m; t++) {
        const uint16_t *v = (const uint16_t *)values_of(w, row[t]);
        for (size_t c = 0; c < w->width; c++)
            acc[c] += tb_half_to_float(v[c]);
    }
}

/* 32 columns (one cache line of binary16 per row) at a time, summed in registers over the rows. */
__attribute__((target("avx2,f16c"))) static void add_half_f16c(const walk *w, const uint32_t *row, size_t m,
                                                                  float *acc) {
    for (size_t c = 0; c < w->width; c += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + c), a1 = _mm256_loadu_ps(acc + c + 8);
        __m256 a2 = _mm256_loadu_ps(acc + c + 16), a3 = _mm256_loadu_ps(acc + c + 24);
        for (size_t t = 0; t < m; t++) {
            const __m128i *v = (const __m128i *)((const uint16_t *)values_of(w, row[t]) + c);
            a0 = _mm256_add_ps(a0, _mm256_cvtph_ps(_mm_load_si128(v)));
            a1 = _mm256_add_ps(a1, _mm256_cvtph_ps(_mm_load_si128(v + 1)));
            a2 = _mm256_add_ps(a2, _mm256_cvtph_ps(_mm_load_si128(v + 2)));
            a3 = _mm256_add_ps(a3, _mm256_cvtph_ps(_mm_load_si128(v + 3)));
        }
        _mm256_storeu_ps(acc + c, a0);
        _mm256_storeu_ps(acc + c + 8, a1);
        _mm256_storeu_ps(acc + c + 16, a2);
        _mm256_storeu_ps(acc + c + 24, a3);
    }
}

__attribute__((target_clones("avx2", "default"))) static void add_float(const walk *w, const uint32_t *row, size_t m,
                                                                        float *acc) {
    for (size_t t = 0; t < m; t++) {
        const float *v = (const float *)values_of(w, row[t]);
        for (size_t c = 0; c < w->width; c++)
            acc[c] += v[c];
    }
}

/* ---------- building ---------- */

void tb_gbdt_walk_free(tb_gbdt_walk *w) {
    if (!w)
        return;
    free(w->nodes);
    free(w->leaf_row);
    free(w->root);
    free(w->cuts);
    free(w->cut_start);
    free(w->values);
    free(w);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Each feature's distinct thresholds, sorted. */
static tb_status collect_cuts(tb_gbdt_walk *w, const tb_boosted_tree *trees) {
    size_t d = w->d, total = 0;
    size_t *count = tb_calloc_n(d + 1, sizeof *count), *fill = tb_malloc_n(d + 1, sizeof *fill);
    w->cut_start = tb_malloc_n(d + 1, sizeof *w->cut_start);
    for (size_t t = 0; count && t < w->n_trees; t++)
        for (uint32_t i = 0; i < trees[t].n_nodes; i++)
            if (trees[t].nodes[i].feature >= 0) {
                count[trees[t].nodes[i].feature & TB_GBDT_FEATURE_MASK]++;
                total++;
            }
    if (!count || !fill || !w->cut_start || !(w->cuts = tb_malloc_n(total ? total : 1, sizeof *w->cuts))) {
        free(count);
        free(fill);
        return tb_error(TB_NOMEM, "out of memory preparing boosted trees for prediction");
    }
    for (size_t f = 0, at = 0; f < d; f++) {
        fill[f] = at;
        at += count[f];
    }
    for (size_t t = 0; t < w->n_trees; t++)
        for (uint32_t i = 0; i < trees[t].n_nodes; i++)
            if (trees[t].nodes[i].feature >= 0)
                w->cuts[fill[trees[t].nodes[i].feature & TB_GBDT_FEATURE_MASK]++] = trees[t].nodes[i].threshold;
    tb_status st = TB_OK;
    size_t out = 0;
    for (size_t f = 0, at = 0; f < d; f++) {
        double *c = w->cuts + at;
        qsort(c, count[f], sizeof *c, cmp_double);
        w->cut_start[f] = out;
        for (size_t i = 0; i < count[f]; i++)
            if (i == 0 || c[i] != c[i - 1])
                w->cuts[out++] = c[i];
        if (st == TB_OK && out - w->cut_start[f] > MAX_RANK)
            st = tb_error(TB_LIMIT, "boosting: feature %zu has %zu distinct thresholds; prediction takes at most %u",
                          f, out - w->cut_start[f], MAX_RANK);
        at += count[f];
    }
    w->cut_start[d] = out;
    free(count);
    free(fill);
    return st;
}

/* How many of feature f's thresholds are below v (0 for NaN, below nothing). */
static inline uint32_t rank_of(const tb_gbdt_walk *w, size_t f, double v) {
    const double *c = w->cuts + w->cut_start[f];
    size_t lo = 0, n = w->cut_start[f + 1] - w->cut_start[f];
    /* Branch-free halving: which way it goes is as unpredictable as the row. */
    while (n > 1) {
        size_t half = n / 2;
        lo += (c[lo + half - 1] < v) * half;
        n -= half;
    }
    return (uint32_t)(lo + (n == 1 && c[lo] < v));
}

tb_status tb_gbdt_walk_new(const tb_boosted_tree *trees, size_t n_trees, size_t k, size_t d, int half,
                           tb_gbdt_walk **ret_walk) {
    size_t n_nodes = 0, n_leaves = 0;
    for (size_t t = 0; t < n_trees; t++) {
        n_nodes += trees[t].n_nodes;
        n_leaves += trees[t].n_leaves;
        /* Binary16 only when every value fits its range; else the values stay floats. */
        for (size_t v = 0; half && v < (size_t)trees[t].n_leaves * k; v++)
            half = !(trees[t].values[v] > TB_HALF_MAX || trees[t].values[v] < -TB_HALF_MAX);
    }
    if (k == 0 || k > TB_GBDT_WALK_MAX_OUTPUTS)
        return tb_error(TB_LIMIT, "boosting: %zu outputs; prediction takes 1 to %d", k, TB_GBDT_WALK_MAX_OUTPUTS);
    if (d > TB_GBDT_WALK_MAX_FEATURES)
        return tb_error(TB_LIMIT, "boosting: %zu features; prediction takes at most %d", d, TB_GBDT_WALK_MAX_FEATURES);
    if (n_nodes >= UINT32_MAX || n_leaves >= UINT32_MAX)
        return tb_error(TB_LIMIT, "boosting: %zu nodes are too many to predict with", n_nodes);
    tb_gbdt_walk *w = calloc(1, sizeof *w);
    /* Rows of binary16 take whole cache lines (32 values), the vector sum's unit; floats, 8. */
    size_t width = half ? (k + 31) / 32 * 32 : (k + 7) / 8 * 8;
    size_t value_bytes = width * (half ? sizeof(uint16_t) : sizeof(float));
    size_t arena = (n_leaves * value_bytes + 63) / 64 * 64;
    if (!w)
        return tb_error(TB_NOMEM, "out of memory preparing boosted trees for prediction");
    w->n_trees = n_trees;
    w->d = d;
    tb_status st = collect_cuts(w, trees);
    if (st == TB_OK && (!(w->nodes = tb_malloc_n(n_nodes + 1, sizeof *w->nodes)) ||
                        !(w->leaf_row = tb_calloc_n(n_nodes + 1, sizeof *w->leaf_row)) ||
                        !(w->root = tb_malloc_n(n_trees ? n_trees : 1, sizeof *w->root)) ||
                        !(w->values = aligned_alloc(64, arena ? arena : 64))))
        st = tb_error(TB_NOMEM, "out of memory preparing boosted trees for prediction");
    if (st != TB_OK) {
        tb_gbdt_walk_free(w);
        return st;
    }
    w->k = k;
    w->width = width;
    w->value_bytes = value_bytes;
    if (!half)
        w->add = add_float;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
        w->add = add_half_f16c;
    else
        w->add = add_half;
    memset(w->values, 0, arena ? arena : 64); /* the padding adds zeros */
    size_t node_at = 0, leaf_at = 0;
    for (size_t t = 0; t < n_trees; t++) {
        const tb_boosted_tree *tr = &trees[t];
        w->root[t] = (uint32_t)node_at;
        for (uint32_t i = 0; i < tr->n_nodes; i++) {
            const tb_tree_node *nd = &tr->nodes[i];
            walk_node *wn = &w->nodes[node_at + i];
            if (nd->feature >= 0) {
                size_t f = (size_t)(nd->feature & TB_GBDT_FEATURE_MASK);
                int right = (nd->feature & TB_GBDT_MISSING_RIGHT) != 0;
                w->missing_right |= right;
                /* The threshold's rank: how many of the feature's thresholds are below it. */
                *wn = (walk_node){(uint32_t)(node_at + (size_t)nd->child),
                                  (uint16_t)(f | (right ? NODE_MISSING_RIGHT : 0)),
                                  (uint16_t)rank_of(w, f, nd->threshold)};
            } else {
                *wn = (walk_node){(uint32_t)(node_at + i), NODE_LEAF, MAX_RANK};
                w->leaf_row[node_at + i] = (uint32_t)(leaf_at + (size_t)nd->child);
            }
        }
        for (uint32_t l = 0; l < tr->n_leaves; l++) {
            const float *src = tr->values + (size_t)l * k;
            char *dst = (char *)w->values + (leaf_at + l) * value_bytes;
            if (half)
                for (size_t c = 0; c < k; c++)
                    ((uint16_t *)dst)[c] = tb_float_to_half(src[c]);
            else
                memcpy(dst, src, k * sizeof(float));
        }
        node_at += tr->n_nodes;
        leaf_at += tr->n_leaves;
    }
    w->nodes[node_at] = (walk_node){(uint32_t)node_at, NODE_LEAF, MAX_RANK};
    w->idle = (uint32_t)node_at;
    *ret_walk = w;
    return TB_OK;
}

/* ---------- walking ---------- */

/* A row as ranks; nan[f] marks a missing value (its rank is 0). */
typedef struct ranked_row {
    uint16_t q[TB_GBDT_WALK_MAX_FEATURES];
    uint8_t nan[TB_GBDT_WALK_MAX_FEATURES];
    int any_nan;
} ranked_row;

static void rank_row(const tb_gbdt_walk *w, const double *x, ranked_row *r) {
    r->any_nan = 0;
    for (size_t f = 0; f < w->d; f++) {
        r->q[f] = (uint16_t)rank_of(w, f, x[f]);
        r->nan[f] = x[f] != x[f];
        r->any_nan |= r->nan[f];
    }
}

/* A rank compares false with every threshold it does not exceed, a NaN's (0) with all, so missing
 * values go left unless the node says right; `nan_aware` is a constant at each call, so rows
 * without missing values (the usual case) skip the test. */
static inline uint32_t step(walk_node nd, const ranked_row *r, int nan_aware) {
    uint32_t f = nd.feature & NODE_FEATURE, right = r->q[f] > nd.rank;
    if (nan_aware)
        right |= r->nan[f] & ((nd.feature & NODE_MISSING_RIGHT) != 0);
    return nd.child + right;
}

/* The value rows of the leaves of trees [t0, t0 + m) for the row r. The lanes take WALK_BURST
 * steps without looking at where they are (a leaf's step stays on it), then the lanes that have
 * arrived record their leaf, prefetch its values and take the next tree. Testing for arrival at
 * every step would mispredict a branch at almost every tree's end, each time throwing away the
 * other lanes' work in flight; a burst wastes a few steps instead. */
#define WALK_BURST 4
/* Prefetches the values of leaf rows pf[0 .. n_pf), PREFETCH_ROWS of them after each burst, so
 * the requests spread over the walk instead of queueing all at once. */
#define PREFETCH_ROWS 3
static inline void prefetch_rows(const tb_gbdt_walk *w, const uint32_t *pf, size_t from, size_t to) {
    for (size_t t = from; t < to; t++) {
        const char *v = values_of(w, pf[t]);
        for (size_t off = 0; off < w->value_bytes; off += 64)
            __builtin_prefetch(v + off);
        __builtin_prefetch(v + w->value_bytes - 1);
    }
}

static inline void walk_trees(const tb_gbdt_walk *w, size_t t0, size_t m, const ranked_row *r, uint32_t *row,
                              const uint32_t *pf, size_t n_pf, int nan_aware) {
    size_t pf_at = 0;
    const walk_node *nodes = w->nodes;
    const uint32_t *root = w->root + t0;
    uint32_t node[WALK_LANES], tree[WALK_LANES], busy = 0;
    size_t next = 0;
    for (size_t j = 0; j < WALK_LANES; j++) {
        node[j] = w->idle;
        if (next < m) {
            tree[j] = (uint32_t)next;
            node[j] = root[next++];
            busy |= 1u << j;
        }
    }
    while (busy) {
        if (pf_at < n_pf) {
            size_t to = pf_at + PREFETCH_ROWS < n_pf ? pf_at + PREFETCH_ROWS : n_pf;
            prefetch_rows(w, pf, pf_at, to);
            pf_at = to;
        }
        for (int b = 0; b < WALK_BURST; b++)
#pragma GCC unroll 16
            for (size_t j = 0; j < WALK_LANES; j++)
                node[j] = step(nodes[node[j]], r, nan_aware);
        uint32_t arrived = 0;
#pragma GCC unroll 16
        for (size_t j = 0; j < WALK_LANES; j++)
            arrived |= (uint32_t)(nodes[node[j]].feature >> 15) << j;
        for (arrived &= busy; arrived; arrived &= arrived - 1) {
            unsigned j = (unsigned)__builtin_ctz(arrived);
            row[tree[j]] = node[j];
            if (next < m) {
                tree[j] = (uint32_t)next;
                node[j] = root[next++];
            } else {
                busy &= ~(1u << j);
            }
        }
    }
    prefetch_rows(w, pf, pf_at, n_pf);
    /* The leaves' rows, off the walk's critical path. */
    for (size_t t = 0; t < m; t++)
        row[t] = w->leaf_row[row[t]];
}

/* Chunk by chunk: a chunk's values are added after the next chunk is walked, by which time their
 * prefetches have arrived (with 114 genres the values are megabytes, out of cache for one row). */
static void walk_row(const tb_gbdt_walk *w, const ranked_row *r, float *acc) {
    uint32_t row[2][ROW_CHUNK];
    size_t prev_m = 0, c = 0;
    int nan_aware = w->missing_right && r->any_nan;
    for (size_t t0 = 0; t0 < w->n_trees; t0 += ROW_CHUNK, c ^= 1) {
        size_t m = w->n_trees - t0 < ROW_CHUNK ? w->n_trees - t0 : ROW_CHUNK;
        if (nan_aware)
            walk_trees(w, t0, m, r, row[c], row[c ^ 1], prev_m, 1);
        else
            walk_trees(w, t0, m, r, row[c], row[c ^ 1], prev_m, 0);
        w->add(w, row[c ^ 1], prev_m, acc);
        prev_m = m;
    }
    /* The last chunk has no next walk to hide behind: request its lines together at least. */
    prefetch_rows(w, row[c ^ 1], 0, prev_m);
    w->add(w, row[c ^ 1], prev_m, acc);
}

void tb_gbdt_walk_row(const tb_gbdt_walk *w, const double *base, const double *x, double *out) {
    float acc[TB_GBDT_WALK_MAX_OUTPUTS + 32];
    memset(acc, 0, w->width * sizeof *acc);
    ranked_row r;
    rank_row(w, x, &r);
    walk_row(w, &r, acc);
    for (size_t c = 0; c < w->k; c++)
        out[c] = base[c] + (double)acc[c];
}

/* Tree by tree over groups of rows (each tree stays in cache while the group walks it). */
#define GROUP_VALUES 4096
#define GROUP_ROWS 16
void tb_gbdt_walk_rows(const tb_gbdt_walk *w, const double *base, const double *x, size_t n, double *out) {
    float acc[GROUP_VALUES];
    ranked_row r[GROUP_ROWS];
    size_t rows = GROUP_VALUES / w->width;
    rows = rows < GROUP_ROWS ? rows : GROUP_ROWS;
    for (size_t i0 = 0; i0 < n; i0 += rows) {
        size_t m = n - i0 < rows ? n - i0 : rows;
        memset(acc, 0, m * w->width * sizeof *acc);
        for (size_t i = 0; i < m; i++)
            rank_row(w, x + (i0 + i) * w->d, &r[i]);
        for (size_t t = 0; t < w->n_trees; t++)
            for (size_t i = 0; i < m; i++) {
                uint32_t at = w->root[t];
                while (!(w->nodes[at].feature & NODE_LEAF))
                    at = step(w->nodes[at], &r[i], 1);
                w->add(w, &w->leaf_row[at], 1, acc + i * w->width);
            }
        for (size_t i = 0; i < m; i++)
            for (size_t c = 0; c < w->k; c++)
                out[(i0 + i) * w->k + c] = base[c] + (double)acc[i * w->width + c];
    }
}
