/* CSV reader and table loader: RFC 4180 details, gzip, blank rows, malformed files. */
#include <stdlib.h>
#include <zlib.h>

#include "check.h"
#include "csv.h"
#include "table.h"

static void write_gz(const char *path, const char *text) {
    gzFile g = gzopen(path, "wb");
    gzputs(g, text);
    gzclose(g);
}

int main(void) {
    tb_table *t = NULL;
    CHECK(tb_table_load(tb_fixture("rfc4180.csv"), &t) == TB_OK);
    if (t) {
        CHECK(t->n_cols == 4);
        CHECK_STR(t->col_names[0], "id"); /* BOM stripped */
        CHECK(t->n_rows == 3);            /* the empty line is skipped */
        CHECK_STR(tb_table_cell(t, 0, 1), "Smith, John");
        CHECK_STR(tb_table_cell(t, 0, 3), "said \"hi\"");
        CHECK_STR(tb_table_cell(t, 1, 3), "multi\nline");
        CHECK_STR(tb_table_cell(t, 2, 1), "");
        CHECK(t->lines[0] == 2 && t->lines[1] == 4 && t->lines[2] == 6);
        CHECK(tb_table_find(t, "value") == 2 && tb_table_find(t, "nope") == -1);
    }
    tb_table_free(t);

    /* gzip is read transparently. */
    const char *gz = "/tmp/tb_test_csv.csv.gz";
    write_gz(gz, "a,b\n1,2\n,\n3,\"4\"\n");
    t = NULL;
    CHECK(tb_table_load(gz, &t) == TB_OK);
    if (t) {
        CHECK(t->n_rows == 2 && t->n_blank_rows == 1);
        CHECK_STR(tb_table_cell(t, 1, 1), "4");
    }
    tb_table_free(t);
    remove(gz);

    /* Malformed files: an error naming file and line, and no table. */
    t = NULL;
    CHECK_ERR(tb_table_load(tb_fixture("bad_quote.csv"), &t), TB_PARSE, "bad_quote.csv:2:3: quoted field 2 is never closed");
    CHECK(t == NULL);
    CHECK_ERR(tb_table_load(tb_fixture("bad_fields.csv"), &t), TB_PARSE, "bad_fields.csv:3: expected 2 fields");
    CHECK_ERR(tb_table_load("/nonexistent/x.csv", &t), TB_IO, "/nonexistent/x.csv");
    const char *bad = "/tmp/tb_test_bad.csv";
    FILE *f = fopen(bad, "w");
    fputs("a,b\n1,x\"y\"\n", f);
    fclose(f);
    CHECK_ERR(tb_table_load(bad, &t), TB_PARSE, "tb_test_bad.csv:2:4: quote inside an unquoted field");
    f = fopen(bad, "w");
    fputs("a,b\n\"1\"x,2\n", f);
    fclose(f);
    CHECK_ERR(tb_table_load(bad, &t), TB_PARSE, "unexpected character after a closing quote");
    f = fopen(bad, "w");
    fputs("a,a\n1,2\n", f);
    fclose(f);
    CHECK_ERR(tb_table_load(bad, &t), TB_PARSE, "duplicate column name 'a'");
    f = fopen(bad, "w");
    fclose(f);
    CHECK_ERR(tb_table_load(bad, &t), TB_PARSE, "empty file");
    /* A corrupt gzip stream is an error, not a short table. */
    f = fopen(bad, "wb");
    const unsigned char junk[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0x12};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    CHECK_ERR(tb_table_load(bad, &t), TB_IO, "read error");
    remove(bad);
    return tb_test_done();
}
