/* Prometheus counters. */
#include "prometheus.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory.h"
#include "route.h"

/* Statuses the server sends; anything else counts under the last slot as "other". */
static const unsigned statuses[] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429, 431, 500, 503, 507};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1)
/* Latency bucket upper bounds in seconds (Prometheus `le`), then +Inf. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0] + 1)
#define MAX_ROUTES 64 /* tb_routes plus one slot for "no route" */

typedef struct route_counters {
    atomic_ullong by_status[N_STATUS];
    atomic_ullong latency[N_BUCKETS]; /* not cumulative here; summed when rendered */
    atomic_ullong micros;             /* total latency, µs */
} route_counters;

struct tb_metrics {
    route_counters routes[MAX_ROUTES];
    atomic_llong in_flight;
    atomic_ullong reloads[2]; /* failed, ok */
    atomic_ullong events[TB_N_EVENTS];
};

tb_metrics *tb_metrics_new(void) {
    if (tb_n_routes + 1 > MAX_ROUTES)
        return NULL;
    tb_metrics *m = calloc(1, sizeof *m); /* all-zero bytes are zero atomics on every platform we build on */
    return m;
}

tb_metrics *tb_metrics_free(tb_metrics *m) {
    free(m);
    return NULL;
}

void tb_metrics_count_reload(tb_metrics *m, int ok) {
    atomic_fetch_add_explicit(&m->reloads[ok ? 1 : 0], 1, memory_order_relaxed);
}

void tb_metrics_count(tb_metrics *m, tb_metric_event e) {
    atomic_fetch_add_explicit(&m->events[e], 1, memory_order_relaxed);
}

void tb_metrics_start(tb_metrics *m) { atomic_fetch_add_explicit(&m->in_flight, 1, memory_order_relaxed); }

void tb_metrics_finish(tb_metrics *m, long route, unsigned status, double seconds) {
    route_counters *rc = &m->routes[route >= 0 && (size_t)route < tb_n_routes ? (size_t)route : tb_n_routes];
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    size_t b = 0;
    while (b < N_BUCKETS - 1 && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&rc->by_status[s], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->micros, (unsigned long long)(seconds * 1e6), memory_order_relaxed);
    atomic_fetch_sub_explicit(&m->in_flight, 1, memory_order_relaxed);
}

typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
}

/* Label values are our own route paths and model names: printable, but escape per the format anyway. */
static void put_label(text *t, const char *v) {
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            put(t, "\\%c", *v);
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

static void route_labels(text *t, size_t r) {
    put(t, "route=\"");
    put_label(t, r < tb_n_routes ? tb_routes[r].path : "(none)");
    put(t, "\",method=\"%s\"", r < tb_n_routes ? tb_routes[r].method : "*");
}

static void model_line(text *t, const char *task, const char *kind, const char *name, int version, long long id) {
    put(t, "timbre_model_info{task=\"%s\",kind=\"", task);
    put_label(t, kind);
    put(t, "\",name=\"");
    put_label(t, name);
    put(t, "\",version=\"%d\",id=\"%lld\"} 1\n", version, id);
}

char *tb_metrics_render(const tb_metrics *m, const tb_server_state *state, long open_connections) {
    text t = {malloc(16384), 0, 16384, 0};
    if (!t.buf)
        return NULL;
    put(&t, "# HELP timbre_requests_total Requests answered, by route and HTTP status.\n"
            "# TYPE timbre_requests_total counter\n");
    for (size_t r = 0; r <= tb_n_routes; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            unsigned long long v = atomic_load_explicit(&m->routes[r].by_status[s], memory_order_relaxed);
            if (!v)
                continue;
            put(&t, "timbre_requests_total{");
            route_labels(&t, r);
            if (s < N_STATUS - 1)
                put(&t, ",status=\"%u\"} %llu\n", statuses[s], v);
            else
                put(&t, ",status=\"other\"} %llu\n", v);
        }
    put(&t, "# HELP timbre_request_duration_seconds Time from a request's first byte to its reply, by route.\n"
            "# TYPE timbre_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= tb_n_routes; r++) {
        unsigned long long cum = 0, lat[N_BUCKETS];
        for (size_t b = 0; b < N_BUCKETS; b++)
            cum += lat[b] = atomic_load_explicit(&m->routes[r].latency[b], memory_order_relaxed);
        if (!cum)
            continue;
        cum = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += lat[b];
            put(&t, "timbre_request_duration_seconds_bucket{");
            route_labels(&t, r);
            if (b < N_BUCKETS - 1)
                put(&t, ",le=\"%g\"} %llu\n", buckets[b], cum);
            else
                put(&t, ",le=\"+Inf\"} %llu\n", cum);
        }
        put(&t, "timbre_request_duration_seconds_sum{");
        route_labels(&t, r);
        put(&t, "} %.6f\n", (double)atomic_load_explicit(&m->routes[r].micros, memory_order_relaxed) * 1e-6);
        put(&t, "timbre_request_duration_seconds_count{");
        route_labels(&t, r);
        put(&t, "} %llu\n", cum);
    }
    put(&t, "# HELP timbre_requests_in_flight Requests being served, this one included.\n"
            "# TYPE timbre_requests_in_flight gauge\ntimbre_requests_in_flight %lld\n",
        (long long)atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    put(&t, "# HELP timbre_connections_open Client connections open.\n"
            "# TYPE timbre_connections_open gauge\ntimbre_connections_open %lld\n",
        (long long)open_connections);
#define EVENT(e) atomic_load_explicit(&m->events[e], memory_order_relaxed)
    put(&t, "# HELP timbre_connections_refused_total Connections refused at accept, by reason.\n"
            "# TYPE timbre_connections_refused_total counter\n"
            "timbre_connections_refused_total{reason=\"connection_limit\"} %llu\n"
            "timbre_connections_refused_total{reason=\"per_ip_limit\"} %llu\n"
            "timbre_connections_refused_total{reason=\"draining\"} %llu\n",
        EVENT(TB_EVENT_REFUSED_LIMIT), EVENT(TB_EVENT_REFUSED_PER_IP), EVENT(TB_EVENT_REFUSED_DRAINING));
    put(&t, "# HELP timbre_requests_rejected_total Requests turned away before a handler ran, by reason.\n"
            "# TYPE timbre_requests_rejected_total counter\n"
            "timbre_requests_rejected_total{reason=\"request_timeout\"} %llu\n"
            "timbre_requests_rejected_total{reason=\"overload\"} %llu\n"
            "timbre_requests_rejected_total{reason=\"rate_limit\"} %llu\n"
            "timbre_requests_rejected_total{reason=\"framing\"} %llu\n",
        EVENT(TB_EVENT_REQUEST_TIMEOUT), EVENT(TB_EVENT_SHED_OVERLOAD), EVENT(TB_EVENT_RATE_LIMITED),
        EVENT(TB_EVENT_FRAMING));
#undef EVENT
    put(&t, "# HELP timbre_model_info Models and index loaded, by task, with their version.\n"
            "# TYPE timbre_model_info gauge\n");
    for (int k = 0; k < TB_N_TASKS; k++) {
        const tb_served *m = state->served[k];
        if (m)
            model_line(&t, m->task, m->kind, m->name, m->version, (long long)m->id);
    }
    put(&t, "# HELP timbre_reloads_total Model reloads (SIGHUP or --watch), by outcome.\n"
            "# TYPE timbre_reloads_total counter\ntimbre_reloads_total{outcome=\"ok\"} %llu\n"
            "timbre_reloads_total{outcome=\"failed\"} %llu\n",
        atomic_load_explicit(&m->reloads[1], memory_order_relaxed),
        atomic_load_explicit(&m->reloads[0], memory_order_relaxed));
    put(&t, "# HELP timbre_catalog_tracks Tracks in the loaded catalog.\n# TYPE timbre_catalog_tracks gauge\n"
            "timbre_catalog_tracks %zu\n", state->catalog ? state->catalog->n : (size_t)0);
    size_t resident = tb_memory_resident(); /* absent where there is no /proc */
    if (resident)
        put(&t, "# HELP timbre_process_resident_memory_bytes Resident memory of the process.\n"
                "# TYPE timbre_process_resident_memory_bytes gauge\ntimbre_process_resident_memory_bytes %zu\n",
            resident);
    put(&t, "# HELP timbre_memory_budget_bytes The most the process may hold: a larger index is refused at load.\n"
            "# TYPE timbre_memory_budget_bytes gauge\ntimbre_memory_budget_bytes %zu\n", state->load.memory_budget);
    const tb_served *rec = state->served[TB_SERVED_RECOMMEND];
    if (rec) {
        put(&t, "# HELP timbre_index_bytes Memory the recommendation index holds, by part (exact: vectors, ids; "
                "hnsw: the graph).\n# TYPE timbre_index_bytes gauge\ntimbre_index_bytes{kind=\"exact\"} %zu\n",
            tb_index_bytes(rec->index));
        if (rec->ann)
            put(&t, "timbre_index_bytes{kind=\"hnsw\"} %zu\n", tb_ann_bytes(rec->ann));
    }
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
