/* timbre-scale-bench: the recommendation index at catalog scale, for tests/bench/recommend_scale.sh.
 * Takes the published index of --db (spotify_tracks_114k's real vectors) and jitters every real
 * vector into copies until --rows rows: the dense values get Gaussian noise, a genre value is
 * scaled by (1 + noise), so each copy keeps its source's genres; the noise's norm is half the
 * median distance from a real track to its nearest real neighbour, so copies stay nearer their
 * source than the real tracks are to each other. Queries are fresh jitters of evenly spaced sources.
 * Then, on one thread: the exact scan's latency, the HNSW graph's build time and resident memory,
 * its recall@k and queries/s at each --ef, and filtered searches (models/nearest.h) against the
 * exact filtered answer. Writes the vectors, queries and exact answers for the peers (--out DIR)
 * and, with --out-db, publishes the catalog and its graph into that database (a copy of --db) for
 * the HTTP run. Prints one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_clock.h"

#include "ann.h"
#include "embedding.h"
#include "index.h"
#include "nearest.h"
#include "rng.h"
#include "store.h"

typedef struct bench {
    size_t n0, n, dim, labels, n_queries, k;
    const float *real;
    float *vectors, *queries;
    uint32_t *source; /* each row's real row */
    tb_index *exact;
    tb_ann *ann;
} bench;

static size_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int die(const char *what) {
    fprintf(stderr, "timbre-scale-bench: %s: %s\n", what, tb_error_message());
    return 1;
}

/* Median over 1,000 evenly spaced real rows of the distance to the nearest other real row. */
static double nearest_gap(const tb_index *real) {
    size_t m = real->n < 1000 ? real->n : 1000, n_gap = 0;
    float *scores = malloc(real->n * sizeof *scores);
    double *gap = malloc(m * sizeof *gap);
    for (size_t i = 0; i < m; i++) {
        size_t row = i * real->n / m;
        tb_hit hits[2];
        if (tb_index_search(real, real->vectors + row * real->dim, 2, NULL, NULL, scores, hits) == 2) {
            float c = hits[0].row == row ? hits[1].score : hits[0].score;
            gap[n_gap++] = sqrt(fmax(0.0, 2.0 - 2.0 * c));
        }
    }
    qsort(gap, n_gap, sizeof *gap, bench_cmp_double);
    double g = n_gap ? gap[n_gap / 2] : 0.1;
    free(scores);
    free(gap);
    return g;
}

/* A copy of real row s: labels scaled by (1 + sigma·z) where nonzero, the rest plus sigma·z. */
static void jitter(const bench *b, size_t s, double sigma, tb_rng *rng, float *out) {
    const float *v = b->real + s * b->dim;
    double norm = 0.0;
    for (size_t j = 0; j < b->dim; j++) {
        double x = v[j];
        if (j >= b->labels)
            x += sigma * tb_rng_normal(rng);
        else if (x != 0.0)
            x *= fmax(0.05, 1.0 + sigma * tb_rng_normal(rng));
        out[j] = (float)x;
        norm += x * x;
    }
    for (size_t j = 0; j < b->dim; j++)
        out[j] = (float)(out[j] / sqrt(norm));
}

static int write_file(const char *dir, const char *name, const void *data, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, bytes, f) == bytes;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "timbre-scale-bench: cannot write %s\n", path);
    return ok ? 0 : 1;
}

static double recall(const tb_hit *got, size_t n_got, const uint32_t *want, size_t k) {
    size_t hits = 0;
    for (size_t i = 0; i < n_got; i++)
        for (size_t j = 0; j < k; j++)
            hits += got[i].row == want[j];
    return (double)hits / (double)k;
}

/* The ef sweep: recall@k against the exact answers and queries/s, one query at a time. */
static void sweep(bench *b, const uint32_t *truth, const size_t *efs, size_t n_ef) {
    tb_hit *hits = malloc(b->k * sizeof *hits);
    printf(", \"hnsw\": [");
    for (size_t e = 0; e < n_ef; e++) {
        tb_ann_set_ef(b->ann, efs[e]);
        double sum = 0.0, t0 = bench_now();
        for (size_t q = 0; q < b->n_queries; q++)
            sum += recall(hits, tb_ann_search(b->ann, b->queries + q * b->dim, b->k, hits), truth + q * b->k, b->k);
        double t = bench_now() - t0;
        printf("%s{\"ef\": %zu, \"recall\": %.4f, \"qps\": %.1f}", e ? ", " : "", efs[e], sum / (double)b->n_queries,
               (double)b->n_queries / t);
        fflush(stdout);
    }
    printf("]");
    free(hits);
}

typedef struct filter {
    const bench *b;
    int kind;       /* 0: the query's genre; 1: another genre; 2: a dense value above 0 (about half) */
    size_t genre, dense;
} filter;

static int accept(void *ctx, size_t row) {
    const filter *f = ctx;
    const float *v = f->b->vectors + row * f->b->dim;
    return f->kind == 2 ? v[f->dense] > 0.0f : v[f->genre] > 0.0f;
}

/* The filtered search against the exact filtered answer, per filter kind. */
static void filtered(bench *b, size_t ef) {
    static const char *const names[] = {"the query's genre", "another genre", "an attribute range"};
    tb_ann_set_ef(b->ann, ef);
    float *scores = malloc(b->n * sizeof *scores);
    tb_hit *want = malloc(b->k * sizeof *want), *got = malloc(b->k * sizeof *got);
    size_t n_q = b->n_queries < 300 ? b->n_queries : 300;
    printf(", \"filtered_ef\": %zu, \"filtered\": [", ef);
    for (int kind = 0; kind < 3; kind++) {
        double sum = 0.0, seconds = 0.0, exact_seconds = 0.0, share = 0.0;
        size_t from_graph = 0, counted = 0;
        for (size_t q = 0; q < n_q; q++) {
            const float *qv = b->queries + q * b->dim;
            filter f = {b, kind, 0, b->labels};
            size_t best = 0; /* the query's strongest genre, and for kind 1 one ten genres on */
            for (size_t g = 1; g < b->labels; g++)
                best = qv[g] > qv[best] ? g : best;
            f.genre = kind == 1 ? (best + 10) % b->labels : best;
            double t0 = bench_now();
            size_t nw = tb_index_search(b->exact, qv, b->k, accept, &f, scores, want);
            exact_seconds += bench_now() - t0;
            tb_nearest_path path;
            t0 = bench_now();
            long ng = tb_nearest_top(b->exact, b->ann, qv, b->k, accept, &f, got, &path);
            seconds += bench_now() - t0;
            for (size_t i = 0; i < 1000; i++)
                share += accept(&f, i * b->n / 1000) / 1000.0;
            if (nw == 0 || ng < 0)
                continue;
            uint32_t rows[64];
            for (size_t i = 0; i < nw && i < 64; i++)
                rows[i] = want[i].row;
            sum += recall(got, (size_t)ng, rows, nw);
            counted++;
            from_graph += path == TB_NEAREST_APPROXIMATE;
        }
        printf("%s{\"filter\": \"%s\", \"pass_share\": %.4f, \"recall\": %.4f, \"from_graph\": %.3f, "
               "\"ms\": %.3f, \"exact_ms\": %.3f}", kind ? ", " : "", names[kind], share / (double)n_q,
               counted ? sum / (double)counted : 0.0, (double)from_graph / (double)n_q, 1e3 * seconds / (double)n_q,
               1e3 * exact_seconds / (double)n_q);
        fflush(stdout);
    }
    printf("]");
    free(scores);
    free(want);
    free(got);
}

/* The exact scan, one query at a time on one thread: the answers (k per query) and the time. */
static uint32_t *exact_answers(bench *b, double *ret_ms) {
    uint32_t *truth = malloc(b->n_queries * b->k * sizeof *truth);
    float *scores = malloc(b->n * sizeof *scores);
    tb_hit *hits = malloc(b->k * sizeof *hits);
    double t0 = bench_now();
    for (size_t q = 0; q < b->n_queries; q++) {
        size_t got = tb_index_search(b->exact, b->queries + q * b->dim, b->k, NULL, NULL, scores, hits);
        for (size_t i = 0; i < b->k; i++)
            truth[q * b->k + i] = i < got ? hits[i].row : UINT32_MAX;
    }
    *ret_ms = 1e3 * (bench_now() - t0) / (double)b->n_queries;
    free(scores);
    free(hits);
    return truth;
}

/* The jittered catalog as tracks of --out-db (each a copy of its source track, named "… #j" so
 * copies are different songs), and the index with its graph published over them. */
static int publish(bench *b, tb_store *src, const char *out_db, const tb_model_record *rec, const tb_index *real) {
    tb_store *s = NULL;
    tb_embedder *e = NULL;
    tb_track *src_tracks = calloc(b->n0, sizeof *src_tracks), *batch = calloc(100000, sizeof *batch);
    char **ids = calloc(b->n, sizeof *ids);
    for (size_t i = 0; i < b->n0; i++)
        if (tb_store_get_track(src, real->ids[i], &src_tracks[i]) != TB_OK)
            return die("a source track");
    if (tb_store_open(out_db, TB_STORE_READ_WRITE, &s) != TB_OK)
        return die(out_db);
    for (size_t at = 0; at < b->n; at += 100000) {
        size_t m = b->n - at < 100000 ? b->n - at : 100000;
        for (size_t i = 0; i < m; i++) {
            size_t r = at + i;
            const tb_track *t = &src_tracks[b->source[r]];
            char *name = malloc(strlen(t->track_name) + 24);
            ids[r] = malloc(32);
            snprintf(ids[r], 32, "scale%08zu", r);
            sprintf(name, "%s #%zu", t->track_name, r / b->n0);
            batch[i] = (tb_track){ids[r], name, t->artists, t->genres, t->popularity, t->features};
        }
        tb_status st = tb_store_put_tracks(s, batch, m);
        for (size_t i = 0; i < m; i++)
            free(batch[i].track_name);
        if (st != TB_OK)
            return die("writing tracks");
    }
    void *graph = NULL, *blob = NULL;
    size_t graph_len = 0, blob_len = 0;
    if (tb_ann_save(b->ann, &graph, &graph_len) != TB_OK || tb_embedder_load(rec->blob, rec->blob_len, &e) != TB_OK)
        return die("the graph's blob");
    free(e->ann_blob);
    e->ann_blob = graph;
    e->ann_len = graph_len;
    if (tb_embedder_save(e, &blob, &blob_len) != TB_OK)
        return die("the embedder's blob");
    tb_model_record m = *rec;
    m.blob = blob;
    m.blob_len = blob_len;
    char metrics[128]; /* what the trainer's report says of a graph */
    snprintf(metrics, sizeof metrics, "{\"index\":\"hnsw\",\"n_tracks\":%zu,\"ann_bytes\":%zu}", b->n,
             tb_ann_bytes(b->ann));
    m.metrics = metrics;
    tb_index_payload ix = {b->n, b->dim, b->vectors, ids};
    int64_t id;
    int version;
    if (tb_store_publish_index(s, &m, &ix, &id, &version) != TB_OK)
        return die("publishing the index");
    tb_store_close(s);
    tb_embedder_free(e);
    free(blob);
    for (size_t i = 0; i < b->n0; i++)
        tb_track_clear(&src_tracks[i]);
    for (size_t r = 0; r < b->n; r++)
        free(ids[r]);
    free(ids);
    free(src_tracks);
    free(batch);
    return 0;
}

int main(int argc, char **argv) {
    const char *db = NULL, *out = NULL, *out_db = NULL, *ef_list = "16,32,64,128,256";
    bench b = {.n = 1000000, .n_queries = 1000, .k = 10};
    tb_ann_params p = TB_ANN_PARAMS_DEFAULT;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!strcmp(argv[i], "--rows")) b.n = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) b.n_queries = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--out-db")) out_db = argv[i + 1];
        else if (!strcmp(argv[i], "--ef")) ef_list = argv[i + 1];
        else if (!strcmp(argv[i], "--m")) p.m = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--ef-construction")) p.ef_construction = (size_t)atol(argv[i + 1]);
    }
    if (!db || !out || b.n == 0 || b.n_queries == 0) {
        fprintf(stderr, "usage: timbre-scale-bench --db DB --out DIR [--rows 1000000] [--queries 1000] "
                        "[--ef 16,32,64,128,256] [--m 16] [--ef-construction 200] [--out-db COPY_OF_DB]\n");
        return 2;
    }
    size_t efs[32], n_ef = 0;
    for (const char *s = ef_list; *s && n_ef < 32; s += strspn(s, ","))
        efs[n_ef++] = strtoul(s, (char **)&s, 10);
    tb_store *store = NULL;
    tb_model_record rec;
    tb_index *real = NULL;
    tb_embedder *embedder = NULL;
    float *vectors;
    char **ids;
    if (tb_store_open(db, TB_STORE_READ_ONLY, &store) || tb_store_get_published(store, "recommend", &rec) ||
        tb_store_get_index(store, rec.id, &vectors, &b.n0, &b.dim, &ids) ||
        tb_index_new(vectors, ids, b.n0, b.dim, &real) || tb_embedder_load(rec.blob, rec.blob_len, &embedder))
        return die(db);
    tb_index_blas_single_thread();
    b.labels = tb_embedder_label_dims(embedder);
    b.real = real->vectors;
    double gap = nearest_gap(real), filled = 0.0;
    for (size_t i = 0; i < b.n0; i++) /* values the noise touches, on average */
        for (size_t j = 0; j < b.dim; j++)
            filled += j >= b.labels || b.real[i * b.dim + j] != 0.0f;
    double sigma = 0.5 * gap / sqrt(filled / (double)b.n0);

    b.vectors = malloc(b.n * b.dim * sizeof *b.vectors);
    b.queries = malloc(b.n_queries * b.dim * sizeof *b.queries);
    b.source = malloc(b.n * sizeof *b.source);
    if (!b.vectors || !b.queries || !b.source)
        return fprintf(stderr, "timbre-scale-bench: out of memory\n"), 1;
    tb_rng rng;
    tb_rng_seed(&rng, 2026);
    for (size_t r = 0; r < b.n; r++) {
        b.source[r] = (uint32_t)(r % b.n0);
        jitter(&b, r % b.n0, sigma, &rng, b.vectors + r * b.dim);
    }
    tb_rng_seed(&rng, 12);
    for (size_t q = 0; q < b.n_queries; q++)
        jitter(&b, q * b.n0 / b.n_queries, sigma, &rng, b.queries + q * b.dim);
    float *copy = malloc(b.n * b.dim * sizeof *copy);
    char **row_ids = malloc(b.n * sizeof *row_ids);
    for (size_t r = 0; copy && row_ids && r < b.n; r++) {
        row_ids[r] = malloc(32);
        snprintf(row_ids[r], 32, "scale%08zu", r);
    }
    if (!copy || !row_ids)
        return fprintf(stderr, "timbre-scale-bench: out of memory\n"), 1;
    memcpy(copy, b.vectors, b.n * b.dim * sizeof *copy);
    if (tb_index_new(copy, row_ids, b.n, b.dim, &b.exact) || tb_index_set_label_dims(b.exact, b.labels))
        return die("the exact index");
    double exact_ms;
    uint32_t *truth = exact_answers(&b, &exact_ms);
    if (write_file(out, "vectors.f32", b.vectors, b.n * b.dim * sizeof(float)) ||
        write_file(out, "queries.f32", b.queries, b.n_queries * b.dim * sizeof(float)) ||
        write_file(out, "truth.u32", truth, b.n_queries * b.k * sizeof *truth))
        return 1;
    printf("{\"rows\": %zu, \"real_rows\": %zu, \"dim\": %zu, \"genre_dims\": %zu, \"queries\": %zu, \"k\": %zu, "
           "\"nearest_real_gap\": %.4f, \"sigma\": %.5f, \"exact_ms\": %.3f", b.n, b.n0, b.dim, b.labels, b.n_queries,
           b.k, gap, sigma, exact_ms);
    fflush(stdout);

    size_t rss0 = resident_bytes();
    double t0 = bench_now();
    if (tb_ann_build(b.vectors, b.n, b.dim, &p, 1, &b.ann) != TB_OK)
        return die("building the graph");
    double build = bench_now() - t0;
    printf(", \"m\": %zu, \"ef_construction\": %zu, \"build_seconds\": %.1f, \"graph_bytes\": %zu, "
           "\"graph_rss_bytes\": %zu", p.m, p.ef_construction, build, tb_ann_bytes(b.ann), resident_bytes() - rss0);
    fflush(stdout);
    sweep(&b, truth, efs, n_ef);
    filtered(&b, p.ef_search);
    if (out_db) {
        t0 = bench_now();
        tb_ann_set_ef(b.ann, p.ef_search);
        if (publish(&b, store, out_db, &rec, real))
            return 1;
        printf(", \"publish_seconds\": %.1f", bench_now() - t0);
    }
    printf("}\n");
    free(truth);
    tb_ann_free(b.ann);
    tb_index_free(b.exact);
    tb_index_free(real);
    tb_embedder_free(embedder);
    tb_model_record_clear(&rec);
    tb_store_close(store);
    free(b.vectors);
    free(b.queries);
    free(b.source);
    return 0;
}
