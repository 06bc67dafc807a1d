/* TreeSHAP (models/treeshap.c) against Shapley values from their definition: every coalition of
 * the features, each valued by the tree's path-dependent expectation (a feature in the coalition
 * follows x, any other splits by cover), on random multi-output trees where features repeat
 * along paths and missing values go either way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rng.h"
#include "treeshap.h"

enum { D = 5, OUT = 3, MAX_NODES = 63, ROWS = 200 };

typedef struct tree {
    tb_tree_node nodes[MAX_NODES];
    float cover[MAX_NODES];
    double values[MAX_NODES][OUT]; /* by leaf index */
    uint32_t n_nodes, n_leaves;
    int32_t missing_right;
} tree;

/* Grows node `at` (already allocated): a split below max depth with probability 0.8. */
static void grow(tree *t, uint32_t at, int depth, tb_rng *rng) {
    if (depth < 4 && t->n_nodes + 2 <= MAX_NODES && tb_rng_uniform(rng) < 0.8) {
        uint32_t child = t->n_nodes;
        t->n_nodes += 2;
        int32_t f = (int32_t)tb_rng_below(rng, D);
        if (t->missing_right && tb_rng_uniform(rng) < 0.5)
            f |= t->missing_right;
        t->nodes[at] = (tb_tree_node){f, (int32_t)child, tb_rng_uniform(rng) * 2 - 1};
        grow(t, child, depth + 1, rng);
        grow(t, child + 1, depth + 1, rng);
        t->cover[at] = t->cover[child] + t->cover[child + 1];
        return;
    }
    uint32_t leaf = t->n_leaves++;
    t->nodes[at] = (tb_tree_node){-1, (int32_t)leaf, 0.0};
    t->cover[at] = (float)(1 + tb_rng_below(rng, 50));
    for (size_t o = 0; o < OUT; o++)
        t->values[leaf][o] = tb_rng_uniform(rng) * 4 - 2;
}

static void leaf_values(const void *ctx, uint32_t leaf, double *out) {
    memcpy(out, ((const tree *)ctx)->values[leaf], OUT * sizeof *out);
}

static int goes_right(const tree *t, const tb_tree_node *nd, const double *x) {
    double v = x[nd->feature & 0xffff];
    return v > nd->threshold || (isnan(v) && (nd->feature & t->missing_right));
}

/* The tree's expectation for output o given the features in mask follow x. */
static double expectation(const tree *t, uint32_t node, const double *x, unsigned mask, size_t o) {
    const tb_tree_node *nd = &t->nodes[node];
    if (nd->feature < 0)
        return t->values[nd->child][o];
    uint32_t l = (uint32_t)nd->child, r = l + 1;
    if (mask & (1u << (nd->feature & 0xffff)))
        return expectation(t, goes_right(t, nd, x) ? r : l, x, mask, o);
    return (t->cover[l] * expectation(t, l, x, mask, o) + t->cover[r] * expectation(t, r, x, mask, o)) / t->cover[node];
}

static double factorial(int n) { return n <= 1 ? 1.0 : n * factorial(n - 1); }

static void brute_force(const tree *t, const double *x, double *phi) {
    for (int i = 0; i < D; i++)
        for (size_t o = 0; o < OUT; o++) {
            double s = 0.0;
            for (unsigned mask = 0; mask < (1u << D); mask++) {
                if (mask & (1u << i))
                    continue;
                int size = __builtin_popcount(mask);
                double weight = factorial(size) * factorial(D - size - 1) / factorial(D);
                s += weight * (expectation(t, 0, x, mask | (1u << i), o) - expectation(t, 0, x, mask, o));
            }
            phi[i * OUT + o] = s;
        }
}

int main(void) {
    tb_rng rng;
    tb_rng_seed(&rng, 5);
    tb_shap_work *w = tb_shap_work_new(8, OUT);
    double worst = 0.0, worst_sum = 0.0;
    size_t deep_repeats = 0;
    for (int trial = 0; trial < 40; trial++) {
        tree *t = calloc(1, sizeof *t);
        t->missing_right = trial % 2 ? 0x40000000 : 0;
        t->n_nodes = 1;
        grow(t, 0, 0, &rng);
        tb_shap_tree st = {t->nodes, t->n_nodes, t->cover, 0xffff, t->missing_right};
        CHECK(tb_shap_tree_depth(&st) <= 4);
        for (uint32_t i = 0; i < t->n_nodes; i++) /* a feature split twice on one path */
            deep_repeats += t->nodes[i].feature >= 0 && t->nodes[t->nodes[i].child].feature >= 0 &&
                            (t->nodes[t->nodes[i].child].feature & 0xffff) == (t->nodes[i].feature & 0xffff);
        for (int row = 0; row < ROWS / 40; row++) {
            double x[D];
            for (int j = 0; j < D; j++)
                x[j] = tb_rng_uniform(&rng) < 0.15 ? NAN : tb_rng_uniform(&rng) * 2 - 1;
            double phi[D * OUT] = {0}, base[OUT] = {0}, want[D * OUT];
            double value[OUT] = {0};
            CHECK(tb_treeshap_add(&st, x, D, OUT, leaf_values, t, w, phi, base, value) == TB_OK);
            brute_force(t, x, want);
            for (int i = 0; i < D * OUT; i++)
                worst = fmax(worst, fabs(phi[i] - want[i]));
            /* Additivity: base + Σ phi = the leaf x reaches. */
            uint32_t node = 0;
            while (t->nodes[node].feature >= 0)
                node = (uint32_t)t->nodes[node].child + (uint32_t)goes_right(t, &t->nodes[node], x);
            for (size_t o = 0; o < OUT; o++) {
                double s = base[o];
                for (int j = 0; j < D; j++)
                    s += phi[j * OUT + o];
                worst_sum = fmax(worst_sum, fabs(s - t->values[t->nodes[node].child][o]));
                CHECK(value[o] == t->values[t->nodes[node].child][o]);
                CHECK_NEAR(base[o], expectation(t, 0, x, 0, o), 1e-12);
            }
        }
        free(t);
    }
    fprintf(stderr, "TreeSHAP against brute force: worst %.3g; additivity worst %.3g; %zu repeated splits\n", worst,
            worst_sum, deep_repeats);
    CHECK(worst < 1e-9 && worst_sum < 1e-9 && deep_repeats > 0);

    /* A tree deeper than the work allows, and a zero cover, are refused. */
    tb_shap_work *shallow = tb_shap_work_new(0, OUT);
    tree one = {.n_nodes = 3, .nodes = {{0, 1, 0.0}, {-1, 0, 0}, {-1, 1, 0}}, .cover = {2, 1, 1}};
    tb_shap_tree st = {one.nodes, 3, one.cover, 0xffff, 0};
    double x[D] = {0}, phi[D * OUT] = {0}, base[OUT] = {0};
    CHECK_ERR(tb_treeshap_add(&st, x, D, OUT, leaf_values, &one, shallow, phi, base, NULL), TB_INVALID, "deep");
    one.cover[0] = 0;
    CHECK_ERR(tb_treeshap_add(&st, x, D, OUT, leaf_values, &one, w, phi, base, NULL), TB_INVALID, "cover");
    tb_shap_work_free(shallow);
    tb_shap_work_free(w);
    return tb_test_done();
}
