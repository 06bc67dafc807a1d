/* Option tables: each type parses into its field, ranges (open and closed bounds) refuse what
 * lies outside with the flag named, a flag shared by two groups sets both, and strays fail. */
#include <stdint.h>

#include "check.h"
#include "opt_table.h"

typedef struct conf {
    unsigned u;
    int i, on, off;
    size_t z;
    uint64_t seed;
    double share;
    const char *name;
    tb_size_list widths;
} conf;

#define F(field) offsetof(conf, field)
#define ROW(flag, arg, type, field, min, max, open) {flag, arg, type, F(field), min, max, "help", NULL, open, NULL}

static const tb_opt rows[] = {
    ROW("u", "N", TB_OPT_UINT, u, 1, 10, 0),
    ROW("i", "N", TB_OPT_INT, i, -5, 5, 0),
    ROW("z", "N", TB_OPT_SIZE, z, 0, 1e6, 0),
    ROW("seed", "N", TB_OPT_U64, seed, 0, 18446744073709551615.0, 0),
    ROW("share", "X", TB_OPT_DOUBLE, share, 0, 1, TB_OPT_MIN_OPEN),
    ROW("name", "S", TB_OPT_STRING, name, 0, 0, 0),
    ROW("on", NULL, TB_OPT_ON, on, 0, 0, 0),
    ROW("off", NULL, TB_OPT_OFF, off, 0, 0, 0),
    ROW("widths", "N,N", TB_OPT_SIZE_LIST, widths, 1, 100, 0),
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static tb_status parse(conf *c, char **argv, int argc, int *help) {
    tb_opt_group g = {NULL, rows, N_ROWS, c};
    return tb_opt_parse(argc, argv, &g, 1, help);
}

static void every_type_parses(void) {
    conf c = {.off = 1};
    char *argv[] = {"prog", "--u", "7", "--i=-3", "--z", "12", "--seed", "18446744073709551615", "--share", "0.25",
                    "--name", "x", "--on", "--off", "--widths", "4,8,2"};
    int help = 1;
    CHECK(parse(&c, argv, 16, &help) == TB_OK);
    CHECK(help == 0);
    CHECK(c.u == 7 && c.i == -3 && c.z == 12 && c.seed == UINT64_MAX);
    CHECK(c.share == 0.25 && c.on == 1 && c.off == 0);
    CHECK_STR(c.name, "x");
    CHECK(c.widths.n == 3 && c.widths.v[0] == 4 && c.widths.v[1] == 8 && c.widths.v[2] == 2);
}

static void ranges_refuse_with_the_flag_named(void) {
    conf c = {0};
    const tb_opt *u = &rows[0], *share = &rows[4], *widths = &rows[8];
    CHECK_ERR(tb_opt_set(u, &c, "0"), TB_INVALID, "--u: '0' is not an integer from 1 to 10");
    CHECK_ERR(tb_opt_set(u, &c, "11"), TB_INVALID, "from 1 to 10");
    CHECK_ERR(tb_opt_set(u, &c, "-1"), TB_INVALID, "--u");
    CHECK_ERR(tb_opt_set(u, &c, "2.5"), TB_INVALID, "--u");
    CHECK_ERR(tb_opt_set(u, &c, ""), TB_INVALID, "--u");
    CHECK(tb_opt_set(u, &c, "10") == TB_OK && c.u == 10); /* closed bound */
    CHECK_ERR(tb_opt_set(share, &c, "0"), TB_INVALID, "--share: '0' is not a number in (0, 1]"); /* open bound */
    CHECK(tb_opt_set(share, &c, "1") == TB_OK && c.share == 1.0);
    CHECK_ERR(tb_opt_set(share, &c, "nan"), TB_INVALID, "--share");
    CHECK_ERR(tb_opt_set(share, &c, "inf"), TB_INVALID, "--share");
    CHECK_ERR(tb_opt_set(widths, &c, "4,,8"), TB_INVALID, "--widths");
    CHECK_ERR(tb_opt_set(widths, &c, "4,0"), TB_INVALID, "--widths");
    CHECK_ERR(tb_opt_set(widths, &c, "1,1,1,1,1,1,1,1,1"), TB_INVALID, "1 to 8 integers");
    CHECK(c.widths.n == 0); /* a refused list leaves the field as it was */
}

static void unknown_flags_and_strays_fail(void) {
    conf c = {0};
    int help;
    char *unknown[] = {"prog", "--nope", "1"};
    CHECK_ERR(parse(&c, unknown, 3, &help), TB_INVALID, "unknown or incomplete option '--nope'");
    char *missing[] = {"prog", "--u"};
    CHECK_ERR(parse(&c, missing, 2, &help), TB_INVALID, "unknown or incomplete option");
    char *stray[] = {"prog", "--u", "3", "extra"};
    CHECK_ERR(parse(&c, stray, 4, &help), TB_INVALID, "unexpected argument 'extra'");
    char *asks[] = {"prog", "--help", "--nope"};
    CHECK(parse(&c, asks, 3, &help) == TB_OK && help == 1);
}

/* Two families reading one field each list the flag; one --flag sets the field for both. */
static void shared_flag_sets_every_group(void) {
    conf a = {0}, b = {0};
    tb_opt_group g[2] = {{"a", rows, N_ROWS, &a}, {"b", rows, 1, &b}};
    char *argv[] = {"prog", "--u", "4", "--z", "9"};
    int help;
    CHECK(tb_opt_parse(5, argv, g, 2, &help) == TB_OK);
    CHECK(a.u == 4 && b.u == 4 && a.z == 9 && b.z == 0);
}

int main(void) {
    every_type_parses();
    ranges_refuse_with_the_flag_named();
    unknown_flags_and_strays_fail();
    shared_flag_sets_every_group();
    return tb_test_done();
}
