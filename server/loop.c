/* The request threads' event loops.
 *
 * Why not libmicrohttpd's own thread pool: in 0.9.75 its epoll loop drains epoll_wait in rounds
 * of 128 events and, when a round comes back full, waits again with the full timeout. At the
 * connection limit the listening socket leaves the set, so when a thread's share of connections
 * is a multiple of 128 (512 per thread at 1024 on 2 threads) and every client waits for its
 * reply, that second wait blocks until the next idle deadline: wrk -c1100 got 1,094 req/s
 * against 51k at -c1000, and 53k with the limit at 1000. Here each thread waits itself (epoll on
 * the daemon's epoll descriptor, the listening socket and a wake-up eventfd) and calls MHD_run,
 * whose inner epoll_wait never blocks. Owning accept also means that past a limit a connection is
 * refused at once (a 503 or 429 and a close) instead of waiting in the kernel's backlog, that a
 * drain can stop listening without stopping the daemons, and that every connection is known to
 * the loop, which enforces the request deadline libmicrohttpd lacks (its timeout is for
 * inactivity: one byte every 29 s kept a slot for hours). */
#define _GNU_SOURCE /* accept4 */
#include "loop.h"

#include <errno.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received; glibc's copy predates it */
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define ACCEPT_BATCH 16          /* connections one pass accepts, so a burst spreads over the threads */
#define SWEEP_SECONDS 0.5        /* how often a thread checks its connections' request deadlines */
#define DRAIN_IDLE_TIMEOUT_S 1   /* during a drain, libmicrohttpd closes a connection idle this long */
#define REFUSAL_DRAIN_BYTES 65536 /* read and dropped before a refusal, so the close sends FIN, not RST */
enum { EV_DAEMON = 1, EV_LISTEN, EV_WAKE };

/* One connection, known from libmicrohttpd's start notification to its close. Touched only by
 * its thread. */
typedef struct tb_conn {
    struct tb_conn *prev, *next;
    struct MHD_Connection *mhd;
    int fd;
    tb_client_addr addr;
    unsigned long long done, seen_done; /* requests completed; the count at the last sweep */
    unsigned long long mark;            /* bytes received when that sweep saw it idle */
    double since;                       /* when a sweep first saw bytes past the mark; 0 idle */
    int timed_out;
} tb_conn;

typedef struct worker {
    struct tb_loop *loop;
    struct MHD_Daemon *daemon;
    int epfd, wake_fd, listening, drain_started;
    pthread_t thread;
    int running;
    tb_conn *conns;
    size_t n_conns;
    double next_sweep;
} worker;

/* At most one log line a second for what a flood repeats; the rest are counted into the next. */
typedef struct log_limiter {
    pthread_mutex_t lock;
    double last;
    unsigned long held;
} log_limiter;

typedef enum refusal { REFUSED_LIMIT, REFUSED_PER_IP, REFUSED_DRAINING, N_REFUSALS } refusal;

struct tb_loop {
    tb_loop_options opt;
    int listen_fd;
    uint16_t port;
    worker *workers;
    unsigned n_workers;
    atomic_long open;              /* admitted connections, all threads */
    atomic_int draining, stop;
    atomic_ulong refused[N_REFUSALS]; /* since the last refusal log line */
    log_limiter refusal_log, mhd_log;
    char *refusal_reply[N_REFUSALS];
};

static _Thread_local worker *tl_worker;         /* the loop thread's own worker */
static _Thread_local double tl_pass_start;      /* when this pass over ready connections began */
static _Thread_local tb_client_addr tl_adding;   /* the address of the connection being added */
static _Thread_local int tl_added;               /* its start notification ran */

double tb_loop_queued_seconds(void) { return tl_worker ? tb_now_seconds() - tl_pass_start : 0; }

/* Returns 1 when a line may go out now; *held gets the count of lines held back since the last. */
static int limiter_pass(log_limiter *lim, unsigned long *held) {
    double now = tb_now_seconds();
    int pass = 0;
    pthread_mutex_lock(&lim->lock);
    if (now - lim->last >= 1.0) {
        pass = 1;
        *held = lim->held;
        lim->held = 0;
        lim->last = now;
    } else {
        lim->held++;
    }
    pthread_mutex_unlock(&lim->lock);
    return pass;
}

/* libmicrohttpd's messages (a client that resets mid-request logs one each) through the limiter. */
static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    tb_loop *l = cls;
    unsigned long held;
    if (!limiter_pass(&l->mhd_log, &held))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    if (held)
        tb_log(TB_LOG_WARN, "libmicrohttpd: %s (%lu more messages in the last second not shown)", msg, held);
    else
        tb_log(TB_LOG_WARN, "libmicrohttpd: %s", msg);
}

/* One line a second at most, with the counts since the last line. */
static void log_refusals(tb_loop *l, int force) {
    unsigned long n[N_REFUSALS], held;
    if (!force && !limiter_pass(&l->refusal_log, &held))
        return;
    for (int r = 0; r < N_REFUSALS; r++)
        n[r] = atomic_exchange_explicit(&l->refused[r], 0, memory_order_relaxed);
    if (n[REFUSED_LIMIT] + n[REFUSED_PER_IP] + n[REFUSED_DRAINING] == 0)
        return;
    tb_log(TB_LOG_WARN,
           "refused %lu connections since the last report: %lu at the connection limit (%u), %lu over the "
           "per-address limit, %lu while draining",
           n[REFUSED_LIMIT] + n[REFUSED_PER_IP] + n[REFUSED_DRAINING], n[REFUSED_LIMIT],
           l->opt.connection_limit, n[REFUSED_PER_IP], n[REFUSED_DRAINING]);
}

static char *canned_reply(unsigned status, const char *reason, const char *code, const char *message) {
    char body[400], *out = NULL;
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
    if (n < 0 || (size_t)n >= sizeof body ||
        asprintf(&out,
                 "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                 "Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                 status, reason, n, body) < 0)
        return NULL;
    return out;
}

static void refuse(tb_loop *l, int fd, refusal why) {
    char scratch[4096];
    for (size_t got = 0; got < REFUSAL_DRAIN_BYTES;) {
        ssize_t r = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    const char *reply = l->refusal_reply[why];
    if (reply && send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone or its window is full: the close says the rest */
    }
    close(fd);
    atomic_fetch_add_explicit(&l->refused[why], 1, memory_order_relaxed);
    tb_metrics_count(l->opt.metrics, why == REFUSED_LIMIT    ? TB_EVENT_REFUSED_LIMIT
                                     : why == REFUSED_PER_IP ? TB_EVENT_REFUSED_PER_IP
                                                             : TB_EVENT_REFUSED_DRAINING);
    log_refusals(l, 0);
}

static void admit(worker *w, int fd, const struct sockaddr *sa, socklen_t len) {
    tb_loop *l = w->loop;
    tb_client_addr a;
    if (tb_client_addr_from_sockaddr(sa, &a) != 0) {
        close(fd);
        return;
    }
    if (atomic_load_explicit(&l->draining, memory_order_relaxed)) {
        refuse(l, fd, REFUSED_DRAINING);
        return;
    }
    if (atomic_fetch_add_explicit(&l->open, 1, memory_order_relaxed) >= (long)l->opt.connection_limit) {
        atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
        refuse(l, fd, REFUSED_LIMIT);
        return;
    }
    if (tb_clients_connect(l->opt.clients, &a)) {
        atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
        refuse(l, fd, REFUSED_PER_IP);
        return;
    }
    tl_adding = a;
    tl_added = 0;
    /* libmicrohttpd closes fd itself on failure; after a start notification its close
     * notification has undone the counts, otherwise they are undone here. */
    (void)MHD_add_connection(w->daemon, fd, sa, len);
    if (!tl_added) {
        atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
        tb_clients_disconnect(l->opt.clients, &a);
    }
}

static void stop_listening(worker *w) {
    if (!w->listening)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->loop->listen_fd, NULL);
    w->listening = 0;
}

static void accept_some(worker *w) {
    tb_loop *l = w->loop;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(w, fd, (struct sockaddr *)&ss, len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EINVAL) /* the drain shut the socket down */
            stop_listening(w);
        else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            unsigned long held;
            if (limiter_pass(&l->mhd_log, &held))
                tb_log(TB_LOG_ERROR, "accept: %s (the next connections wait in the kernel's queue)", strerror(errno));
        }
        return;
    }
}

/* libmicrohttpd's connection notifications, on the connection's thread. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    tb_loop *l = cls;
    worker *w = tl_worker;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        tb_conn *c = w ? calloc(1, sizeof *c) : NULL;
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = c;
        if (!c || !fd) {
            free(c);
            *socket_context = NULL;
            return; /* untracked: admit() uncounts it */
        }
        c->mhd = mc;
        c->fd = fd->connect_fd;
        c->addr = tl_adding;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        tl_added = 1;
        return;
    }
    tb_conn *c = *socket_context;
    if (!c)
        return;
    if (w) { /* NULL only when tb_loop_free stops the daemons, after the threads have ended */
        if (c->prev)
            c->prev->next = c->next;
        else
            w->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        w->n_conns--;
    }
    atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
    tb_clients_disconnect(l->opt.clients, &c->addr);
    free(c);
    *socket_context = NULL;
}

/* The request-completion callback, wrapped: the sweep learns that its connection went idle. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe) {
    tb_loop *l = cls;
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info && info->socket_context)
        ((tb_conn *)info->socket_context)->done++;
    l->opt.on_completed(l->opt.cls, mc, con_cls, toe);
}

static unsigned long long bytes_received(int fd) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return ti.tcpi_bytes_received;
}

/* A request past its deadline: a 408 if nothing of a reply went out yet, then both directions
 * shut, which libmicrohttpd sees as the client leaving and cleans up on its next pass. */
static void time_out(worker *w, tb_conn *c) {
    char body[200], head[400];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request was not received whole "
                     "within %u s (--request-timeout)\"}}",
                     w->loop->opt.request_timeout_s);
    int m = snprintf(head, sizeof head,
                     "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                     n, body);
    if (m > 0 && (size_t)m < sizeof head && send(c->fd, head, (size_t)m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* nothing to do: the shutdown below ends it either way */
    }
    shutdown(c->fd, SHUT_RDWR);
    c->timed_out = 1;
    tb_metrics_count(w->loop->opt.metrics, TB_EVENT_REQUEST_TIMEOUT);
}

/* A request is under way on a connection from the first sweep that sees bytes arrive after it
 * went idle (TCP_INFO's count, so bytes libmicrohttpd has not read yet count too) until it
 * completes; past the deadline, unless its reply is already queued, it is timed out. */
static void sweep(worker *w, double now) {
    unsigned limit = w->loop->opt.request_timeout_s;
    for (tb_conn *c = limit ? w->conns : NULL; c; c = c->next) { /* no deadline: nothing to watch */
        if (c->timed_out)
            continue;
        if (c->done != c->seen_done || !c->since) {
            unsigned long long bytes = bytes_received(c->fd);
            if (c->done != c->seen_done) {
                c->seen_done = c->done;
                c->mark = bytes;
                c->since = 0;
            } else if (bytes > c->mark) {
                c->since = now;
            }
            continue;
        }
        if (now - c->since >= limit &&
            !MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_HTTP_STATUS)) /* NULL: no reply queued */
            time_out(w, c);
    }
    log_refusals(w->loop, 0);
}

/* From now on every connection that goes quiet for a second is closed by libmicrohttpd; requests
 * that already arrived were read by the MHD_run just before. */
static void start_drain(worker *w) {
    stop_listening(w);
    for (tb_conn *c = w->conns; c; c = c->next)
        MHD_set_connection_option(c->mhd, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)DRAIN_IDLE_TIMEOUT_S);
    w->drain_started = 1;
}

static int wait_ms(worker *w, double now) {
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    double until_sweep = w->next_sweep - now;
    int ms = until_sweep <= 0 ? 0 : (int)(until_sweep * 1000) + 1;
    if (MHD_get_timeout(w->daemon, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG)ms)
        ms = (int)mhd_ms;
    return ms;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    tb_loop *l = w->loop;
    tl_worker = w;
    struct epoll_event ev[4];
    while (!atomic_load_explicit(&l->stop, memory_order_acquire)) {
        double now = tb_now_seconds();
        int n = epoll_wait(w->epfd, ev, 4, wait_ms(w, now));
        tl_pass_start = now = tb_now_seconds();
        int accept_ready = 0;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u32 == EV_LISTEN)
                accept_ready = 1;
            else if (ev[i].data.u32 == EV_WAKE) {
                uint64_t v;
                if (read(w->wake_fd, &v, sizeof v) < 0) { /* a counter: nothing lost */
                }
            }
        }
        if (accept_ready && w->listening)
            accept_some(w);
        MHD_run(w->daemon);
        if (atomic_load_explicit(&l->draining, memory_order_acquire) && !w->drain_started)
            start_drain(w);
        if (now >= w->next_sweep) {
            sweep(w, now);
            w->next_sweep = now + SWEEP_SECONDS;
        }
        if (w->drain_started && w->n_conns == 0)
            break;
    }
    tl_worker = NULL;
    return NULL;
}

static int listen_socket(const tb_loop_options *opt, int *ret_fd, uint16_t *ret_port) {
    int fd = socket(opt->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (opt->addr->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    if (bind(fd, opt->addr, opt->addr_len) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        close(fd);
        return -1;
    }
    *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    *ret_fd = fd;
    return 0;
}

static int watch(int epfd, int fd, uint32_t events, uint32_t tag) {
    struct epoll_event e = {.events = events, .data.u32 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

static int worker_start(tb_loop *l, worker *w) {
    w->loop = l;
    w->epfd = w->wake_fd = -1;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    /* The admission above already applied both limits; libmicrohttpd's own would only repeat them. */
    w->daemon = MHD_start_daemon(flags, 0, NULL, NULL, l->opt.on_request, l->opt.cls,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, l, /* first, or it misses some */
                                 MHD_OPTION_CONNECTION_LIMIT, l->opt.connection_limit,
                                 MHD_OPTION_CONNECTION_TIMEOUT, l->opt.idle_timeout_s,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, l->opt.memory_limit,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                                 MHD_OPTION_END);
    const union MHD_DaemonInfo *info = w->daemon ? MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info || (w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        watch(w->epfd, info->epoll_fd, EPOLLIN, EV_DAEMON) || watch(w->epfd, w->wake_fd, EPOLLIN, EV_WAKE) ||
        watch(w->epfd, l->listen_fd, EPOLLIN | EPOLLEXCLUSIVE, EV_LISTEN))
        return -1;
    w->listening = 1;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    pthread_setname_np(w->thread, "tb-request"); /* what top -H and /proc/PID/task show */
    w->running = 1;
    return 0;
}

tb_status tb_loop_start(const tb_loop_options *opt, tb_loop **ret) {
    tb_loop *l = calloc(1, sizeof *l);
    if (!l || !(l->workers = calloc(opt->threads, sizeof *l->workers))) {
        free(l);
        return tb_error(TB_NOMEM, "out of memory");
    }
    l->opt = *opt;
    l->listen_fd = -1;
    pthread_mutex_init(&l->refusal_log.lock, NULL);
    pthread_mutex_init(&l->mhd_log.lock, NULL);
    l->refusal_log.last = l->mhd_log.last = -1e9;
    char limit_msg[160];
    snprintf(limit_msg, sizeof limit_msg, "the server is at its connection limit (%u); retry later",
             opt->connection_limit);
    l->refusal_reply[REFUSED_LIMIT] = canned_reply(503, "Service Unavailable", "unavailable", limit_msg);
    l->refusal_reply[REFUSED_PER_IP] =
        canned_reply(429, "Too Many Requests", "too_many_connections",
                     "this address has as many open connections as --max-connections-per-ip allows");
    l->refusal_reply[REFUSED_DRAINING] =
        canned_reply(503, "Service Unavailable", "unavailable", "the server is shutting down; retry on another");
    if (listen_socket(opt, &l->listen_fd, &l->port) != 0) {
        tb_loop_free(l);
        return tb_error(TB_IO, "cannot listen: %s (address in use, or not permitted?)", strerror(errno));
    }
    for (unsigned i = 0; i < opt->threads; i++) {
        l->n_workers = i + 1;
        if (worker_start(l, &l->workers[i]) != 0) {
            tb_loop_free(l);
            return tb_error(TB_IO, "cannot start request thread %u", i);
        }
    }
    *ret = l;
    return TB_OK;
}

uint16_t tb_loop_port(const tb_loop *l) { return l->port; }

long tb_loop_connections(const tb_loop *l) { return atomic_load_explicit(&l->open, memory_order_relaxed); }

int tb_loop_draining(const tb_loop *l) { return atomic_load_explicit(&l->draining, memory_order_relaxed); }

static void wake_all(tb_loop *l) {
    uint64_t one = 1;
    for (unsigned i = 0; i < l->n_workers; i++)
        if (l->workers[i].wake_fd >= 0 && write(l->workers[i].wake_fd, &one, sizeof one) < 0) {
            /* the counter is full: the thread is awake anyway */
        }
}

int tb_loop_drain(tb_loop *l, double timeout_s) {
    atomic_store_explicit(&l->draining, 1, memory_order_release);
    /* A shut listening socket stops listening: the kernel refuses new connections from here on
     * and resets those still in its queue, which no thread would accept. */
    shutdown(l->listen_fd, SHUT_RDWR);
    wake_all(l);
    double deadline = tb_now_seconds() + timeout_s;
    while (atomic_load_explicit(&l->open, memory_order_relaxed) > 0 && tb_now_seconds() < deadline) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    log_refusals(l, 1);
    return atomic_load_explicit(&l->open, memory_order_relaxed) == 0;
}

tb_loop *tb_loop_free(tb_loop *l) {
    if (!l)
        return NULL;
    atomic_store_explicit(&l->stop, 1, memory_order_release);
    wake_all(l);
    for (unsigned i = 0; i < l->n_workers; i++)
        if (l->workers[i].running)
            pthread_join(l->workers[i].thread, NULL);
    for (unsigned i = 0; i < l->n_workers; i++) {
        worker *w = &l->workers[i];
        if (w->daemon)
            MHD_stop_daemon(w->daemon); /* closes what is left; its notifications find no thread */
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->wake_fd >= 0)
            close(w->wake_fd);
    }
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    for (int r = 0; r < N_REFUSALS; r++)
        free(l->refusal_reply[r]);
    pthread_mutex_destroy(&l->refusal_log.lock);
    pthread_mutex_destroy(&l->mhd_log.lock);
    free(l->workers);
    free(l);
    return NULL;
}
