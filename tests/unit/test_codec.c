/* Binary codec round trips and bounds checks. */
#include <stdlib.h>

#include "check.h"
#include "codec.h"

int main(void) {
    tb_writer w;
    tb_writer_init(&w);
    tb_write_u8(&w, 0xab);
    tb_write_u16(&w, 0x1234);
    tb_write_u32(&w, 0xdeadbeef);
    tb_write_u64(&w, 0x0102030405060708ULL);
    tb_write_i32(&w, -5);
    tb_write_f32(&w, 1.5f);
    tb_write_f64(&w, -0.1);
    tb_write_str(&w, "genre");
    size_t at = tb_write_len_placeholder(&w);
    double arr[3] = {1, 2, 3};
    tb_write_f64s(&w, arr, 3);
    tb_write_patch_len(&w, at);
    CHECK(tb_writer_status(&w) == TB_OK);
    /* Little-endian on the wire, whatever the host. */
    CHECK(w.data[1] == 0x34 && w.data[2] == 0x12 && w.data[3] == 0xef && w.data[6] == 0xde);

    tb_reader r, sec;
    tb_reader_init(&r, w.data, w.len);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    float f32;
    double f64;
    char *s = NULL;
    CHECK(tb_read_u8(&r, &u8, "u8") == TB_OK && u8 == 0xab);
    CHECK(tb_read_u16(&r, &u16, "u16") == TB_OK && u16 == 0x1234);
    CHECK(tb_read_u32(&r, &u32, "u32") == TB_OK && u32 == 0xdeadbeef);
    CHECK(tb_read_u64(&r, &u64, "u64") == TB_OK && u64 == 0x0102030405060708ULL);
    CHECK(tb_read_i32(&r, &i32, "i32") == TB_OK && i32 == -5);
    CHECK(tb_read_f32(&r, &f32, "f32") == TB_OK && f32 == 1.5f);
    CHECK(tb_read_f64(&r, &f64, "f64") == TB_OK && f64 == -0.1);
    CHECK(tb_read_str(&r, &s, 64, "str") == TB_OK);
    CHECK_STR(s, "genre");
    free(s);
    CHECK(tb_read_section(&r, &sec, "section") == TB_OK && tb_reader_left(&sec) == 24);
    double *back = NULL;
    CHECK(tb_read_f64s(&sec, &back, 3, "doubles") == TB_OK && back && back[2] == 3.0);
    free(back);
    CHECK(tb_reader_left(&r) == 0);

    /* Truncation and hostile counts fail before allocating. */
    CHECK_ERR(tb_read_u32(&r, &u32, "past the end"), TB_CORRUPT, "truncated");
    tb_reader_init(&r, w.data, 3);
    CHECK_ERR(tb_read_u32(&r, &u32, "short"), TB_CORRUPT, "need");
    CHECK(r.pos == 0);
    tb_reader_init(&r, w.data, w.len);
    CHECK_ERR(tb_read_f64s(&r, &back, (size_t)1 << 60, "huge array"), TB_CORRUPT, "huge array");
    const uint8_t long_str[8] = {0xff, 0xff, 0xff, 0x7f, 'a', 'b', 'c', 'd'};
    tb_reader_init(&r, long_str, sizeof long_str);
    CHECK_ERR(tb_read_str(&r, &s, 64, "name"), TB_CORRUPT, "exceeds the limit");
    const uint8_t bad_section[6] = {0x10, 0, 0, 0, 1, 2};
    tb_reader_init(&r, bad_section, sizeof bad_section);
    CHECK_ERR(tb_read_section(&r, &sec, "section"), TB_CORRUPT, "truncated");
    tb_writer_free(&w);
    return tb_test_done();
}
