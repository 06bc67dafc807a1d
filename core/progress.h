/* Progress reporting for long loops: a live bar on a terminal, a few plain lines otherwise. */
#ifndef TB_PROGRESS_H
#define TB_PROGRESS_H

#include <stddef.h>

/* Callback handed to library code so it can report progress without printing itself.
 * May be called from several threads at once; `done` only grows. */
typedef void (*tb_progress_fn)(void *ctx, size_t done, size_t total);

/* A bar that draws on `stderr`. Owned by the caller: tb_progress_new / tb_progress_free. */
typedef struct tb_progress tb_progress;

tb_progress *tb_progress_new(const char *label, size_t total);
/* Marks `done` units finished (thread-safe); redraws at most every 1% or on completion. */
void tb_progress_update(tb_progress *p, size_t done);
/* Adapter with the tb_progress_fn signature; ctx is a tb_progress*. */
void tb_progress_callback(void *ctx, size_t done, size_t total);
/* Finishes the line (prints the elapsed time) and frees; accepts NULL. */
tb_progress *tb_progress_free(tb_progress *p);

#endif
