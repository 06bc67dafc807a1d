/* A table with its column roles resolved: label, id, popularity, artists, name, and the numeric
 * feature matrix (raw values, NaN for missing). Roles are detected by column name unless given. */
#ifndef TB_DATASET_H
#define TB_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "table.h"

typedef struct tb_dataset_options {
    const char *label;      /* column names overriding detection; NULL = detect */
    const char *id;
    const char *popularity;
    const char *artists;
    const char *name;
    const char *features;   /* comma-separated feature columns; NULL = the audio columns present */
    int require_label;      /* 1: a missing label column or an empty label is an error */
    int derive_year;        /* 1: add "year" from a release-date column when one exists */
} tb_dataset_options;

/* Owns its table. Immutable after load. */
typedef struct tb_dataset {
    tb_table *table;
    size_t n_rows;
    size_t n_features;
    char **feature_names;   /* n_features */
    double *X;              /* n_rows * n_features, row-major, NaN = missing */
    long col_label, col_id, col_popularity, col_artists, col_name; /* -1 when absent */
    size_t n_classes;
    char **class_names;     /* sorted, n_classes (0 without a label column) */
    int32_t *y;             /* class index per row, or NULL without labels */
    double *popularity;     /* per row, NaN = missing; NULL without the column */
} tb_dataset;

/* Loads `path` and resolves roles. Errors name file, line and column (TB_PARSE), or the missing
 * role (TB_INVALID). The feature list never contains the label, id or popularity columns. */
tb_status tb_dataset_load(const char *path, const tb_dataset_options *opt, tb_dataset **ret_dataset);
tb_dataset *tb_dataset_free(tb_dataset *ds);

/* Row id: the id column's value, or "row-N" (1-based data row) when the table has none;
 * `buf` must hold 32 bytes and is used only in that case. */
const char *tb_dataset_id(const tb_dataset *ds, size_t row, char buf[32]);
/* Text of an optional role column, "" when the column is absent. */
const char *tb_dataset_text(const tb_dataset *ds, long col, size_t row);
/* A new array (caller frees) with each row's group: rows sharing an id share a group, numbered
 * 0..*ret_n_groups-1 in order of first appearance. Splits keep a group on one side. */
tb_status tb_dataset_groups(const tb_dataset *ds, size_t **ret_group, size_t *ret_n_groups);
/* Class index of `name`, or -1. */
long tb_dataset_class_index(const tb_dataset *ds, const char *name);



/* Name of the popularity column ("popularity"), or NULL when the table has none. */
const char *tb_dataset_popularity_name(const tb_dataset *ds);
/* A new n_rows × n_names row-major matrix (caller frees) whose columns are the named features,
 * taken from the feature columns or the popularity column. TB_INVALID for an unknown name. */
tb_status tb_dataset_matrix(const tb_dataset *ds, char *const *names, size_t n_names, double **ret_X);
/* The same, but a name the table lacks becomes a column of NaN (missing everywhere); *ret_absent
 * counts such names. For labelling a file that lacks some of a model's inputs. */
tb_status tb_dataset_matrix_lenient(const tb_dataset *ds, char *const *names, size_t n_names, double **ret_X,
                                    size_t *ret_absent);
#endif
