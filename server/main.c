/* timbre-serve: loads the published models from the database and answers JSON over HTTP until
 * SIGINT or SIGTERM. SIGHUP (and, with --watch, a newly published model) reloads them off the
 * request path: a new state that loads and validates replaces the old one for new requests; one
 * that does not is logged and the old one keeps serving. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_keys.h"
#include "http.h"
#include "options.h"
#include "limits.h"
#include "log.h"
#include "slice.h"
#include "memory.h"
#include "state.h"
#include "userdb.h"

static int parse_uint(const char *flag, const char *s, unsigned long max, unsigned long *ret) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-') {
        tb_log(TB_LOG_ERROR, "%s: '%s' is not an integer from 0 to %lu", flag, s, max);
        return -1;
    }
    *ret = v;
    return 0;
}

/* "host:port" or "[v6]:port" into host (64 bytes) and port. */
static int parse_listen(const char *s, char *host, unsigned long *port) {
    const char *colon;
    size_t len;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        len = (size_t)(close - s - 1);
        if (len >= 64)
            return -1;
        memcpy(host, s + 1, len);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        len = (size_t)(colon - s);
        if (len >= 64)
            return -1;
        memcpy(host, s, len);
    }
    host[len] = '\0';
    return parse_uint("--listen port", colon + 1, 65535, port);
}

static void describe(const tb_server_state *s, const char *what) {
    char served[512] = "";
    for (int t = 0, used = 0; t < TB_N_TASKS && used < (int)sizeof served; t++) {
        const tb_served *m = s->served[t];
        used += snprintf(served + used, sizeof served - (size_t)used, "%s%s %s v%d", t ? ", " : "", tb_store_tasks[t],
                         m ? m->name : "-", m ? m->version : 0);
    }
    tb_log(TB_LOG_INFO, "%s models%s%s: %s (%zu catalog tracks)", what, s->snapshot.file[0] ? " of " : "",
           s->snapshot.file, served, s->catalog->n);
}

/* Loads and validates the database's published models off the request path, then swaps them in;
 * on any failure the current models keep serving. */
static int reload(tb_http *http, const char *db, const tb_load_options *o, const char *why) {
    tb_server_state *fresh = NULL;
    if (tb_server_state_load(db, o, &fresh) != TB_OK) {
        tb_log(TB_LOG_ERROR, "reload (%s) refused, still serving the previous models: %s", why, tb_error_message());
        tb_http_count_reload(http, 0);
        return 0;
    }
    describe(fresh, "reloaded");
    tb_http_swap_state(http, fresh);
    tb_http_count_reload(http, 1);
    return 1;
}

/* The served models' ids as tb_store_served_fingerprint writes them, and the database's now. */
typedef struct watch_check {
    char serving[256], stored[256];
    int failed;
} watch_check;

static void fingerprints(const tb_server_state *s, void *ctx) {
    watch_check *w = ctx;
    if (s->snapshot.file[0]) { /* a snapshot never changes: its directory's pointer does */
        tb_snapshot_ref now;
        w->failed = tb_snapshot_current(s->source, &now) != TB_OK;
        snprintf(w->serving, sizeof w->serving, "%s %s", s->snapshot.file, s->snapshot.sha256);
        snprintf(w->stored, sizeof w->stored, "%s %s", w->failed ? "" : now.file, w->failed ? "" : now.sha256);
        return;
    }
    /* In tb_store_tasks' order: the same formatter writes both sides. */
    int64_t ids[TB_N_TASKS];
    for (int t = 0; t < TB_N_TASKS; t++)
        ids[t] = s->served[t] ? s->served[t]->id : -1;
    w->failed = tb_store_format_fingerprint(ids, w->serving, sizeof w->serving) != TB_OK ||
                tb_store_served_fingerprint(s->store, w->stored, sizeof w->stored) != TB_OK;
}

/* Whether the database's published models differ from the ones being served and from a set that
 * already failed to load (retried only once the database changes again); fp gets the database's. */
static int newly_published(tb_http *http, const char *last_failed, char *fp) {
    watch_check now;
    tb_http_with_state(http, fingerprints, &now);
    if (now.failed) {
        tb_log(TB_LOG_WARN, "--watch: cannot read the database: %s", tb_error_message());
        return 0;
    }
    memcpy(fp, now.stored, sizeof now.stored);
    return strcmp(now.serving, fp) != 0 && strcmp(last_failed, fp) != 0;
}

int main(int argc, char **argv) {
    tb_serve_config cfg;
    int parsed = tb_serve_parse_args(argc, argv, &cfg);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    tb_http_options hopt = cfg.http;
    const char *db = cfg.db;
    unsigned long v;
    char host[64];
    if (parse_listen(cfg.listen, host, &v)) {
        tb_log(TB_LOG_ERROR, "--listen '%s': expected ADDRESS:PORT such as 127.0.0.1:8080 or [::1]:8080", cfg.listen);
        return 2;
    }
    hopt.host = host;
    hopt.port = (uint16_t)v;
    if (!cfg.slice_given && hopt.slice_us && tb_seccomp_filtered()) {
        tb_log(TB_LOG_INFO, "a seccomp filter is in place: the request threads keep the kernel's scheduler slice "
                            "(--sched-slice-us asks anyway)");
        hopt.slice_us = 0;
    }

    /* Block the signals before any thread starts so only the loop below receives them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Each request runs its BLAS calls on its own thread; a BLAS thread pool would only contend. */
    tb_index_blas_single_thread();
    tb_load_options load = {cfg.memory_budget_mb ? cfg.memory_budget_mb << 20 : tb_memory_limit(), cfg.exact_index,
                            cfg.hnsw_ef};
    tb_server_state *state = NULL;
    tb_status st = tb_server_state_load(db, &load, &state);
    if (st != TB_OK) {
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        return 1;
    }
    if (!tb_server_state_any(state))
        tb_log(TB_LOG_WARN, "%s holds no published model: /readyz answers 503 until one is trained", db);
    describe(state, "serving");
    tb_userdb *users = NULL;
    tb_api_keys *keys = NULL;
    if ((cfg.user_db && (st = tb_userdb_open(cfg.user_db, &users)) != TB_OK) ||
        (cfg.api_keys && (st = tb_api_keys_load(cfg.api_keys, &keys)) != TB_OK)) {
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        tb_server_state_free(state);
        tb_userdb_close(users);
        return 1;
    }
    hopt.userdb = users;
    hopt.api_keys = keys;
    tb_http *http = NULL;
    if ((st = tb_http_start(&hopt, state, &http)) != TB_OK) { /* the server owns state from here */
        tb_log(TB_LOG_ERROR, "cannot start: %s", tb_error_message());
        tb_userdb_close(users);
        tb_api_keys_free(keys);
        return 1;
    }
    if (cfg.port_file) {
        FILE *f = fopen(cfg.port_file, "w");
        if (!f || fprintf(f, "%u\n", tb_http_port(http)) < 0 || fclose(f) != 0) {
            tb_log(TB_LOG_ERROR, "cannot write --port-file %s", cfg.port_file);
            tb_http_stop(http);
            tb_userdb_close(users);
            tb_api_keys_free(keys);
            return 1;
        }
    }
    tb_log(TB_LOG_INFO, "listening on %s port %u with %u threads%s", host, tb_http_port(http), hopt.threads,
           cfg.watch_s ? "; watching the database for new models" : "");
    char last_failed[256] = "", fp[256];
    for (;;) {
        int sig;
        if (cfg.watch_s) {
            struct timespec wait = {(time_t)cfg.watch_s, 0};
            sig = sigtimedwait(&signals, NULL, &wait);
            if (sig < 0) {
                if (errno == EAGAIN && newly_published(http, last_failed, fp) &&
                    !reload(http, db, &load, "a newly published model"))
                    memcpy(last_failed, fp, sizeof fp);
                continue;
            }
        } else if (sigwait(&signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            reload(http, db, &load, "SIGHUP");
            continue;
        }
        tb_log(TB_LOG_INFO, "received %s: no longer listening; finishing the requests already received (at most %u s)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.drain_s);
        break;
    }
    if (!tb_http_drain(http, cfg.drain_s))
        tb_log(TB_LOG_WARN, "--drain-timeout (%u s) reached: closing the connections still open", cfg.drain_s);
    else
        tb_log(TB_LOG_INFO, "drained: every connection closed");
    tb_http_stop(http);
    tb_userdb_close(users);
    tb_api_keys_free(keys);
    return 0;
}
