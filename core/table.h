/* An in-memory CSV table of strings: the header, then every data row, loaded completely or not at
 * all. Rows whose fields are all empty (music_genre's blank rows) are dropped and counted. */
#ifndef TB_TABLE_H
#define TB_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Owned by the caller of tb_table_load; free with tb_table_free. Immutable after load. */
typedef struct tb_table {
    char *path;
    size_t n_cols, n_rows;
    char **col_names;      /* n_cols names; an unnamed column (pandas' index) is "" */
    char *arena;           /* every cell, NUL-terminated */
    uint32_t *cells;       /* n_rows * n_cols offsets into arena */
    uint32_t *lines;       /* source line of each row, for error messages */
    size_t n_blank_rows;   /* all-empty rows skipped */
} tb_table;

/* Loads a .csv or .csv.gz. Errors name the file and line: TB_IO, TB_PARSE (malformed quoting,
 * a row with the wrong number of fields, a duplicate column name), TB_LIMIT (over 4 GiB). */
tb_status tb_table_load(const char *path, tb_table **ret_table);
tb_table *tb_table_free(tb_table *t);

static inline const char *tb_table_cell(const tb_table *t, size_t row, size_t col) {
    return t->arena + t->cells[row * t->n_cols + col];
}
/* Index of the column named `name` (exact match), or -1. */
long tb_table_find(const tb_table *t, const char *name);

#endif
