/* The prediction form of boosted trees (models/gbdt_walk.c) against a plain walk of the same
 * trees: random lopsided trees over a few features, thresholds shared between trees and hit
 * exactly by the rows, missing values sent either way, infinities; binary16 and float values;
 * fewer trees than lanes, more trees than a chunk, one-leaf trees. Every output must equal the
 * plain walk's bit for bit, one row at a time and in batches. Then the limits. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "gbdt_walk.h"
#include "half.h"
#include "rng.h"

#define D 5
#define N_CUTS 6

static const double cuts[D][N_CUTS] = {
    {-3, -1, 0, 0.5, 2, 7}, {0, 1, 2, 3, 4, 5}, {-1e9, -2.5, 1e-300, 3.25, 1e9, INFINITY},
    {10, 20, 30, 40, 50, 60}, {-INFINITY, -0.125, 0.125, 1, 8, 64}};

typedef struct builder {
    tb_tree_node *nodes;
    uint32_t n, leaves;
} builder;

/* Node i becomes a leaf or a split whose children are appended as a pair. */
static void grow(builder *b, uint32_t i, int depth, tb_rng *rng) {
    int leaf = depth >= 14 || tb_rng_below(rng, 100) < (uint64_t)(depth < 2 ? 0 : 25);
    if (leaf) {
        b->nodes[i] = (tb_tree_node){-1, (int32_t)b->leaves++, 0.0};
        return;
    }
    int32_t f = (int32_t)tb_rng_below(rng, D);
    uint32_t child = b->n;
    b->n += 2;
    b->nodes[i] = (tb_tree_node){f | (tb_rng_below(rng, 2) ? TB_GBDT_MISSING_RIGHT : 0), (int32_t)child,
                                 cuts[f][tb_rng_below(rng, N_CUTS)]};
    /* Lopsided: one side usually stops early. */
    grow(b, child, depth + 1 + (int)tb_rng_below(rng, 3), rng);
    grow(b, child + 1, depth + 1, rng);
}

static tb_boosted_tree *random_trees(size_t n_trees, size_t k, float scale, tb_rng *rng) {
    tb_boosted_tree *trees = calloc(n_trees, sizeof *trees);
    for (size_t t = 0; t < n_trees; t++) {
        builder b = {calloc(1 << 16, sizeof(tb_tree_node)), 1, 0};
        if (t % 50 == 7)
            b.nodes[0] = (tb_tree_node){-1, (int32_t)b.leaves++, 0.0}; /* a tree that is one leaf */
        else
            grow(&b, 0, 0, rng);
        trees[t].n_nodes = b.n;
        trees[t].n_leaves = b.leaves;
        trees[t].nodes = b.nodes;
        trees[t].values = malloc((size_t)b.leaves * k * sizeof(float));
        for (size_t v = 0; v < (size_t)b.leaves * k; v++)
            trees[t].values[v] = scale * (float)((double)tb_rng_below(rng, 1u << 20) / (1u << 20) - 0.5);
    }
    return trees;
}

static void free_trees(tb_boosted_tree *trees, size_t n) {
    for (size_t t = 0; t < n; t++) {
        free(trees[t].nodes);
        free(trees[t].values);
    }
    free(trees);
}

/* The plain walk: double comparisons, then the same float sums in tree order. */
static void reference(const tb_boosted_tree *trees, size_t n_trees, size_t k, int half, const double *base,
                      const double *x, double *out) {
    float acc[64] = {0};
    for (size_t t = 0; t < n_trees; t++) {
        const tb_tree_node *nd = trees[t].nodes;
        while (nd->feature >= 0) {
            double v = x[nd->feature & TB_GBDT_FEATURE_MASK];
            int right = v > nd->threshold || (isnan(v) && (nd->feature & TB_GBDT_MISSING_RIGHT));
            nd = trees[t].nodes + nd->child + right;
        }
        for (size_t c = 0; c < k; c++) {
            float v = trees[t].values[(size_t)nd->child * k + c];
            acc[c] += half ? tb_half_to_float(tb_float_to_half(v)) : v;
        }
    }
    for (size_t c = 0; c < k; c++)
        out[c] = base[c] + (double)acc[c];
}

static void random_row(double *x, tb_rng *rng) {
    for (size_t f = 0; f < D; f++) {
        uint64_t u = tb_rng_below(rng, 100);
        if (u < 10)
            x[f] = NAN;
        else if (u < 50)
            x[f] = cuts[f][tb_rng_below(rng, N_CUTS)]; /* exactly on a threshold */
        else if (u < 52)
            x[f] = u % 2 ? INFINITY : -INFINITY;
        else
            x[f] = -5.0 + (double)tb_rng_below(rng, 1000) / 1000.0 * 70.0;
    }
}

static void check_against_reference(size_t n_trees, size_t k, int half, float scale, uint64_t seed) {
    tb_rng rng;
    tb_rng_seed(&rng, seed);
    tb_boosted_tree *trees = random_trees(n_trees, k, scale, &rng);
    double base[64];
    for (size_t c = 0; c < k; c++)
        base[c] = (double)c / 7.0 - 1.0;
    tb_gbdt_walk *w = NULL;
    CHECK(tb_gbdt_walk_new(trees, n_trees, k, D, half, &w) == TB_OK);
    /* Values beyond binary16's range keep the walk in float. */
    int as_half = half && scale < 2 * TB_HALF_MAX;
    enum { N = 300 };
    double *X = malloc(N * D * sizeof *X), *batch = malloc(N * k * sizeof *batch), one[64], want[64];
    for (size_t i = 0; i < N; i++)
        random_row(X + i * D, &rng);
    tb_gbdt_walk_rows(w, base, X, N, batch);
    size_t row_bad = 0, batch_bad = 0;
    for (size_t i = 0; i < N; i++) {
        reference(trees, n_trees, k, as_half, base, X + i * D, want);
        tb_gbdt_walk_row(w, base, X + i * D, one);
        row_bad += memcmp(one, want, k * sizeof *one) != 0;
        batch_bad += memcmp(batch + i * k, want, k * sizeof *want) != 0;
    }
    if (row_bad || batch_bad)
        fprintf(stderr, "%zu trees, k %zu, half %d: %zu rows and %zu batch rows differ\n", n_trees, k, half, row_bad,
                batch_bad);
    CHECK(row_bad == 0);
    CHECK(batch_bad == 0);
    tb_gbdt_walk_free(w);
    free(X);
    free(batch);
    free_trees(trees, n_trees);
}

int main(void) {
    check_against_reference(300, 40, 1, 1.0f, 1);   /* binary16, more trees than a chunk */
    check_against_reference(300, 3, 0, 1.0f, 2);    /* floats */
    check_against_reference(5, 33, 1, 1.0f, 3);     /* fewer trees than lanes; a row past 32 values */
    check_against_reference(1, 1, 0, 1.0f, 4);      /* one tree, one output */
    check_against_reference(60, 8, 1, 1e6f, 5);     /* values beyond binary16: kept as floats */
    check_against_reference(0, 4, 1, 1.0f, 6);      /* no trees: the base scores */

    tb_rng rng;
    tb_rng_seed(&rng, 9);
    tb_boosted_tree *trees = random_trees(3, 2, 1.0f, &rng);
    tb_gbdt_walk *w = NULL;
    CHECK(tb_gbdt_walk_new(trees, 3, 0, D, 0, &w) == TB_LIMIT);
    CHECK(tb_gbdt_walk_new(trees, 3, TB_GBDT_WALK_MAX_OUTPUTS + 1, D, 0, &w) == TB_LIMIT);
    CHECK(tb_gbdt_walk_new(trees, 3, 2, TB_GBDT_WALK_MAX_FEATURES + 1, 0, &w) == TB_LIMIT);
    CHECK(w == NULL);
    free_trees(trees, 3);
    return tb_test_done();
}
