/* timbre-recommend-bench: in-process search speed of the published recommendation index, for
 * tests/bench/recommend.sh. Takes --queries index rows (evenly spaced) as query vectors, then
 * reports as JSON: the median single-query top-k latency over --calls calls (queries in turn),
 * the same for a plain C scan instead of sgemv (to justify the choice), the throughput of one
 * batch of all queries, and every query's hits (rows) for the recall check against FAISS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"

#include "embedding.h"
#include "index.h"
#include "store.h"


/* The alternative to sgemv: one dot product per row in a plain loop. */
static void loop_scores(const tb_index *ix, const float *q, float *scores) {
    size_t d = ix->dim;
    for (size_t i = 0; i < ix->n; i++) {
        const float *v = ix->vectors + i * d;
        float s = 0.0f;
        for (size_t j = 0; j < d; j++)
            s += v[j] * q[j];
        scores[i] = s;
    }
}

int main(int argc, char **argv) {
    const char *db = NULL;
    size_t n_queries = 1000, calls = 2000, k = 10;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) n_queries = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--calls")) calls = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--k")) k = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    if (!db || n_queries == 0 || k == 0 || calls == 0) {
        fprintf(stderr, "usage: timbre-recommend-bench --db DB [--queries 1000] [--calls 2000] [--k 10] [--threads 2]\n");
        return 2;
    }
    tb_store *store = NULL;
    tb_model_record rec;
    tb_index *ix = NULL;
    float *vectors;
    char **ids;
    size_t n, dim;
    tb_embedder *embedder = NULL;
    if (tb_store_open(db, TB_STORE_READ_ONLY, &store) || tb_store_get_published(store, "recommend", &rec) ||
        tb_store_get_index(store, rec.id, &vectors, &n, &dim, &ids) || tb_index_new(vectors, ids, n, dim, &ix) ||
        tb_embedder_load(rec.blob, rec.blob_len, &embedder) ||
        tb_index_set_label_dims(ix, tb_embedder_label_dims(embedder))) { /* as the server loads it */
        fprintf(stderr, "timbre-recommend-bench: %s\n", tb_error_message());
        return 1;
    }
    tb_index_blas_single_thread();
    if (n_queries > n)
        n_queries = n;
    float *queries = malloc(n_queries * dim * sizeof *queries), *scores = malloc(n * sizeof *scores);
    double *lat = malloc(calls * sizeof *lat), *lat_loop = malloc(calls * sizeof *lat_loop);
    tb_hit *hits = malloc(k * sizeof *hits), *batch = malloc(n_queries * k * sizeof *batch);
    for (size_t q = 0; q < n_queries; q++)
        memcpy(queries + q * dim, ix->vectors + (q * (n / n_queries)) * dim, dim * sizeof *queries);
    volatile uint32_t sink = 0;
    for (size_t c = 0; c < calls; c++) {
        const float *q = queries + (c % n_queries) * dim;
        double t0 = bench_now();
        tb_index_search(ix, q, k, NULL, NULL, scores, hits);
        lat[c] = bench_now() - t0;
        sink += hits[0].row;
        t0 = bench_now();
        loop_scores(ix, q, scores);
        tb_index_top(scores, n, k, NULL, NULL, hits);
        lat_loop[c] = bench_now() - t0;
        sink += hits[0].row;
    }
    qsort(lat, calls, sizeof *lat, bench_cmp_double);
    qsort(lat_loop, calls, sizeof *lat_loop, bench_cmp_double);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = bench_now();
        tb_index_search_batch(ix, queries, n_queries, k, threads, batch);
        double t = bench_now() - t0;
        best = t < best ? t : best;
    }
    size_t kk = k < n ? k : n;
    printf("{\"n\": %zu, \"dim\": %zu, \"k\": %zu, \"queries\": %zu, \"query_stride\": %zu, "
           "\"single_us_median\": %.3f, \"single_loop_us_median\": %.3f, \"batch_qps\": %.1f, \"hits\": [",
           n, dim, k, n_queries, n / n_queries, lat[calls / 2] * 1e6, lat_loop[calls / 2] * 1e6,
           (double)n_queries / best);
    for (size_t q = 0; q < n_queries; q++) {
        printf(q ? ",\n[" : "\n[");
        for (size_t i = 0; i < kk; i++)
            printf(i ? ",%u" : "%u", batch[q * kk + i].row);
        printf("]");
    }
    printf("], \"sink\": %u}\n", (unsigned)sink);
    free(queries);
    free(scores);
    free(lat);
    free(lat_loop);
    free(hits);
    free(batch);
    tb_index_free(ix);
    tb_embedder_free(embedder);
    tb_model_record_clear(&rec);
    tb_store_close(store);
    return 0;
}
