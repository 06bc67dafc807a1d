/* Request metrics for GET /metrics (Prometheus text format): requests by route and status,
 * latency histograms per route, requests in flight, loaded models, process memory. Lock-free:
 * every request thread records into atomic counters. */
#ifndef TB_SERVER_METRICS_H
#define TB_SERVER_METRICS_H

#include <stddef.h>

#include "state.h"

typedef struct tb_metrics tb_metrics;

tb_metrics *tb_metrics_new(void);
tb_metrics *tb_metrics_free(tb_metrics *m);

/* route: index into tb_routes, or -1 for requests no route took (unknown paths, preflights). */
void tb_metrics_start(tb_metrics *m);
void tb_metrics_finish(tb_metrics *m, long route, unsigned status, double seconds);

/* A reload attempt and its outcome. */
void tb_metrics_count_reload(tb_metrics *m, int ok);

/* The exposition text (caller frees), with the state's loaded models. NULL when out of memory. */
char *tb_metrics_render(const tb_metrics *m, const tb_server_state *state);

#endif
