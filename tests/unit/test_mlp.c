/* Neural network: the back-propagated gradient equals a finite-difference gradient of the loss
 * for every weight (both heads, embeddings, piecewise-linear inputs); the network learns a
 * problem no linear model can; training is the same for any thread count; unseen categories
 * use the reserved row; save → load keeps predictions and refuses truncations; the embedding is
 * the last hidden layer; bad parameters are refused. The file under test is included so its
 * static forward and backward passes can be called directly. */
#include "../../models/mlp.c"

#include "check.h"
#include "embedding.h"
#include "model_checks.h"

/* The loss the trainer minimizes on rows[0..n), in double: mean cross-entropy + aux · mean half
 * squared error on the standardized target. */
static double batch_loss(trainer *t, const size_t *rows, size_t n, double cls_w, double reg_w) {
    shard *sh = &t->sh[0];
    forward_batch(t, sh, rows, n, 0.0);
    double loss = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (t->m->k && cls_w > 0)
            loss -= cls_w * log((double)sh->logits[i * t->m->k + t->data->y[rows[i]]]) / (double)n;
        if (t->m->has_reg && reg_w > 0) {
            double e = sh->reg_out[i] - (t->data->target[rows[i]] - t->m->target_mean) / t->m->target_scale;
            loss += reg_w * 0.5 * e * e / (double)n;
        }
    }
    return loss;
}

static void gradient_check(void) {
    enum { N = 6, D = 3 };
    /* Columns: x0, key (categorical: 3 values), x2. */
    double X[N * D] = {0.3, 0, -1.2, -0.7, 2, 0.4, 1.1, 5, 0.9, -0.2, 0, -0.3, 0.8, 2, 1.5, -1.4, 5, -0.6};
    int32_t y[N] = {0, 1, 2, 1, 0, 2};
    double target[N] = {10, 40, 25, 70, 55, 30};
    char *names[D] = {"x0", "key", "x2"};
    tb_train_data data = {.X = X, .n = N, .d = D, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 3,
                          .target = target, .names = names};
    mlp *m = calloc(1, sizeof *m);
    m->task = TB_TASK_CLASSIFY;
    m->d = D;
    m->n_layers = 2;
    m->width[1] = 5;
    m->width[2] = 4;
    m->k = 3;
    m->has_reg = 1;
    m->target_mean = 38.0;
    m->target_scale = 20.0;
    CHECK(find_categories(m, &data) == TB_OK);
    CHECK(m->n_cat == 1 && m->n_num == 2 && m->cats[0].col == 1 && m->cats[0].n_values == 3);
    CHECK(fit_bins(m, &data, 3) == TB_OK);
    CHECK(layout(m) == 0);
    CHECK(m->width[0] == 2 * 4 + m->cats[0].dim);
    m->params = malloc(m->n_params * sizeof *m->params);
    tb_rng rng;
    tb_rng_seed(&rng, 3);
    init_params(m, &rng);
    for (size_t q = 0; q < m->n_params; q++) /* biases and the unseen row too */
        m->params[q] += (float)((tb_rng_uniform(&rng) - 0.5) * 0.2);
    trainer t = {.m = m, .data = &data, .batch = 2 * N};
    CHECK(shard_alloc(&t.sh[0], m, N + 1) == 0);
    size_t rows[N] = {0, 1, 2, 3, 4, 5};
    const double cls_w = 1.0, reg_w = 0.7;
    forward_batch(&t, &t.sh[0], rows, N, 0.0);
    backward_batch(&t, &t.sh[0], rows, N, N, 0.0, cls_w, reg_w);
    float *analytic = malloc(m->n_params * sizeof *analytic);
    memcpy(analytic, t.sh[0].grad, m->n_params * sizeof *analytic);
    size_t bad = 0;
    double numeric_norm = 0.0; /* the comparison means something only if the gradient is not ~0 */
    for (size_t q = 0; q < m->n_params; q++) {
        float keep = m->params[q];
        const float h = 1e-2f;
        m->params[q] = keep + h;
        double up = batch_loss(&t, rows, N, cls_w, reg_w);
        m->params[q] = keep - h;
        double down = batch_loss(&t, rows, N, cls_w, reg_w);
        m->params[q] = keep;
        double numeric = (up - down) / (2.0 * (double)h), err = fabs(numeric - analytic[q]);
        numeric_norm += numeric * numeric;
        if (err > 2e-3 + 2e-2 * fabs(numeric)) {
            if (bad++ < 5)
                fprintf(stderr, "param %zu: analytic %g, numeric %g\n", q, analytic[q], numeric);
        }
    }
    CHECK(bad == 0);
    CHECK(sqrt(numeric_norm) > 0.1);
    /* Rows with a value of key outside the training set read the reserved (unseen) row. */
    double unseen_a[D] = {0.3, 7, -1.2}, unseen_b[D] = {0.3, -4, -1.2};
    double out_a[3], out_b[3];
    mlp_predict(m, unseen_a, out_a);
    mlp_predict(m, unseen_b, out_b);
    CHECK(memcmp(out_a, out_b, sizeof out_a) == 0);
    CHECK(category_row(&m->cats[0], 2.0) == 2 && category_row(&m->cats[0], 7.0) == 0);
    /* One-row prediction agrees with the batch forward pass. */
    forward_batch(&t, &t.sh[0], rows, N, 0.0);
    double one[3];
    mlp_predict(m, X + 2 * D, one);
    for (int c = 0; c < 3; c++)
        CHECK_NEAR(one[c], t.sh[0].logits[2 * 3 + c], 1e-5);
    free(analytic);
    shard_free(&t.sh[0]);
    mlp_free(m);
}

/* Four clusters labelled XOR-fashion, plus a categorical column that flips the label: no linear
 * model separates them; the network must reach near-perfect held-out accuracy. */
static void learns_xor(void) {
    enum { N = 2000, D = 3 };
    double *X = malloc(N * D * sizeof *X), *target = malloc(N * sizeof *target);
    int32_t *y = malloc(N * sizeof *y);
    tb_rng rng;
    tb_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        double a = tb_rng_uniform(&rng) * 2 - 1, b = tb_rng_uniform(&rng) * 2 - 1;
        int mode = (int)tb_rng_below(&rng, 2);
        X[i * D] = a;
        X[i * D + 1] = b;
        X[i * D + 2] = mode;
        y[i] = ((a > 0) ^ (b > 0) ^ mode) & 1;
        target[i] = 50 + 30 * a * b + (mode ? 10 : -10);
    }
    char *names[D] = {"a", "b", "mode"};
    tb_train_params p;
    tb_train_params_default(&p);
    p.hidden.v[0] = 32;
    p.hidden.v[1] = 16;
    p.hidden.n = 2;
    p.epochs = 60;
    p.learning_rate = 0.01;
    p.dropout = 0.0;
    p.threads = 1;
    enum { FIT = 1600 };
    tb_train_data data = {.X = X, .n = FIT, .d = D, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 2, .names = names};
    tb_model *m = NULL;
    CHECK(tb_model_train("mlp", &data, &p, &m) == TB_OK);
    size_t right = 0;
    for (int i = FIT; i < N; i++) {
        double pr[2];
        tb_model_predict(m, X + i * D, pr);
        CHECK_NEAR(pr[0] + pr[1], 1.0, 1e-9);
        right += (pr[1] > pr[0]) == (y[i] == 1);
    }
    CHECK(right >= (N - FIT) * 95 / 100);
    check_model_round_trip(m, X);
    CHECK(tb_mlp_embedding_dim(m) == 16);

    /* The same seed trains the same network on 1 and 2 threads. */
    tb_model *m2 = NULL;
    p.threads = 2;
    CHECK(tb_model_train("mlp", &data, &p, &m2) == TB_OK);
    if (m && m2) {
        const mlp *a = m->impl, *b = m2->impl;
        CHECK(a->n_params == b->n_params && memcmp(a->params, b->params, a->n_params * sizeof *a->params) == 0);
    }
    tb_model_free(m2);

    /* The embedder over the last hidden layer: unit length, equal to the normalized activations. */
    tb_pipeline *pipe = NULL;
    size_t *all = malloc(N * sizeof *all);
    for (size_t i = 0; i < N; i++)
        all[i] = i;
    CHECK(tb_pipeline_fit(X, D, names, all, FIT, &pipe) == TB_OK);
    /* A network over the pipeline's output: retrain on transformed rows. */
    double *Xt = NULL;
    CHECK(tb_pipeline_transform_rows(pipe, X, all, FIT, &Xt) == TB_OK);
    tb_train_data tdata = data;
    tdata.X = Xt;
    tb_model *em = NULL;
    CHECK(tb_model_train("mlp", &tdata, &p, &em) == TB_OK);
    tb_embedder *e = NULL;
    CHECK(tb_embedder_mlp_new(pipe, em, &e) == TB_OK);
    if (e) {
        CHECK(e->dim == 16);
        float v[16];
        double h[16], norm = 0.0;
        tb_embedder_embed(e, X, v);
        tb_mlp_embed(em, Xt, h);
        for (int j = 0; j < 16; j++)
            norm += h[j] * h[j];
        for (int j = 0; j < 16; j++)
            CHECK_NEAR(v[j], norm > 0 ? h[j] / sqrt(norm) : 0.0, 1e-6);
        void *blob = NULL;
        size_t len = 0;
        CHECK(tb_embedder_save(e, &blob, &len) == TB_OK);
        tb_embedder *back = NULL;
        CHECK(tb_embedder_load(blob, len, &back) == TB_OK);
        if (back) {
            float w[16];
            tb_embedder_embed(back, X, w);
            CHECK(memcmp(v, w, sizeof v) == 0);
            CHECK_STR(back->ops->kind, "mlp");
        }
        tb_embedder_free(back);
        int refused = 1;
        for (size_t cut = 0; cut < len; cut += 7) {
            back = NULL;
            refused &= tb_embedder_load(blob, cut, &back) != TB_OK && !back;
        }
        CHECK(refused);
        free(blob);
    }
    tb_embedder_free(e);
    free(Xt);
    free(all);
    tb_model_free(m);

    /* Regression and the multi-task pair: the popularity head fits a non-linear target. */
    p.threads = 2;
    tb_train_data reg = {.X = X, .n = FIT, .d = D, .task = TB_TASK_REGRESS, .target = target, .names = names};
    CHECK(tb_model_train("mlp", &reg, &p, &m) == TB_OK);
    double sse = 0.0, sst = 0.0;
    for (int i = FIT; i < N; i++) {
        double o;
        tb_model_predict(m, X + i * D, &o);
        sse += (o - target[i]) * (o - target[i]);
        sst += (target[i] - 50) * (target[i] - 50);
    }
    CHECK(1.0 - sse / sst > 0.9);
    check_model_round_trip(m, X);
    tb_model_free(m);
    p.aux_weight = 0.5;
    tb_train_data both = {.X = X, .n = FIT, .d = D, .task = TB_TASK_CLASSIFY, .y = y, .n_classes = 2,
                          .target = target, .names = names};
    m = NULL;
    CHECK(tb_model_train("mlp", &both, &p, &m) == TB_OK);
    if (m) {
        const mlp *mm = m->impl;
        CHECK(mm->has_reg && mm->k == 2);
        check_model_round_trip(m, X + 5 * D);
    }
    tb_model_free(m);

    /* Refusals. */
    tb_train_params bp;
    tb_train_params_default(&bp);
    bp.dropout = 1.0;
    m = NULL;
    CHECK(tb_model_train("mlp", &data, &bp, &m) == TB_INVALID && !m);
    tb_train_params_default(&bp);
    bp.hidden.n = 1;
    bp.hidden.v[0] = 0;
    CHECK(tb_model_train("mlp", &data, &bp, &m) == TB_INVALID && !m);
    tb_train_params_default(&bp);
    bp.aux_weight = 1.0; /* multi-task without a popularity target */
    CHECK(tb_model_train("mlp", &data, &bp, &m) == TB_INVALID && !m);
    tb_train_params_default(&bp);
    bp.learning_rate = 2.0;
    CHECK(tb_model_train("mlp", &data, &bp, &m) == TB_INVALID && !m);
    free(X);
    free(y);
    free(target);
}

int main(void) {
    gradient_check();
    learns_xor();
    return tb_test_done();
}
