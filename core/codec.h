/* Little-endian binary encoding for model blobs: a growable writer and a bounds-checked reader.
 * Every read checks the bytes left first, so a truncated or hostile blob is an error, never a
 * read past the end or a giant allocation. */
#ifndef TB_CODEC_H
#define TB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Owned by its creator; tb_writer_free releases the buffer unless it was taken. */
typedef struct tb_writer {
    uint8_t *data;
    size_t len, cap;
    int failed; /* sticky: set on allocation failure, checked once by tb_writer_finish */
} tb_writer;

void tb_writer_init(tb_writer *w);
void tb_writer_free(tb_writer *w);
void tb_write_bytes(tb_writer *w, const void *p, size_t n);
void tb_write_u8(tb_writer *w, uint8_t v);
void tb_write_u16(tb_writer *w, uint16_t v);
void tb_write_u32(tb_writer *w, uint32_t v);
void tb_write_u64(tb_writer *w, uint64_t v);
void tb_write_i32(tb_writer *w, int32_t v);
void tb_write_f32(tb_writer *w, float v);
void tb_write_f64(tb_writer *w, double v);
/* u32 length then the bytes (no NUL). */
void tb_write_str(tb_writer *w, const char *s);
/* Arrays of n elements, each little-endian. */
void tb_write_f32s(tb_writer *w, const float *v, size_t n);
void tb_write_f64s(tb_writer *w, const double *v, size_t n);
void tb_write_i32s(tb_writer *w, const int32_t *v, size_t n);
/* Reserves 4 bytes for a section length and returns their offset; tb_write_patch_len fills them
 * with the number of bytes written since. */
size_t tb_write_len_placeholder(tb_writer *w);
void tb_write_patch_len(tb_writer *w, size_t at);
/* TB_OK, or TB_NOMEM if any write failed. */
tb_status tb_writer_status(const tb_writer *w);
/* Hands the written bytes to the caller (who frees *ret_data), or frees them and returns the
 * writer's error. */
tb_status tb_writer_finish(tb_writer *w, void **ret_data, size_t *ret_len);

typedef struct tb_reader {
    const uint8_t *data;
    size_t len, pos;
} tb_reader;

void tb_reader_init(tb_reader *r, const void *data, size_t len);
size_t tb_reader_left(const tb_reader *r);
/* Each returns TB_CORRUPT with "truncated: need N bytes for WHAT, M left" when short. */
tb_status tb_read_bytes(tb_reader *r, void *out, size_t n, const char *what);
tb_status tb_read_u8(tb_reader *r, uint8_t *v, const char *what);
tb_status tb_read_u16(tb_reader *r, uint16_t *v, const char *what);
tb_status tb_read_u32(tb_reader *r, uint32_t *v, const char *what);
tb_status tb_read_u64(tb_reader *r, uint64_t *v, const char *what);
tb_status tb_read_i32(tb_reader *r, int32_t *v, const char *what);
tb_status tb_read_f32(tb_reader *r, float *v, const char *what);
tb_status tb_read_f64(tb_reader *r, double *v, const char *what);
/* A new NUL-terminated copy (caller frees); at most max_len bytes. */
tb_status tb_read_str(tb_reader *r, char **ret, size_t max_len, const char *what);
/* Allocates and reads n elements, after checking n * size fits in what is left. */
tb_status tb_read_f32s(tb_reader *r, float **ret, size_t n, const char *what);
tb_status tb_read_f64s(tb_reader *r, double **ret, size_t n, const char *what);
tb_status tb_read_i32s(tb_reader *r, int32_t **ret, size_t n, const char *what);
/* Checks that n elements of `size` bytes could still follow, before anything is allocated. */
tb_status tb_reader_expect(const tb_reader *r, size_t n, size_t size, const char *what);
/* A blob's header: 4-byte magic and u16 major, u16 minor. `what` names the blob in errors
 * ("model blob"): TB_CORRUPT for another magic, TB_VERSION for another major (naming both). */
tb_status tb_read_header(tb_reader *r, const char *magic, uint16_t major, const char *what, uint16_t *ret_minor);
/* Splits off a sub-reader of the next u32-length-prefixed section. */
tb_status tb_read_section(tb_reader *r, tb_reader *ret_section, const char *what);

#endif
