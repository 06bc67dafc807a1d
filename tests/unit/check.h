/* A minimal test harness: CHECK* record failures and go on; tb_test_done() prints
 * "N passed, N failed" and returns the exit code. Fixture paths come from TB_FIXTURES. */
#ifndef TB_TEST_CHECK_H
#define TB_TEST_CHECK_H

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static int tb_checks_passed, tb_checks_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            tb_checks_passed++;                                                      \
        } else {                                                                     \
            tb_checks_failed++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                             \
    do {                                                                                                  \
        double _a = (a), _b = (b);                                                                        \
        if (fabs(_a - _b) <= (tol) || (isnan(_a) && isnan(_b))) {                                         \
            tb_checks_passed++;                                                                           \
        } else {                                                                                          \
            tb_checks_failed++;                                                                           \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g (tol %g)\n", __FILE__, __LINE__, #a, _a, _b, \
                    (double)(tol));                                                                       \
        }                                                                                                 \
    } while (0)

#define CHECK_STR(a, b)                                                                               \
    do {                                                                                              \
        const char *_a = (a), *_b = (b);                                                              \
        if (_a && _b && strcmp(_a, _b) == 0) {                                                        \
            tb_checks_passed++;                                                                       \
        } else {                                                                                      \
            tb_checks_failed++;                                                                       \
            fprintf(stderr, "%s:%d: %s = \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,          \
                    _a ? _a : "(null)", _b ? _b : "(null)");                                          \
        }                                                                                             \
    } while (0)

/* The status is st and the thread's error message contains `needle`. */
#define CHECK_ERR(st, expected, needle)                                                                    \
    do {                                                                                                   \
        tb_status _s = (st);                                                                               \
        if (_s == (expected) && strstr(tb_error_message(), (needle))) {                                    \
            tb_checks_passed++;                                                                            \
        } else {                                                                                           \
            tb_checks_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s gave status %d \"%s\", expected %d with \"%s\"\n", __FILE__, __LINE__, \
                    #st, (int)_s, tb_error_message(), (int)(expected), (needle));                          \
        }                                                                                                  \
    } while (0)

static inline const char *tb_fixture(const char *name) {
    static char path[4096];
    const char *dir = getenv("TB_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

/* n track ids "t000000", "t000001", … (ascending), each and the array malloc'd. */
static inline char **tb_test_ids(size_t n) {
    char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "t%06zu", i);
    }
    return ids;
}

static inline int tb_test_done(void) {
    printf("%d passed, %d failed\n", tb_checks_passed, tb_checks_failed);
    return tb_checks_failed ? 1 : 0;
}

/* Removes an SQLite database file and its -wal and -shm companions (missing ones are fine). */
static inline void tb_test_remove_db(const char *path) {
    char p[512];
    remove(path);
    snprintf(p, sizeof p, "%s-wal", path);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", path);
    remove(p);
}

#endif
