/* Loads a whole CSV into one string arena with per-cell offsets (compact: two allocations for
 * the cells regardless of row count). */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "csv.h"

typedef struct growbuf {
    void *data;
    size_t len, cap, elem;
} growbuf;

static int grow_reserve(growbuf *g, size_t extra) {
    if (g->len + extra <= g->cap)
        return 0;
    size_t cap = g->cap ? g->cap : 4096;
    while (cap < g->len + extra)
        cap *= 2;
    void *p = realloc(g->data, cap * g->elem);
    if (!p)
        return -1;
    g->data = p;
    g->cap = cap;
    return 0;
}

tb_table *tb_table_free(tb_table *t) {
    if (!t)
        return NULL;
    if (t->col_names) {
        for (size_t i = 0; i < t->n_cols; i++)
            free(t->col_names[i]);
        free(t->col_names);
    }
    free(t->path);
    free(t->arena);
    free(t->cells);
    free(t->lines);
    free(t);
    return NULL;
}

long tb_table_find(const tb_table *t, const char *name) {
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->col_names[i], name) == 0)
            return (long)i;
    return -1;
}

tb_status tb_table_load(const char *path, tb_table **ret_table) {
    tb_csv_reader *r = NULL;
    tb_status st = tb_csv_open(path, &r);
    if (st != TB_OK)
        return st;
    tb_table *t = calloc(1, sizeof *t);
    growbuf arena = {.elem = 1}, cells = {.elem = sizeof(uint32_t)}, lines = {.elem = sizeof(uint32_t)};
    char **fields;
    size_t n, line;
    if (!t || !(t->path = strdup(path))) {
        st = tb_error(TB_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    st = tb_csv_next(r, &fields, &n, &line);
    if (st == TB_EOF) {
        st = tb_error(TB_PARSE, "%s: empty file, expected a header row", path);
        goto fail;
    }
    if (st != TB_OK)
        goto fail;
    t->n_cols = n;
    t->col_names = calloc(n, sizeof *t->col_names);
    if (!t->col_names) {
        st = tb_error(TB_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(fields[i], fields[j]) == 0) {
                st = tb_error(TB_PARSE, "%s:%zu: column %zu: duplicate column name '%s'", path, line, i + 1,
                              fields[i]);
                goto fail;
            }
        }
        if (!(t->col_names[i] = strdup(fields[i]))) {
            st = tb_error(TB_NOMEM, "out of memory loading %s", path);
            goto fail;
        }
    }
    for (;;) {
        st = tb_csv_next(r, &fields, &n, &line);
        if (st == TB_EOF)
            break;
        if (st != TB_OK)
            goto fail;
        int all_empty = 1;
        for (size_t i = 0; i < n && all_empty; i++)
            all_empty = fields[i][0] == '\0';
        if (all_empty) {
            t->n_blank_rows++;
            continue;
        }
        if (n != t->n_cols) {
            st = tb_error(TB_PARSE, "%s:%zu: expected %zu fields as in the header, found %zu", path, line,
                          t->n_cols, n);
            goto fail;
        }
        if (grow_reserve(&cells, n) || grow_reserve(&lines, 1)) {
            st = tb_error(TB_NOMEM, "out of memory loading %s", path);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(fields[i]) + 1;
            if (arena.len + len > UINT32_MAX) {
                st = tb_error(TB_LIMIT, "%s:%zu: file holds more than 4 GiB of text", path, line);
                goto fail;
            }
            if (grow_reserve(&arena, len)) {
                st = tb_error(TB_NOMEM, "out of memory loading %s", path);
                goto fail;
            }
            ((uint32_t *)cells.data)[cells.len++] = (uint32_t)arena.len;
            memcpy((char *)arena.data + arena.len, fields[i], len);
            arena.len += len;
        }
        ((uint32_t *)lines.data)[lines.len++] = (uint32_t)line;
        t->n_rows++;
    }
    tb_csv_close(r);
    if (!arena.data && grow_reserve(&arena, 1) == 0)
        ((char *)arena.data)[arena.len++] = '\0';
    t->arena = arena.data;
    t->cells = cells.data;
    t->lines = lines.data;
    *ret_table = t;
    return TB_OK;
fail:
    tb_csv_close(r);
    free(arena.data);
    free(cells.data);
    free(lines.data);
    tb_table_free(t);
    return st;
}
