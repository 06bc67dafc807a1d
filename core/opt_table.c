/* Option tables: see opt_table.h. */
#include "opt_table.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define HELP_COLUMN 23

void tb_opt_usage(FILE *f, const tb_opt_group *g) {
    if (g->title)
        fprintf(f, "\n%s\n", g->title);
    for (size_t i = 0; i < g->n_rows; i++) {
        const tb_opt *r = &g->rows[i];
        char head[64];
        snprintf(head, sizeof head, "  --%s%s%s", r->flag, r->arg ? " " : "", r->arg ? r->arg : "");
        fputs(head, f);
        size_t col = strlen(head);
        const char *h = r->help;
        for (int first = 1; *h; first = 0) {
            const char *nl = strchr(h, '\n');
            size_t n = nl ? (size_t)(nl - h) : strlen(h);
            size_t pad = first ? (col + 2 <= HELP_COLUMN ? HELP_COLUMN - col : 2) : HELP_COLUMN;
            if (!first)
                fputc('\n', f);
            fprintf(f, "%*s%.*s", (int)pad, "", (int)n, h);
            h += n + (nl != NULL);
        }
        fputc('\n', f);
    }
}

static int in_range(const tb_opt *r, double v) {
    int low = r->open & TB_OPT_MIN_OPEN ? v > r->min : v >= r->min;
    int high = r->open & TB_OPT_MAX_OPEN ? v < r->max : v <= r->max;
    return low && high;
}

static tb_status range_error(const tb_opt *r, const char *arg, int integral) {
    if (integral)
        return tb_error_with_field(TB_INVALID, r->flag, "--%s: '%s' is not an integer from %.0f to %.0f", r->flag, arg,
                                   r->min, r->max);
    return tb_error_with_field(TB_INVALID, r->flag, "--%s: '%s' is not a number in %c%g, %g%c", r->flag, arg,
                               r->open & TB_OPT_MIN_OPEN ? '(' : '[', r->min, r->max,
                               r->open & TB_OPT_MAX_OPEN ? ')' : ']');
}

static tb_status set_integer(const tb_opt *r, char *field, const char *arg) {
    char *end;
    errno = 0;
    if (r->type == TB_OPT_INT) {
        long long v = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || !in_range(r, (double)v))
            return range_error(r, arg, 1);
        *(int *)field = (int)v;
        return TB_OK;
    }
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || strchr(arg, '-') || !in_range(r, (double)v))
        return range_error(r, arg, 1);
    if (r->type == TB_OPT_UINT)
        *(unsigned *)field = (unsigned)v;
    else if (r->type == TB_OPT_SIZE)
        *(size_t *)field = (size_t)v;
    else
        *(uint64_t *)field = (uint64_t)v;
    return TB_OK;
}

static tb_status set_list(const tb_opt *r, tb_size_list *list, const char *arg) {
    tb_size_list parsed = {0};
    for (const char *s = arg;;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-' || (*end && *end != ',') || !in_range(r, (double)v) ||
            parsed.n == TB_OPT_LIST_MAX)
            return tb_error_with_field(TB_INVALID, r->flag,
                                       "--%s: '%s' is not 1 to %d integers from %.0f to %.0f, comma-separated", r->flag,
                                       arg, TB_OPT_LIST_MAX, r->min, r->max);
        parsed.v[parsed.n++] = (size_t)v;
        if (!*end)
            break;
        s = end + 1;
    }
    *list = parsed;
    return TB_OK;
}

tb_status tb_opt_set(const tb_opt *r, void *base, const char *arg) {
    char *field = (char *)base + r->offset;
    if (r->parse) /* a row's own parser (its type still says what the field holds) */
        return r->parse(base, arg);
    switch (r->type) {
    case TB_OPT_UINT:
    case TB_OPT_INT:
    case TB_OPT_SIZE:
    case TB_OPT_U64: return set_integer(r, field, arg);
    case TB_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        if (errno || end == arg || *end || !isfinite(v) || !in_range(r, v))
            return range_error(r, arg, 0);
        *(double *)field = v;
        return TB_OK;
    }
    case TB_OPT_STRING: *(const char **)field = arg; return TB_OK;
    case TB_OPT_ON: *(int *)field = 1; return TB_OK;
    case TB_OPT_OFF: *(int *)field = 0; return TB_OK;
    case TB_OPT_SIZE_LIST: return set_list(r, (tb_size_list *)field, arg);
    case TB_OPT_CUSTOM: break;
    }
    return tb_error(TB_INTERNAL, "--%s: unknown option type", r->flag);
}

/* The first row named `flag` in groups (its argument form is the flag's). */
static const tb_opt *first_row(const tb_opt_group *groups, size_t n_groups, const char *flag) {
    for (size_t g = 0; g < n_groups; g++)
        for (size_t i = 0; i < groups[g].n_rows; i++)
            if (strcmp(groups[g].rows[i].flag, flag) == 0)
                return &groups[g].rows[i];
    return NULL;
}

static tb_status set_every(const tb_opt_group *groups, size_t n_groups, const char *flag, const char *arg) {
    for (size_t g = 0; g < n_groups; g++)
        for (size_t i = 0; i < groups[g].n_rows; i++) {
            tb_status st;
            if (strcmp(groups[g].rows[i].flag, flag) == 0 &&
                (st = tb_opt_set(&groups[g].rows[i], groups[g].base, arg)) != TB_OK)
                return st;
        }
    return TB_OK;
}

tb_status tb_opt_parse(int argc, char **argv, const tb_opt_group *groups, size_t n_groups, int *ret_help) {
    size_t total = 0, n = 0;
    for (size_t g = 0; g < n_groups; g++)
        total += groups[g].n_rows;
    struct option *opts = tb_calloc_n(total + 2, sizeof *opts);
    if (!opts)
        return tb_error(TB_NOMEM, "out of memory");
    for (size_t g = 0; g < n_groups; g++)
        for (size_t i = 0; i < groups[g].n_rows; i++) {
            const tb_opt *r = &groups[g].rows[i];
            if (first_row(groups, n_groups, r->flag) == r) { /* one getopt entry per flag */
                opts[n] = (struct option){r->flag, r->arg ? required_argument : no_argument, 0, (int)(256 + n)};
                n++;
            }
        }
    opts[n] = (struct option){"help", no_argument, 0, 'h'};
    *ret_help = 0;
    opterr = 0;
    optind = 1;
    tb_status st = TB_OK;
    int o;
    while (st == TB_OK && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            *ret_help = 1;
            break;
        }
        if (o < 256 || o >= 256 + (int)n) /* n: the flags before help */
            st = tb_error(TB_INVALID, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        else
            st = set_every(groups, n_groups, opts[o - 256].name, optarg);
    }
    if (st == TB_OK && !*ret_help && optind < argc)
        st = tb_error(TB_INVALID, "unexpected argument '%s' (see --help)", argv[optind]);
    free(opts);
    return st;
}
