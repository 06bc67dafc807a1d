/* Every registered model family, for every task it learns: train a small model, publish it into a
 * real SQLite database as timbre-train does (pipeline + model blob), read it back as timbre-serve
 * does, and require bit-identical predictions on rows it was not trained on, one by one and in a
 * batch. The blend runs with every partner family. */
#include <math.h>
#include <unistd.h>

#include "check.h"
#include "model.h"
#include "predictor.h"
#include "rng.h"
#include "store.h"

enum { N = 400, D = 4, K = 3, PROBE = 50 };

static int round_trip(tb_store *s, const char *kind, const char *blend_with, tb_task task, const double *X,
                      const int32_t *y, const double *target, const uint8_t *labels) {
    char *names[D] = {"danceability", "energy", "key", "tempo"};
    char *classes[K] = {"jazz", "pop", "rock"};
    size_t rows[N];
    for (size_t i = 0; i < N; i++)
        rows[i] = i;
    tb_pipeline *pl = NULL;
    double *Xt = NULL;
    if (tb_pipeline_fit(X, D, names, rows, N - PROBE, &pl) != TB_OK ||
        tb_pipeline_transform_rows(pl, X, rows, N - PROBE, &Xt) != TB_OK)
        return 0;
    tb_train_params p;
    tb_train_params_default(&p);
    p.n_trees = 10;
    p.n_rounds = 20;
    p.epochs = 5;
    p.hidden.v[0] = 16;
    p.hidden.n = 1;
    p.threads = 2;
    p.blend_with = blend_with;
    tb_train_data data = {.X = Xt, .n = N - PROBE, .d = D, .task = task, .y = y, .n_classes = K, .target = target,
                          .labels = labels, .names = names};
    tb_model *m = NULL;
    tb_predictor *pred = NULL, *back = NULL;
    int ok = tb_model_train(kind, &data, &p, &m) == TB_OK &&
             tb_predictor_new(pl, m, task == TB_TASK_REGRESS ? NULL : classes, task == TB_TASK_REGRESS ? 0 : K,
                              &pred) == TB_OK;
    if (!ok) {
        fprintf(stderr, "%s task %d: %s\n", kind, (int)task, tb_error_message());
        free(Xt);
        tb_model_free(m);
        tb_pipeline_free(pl);
        return 0;
    }
    void *blob = NULL;
    size_t len = 0;
    tb_model_record rec = {.task = task == TB_TASK_CLASSIFY ? "genre" : task == TB_TASK_REGRESS ? "popularity"
                                                                                                 : "multilabel",
                           .kind = (char *)kind, .name = "family-check", .params = "{}", .metrics = "{}",
                           .feature_schema = "[]", .class_names = NULL};
    int64_t id;
    int version;
    tb_model_record got = {0};
    ok = tb_predictor_save(pred, &blob, &len) == TB_OK && (rec.blob = blob, rec.blob_len = len, 1) &&
         tb_store_publish_model(s, &rec, &id, &version) == TB_OK &&
         tb_store_get_published(s, rec.task, &got) == TB_OK && got.blob_len == len &&
         tb_predictor_load(got.blob, got.blob_len, &back) == TB_OK;
    /* Explanations: exact families add up and survive the round trip; the others refuse by name. */
    if (ok && task != TB_TASK_MULTILABEL) {
        size_t out0 = 0;
        double phi[D], phi2[D], base, base2, value, value2, sum;
        const double *x = X + (N - PROBE) * D;
        tb_status e1 = tb_predictor_explain(pred, x, &out0, 1, phi, &base, &value);
        if (pred->model->ops->explain) {
            tb_status e2 = tb_predictor_explain(back, x, &out0, 1, phi2, &base2, &value2);
            sum = base;
            for (size_t j = 0; j < D; j++)
                sum += phi[j];
            ok = e1 == TB_OK && e2 == TB_OK && !memcmp(phi, phi2, sizeof phi) && base == base2 &&
                 fabs(sum - value) < 1e-9;
        } else {
            ok = e1 == TB_INVALID && strstr(tb_error_message(), kind) && strstr(tb_error_message(), "no exact");
        }
        if (!ok)
            fprintf(stderr, "%s task %d: explanation check failed\n", kind, (int)task);
    }
    size_t outs = pred->model->n_outputs;
    for (size_t i = N - PROBE; ok && i < N; i++) {
        double a[K], b[K];
        tb_predictor_predict(pred, X + i * D, a);
        tb_predictor_predict(back, X + i * D, b);
        ok = memcmp(a, b, outs * sizeof *a) == 0;
    }
    if (!ok)
        fprintf(stderr, "%s task %d: the SQLite round trip changed a prediction\n", kind, (int)task);
    double *Xp = NULL, batch[PROBE * K], one[K];
    if (ok && tb_pipeline_transform_rows(pred->pipeline, X, rows + N - PROBE, PROBE, &Xp) == TB_OK) {
        tb_model_predict_batch(pred->model, Xp, PROBE, 2, batch);
        for (size_t i = 0; ok && i < PROBE; i++) {
            tb_model_predict(pred->model, Xp + i * D, one);
            ok = memcmp(one, batch + i * outs, outs * sizeof *one) == 0;
        }
        if (!ok)
            fprintf(stderr, "%s task %d: batch and single-row predictions differ\n", kind, (int)task);
    }
    free(Xp);
    tb_model_record_clear(&got);
    free(blob);
    free(Xt);
    tb_predictor_free(pred);
    tb_predictor_free(back);
    return ok;
}

/* A flag several families list (max-depth, learning-rate, early-stopping, class-weight) sets one
 * field: same field, type and range everywhere, so one --flag means one thing. */
static void params_agree_across_families(void) {
    const tb_model_ops *a, *b;
    for (size_t i = 0; (a = tb_model_ops_at(i)); i++)
        for (size_t j = 0; (b = tb_model_ops_at(j)); j++)
            for (size_t r = 0; r < a->n_params; r++)
                for (size_t q = 0; q < b->n_params; q++) {
                    const tb_opt *x = &a->params[r], *y = &b->params[q];
                    if (strcmp(x->flag, y->flag) != 0)
                        continue;
                    CHECK(x->offset == y->offset && x->type == y->type && x->min == y->min && x->max == y->max &&
                          x->open == y->open);
                }
}

static int in_range(const tb_opt *r, double v) {
    return (r->open & TB_OPT_MIN_OPEN ? v > r->min : v >= r->min) && (r->open & TB_OPT_MAX_OPEN ? v < r->max : v <= r->max);
}

/* Each family's resolved defaults are values its own flags accept (an open lower bound may hold
 * the "family default" marker, as max_features does), and every family counting steps names
 * the parameter bounding them. */
static void params_defaults_in_range(void) {
    const tb_model_ops *ops;
    for (size_t f = 0; (ops = tb_model_ops_at(f)); f++) {
        for (int task = TB_TASK_CLASSIFY; task <= TB_TASK_REGRESS; task++) {
            tb_train_params p;
            tb_train_params_default(&p);
            tb_model_resolve_params(ops, (tb_task)task, task == TB_TASK_REGRESS ? 1 : 5, &p);
            for (size_t r = 0; r < ops->n_params; r++) {
                const tb_opt *row = &ops->params[r];
                const char *field = (const char *)&p + row->offset;
                double v = row->type == TB_OPT_SIZE     ? (double)*(const size_t *)field
                           : row->type == TB_OPT_INT    ? *(const int *)field
                           : row->type == TB_OPT_DOUBLE ? *(const double *)field
                                                        : NAN;
                if (isnan(v))
                    continue;
                int ok = in_range(row, v) || (row->open & TB_OPT_MIN_OPEN && v == row->min);
                if (!ok)
                    fprintf(stderr, "%s --%s: default %g outside its range\n", ops->kind, row->flag, v);
                CHECK(ok);
            }
            if (ops->steps)
                CHECK(tb_model_steps_bound(ops, &p) > 0);
        }
        CHECK(ops->n_params > 0 && ops->params_title);
    }
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tb_test_families_%d.db", (int)getpid());
    tb_test_remove_db(path);
    tb_store *s = NULL;
    CHECK(tb_store_open(path, TB_STORE_READ_WRITE, &s) == TB_OK);
    double X[N * D], target[N];
    int32_t y[N];
    uint8_t labels[N * K];
    tb_rng rng;
    tb_rng_seed(&rng, 9);
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            X[i * D + j] = j == 2 ? (double)tb_rng_below(&rng, 12) : tb_rng_uniform(&rng) * 2 - 1;
        if (i % 17 == 3)
            X[i * D + 1] = NAN; /* missing values take each family's own path */
        y[i] = X[i * D] > 0.3 ? 2 : X[i * D + 3] > 0 ? 1 : 0;
        target[i] = 50 + 20 * X[i * D] - 10 * X[i * D + 3] + X[i * D + 2];
        for (size_t c = 0; c < K; c++)
            labels[i * K + c] = c == (size_t)y[i] || (c == 0 && X[i * D + 2] > 8);
    }
    size_t families = 0;
    const tb_model_ops *ops;
    for (size_t f = 0; (ops = tb_model_ops_at(f)); f++, families++) {
        CHECK(round_trip(s, ops->kind, NULL, TB_TASK_CLASSIFY, X, y, NULL, NULL));
        CHECK(round_trip(s, ops->kind, NULL, TB_TASK_REGRESS, X, NULL, target, NULL));
        if (ops->multilabel)
            CHECK(round_trip(s, ops->kind, NULL, TB_TASK_MULTILABEL, X, NULL, NULL, labels));
    }
    CHECK(families == 7);
    const char *partners[] = {"extra", "knn", "linear", "mlp"};
    for (size_t i = 0; i < sizeof partners / sizeof *partners; i++) {
        CHECK(round_trip(s, "blend", partners[i], TB_TASK_CLASSIFY, X, y, NULL, NULL));
        CHECK(round_trip(s, "blend", partners[i], TB_TASK_REGRESS, X, NULL, target, NULL));
    }
    /* Boosting cannot partner itself, nor a blend a blend. */
    CHECK(!round_trip(s, "blend", "gbdt", TB_TASK_CLASSIFY, X, y, NULL, NULL));
    CHECK(strstr(tb_error_message(), "'gbdt' cannot be mixed with boosting") != NULL);
    params_agree_across_families();
    params_defaults_in_range();
    tb_store_close(s);
    tb_test_remove_db(path);
    return tb_test_done();
}
