/* Streaming RFC 4180 reader for .csv and .csv.gz (zlib reads both transparently): quoted fields
 * with commas, doubled quotes and newlines, CRLF or LF, a UTF-8 BOM, blank lines skipped. */
#ifndef TB_CSV_H
#define TB_CSV_H

#include <stddef.h>

#include "status.h"

typedef struct tb_csv_reader tb_csv_reader;

/* Opens `path`; the reader owns its buffers. Errors: TB_IO naming the file. */
tb_status tb_csv_open(const char *path, tb_csv_reader **ret_reader);
/* Reads one record. On TB_OK, *ret_fields holds *ret_n NUL-terminated fields owned by the reader,
 * valid until the next call, and *ret_line the 1-based line where the record starts.
 * Returns TB_EOF at the end, TB_PARSE with "file:line:column: ..." for malformed input. */
tb_status tb_csv_next(tb_csv_reader *r, char ***ret_fields, size_t *ret_n, size_t *ret_line);
tb_csv_reader *tb_csv_close(tb_csv_reader *r);

#endif
