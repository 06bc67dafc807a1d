/* Byte-order-explicit encoding: values are assembled byte by byte so the format is the same on
 * every host. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

void tb_writer_init(tb_writer *w) { memset(w, 0, sizeof *w); }

void tb_writer_free(tb_writer *w) {
    free(w->data);
    memset(w, 0, sizeof *w);
}

static uint8_t *reserve(tb_writer *w, size_t n) {
    if (w->failed)
        return NULL;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *p = realloc(w->data, cap);
        if (!p) {
            w->failed = 1;
            return NULL;
        }
        w->data = p;
        w->cap = cap;
    }
    uint8_t *at = w->data + w->len;
    w->len += n;
    return at;
}

void tb_write_bytes(tb_writer *w, const void *p, size_t n) {
    uint8_t *at = reserve(w, n);
    if (at && n)
        memcpy(at, p, n);
}

static void put_le(uint8_t *at, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        at[i] = (uint8_t)(v >> (8 * i));
}

static void write_le(tb_writer *w, uint64_t v, int n) {
    uint8_t *at = reserve(w, (size_t)n);
    if (at)
        put_le(at, v, n);
}

void tb_write_u8(tb_writer *w, uint8_t v) { write_le(w, v, 1); }
void tb_write_u16(tb_writer *w, uint16_t v) { write_le(w, v, 2); }
void tb_write_u32(tb_writer *w, uint32_t v) { write_le(w, v, 4); }
void tb_write_u64(tb_writer *w, uint64_t v) { write_le(w, v, 8); }
void tb_write_i32(tb_writer *w, int32_t v) { write_le(w, (uint32_t)v, 4); }

void tb_write_f32(tb_writer *w, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    write_le(w, u, 4);
}

void tb_write_f64(tb_writer *w, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    write_le(w, u, 8);
}

void tb_write_str(tb_writer *w, const char *s) {
    size_t n = strlen(s);
    tb_write_u32(w, (uint32_t)n);
    tb_write_bytes(w, s, n);
}

void tb_write_f32s(tb_writer *w, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        tb_write_f32(w, v[i]);
}

void tb_write_f64s(tb_writer *w, const double *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        tb_write_f64(w, v[i]);
}

void tb_write_i32s(tb_writer *w, const int32_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        tb_write_i32(w, v[i]);
}

size_t tb_write_len_placeholder(tb_writer *w) {
    size_t at = w->len;
    tb_write_u32(w, 0);
    return at;
}

void tb_write_patch_len(tb_writer *w, size_t at) {
    if (w->failed)
        return;
    put_le(w->data + at, (uint64_t)(w->len - at - 4), 4);
}

tb_status tb_writer_status(const tb_writer *w) {
    return w->failed ? tb_error(TB_NOMEM, "out of memory while encoding") : TB_OK;
}

void tb_reader_init(tb_reader *r, const void *data, size_t len) {
    r->data = data;
    r->len = len;
    r->pos = 0;
}

size_t tb_reader_left(const tb_reader *r) { return r->len - r->pos; }

tb_status tb_reader_expect(const tb_reader *r, size_t n, size_t size, const char *what) {
    size_t left = tb_reader_left(r);
    if (size && n > left / size)
        return tb_error(TB_CORRUPT, "truncated: need %zu x %zu bytes for %s, %zu left", n, size, what, left);
    return TB_OK;
}

tb_status tb_read_bytes(tb_reader *r, void *out, size_t n, const char *what) {
    tb_status st = tb_reader_expect(r, n, 1, what);
    if (st != TB_OK)
        return st;
    if (n)
        memcpy(out, r->data + r->pos, n);
    r->pos += n;
    return TB_OK;
}

static tb_status read_le(tb_reader *r, uint64_t *v, int n, const char *what) {
    tb_status st = tb_reader_expect(r, (size_t)n, 1, what);
    if (st != TB_OK)
        return st;
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x |= (uint64_t)r->data[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)n;
    *v = x;
    return TB_OK;
}

#define READ_INT(fn, type, nbytes)                                   \
    tb_status fn(tb_reader *r, type *v, const char *what) {          \
        uint64_t x;                                                  \
        tb_status st = read_le(r, &x, nbytes, what);                 \
        if (st == TB_OK)                                             \
            *v = (type)x;                                            \
        return st;                                                   \
    }
READ_INT(tb_read_u8, uint8_t, 1)
READ_INT(tb_read_u16, uint16_t, 2)
READ_INT(tb_read_u32, uint32_t, 4)
READ_INT(tb_read_u64, uint64_t, 8)
READ_INT(tb_read_i32, int32_t, 4)
#undef READ_INT

tb_status tb_read_f32(tb_reader *r, float *v, const char *what) {
    uint64_t x;
    tb_status st = read_le(r, &x, 4, what);
    if (st == TB_OK) {
        uint32_t u = (uint32_t)x;
        memcpy(v, &u, 4);
    }
    return st;
}

tb_status tb_read_f64(tb_reader *r, double *v, const char *what) {
    uint64_t x;
    tb_status st = read_le(r, &x, 8, what);
    if (st == TB_OK)
        memcpy(v, &x, 8);
    return st;
}

tb_status tb_read_str(tb_reader *r, char **ret, size_t max_len, const char *what) {
    uint32_t n;
    tb_status st = tb_read_u32(r, &n, what);
    if (st != TB_OK)
        return st;
    if (n > max_len)
        return tb_error(TB_CORRUPT, "%s: string of %u bytes exceeds the limit of %zu", what, n, max_len);
    if ((st = tb_reader_expect(r, n, 1, what)) != TB_OK)
        return st;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return tb_error(TB_NOMEM, "out of memory");
    memcpy(s, r->data + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    *ret = s;
    return TB_OK;
}

#define READ_ARRAY(fn, type, one)                                            \
    tb_status fn(tb_reader *r, type **ret, size_t n, const char *what) {     \
        tb_status st = tb_reader_expect(r, n, sizeof(type), what);           \
        if (st != TB_OK)                                                     \
            return st;                                                       \
        type *v = malloc((n ? n : 1) * sizeof *v);                           \
        if (!v)                                                              \
            return tb_error(TB_NOMEM, "out of memory");                      \
        for (size_t i = 0; i < n; i++)                                       \
            one(r, &v[i], what); /* cannot fail: size checked above */       \
        *ret = v;                                                            \
        return TB_OK;                                                        \
    }
READ_ARRAY(tb_read_f32s, float, tb_read_f32)
READ_ARRAY(tb_read_f64s, double, tb_read_f64)
READ_ARRAY(tb_read_i32s, int32_t, tb_read_i32)
#undef READ_ARRAY

tb_status tb_read_section(tb_reader *r, tb_reader *ret_section, const char *what) {
    uint32_t n;
    tb_status st = tb_read_u32(r, &n, what);
    if (st != TB_OK)
        return st;
    if ((st = tb_reader_expect(r, n, 1, what)) != TB_OK)
        return st;
    tb_reader_init(ret_section, r->data + r->pos, n);
    r->pos += n;
    return TB_OK;
}

tb_status tb_read_header(tb_reader *r, const char *magic, uint16_t major, const char *what, uint16_t *ret_minor) {
    char got[4];
    uint16_t maj, minor;
    size_t len = tb_reader_left(r);
    tb_status st = tb_read_bytes(r, got, 4, "magic");
    if (st != TB_OK)
        return tb_error_prefix(st, "%s of %zu bytes", what, len);
    if (memcmp(got, magic, 4) != 0)
        return tb_error(TB_CORRUPT, "%s has a wrong magic number (not a Timbre %s)", what, what);
    if ((st = tb_read_u16(r, &maj, "major version")) != TB_OK || (st = tb_read_u16(r, &minor, "minor version")) != TB_OK)
        return tb_error_prefix(st, "%s", what);
    if (maj != major)
        return tb_error(TB_VERSION, "%s format %u.%u; this binary reads format %u.x", what, maj, minor, major);
    *ret_minor = minor;
    return TB_OK;
}

tb_status tb_writer_finish(tb_writer *w, void **ret_data, size_t *ret_len) {
    tb_status st = tb_writer_status(w);
    if (st != TB_OK) {
        tb_writer_free(w);
        return st;
    }
    *ret_data = w->data;
    *ret_len = w->len;
    return TB_OK;
}
