/* Conformal calibration: quantile edge cases, hand-computed scores, coverage on synthetic
 * exchangeable data within the binomial band, Mondrian with a rare class, intervals, and the
 * calibration section's round trip and refusals. */
#include <math.h>

#include "check.h"
#include "conformal.h"
#include "rng.h"

static void test_quantile(void) {
    double s[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, q;
    CHECK(tb_conformal_quantile(s, 9, 0.1, &q) == 0 && q == 9.0); /* ceil(10·0.9) = 9 */
    CHECK(tb_conformal_quantile(s, 9, 0.2, &q) == 0 && q == 8.0); /* ceil(10·0.8) = 8 */
    CHECK(tb_conformal_quantile(s, 9, 0.15, &q) == 0 && q == 9.0); /* ceil(8.5) = 9 */
    CHECK(tb_conformal_quantile(s, 9, 0.05, &q) == 1 && isinf(q)); /* ceil(9.5) = 10 > 9 */
    CHECK(tb_conformal_quantile(s, 9, 0.99, &q) == 0 && q == 1.0); /* rank at least 1 */
    CHECK(tb_conformal_quantile(s, 0, 0.5, &q) == 1 && isinf(q));
    double ties[5] = {1, 2, 2, 2, 3};
    CHECK(tb_conformal_quantile(ties, 5, 0.5, &q) == 0 && q == 2.0); /* ceil(3) = 3 */
    double one[1] = {0.7};
    CHECK(tb_conformal_quantile(one, 1, 0.5, &q) == 0 && q == 0.7); /* ceil(2·0.5) = 1 */
    CHECK(tb_conformal_quantile(one, 1, 0.4, &q) == 1);            /* ceil(1.2) = 2 > 1 */
}

static void test_scores(void) {
    double p[3] = {0.5, 0.3, 0.2}, s[3];
    tb_genre_scores(TB_SET_LAC, p, 3, 0, 0, 1, s);
    CHECK_NEAR(s[0], 0.5, 1e-12);
    CHECK_NEAR(s[1], 0.7, 1e-12);
    CHECK_NEAR(s[2], 0.8, 1e-12);
    tb_genre_scores(TB_SET_APS, p, 3, 0, 0, 1, s);
    CHECK_NEAR(s[0], 0.5, 1e-12);
    CHECK_NEAR(s[1], 0.8, 1e-12);
    CHECK_NEAR(s[2], 1.0, 1e-12);
    tb_genre_scores(TB_SET_APS_RANDOMIZED, p, 3, 0, 0, 0.5, s);
    CHECK_NEAR(s[0], 0.25, 1e-12);
    CHECK_NEAR(s[1], 0.65, 1e-12);
    CHECK_NEAR(s[2], 0.9, 1e-12);
    tb_genre_scores(TB_SET_RAPS, p, 3, 0.1, 1, 1, s);
    CHECK_NEAR(s[0], 0.5, 1e-12);
    CHECK_NEAR(s[1], 0.9, 1e-12);
    CHECK_NEAR(s[2], 1.2, 1e-12);
    double tied[3] = {0.2, 0.4, 0.4};
    tb_genre_scores(TB_SET_APS, tied, 3, 0, 0, 1, s); /* ties rank the lower class first */
    CHECK_NEAR(s[1], 0.4, 1e-12);
    CHECK_NEAR(s[2], 0.8, 1e-12);
    CHECK_NEAR(s[0], 1.0, 1e-12);
}

/* A perfectly calibrated synthetic model: random logits, the label drawn from the softmax. */
static void draw(tb_rng *rng, size_t k, double *p, int32_t *y) {
    double sum = 0.0;
    for (size_t c = 0; c < k; c++) {
        p[c] = exp(2.0 * (tb_rng_uniform(rng) * 2.0 - 1.0) + (c == 0 ? 0.8 : 0.0));
        sum += p[c];
    }
    for (size_t c = 0; c < k; c++)
        p[c] /= sum;
    double u = tb_rng_uniform(rng), acc = 0.0;
    *y = (int32_t)(k - 1);
    for (size_t c = 0; c < k; c++) {
        acc += p[c];
        if (u < acc) {
            *y = (int32_t)c;
            return;
        }
    }
}

static void test_coverage(void) {
    enum { K = 5, N_CAL = 500, N_TEST = 500, REPS = 60 };
    const double alphas[3] = {0.05, 0.1, 0.2};
    tb_rng rng;
    tb_rng_seed(&rng, 11);
    double covered[TB_SET_METHODS][2][3] = {{{0}}}, class_cov[2][3][K] = {{{0}}}, class_n[K] = {0};
    double *pc = malloc(N_CAL * K * sizeof *pc), pt[K];
    int32_t *yc = malloc(N_CAL * sizeof *yc), yt;
    int in_set[K];
    for (int rep = 0; rep < REPS; rep++) {
        for (size_t i = 0; i < N_CAL; i++)
            draw(&rng, K, pc + i * K, &yc[i]);
        tb_calibration *c = NULL;
        CHECK(tb_calibration_genre_new(pc, yc, N_CAL, K, 0.05, 1, (uint64_t)rep, &c) == TB_OK);
        for (size_t i = 0; i < N_TEST; i++) {
            draw(&rng, K, pt, &yt);
            double u = tb_rng_uniform(&rng), q;
            int small;
            class_n[yt] += 1.0;
            for (int m = 0; m < TB_SET_METHODS; m++)
                for (int mo = 0; mo < 2; mo++)
                    for (int a = 0; a < 3; a++) {
                        tb_genre_set(c, (tb_set_method)m, mo, alphas[a], pt, u, in_set, &q, NULL, &small);
                        covered[m][mo][a] += in_set[yt];
                        if (m == TB_SET_LAC)
                            class_cov[mo][a][yt] += in_set[yt];
                    }
        }
        tb_calibration_free(c);
    }
    /* Mean coverage over REPS calibrations: expected in [1-α, 1-α+1/(n+1)]; its spread comes from
     * the calibration draw (Beta, variance ≈ α(1-α)/n per rep) and the test draw (binomial). */
    int all_in_band = 1;
    for (int m = 0; m < TB_SET_METHODS; m++)
        for (int mo = 0; mo < 2; mo++)
            for (int a = 0; a < 3; a++) {
                double al = alphas[a], cov = covered[m][mo][a] / (REPS * N_TEST);
                double n_eff = mo ? N_CAL / (double)K : N_CAL;
                double sd = sqrt(al * (1 - al) * (1.0 / n_eff + 1.0 / N_TEST) / REPS);
                int ok = cov >= 1 - al - 4 * sd && cov <= 1 - al + 1.0 / (n_eff + 1) + 4 * sd;
                if (!ok)
                    fprintf(stderr, "method %d mondrian %d alpha %.2f: coverage %.4f (sd %.4f)\n", m, mo, al, cov, sd);
                all_in_band &= ok;
            }
    CHECK(all_in_band);
    /* Mondrian holds per class; marginal LAC need not (class 0 is favoured by the logits). */
    int mondrian_classes_ok = 1;
    for (int a = 0; a < 3; a++)
        for (int j = 0; j < K; j++) {
            double al = alphas[a], cov = class_cov[1][a][j] / class_n[j];
            double sd = sqrt(al * (1 - al) * (K / (double)N_CAL / REPS + 1.0 / class_n[j]));
            mondrian_classes_ok &= cov >= 1 - al - 4 * sd;
        }
    CHECK(mondrian_classes_ok);
    free(pc);
    free(yc);
}

static void test_rare_class(void) {
    /* Class 2 has one calibration row: no finite threshold at α = 0.1 (rank 2 > 1), so Mondrian
     * always includes it and flags the request; the other classes behave normally. */
    enum { N = 41 };
    double p[N * 3];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = i == 0 ? 2 : i % 2;
        p[i * 3 + 0] = y[i] == 0 ? 0.8 : 0.1;
        p[i * 3 + 1] = y[i] == 1 ? 0.8 : 0.1;
        p[i * 3 + 2] = y[i] == 2 ? 0.8 : 0.1;
    }
    tb_calibration *c = NULL;
    CHECK(tb_calibration_genre_new(p, y, N, 3, 0.0, 0, 1, &c) == TB_OK);
    CHECK(c->class_start[0] == 0 && c->class_start[1] == 20 && c->class_start[2] == 40 && c->class_start[3] == 41);
    double probe[3] = {0.9, 0.05, 0.05}, q, cq[3];
    int in[3], small;
    size_t n = tb_genre_set(c, TB_SET_LAC, 1, 0.1, probe, 1, in, &q, cq, &small);
    CHECK(small == 1 && in[2] == 1 && isinf(cq[2]) && in[0] == 1 && in[1] == 0 && n == 2);
    CHECK(isnan(q));
    n = tb_genre_set(c, TB_SET_LAC, 0, 0.1, probe, 1, in, &q, NULL, &small);
    CHECK(small == 0 && n == 1 && in[0] == 1 && q > 0.19 && q < 0.21);
    tb_calibration_free(c);
}

static void test_intervals_and_blob(void) {
    double pred[9] = {0}, y[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    tb_calibration *c = NULL;
    CHECK(tb_calibration_popularity_new(pred, y, 9, NULL, NULL, NULL, 1.0, &c) == TB_OK);
    double lo, hi, q;
    CHECK(tb_popularity_interval(c, TB_INTERVAL_ABSOLUTE, 0.2, 50, 1, 0, 100, &lo, &hi, &q) == 0);
    CHECK(lo == 42 && hi == 58 && q == 8);
    CHECK(tb_popularity_interval(c, TB_INTERVAL_ABSOLUTE, 0.2, 3, 1, 0, 100, &lo, &hi, &q) == 0 && lo == 0 && hi == 11);
    /* Without a difficulty model, "normalized" falls back to absolute. */
    CHECK(tb_popularity_interval(c, TB_INTERVAL_NORMALIZED, 0.2, 50, 7, 0, 100, &lo, &hi, &q) == 0 && lo == 42);
    CHECK(tb_popularity_interval(c, TB_INTERVAL_ABSOLUTE, 0.05, 50, 1, 0, 100, &lo, &hi, &q) == 1 && lo == 0 &&
          hi == 100 && isinf(q));
    tb_writer w;
    tb_writer_init(&w);
    tb_calibration_save(c, &w);
    tb_reader r;
    tb_reader_init(&r, w.data, w.len);
    tb_calibration *back = NULL;
    CHECK(tb_calibration_load(&r, TB_TASK_REGRESS, 3, 1, &back) == TB_OK && tb_reader_left(&r) == 0);
    CHECK(back && back->n == 9 && memcmp(back->residuals, c->residuals, 9 * sizeof(double)) == 0);
    tb_calibration_free(back);
    tb_reader_init(&r, w.data, w.len);
    CHECK_ERR(tb_calibration_load(&r, TB_TASK_CLASSIFY, 3, 1, &back), TB_CORRUPT, "do not fit");
    tb_writer_free(&w);
    tb_calibration_free(c);

    /* Genre calibration: round trip gives the same sets; every truncation and an unsorted score
     * list are refused. */
    double p[4 * 2] = {0.9, 0.1, 0.3, 0.7, 0.6, 0.4, 0.2, 0.8};
    int32_t yy[4] = {0, 1, 1, 1};
    CHECK(tb_calibration_genre_new(p, yy, 4, 2, 0.01, 1, 3, &c) == TB_OK);
    tb_writer_init(&w);
    tb_calibration_save(c, &w);
    tb_reader_init(&r, w.data, w.len);
    CHECK(tb_calibration_load(&r, TB_TASK_CLASSIFY, 3, 2, &back) == TB_OK);
    int same = 1;
    for (int m = 0; m < TB_SET_METHODS; m++)
        same &= memcmp(back->scores[m], c->scores[m], 4 * sizeof(double)) == 0 &&
                memcmp(back->class_scores[m], c->class_scores[m], 4 * sizeof(double)) == 0;
    CHECK(same);
    tb_calibration_free(back);
    int refused = 1;
    for (size_t cut = 0; cut < w.len; cut++) {
        tb_reader_init(&r, w.data, cut);
        back = NULL;
        refused &= tb_calibration_load(&r, TB_TASK_CLASSIFY, 3, 2, &back) != TB_OK && back == NULL;
    }
    CHECK(refused);
    unsigned char *bad = malloc(w.len);
    memcpy(bad, w.data, w.len);
    /* The first marginal LAC score sits after format, task, n, k, lambda, k_reg, 3 offsets. */
    size_t first = 2 + 1 + 4 + 4 + 8 + 4 + 3 * 4;
    double big = 5.0;
    memcpy(bad + first, &big, sizeof big);
    tb_reader_init(&r, bad, w.len);
    CHECK_ERR(tb_calibration_load(&r, TB_TASK_CLASSIFY, 3, 2, &back), TB_CORRUPT, "ascending");
    free(bad);
    tb_writer_free(&w);
    tb_calibration_free(c);
}

int main(void) {
    test_quantile();
    test_scores();
    test_coverage();
    test_rare_class();
    test_intervals_and_blob();
    return tb_test_done();
}
