/* Command-line option tables: rows {flag, argument, type, field, range, help} drive getopt_long,
 * the range checks and the --help text of both binaries, so a new flag is one row. A row points
 * into a struct by offset; a group is a table with the struct it fills. */
#ifndef TB_OPT_TABLE_H
#define TB_OPT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

typedef enum tb_opt_type {
    TB_OPT_UINT,   /* unsigned */
    TB_OPT_INT,    /* int */
    TB_OPT_SIZE,   /* size_t */
    TB_OPT_U64,    /* uint64_t */
    TB_OPT_DOUBLE, /* double */
    TB_OPT_STRING, /* const char *: the argument itself */
    TB_OPT_ON,     /* no argument: sets an int field to 1 */
    TB_OPT_OFF,    /* no argument: sets an int field to 0 */
    TB_OPT_SIZE_LIST, /* tb_size_list: comma-separated counts, each in min..max */
    TB_OPT_CUSTOM, /* row->parse reads the argument (a name checked against a registry, …) */
} tb_opt_type;

#define TB_OPT_LIST_MAX 8
typedef struct tb_size_list {
    size_t n;
    size_t v[TB_OPT_LIST_MAX];
} tb_size_list;

/* Bounds of numeric rows: inclusive unless marked open. */
enum { TB_OPT_MIN_OPEN = 1, TB_OPT_MAX_OPEN = 2 };

typedef struct tb_opt {
    const char *flag; /* without the dashes: "trees" is --trees */
    const char *arg;  /* "N" in the help; NULL: the flag takes no argument */
    tb_opt_type type;
    size_t offset;    /* of the field in the group's struct */
    double min, max;  /* numeric rows: the accepted range */
    const char *help; /* '\n' starts a line indented under the first */
    /* Optional (required for TB_OPT_CUSTOM): parses arg into the group's struct in place of the
     * type's parser, e.g. to check a name against a registry; an error names the flag. */
    tb_status (*parse)(void *base, const char *arg);
    unsigned open;    /* TB_OPT_MIN_OPEN | TB_OPT_MAX_OPEN */
    const char *key;  /* the name reports give the value (NULL: not reported) */
} tb_opt;

typedef struct tb_opt_group {
    const char *title; /* heading in --help; NULL: none */
    const tb_opt *rows;
    size_t n_rows;
    void *base;        /* the struct the rows fill */
} tb_opt_group;

/* The --help lines of a group (its title, then one entry per row). */
void tb_opt_usage(FILE *f, const tb_opt_group *g);
/* Parses and range-checks one argument into the row's field. */
tb_status tb_opt_set(const tb_opt *row, void *base, const char *arg);
/* getopt_long over the groups: a flag named by several rows is set through each of them (groups
 * may share a struct and a field, e.g. the depth of several model families). -h/--help sets
 * *ret_help and stops. Errors name the flag: an unknown flag, a value out of range, a stray
 * argument. */
tb_status tb_opt_parse(int argc, char **argv, const tb_opt_group *groups, size_t n_groups, int *ret_help);

#endif
