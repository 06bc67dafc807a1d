/* The request threads and their connections: one listening socket we own, one libmicrohttpd
 * daemon per thread run from our own loop, admission at accept (connection limits, refusals),
 * a deadline for every request, and the drain on SIGTERM. The loop owns its threads, daemons and
 * sockets; the options' callbacks, clients and metrics stay the caller's and must outlive it. */
#ifndef TB_SERVER_LOOP_H
#define TB_SERVER_LOOP_H

#include <microhttpd.h>
#include <stdint.h>
#include <sys/socket.h>

#include "clients.h"
#include "prometheus.h"
#include "status.h"

typedef struct tb_loop_options {
    const struct sockaddr *addr; /* where to listen */
    socklen_t addr_len;
    unsigned threads;
    unsigned connection_limit;  /* open connections, all threads together */
    unsigned idle_timeout_s;    /* a connection with no traffic this long is closed (0: never) */
    unsigned request_timeout_s; /* a request not received whole this long after its first byte gets a 408 */
    size_t memory_limit;        /* libmicrohttpd's per-connection buffer */
    MHD_AccessHandlerCallback on_request;
    MHD_RequestCompletedCallback on_completed;
    void *cls; /* for both callbacks */
    tb_clients *clients; /* counts connections per address */
    tb_metrics *metrics; /* refusals and timeouts */
} tb_loop_options;

typedef struct tb_loop tb_loop;

/* Binds, listens and starts the threads. */
tb_status tb_loop_start(const tb_loop_options *opt, tb_loop **ret);
/* The port actually bound. */
uint16_t tb_loop_port(const tb_loop *l);
/* Connections admitted and not yet closed (any thread). */
long tb_loop_connections(const tb_loop *l);
/* 1 once tb_loop_drain has begun (any thread). */
int tb_loop_draining(const tb_loop *l);
/* Stops listening (new connections are refused by the kernel), lets every request already
 * received finish — replies then carry Connection: close —, closes idle connections, and returns
 * when none is left (1) or after timeout_s (0). Call once, from a thread that is not a loop's. */
int tb_loop_drain(tb_loop *l, double timeout_s);
/* Stops the threads and closes every connection and socket. Accepts NULL. */
tb_loop *tb_loop_free(tb_loop *l);

/* On a loop thread: seconds since its current pass over ready connections began, a lower bound
 * on how long a request being handled has waited behind the others. 0 elsewhere. */
double tb_loop_queued_seconds(void);

#endif
