/* The per-client table: connection counts per address and token buckets, against counts kept
 * by hand here; X-Forwarded-For resolution behind trusted proxies. */
#include <stdio.h>

#include "check.h"
#include "clients.h"

static tb_client_addr addr(const char *text) {
    tb_client_addr a;
    int ok = tb_client_addr_parse(text, strlen(text), &a) == 0;
    CHECK(ok);
    return a;
}

/* Regression: entries went into the tree before their key was set, so with more than one client
 * lookups missed and a client's counts and bucket were split (a 6th request passed a burst of 5). */
static void test_many_clients_keep_their_own_counts(void) {
    enum { N = 300, LIMIT = 3 };
    tb_clients *c = tb_clients_new(LIMIT, 0, 0, 16);
    char text[32];
    for (int round = 0; round < LIMIT; round++)
        for (int i = 0; i < N; i++) {
            snprintf(text, sizeof text, "10.0.%d.%d", i / 256, i % 256);
            tb_client_addr a = addr(text);
            CHECK(tb_clients_connect(c, &a) == 0);
        }
    for (int i = 0; i < N; i++) { /* each at its limit: one more is refused, one less admits again */
        snprintf(text, sizeof text, "10.0.%d.%d", i / 256, i % 256);
        tb_client_addr a = addr(text);
        CHECK(tb_clients_connect(c, &a) == 1);
        tb_clients_disconnect(c, &a);
        CHECK(tb_clients_connect(c, &a) == 0);
    }
    tb_client_addr v6 = addr("2001:db8::1");
    CHECK(tb_clients_connect(c, &v6) == 0);
    tb_clients_free(c);
}

static void test_buckets_refill_at_the_rate(void) {
    tb_clients *c = tb_clients_new(0, 2, 5, 1000); /* 2 per second, burst 5 */
    unsigned retry = 0;
    char text[32];
    for (int i = 0; i < 50; i++) { /* 50 clients, each its burst of 5 at t = 100 */
        snprintf(text, sizeof text, "192.0.2.%d", i);
        tb_client_addr a = addr(text);
        for (int k = 0; k < 5; k++)
            CHECK(tb_clients_take(c, &a, 100.0, &retry) == 0);
        CHECK(tb_clients_take(c, &a, 100.0, &retry) == 1);
        CHECK(retry == 1); /* half a second to the next token: whole seconds, at least 1 */
    }
    tb_client_addr a = addr("192.0.2.7");
    CHECK(tb_clients_take(c, &a, 100.4, &retry) == 1); /* 0.8 tokens */
    CHECK(tb_clients_take(c, &a, 100.9, &retry) == 0); /* 0.8 + 1.0 → one taken */
    CHECK(tb_clients_take(c, &a, 100.9, &retry) == 1);
    CHECK(tb_clients_take(c, &a, 200.0, &retry) == 0); /* refilled, capped at the burst */
    tb_clients_free(c);
    tb_clients *off = tb_clients_new(0, 0, 0, 1);
    CHECK(!tb_clients_rate_limited(off) && tb_clients_take(off, &a, 0, &retry) == 0);
    tb_clients_free(off);
}

static void test_full_table_drops_refilled_buckets(void) {
    tb_clients *c = tb_clients_new(0, 1, 1, 2); /* room for two buckets */
    unsigned retry;
    tb_client_addr a = addr("198.51.100.1"), b = addr("198.51.100.2"), d = addr("198.51.100.3");
    CHECK(tb_clients_take(c, &a, 0, &retry) == 0);
    CHECK(tb_clients_take(c, &b, 0, &retry) == 0);
    CHECK(tb_clients_take(c, &d, 0, &retry) == 0); /* the shared overflow bucket */
    CHECK(tb_clients_take(c, &d, 0, &retry) == 1);
    CHECK(tb_clients_take(c, &d, 10, &retry) == 0); /* a and b refilled: dropped, d has its own */
    CHECK(tb_clients_take(c, &d, 10, &retry) == 1);
    CHECK(tb_clients_take(c, &a, 10, &retry) == 0);
    tb_clients_free(c);
}

static void test_forwarded_for_only_from_trusted_proxies(void) {
    tb_client_addr proxies[2] = {addr("127.0.0.1"), addr("10.0.0.5")};
    tb_client_addr peer = addr("127.0.0.1"), stranger = addr("203.0.113.9"), got;
    char text[64];
    got = tb_client_from_forwarded(&peer, "198.51.100.7", proxies, 2);
    tb_client_addr_format(&got, text, sizeof text);
    CHECK_STR(text, "198.51.100.7");
    got = tb_client_from_forwarded(&peer, "203.0.113.5, 198.51.100.7 , 10.0.0.5", proxies, 2);
    tb_client_addr_format(&got, text, sizeof text); /* rightmost that is not ours */
    CHECK_STR(text, "198.51.100.7");
    got = tb_client_from_forwarded(&stranger, "198.51.100.7", proxies, 2);
    tb_client_addr_format(&got, text, sizeof text); /* a stranger cannot pick its own key */
    CHECK_STR(text, "203.0.113.9");
    got = tb_client_from_forwarded(&peer, "not-an-address", proxies, 2);
    tb_client_addr_format(&got, text, sizeof text);
    CHECK_STR(text, "127.0.0.1");
    got = tb_client_from_forwarded(&peer, "2001:db8::7", proxies, 2);
    tb_client_addr_format(&got, text, sizeof text);
    CHECK_STR(text, "2001:db8::7");
    got = tb_client_from_forwarded(&peer, NULL, proxies, 2);
    tb_client_addr_format(&got, text, sizeof text);
    CHECK_STR(text, "127.0.0.1");
}

int main(void) {
    test_many_clients_keep_their_own_counts();
    test_buckets_refill_at_the_rate();
    test_full_table_drops_refilled_buckets();
    test_forwarded_for_only_from_trusted_proxies();
    return tb_test_done();
}
