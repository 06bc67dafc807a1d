/* Progress bar: redraws in place on a TTY, prints every 25% otherwise so CI logs stay short. */
#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

struct tb_progress {
    char label[64];
    size_t total;
    size_t shown;      /* last `done` value drawn */
    int tty;
    int last_quarter;  /* plain mode: last 25% step printed */
    double start;
    pthread_mutex_t lock;
};

tb_progress *tb_progress_new(const char *label, size_t total) {
    tb_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total ? total : 1;
    p->tty = isatty(STDERR_FILENO);
    p->last_quarter = -1;
    p->start = tb_now_seconds();
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void draw(tb_progress *p, size_t done) {
    double frac = (double)done / (double)p->total;
    if (frac > 1.0)
        frac = 1.0;
    if (p->tty) {
        char bar[31];
        int filled = (int)(frac * 30.0);
        memset(bar, '#', (size_t)filled);
        memset(bar + filled, '.', (size_t)(30 - filled));
        bar[30] = '\0';
        fprintf(stderr, "\r%-24s [%s] %3d%% %zu/%zu %.1fs", p->label, bar, (int)(frac * 100.0), done,
                p->total, tb_now_seconds() - p->start);
        fflush(stderr);
    } else {
        int quarter = (int)(frac * 4.0);
        if (quarter > p->last_quarter) {
            p->last_quarter = quarter;
            fprintf(stderr, "%s: %d%% (%zu/%zu) %.1fs\n", p->label, quarter * 25, done, p->total,
                    tb_now_seconds() - p->start);
        }
    }
}

void tb_progress_update(tb_progress *p, size_t done) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    size_t step = p->total / 100 ? p->total / 100 : 1;
    if (done >= p->shown + step || done == p->total || p->shown == 0) {
        if (done > p->shown || p->shown == 0)
            p->shown = done;
        draw(p, p->shown);
    }
    pthread_mutex_unlock(&p->lock);
}

void tb_progress_callback(void *ctx, size_t done, size_t total) {
    (void)total;
    tb_progress_update(ctx, done);
}

tb_progress *tb_progress_free(tb_progress *p) {
    if (!p)
        return NULL;
    if (p->tty)
        fprintf(stderr, "\n");
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
}
