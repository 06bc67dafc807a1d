/* Per-client bookkeeping shared by the request threads: open connections per address (the
 * --max-connections-per-ip limit) and optional token buckets (--rate-limit). The table owns its
 * entries; the caller owns the table. Thread-safe (one mutex; every call is a few tree steps). */
#ifndef TB_SERVER_CLIENTS_H
#define TB_SERVER_CLIENTS_H

#include <stddef.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address as 16 bytes (IPv4 mapped as ::ffff:a.b.c.d), the port left out. */
typedef struct tb_client_addr {
    unsigned char bytes[16];
} tb_client_addr;

/* From a socket address; 0, or -1 for a family other than IPv4 and IPv6. */
int tb_client_addr_from_sockaddr(const struct sockaddr *sa, tb_client_addr *ret);
/* From text ("192.0.2.1", "2001:db8::1", " 10.0.0.1 "); 0, or -1 when it is not an address. */
int tb_client_addr_parse(const char *text, size_t len, tb_client_addr *ret);
/* The address as text (INET6_ADDRSTRLEN bytes is enough). */
void tb_client_addr_format(const tb_client_addr *a, char *out, size_t out_size);

/* The client a request speaks for: the peer, unless the peer is one of the `trusted` proxies
 * and X-Forwarded-For names someone: then the rightmost entry that is not a trusted proxy. */
tb_client_addr tb_client_from_forwarded(const tb_client_addr *peer, const char *forwarded_for,
                                        const tb_client_addr *trusted, size_t n_trusted);

typedef struct tb_clients tb_clients;

/* per_ip_limit: open connections per address (0: no limit). rate: requests per second per
 * client (0: no rate limit), burst: the bucket's size. max_buckets bounds the rate table: when
 * it is full, buckets that have refilled are dropped; clients beyond it share one bucket. */
tb_clients *tb_clients_new(unsigned per_ip_limit, double rate, double burst, size_t max_buckets);
tb_clients *tb_clients_free(tb_clients *c);

/* Counts a connection from a; 0, or 1 (nothing counted) when a already has per_ip_limit open. */
int tb_clients_connect(tb_clients *c, const tb_client_addr *a);
/* Uncounts one connection from a (counted by tb_clients_connect). */
void tb_clients_disconnect(tb_clients *c, const tb_client_addr *a);

/* Takes one request's token from a's bucket at monotonic time now; 0, or 1 with *retry_after_s
 * (whole seconds until a token is back, at least 1) when the bucket is empty. Always 0 when the
 * table has no rate limit. */
int tb_clients_take(tb_clients *c, const tb_client_addr *a, double now, unsigned *retry_after_s);
/* Whether rate limiting is on. */
int tb_clients_rate_limited(const tb_clients *c);

#endif
