/* The line is assembled in a buffer and written with one write(2): no JSON tree (cJSON prints
 * each number with sprintf and reads it back with sscanf), no stdio lock shared by the request
 * threads. With the log on, it was a fifth of the server's CPU under load; strings that need JSON
 * escaping still go through cJSON. */
#include "access_log.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct line {
    char text[4096]; /* path ≤ 200 and forwarded-for ≤ 128 bytes: at most 6× that escaped */
    size_t len;
} line;

static void put_raw(line *l, const char *s, size_t n) {
    if (l->len + n < sizeof l->text) {
        memcpy(l->text + l->len, s, n);
        l->len += n;
    }
}

#define PUT_LITERAL(l, s) put_raw((l), (s), sizeof(s) - 1)

/* s as a JSON string: copied when nothing needs escaping (paths and addresses, nearly always),
 * else printed by cJSON. */
static void put_string(line *l, const char *s) {
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    if (i == n) {
        PUT_LITERAL(l, "\"");
        put_raw(l, s, n);
        PUT_LITERAL(l, "\"");
        return;
    }
    cJSON *str = cJSON_CreateString(s);
    char *text = str ? cJSON_PrintUnformatted(str) : NULL;
    cJSON_Delete(str);
    if (text)
        put_raw(l, text, strlen(text));
    else
        PUT_LITERAL(l, "\"\"");
    free(text);
}

static void put_uint(line *l, unsigned long long v) {
    char digits[24];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_raw(l, digits + n, sizeof digits - n);
}

static void put_digits(char *out, unsigned v, int width) {
    for (int i = width - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
}

/* "2026-12-02T01:54:17.917Z" */
static void put_time(line *l, double wall) {
    time_t secs = (time_t)wall;
    struct tm tm;
    gmtime_r(&secs, &tm);
    int ms = (int)((wall - (double)secs) * 1000.0);
    char t[] = "\"0000-00-00T00:00:00.000Z\"";
    put_digits(t + 1, (unsigned)(tm.tm_year + 1900), 4);
    put_digits(t + 6, (unsigned)(tm.tm_mon + 1), 2);
    put_digits(t + 9, (unsigned)tm.tm_mday, 2);
    put_digits(t + 12, (unsigned)tm.tm_hour, 2);
    put_digits(t + 15, (unsigned)tm.tm_min, 2);
    put_digits(t + 18, (unsigned)tm.tm_sec, 2);
    put_digits(t + 21, (unsigned)(ms < 0 ? 0 : ms > 999 ? 999 : ms), 3);
    put_raw(l, t, sizeof t - 1);
}

void tb_access_log_write(const struct sockaddr *client, const tb_request *req, double us, int completed) {
    char address[INET6_ADDRSTRLEN] = "-";
    if (client && client->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)client)->sin_addr, address, sizeof address);
    else if (client && client->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)client)->sin6_addr, address, sizeof address);
    line l;
    l.len = 0;
    PUT_LITERAL(&l, "{\"time\":");
    put_time(&l, req->wall_start);
    PUT_LITERAL(&l, ",\"method\":");
    put_string(&l, req->method);
    PUT_LITERAL(&l, ",\"path\":");
    put_string(&l, req->path);
    PUT_LITERAL(&l, ",\"status\":");
    put_uint(&l, req->status);
    PUT_LITERAL(&l, ",\"bytes\":");
    put_uint(&l, strcmp(req->method, "HEAD") == 0 ? 0 : req->bytes); /* libmicrohttpd sends HEAD no body */
    PUT_LITERAL(&l, ",\"us\":");
    put_uint(&l, us > 0 ? (unsigned long long)us : 0);
    PUT_LITERAL(&l, ",\"client\":");
    put_string(&l, address);
    if (req->forwarded_for[0]) {
        PUT_LITERAL(&l, ",\"forwarded_for\":");
        put_string(&l, req->forwarded_for);
    }
    if (!completed)
        PUT_LITERAL(&l, ",\"aborted\":true");
    PUT_LITERAL(&l, "}\n");
    /* One call keeps the line whole beside the other thread's (a pipe takes up to 4 KiB at once). */
    for (size_t done = 0; done < l.len;) {
        ssize_t n = write(STDERR_FILENO, l.text + done, l.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a closed or full stderr loses the line, never the request */
        done += (size_t)n;
    }
}
