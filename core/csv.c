/* CSV tokenizer: a byte-at-a-time state machine over gzread chunks, so files of any size stream
 * through a fixed buffer and only the current record is held. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CSV_CHUNK (1 << 16)
#define CSV_MAX_RECORD (1 << 24) /* a single record over 16 MiB is certainly not audio features */

struct tb_csv_reader {
    gzFile gz;
    char *path;
    unsigned char buf[CSV_CHUNK];
    size_t buf_len, buf_pos;
    int eof;
    size_t line;      /* current physical line, 1-based */
    size_t col;       /* current byte column on that line, 1-based */
    int first_bytes;  /* still at file start: strip a BOM */
    size_t quote_line, quote_col; /* where the open quoted field started */
    char *rec;        /* record bytes, fields separated by NULs */
    size_t rec_len, rec_cap;
    size_t *starts;   /* offset of each field in rec */
    char **fields;
    size_t n_fields, fields_cap;
};

tb_status tb_csv_open(const char *path, tb_csv_reader **ret_reader) {
    tb_csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return tb_error(TB_NOMEM, "out of memory opening %s", path);
    r->path = strdup(path);
    r->gz = gzopen(path, "rb");
    if (!r->path || !r->gz) {
        tb_csv_close(r);
        return tb_error(TB_IO, "%s: cannot open for reading", path);
    }
    gzbuffer(r->gz, CSV_CHUNK);
    r->line = 1;
    r->col = 1;
    r->first_bytes = 1;
    *ret_reader = r;
    return TB_OK;
}

tb_csv_reader *tb_csv_close(tb_csv_reader *r) {
    if (!r)
        return NULL;
    if (r->gz)
        gzclose(r->gz);
    free(r->path);
    free(r->rec);
    free(r->starts);
    free(r->fields);
    free(r);
    return NULL;
}

/* Next byte, or -1 at end of input; -2 on a read error. */
static int next_byte(tb_csv_reader *r) {
    if (r->buf_pos == r->buf_len) {
        if (r->eof)
            return -1;
        int n = gzread(r->gz, r->buf, CSV_CHUNK);
        if (n < 0)
            return -2;
        if (n == 0) {
            r->eof = 1;
            return -1;
        }
        r->buf_len = (size_t)n;
        r->buf_pos = 0;
        if (r->first_bytes) {
            r->first_bytes = 0;
            if (r->buf_len >= 3 && r->buf[0] == 0xEF && r->buf[1] == 0xBB && r->buf[2] == 0xBF)
                r->buf_pos = 3;
            if (r->buf_pos == r->buf_len)
                return next_byte(r);
        }
    }
    return r->buf[r->buf_pos++];
}

static int peek_byte(tb_csv_reader *r) {
    int c = next_byte(r);
    if (c >= 0)
        r->buf_pos--; /* the byte is still in buf: refill only happens when buf_pos == buf_len */
    return c;
}

static tb_status push_char(tb_csv_reader *r, char c) {
    if (r->rec_len + 1 >= r->rec_cap) {
        if (r->rec_cap >= CSV_MAX_RECORD)
            return tb_error(TB_LIMIT, "%s:%zu: record longer than %d bytes", r->path, r->line,
                            CSV_MAX_RECORD);
        size_t cap = r->rec_cap ? r->rec_cap * 2 : 1024;
        char *p = realloc(r->rec, cap);
        if (!p)
            return tb_error(TB_NOMEM, "out of memory reading %s", r->path);
        r->rec = p;
        r->rec_cap = cap;
    }
    r->rec[r->rec_len++] = c;
    return TB_OK;
}

static tb_status start_field(tb_csv_reader *r) {
    if (r->n_fields == r->fields_cap) {
        size_t cap = r->fields_cap ? r->fields_cap * 2 : 32;
        size_t *s = realloc(r->starts, cap * sizeof *s);
        if (!s)
            return tb_error(TB_NOMEM, "out of memory reading %s", r->path);
        r->starts = s;
        char **f = realloc(r->fields, cap * sizeof *f);
        if (!f)
            return tb_error(TB_NOMEM, "out of memory reading %s", r->path);
        r->fields = f;
        r->fields_cap = cap;
    }
    r->starts[r->n_fields++] = r->rec_len;
    return TB_OK;
}

tb_status tb_csv_next(tb_csv_reader *r, char ***ret_fields, size_t *ret_n, size_t *ret_line) {
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } state;
    tb_status st;
    for (;;) { /* loop skips blank lines */
        r->rec_len = 0;
        r->n_fields = 0;
        size_t start_line = r->line;
        int c = next_byte(r);
        if (c == -2)
            return tb_error(TB_IO, "%s:%zu: read error (truncated or corrupt gzip?)", r->path, r->line);
        if (c == -1)
            return TB_EOF;
        if (c == '\n' || c == '\r') {
            if (c == '\r' && peek_byte(r) == '\n')
                next_byte(r);
            r->line++;
            r->col = 1;
            continue;
        }
        state = FIELD_START;
        if ((st = start_field(r)) != TB_OK)
            return st;
        for (;;) {
            if (c == -2)
                return tb_error(TB_IO, "%s:%zu: read error (truncated or corrupt gzip?)", r->path, r->line);
            int end_of_record = 0;
            switch (state) {
            case FIELD_START:
            case UNQUOTED:
                if (c == -1 || c == '\n' || c == '\r') {
                    end_of_record = 1;
                } else if (c == ',') {
                    if ((st = push_char(r, '\0')) != TB_OK || (st = start_field(r)) != TB_OK)
                        return st;
                    state = FIELD_START;
                } else if (c == '"') {
                    if (state == UNQUOTED)
                        return tb_error(TB_PARSE, "%s:%zu:%zu: quote inside an unquoted field (field %zu)",
                                        r->path, r->line, r->col, r->n_fields);
                    state = QUOTED;
                    r->quote_line = r->line;
                    r->quote_col = r->col;
                } else {
                    if ((st = push_char(r, (char)c)) != TB_OK)
                        return st;
                    state = UNQUOTED;
                }
                break;
            case QUOTED:
                if (c == -1)
                    return tb_error(TB_PARSE, "%s:%zu:%zu: quoted field %zu is never closed (end of file reached)",
                                    r->path, r->quote_line, r->quote_col, r->n_fields);
                if (c == '"') {
                    state = QUOTE_IN_QUOTED;
                } else {
                    if (c == '\n') {
                        r->line++;
                        r->col = 0;
                    }
                    if ((st = push_char(r, (char)c)) != TB_OK)
                        return st;
                }
                break;
            case QUOTE_IN_QUOTED:
                if (c == '"') {
                    if ((st = push_char(r, '"')) != TB_OK)
                        return st;
                    state = QUOTED;
                } else if (c == ',') {
                    if ((st = push_char(r, '\0')) != TB_OK || (st = start_field(r)) != TB_OK)
                        return st;
                    state = FIELD_START;
                } else if (c == -1 || c == '\n' || c == '\r') {
                    end_of_record = 1;
                } else {
                    return tb_error(TB_PARSE, "%s:%zu:%zu: unexpected character after a closing quote (field %zu)",
                                    r->path, r->line, r->col, r->n_fields);
                }
                break;
            }
            if (end_of_record) {
                if (c == '\r' && peek_byte(r) == '\n')
                    next_byte(r);
                if (c != -1) {
                    r->line++;
                    r->col = 1;
                }
                break;
            }
            r->col++;
            c = next_byte(r);
        }
        if ((st = push_char(r, '\0')) != TB_OK)
            return st;
        for (size_t i = 0; i < r->n_fields; i++)
            r->fields[i] = r->rec + r->starts[i];
        *ret_fields = r->fields;
        *ret_n = r->n_fields;
        *ret_line = start_line;
        return TB_OK;
    }
}
