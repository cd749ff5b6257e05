/* Streaming RFC 4180 CSV reader: quoted fields with "" escapes, commas and
 * line breaks inside quotes, CRLF or LF (or lone CR) line ends, a leading
 * UTF-8 BOM skipped. Reads its input in large chunks. Hostile input is
 * reported on the record, never crashed on: an unterminated quote, an
 * oversize field, too many fields. Entirely blank lines are skipped. */
#ifndef WB_CSV_H
#define WB_CSV_H
#include <stddef.h>
#include <stdio.h>

/* Fields beyond this many are counted but not kept. */
#define WB_CSV_MAX_FIELDS 1024

struct wb_csv;

struct wb_csv_record {
    long line;          /* physical line (1-based) where the record starts */
    size_t nfields;     /* fields in the record, kept or not */
    size_t nkept;       /* fields available in field[]/len[] */
    char **field;       /* NUL-terminated; valid until the next call */
    size_t *len;
    size_t oversize;    /* 1-based index of the first field over the limit, else 0;
                           that field is truncated to the limit */
    int unterminated;   /* a quoted field was still open at end of input */
};

/* Reads from f (not closed by wb_csv_free); fields longer than max_field
 * bytes are flagged. */
struct wb_csv *wb_csv_new(FILE *f, size_t max_field);
void wb_csv_free(struct wb_csv *r);
/* Reads the next record into rec: 1 when there is one, 0 at end of input,
 * -1 on a read error (errno set). */
int wb_csv_next(struct wb_csv *r, struct wb_csv_record *rec);

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF), else 0. */
int wb_utf8_valid(const char *s, size_t n);

#endif
