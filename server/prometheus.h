/* Request metrics for GET /metrics (Prometheus text format): requests by route and status,
 * latency histograms per route, requests in flight, loaded models, process memory. Lock-free:
 * every request thread records into atomic counters. */
#ifndef TB_SERVER_PROMETHEUS_H
#define TB_SERVER_PROMETHEUS_H

#include <stddef.h>

#include "state.h"

typedef struct tb_metrics tb_metrics;

tb_metrics *tb_metrics_new(void);
tb_metrics *tb_metrics_free(tb_metrics *m);

/* route: index into tb_routes, or -1 for requests no route took (unknown paths, preflights). */
void tb_metrics_start(tb_metrics *m);
void tb_metrics_finish(tb_metrics *m, long route, unsigned status, double seconds);

/* What the connection layer refuses, sheds or cuts off (counted, labelled by reason). */
typedef enum tb_metric_event {
    TB_EVENT_REFUSED_LIMIT,    /* connection refused: --max-connections reached */
    TB_EVENT_REFUSED_PER_IP,   /* connection refused: --max-connections-per-ip reached */
    TB_EVENT_REFUSED_DRAINING, /* connection refused: shutting down */
    TB_EVENT_REQUEST_TIMEOUT,  /* request not received whole within --request-timeout */
    TB_EVENT_SHED_OVERLOAD,    /* 503: waited past --shed-after-ms */
    TB_EVENT_RATE_LIMITED,     /* 429: the client's token bucket was empty */
    TB_EVENT_FRAMING,          /* 400: ambiguous framing (RFC 9112), connection closed */
    TB_N_EVENTS
} tb_metric_event;
void tb_metrics_count(tb_metrics *m, tb_metric_event e);

/* A reload attempt and its outcome. */
void tb_metrics_count_reload(tb_metrics *m, int ok);

/* The exposition text (caller frees), with the state's loaded models. NULL when out of memory. */
char *tb_metrics_render(const tb_metrics *m, const tb_server_state *state, long open_connections);

#endif
