/* Per-client connection counts and token buckets, in glibc's balanced trees (tsearch). */
#define _GNU_SOURCE /* twalk_r */
#include "clients.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct client_entry {
    tb_client_addr addr;
    unsigned conns; /* connection tree: open connections */
    double tokens;  /* bucket tree: tokens left at `last` */
    double last;
} client_entry;

struct tb_clients {
    pthread_mutex_t lock;
    void *conn_tree, *bucket_tree;
    unsigned per_ip_limit;
    double rate, burst;
    size_t n_buckets, max_buckets;
    client_entry overflow; /* the bucket clients share once the table is full */
};

static int compare(const void *a, const void *b) {
    return memcmp(&((const client_entry *)a)->addr, &((const client_entry *)b)->addr, sizeof(tb_client_addr));
}

int tb_client_addr_from_sockaddr(const struct sockaddr *sa, tb_client_addr *ret) {
    memset(ret, 0, sizeof *ret);
    if (sa && sa->sa_family == AF_INET) {
        ret->bytes[10] = ret->bytes[11] = 0xff;
        memcpy(ret->bytes + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(ret->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

int tb_client_addr_parse(const char *text, size_t len, tb_client_addr *ret) {
    while (len && (*text == ' ' || *text == '\t'))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char buf[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(ret, 0, sizeof *ret);
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        ret->bytes[10] = ret->bytes[11] = 0xff;
        memcpy(ret->bytes + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, ret->bytes) == 1 ? 0 : -1;
}

void tb_client_addr_format(const tb_client_addr *a, char *out, size_t out_size) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int v4 = memcmp(a->bytes, mapped, sizeof mapped) == 0;
    if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a->bytes + 12 : a->bytes, out, (socklen_t)out_size) && out_size)
        out[0] = '\0';
}

static int is_trusted(const tb_client_addr *a, const tb_client_addr *trusted, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a, &trusted[i], sizeof *a) == 0)
            return 1;
    return 0;
}

tb_client_addr tb_client_from_forwarded(const tb_client_addr *peer, const char *forwarded_for,
                                        const tb_client_addr *trusted, size_t n_trusted) {
    if (!forwarded_for || !n_trusted || !is_trusted(peer, trusted, n_trusted))
        return *peer;
    /* Each proxy appends the address it received from: read from the right, past our proxies. */
    const char *end = forwarded_for + strlen(forwarded_for);
    while (end > forwarded_for) {
        const char *start = end;
        while (start > forwarded_for && start[-1] != ',')
            start--;
        tb_client_addr a;
        if (tb_client_addr_parse(start, (size_t)(end - start), &a) != 0)
            return *peer; /* garbage: the peer is all we know */
        if (!is_trusted(&a, trusted, n_trusted))
            return a;
        end = start > forwarded_for ? start - 1 : start;
    }
    return *peer;
}

tb_clients *tb_clients_new(unsigned per_ip_limit, double rate, double burst, size_t max_buckets) {
    tb_clients *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->per_ip_limit = per_ip_limit;
    c->rate = rate;
    c->burst = burst < 1 ? 1 : burst;
    c->max_buckets = max_buckets ? max_buckets : 1;
    c->overflow.tokens = c->burst;
    c->overflow.last = -1;
    return c;
}

tb_clients *tb_clients_free(tb_clients *c) {
    if (!c)
        return NULL;
    tdestroy(c->conn_tree, free);
    tdestroy(c->bucket_tree, free);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return NULL;
}

int tb_clients_connect(tb_clients *c, const tb_client_addr *a) {
    if (!c->per_ip_limit)
        return 0;
    client_entry key = {.addr = *a};
    int refused = 0;
    pthread_mutex_lock(&c->lock);
    client_entry **found = tfind(&key, &c->conn_tree, compare);
    if (found) {
        refused = (*found)->conns >= c->per_ip_limit;
        (*found)->conns += !refused;
    } else {
        client_entry *e = calloc(1, sizeof *e);
        if (e)
            e->addr = *a, e->conns = 1; /* the key, before the tree sees it */
        if (!e || !tsearch(e, &c->conn_tree, compare))
            free(e), refused = 1; /* out of memory: refusing is the safe side */
    }
    pthread_mutex_unlock(&c->lock);
    return refused;
}

void tb_clients_disconnect(tb_clients *c, const tb_client_addr *a) {
    if (!c->per_ip_limit)
        return;
    client_entry key = {.addr = *a};
    pthread_mutex_lock(&c->lock);
    client_entry **found = tfind(&key, &c->conn_tree, compare);
    if (found && --(*found)->conns == 0) {
        client_entry *e = *found;
        tdelete(e, &c->conn_tree, compare);
        free(e);
    }
    pthread_mutex_unlock(&c->lock);
}

/* The bucket's tokens at time now (refilled at c->rate, up to the burst). */
static double refill(const tb_clients *c, const client_entry *e, double now) {
    return e->last < 0 ? c->burst : fmin(c->burst, e->tokens + (now - e->last) * c->rate);
}

/* twalk_r collects the full buckets: they hold nothing a fresh bucket would not. */
typedef struct prune_walk {
    const tb_clients *c;
    double now;
    client_entry **full;
    size_t n;
} prune_walk;

static void collect_full(const void *node, VISIT v, void *ctx) {
    prune_walk *w = ctx;
    const client_entry *e = *(client_entry *const *)node;
    if ((v == postorder || v == leaf) && refill(w->c, e, w->now) >= w->c->burst)
        w->full[w->n++] = (client_entry *)e;
}

static void prune_buckets(tb_clients *c, double now) {
    prune_walk w = {c, now, malloc(c->n_buckets * sizeof *w.full), 0};
    if (!w.full)
        return;
    twalk_r(c->bucket_tree, collect_full, &w);
    for (size_t i = 0; i < w.n; i++) {
        tdelete(w.full[i], &c->bucket_tree, compare);
        free(w.full[i]);
    }
    c->n_buckets -= w.n;
    free(w.full);
}

static client_entry *bucket(tb_clients *c, const tb_client_addr *a, double now) {
    client_entry key = {.addr = *a};
    client_entry **found = tfind(&key, &c->bucket_tree, compare);
    if (found)
        return *found;
    if (c->n_buckets >= c->max_buckets)
        prune_buckets(c, now);
    if (c->n_buckets >= c->max_buckets)
        return &c->overflow;
    client_entry *e = calloc(1, sizeof *e);
    if (e)
        e->addr = *a, e->last = -1; /* the key, before the tree sees it */
    if (!e || !tsearch(e, &c->bucket_tree, compare)) {
        free(e);
        return &c->overflow;
    }
    c->n_buckets++;
    return e;
}

int tb_clients_take(tb_clients *c, const tb_client_addr *a, double now, unsigned *retry_after_s) {
    if (c->rate <= 0)
        return 0;
    pthread_mutex_lock(&c->lock);
    client_entry *e = bucket(c, a, now);
    double tokens = refill(c, e, now);
    int limited = tokens < 1;
    e->tokens = limited ? tokens : tokens - 1;
    e->last = now;
    pthread_mutex_unlock(&c->lock);
    if (limited)
        *retry_after_s = (unsigned)ceil((1 - tokens) / c->rate);
    if (limited && *retry_after_s < 1)
        *retry_after_s = 1;
    return limited;
}

int tb_clients_rate_limited(const tb_clients *c) { return c->rate > 0; }
