/* timbre-predict-bench: in-process prediction speed of a published model, for the tree-engine
 * benchmark. Loads the model of --task from --db, reads --data, then reports as JSON the median
 * single-row latency over --calls calls (rows taken in turn) and the batch throughput over all
 * rows. With --explain N (tests/bench/explain.sh) it also explains the predicted genre (or the
 * popularity) of the first N rows one at a time on one thread: the median latency, rows/s, and
 * the mean |contribution| per feature. Not a test; built with the project so the benchmark
 * measures the shipped code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"

#include "alloc.h"
#include "dataset.h"
#include "metrics.h"
#include "predictor.h"
#include "store.h"


/* The explain figures (see the header), printed as more members of the JSON object. */
static int explain_rows(const tb_predictor *p, const double *raw, size_t n) {
    size_t d = p->pipeline->n_features, k = p->model->n_outputs;
    double *lat = tb_malloc_n(n, sizeof *lat), *phi = tb_malloc_n(d, sizeof *phi), *mean = tb_calloc_n(d, sizeof *mean);
    double *out = tb_malloc_n(k, sizeof *out), total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *row = raw + i * d;
        tb_predictor_predict(p, row, out);
        int32_t best;
        tb_argmax_rows(out, 1, k, &best);
        size_t outputs[1] = {(size_t)best};
        double base, value, t0 = bench_now();
        if (tb_predictor_explain(p, row, outputs, 1, phi, &base, &value) != TB_OK) {
            fprintf(stderr, "timbre-predict-bench: %s\n", tb_error_message());
            return 1;
        }
        lat[i] = bench_now() - t0;
        total += lat[i];
        for (size_t j = 0; j < d; j++)
            mean[j] += fabs(phi[j]) / (double)n;
    }
    qsort(lat, n, sizeof *lat, bench_cmp_double);
    printf(", \"explain_us_median\": %.3f, \"explain_rows_per_s\": %.1f, \"explain_rows\": %zu, \"explain_cost\": %.0f, "
           "\"importances\": {",
           lat[n / 2] * 1e6, (double)n / total, n, p->model->ops->explain_cost ? p->model->ops->explain_cost(p->model->impl) : 0.0);
    for (size_t j = 0; j < d; j++)
        printf("%s\"%s\": %.9g", j ? ", " : "", p->pipeline->names[j], mean[j]);
    printf("}");
    free(lat);
    free(phi);
    free(mean);
    free(out);
    return 0;
}

int main(int argc, char **argv) {
    const char *db = NULL, *task = "genre", *data = NULL;
    size_t calls = 2000, n_explain = 0;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!strcmp(argv[i], "--task")) task = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--calls")) calls = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--explain")) n_explain = (size_t)atol(argv[i + 1]);
    }
    if (!db || !data) {
        fprintf(stderr, "usage: timbre-predict-bench --db DB --data FILE [--task genre] [--calls N] [--threads N]\n");
        return 2;
    }
    tb_store *store = NULL;
    tb_model_record rec;
    tb_predictor *p = NULL;
    tb_dataset *ds = NULL;
    tb_dataset_options opt = {.derive_year = 1};
    if (tb_store_open(db, TB_STORE_READ_ONLY, &store) || tb_store_get_published(store, task, &rec) ||
        tb_predictor_load(rec.blob, rec.blob_len, &p) || tb_dataset_load(data, &opt, &ds)) {
        fprintf(stderr, "timbre-predict-bench: %s\n", tb_error_message());
        return 1;
    }
    size_t d = p->pipeline->n_features, k = p->model->n_outputs, n = ds->n_rows;
    double *raw = NULL;
    if (tb_dataset_matrix(ds, p->pipeline->names, d, &raw)) {
        fprintf(stderr, "timbre-predict-bench: %s\n", tb_error_message());
        return 1;
    }
    double *out = tb_malloc_n(n * k, sizeof *out), *lat = tb_malloc_n(calls, sizeof *lat), sink = 0.0;
    for (size_t c = 0; c < calls; c++) {
        const double *row = raw + (c % n) * d;
        double t0 = bench_now();
        tb_predictor_predict(p, row, out);
        lat[c] = bench_now() - t0;
        sink += out[0];
    }
    qsort(lat, calls, sizeof *lat, bench_cmp_double);
    /* Batch: the pipeline, then the model in blocks over all rows, as the trainer predicts. */
    double *X = tb_malloc_n(n * d, sizeof *X);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = bench_now();
        for (size_t i = 0; i < n; i++)
            tb_pipeline_transform(p->pipeline, raw + i * d, X + i * d);
        tb_model_predict_batch(p->model, X, n, threads, out);
        double t = bench_now() - t0;
        best = t < best ? t : best;
    }
    printf("{\"single_us_median\": %.3f, \"batch_rows_per_s\": %.1f, \"model_bytes\": %zu, \"rows\": %zu, "
           "\"check\": %g",
           lat[calls / 2] * 1e6, (double)n / best, rec.blob_len, n, sink > 0 ? 1.0 : 0.0);
    if (n_explain && explain_rows(p, raw, n < n_explain ? n : n_explain))
        return 1;
    printf("}\n");
    free(X);
    free(out);
    free(lat);
    free(raw);
    tb_dataset_free(ds);
    tb_predictor_free(p);
    tb_model_record_clear(&rec);
    tb_store_close(store);
    return 0;
}
