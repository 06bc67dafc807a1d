/* timbre-predict-bench: in-process prediction speed of a published model, for the tree-engine
 * benchmark. Loads the model of --task from --db, reads --data, then reports as JSON the median
 * single-row latency over --calls calls (rows taken in turn) and the batch throughput over all
 * rows. Not a test; built with the project so the benchmark measures the shipped code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"

#include "alloc.h"
#include "dataset.h"
#include "predictor.h"
#include "store.h"


int main(int argc, char **argv) {
    const char *db = NULL, *task = "genre", *data = NULL;
    size_t calls = 2000;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!strcmp(argv[i], "--task")) task = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--calls")) calls = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
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
           "\"check\": %g}\n",
           lat[calls / 2] * 1e6, (double)n / best, rec.blob_len, n, sink > 0 ? 1.0 : 0.0);
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
