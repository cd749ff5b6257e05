/* Streaming RFC 4180 CSV reader (see csv.h). A byte-level state machine
 * over a large input buffer; runs of ordinary bytes are copied in bulk. */
#include "warmbench/csv.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/util.h"

#define CSV_CHUNK (1u << 20)

enum csv_state {
    ST_RECORD,   /* before the first byte of a record */
    ST_FIELD,    /* before the first byte of a later field */
    ST_PLAIN,    /* inside an unquoted field */
    ST_QUOTED,   /* inside a quoted field */
    ST_QUOTE,    /* just after a quote inside a quoted field */
};

struct wb_csv {
    FILE *f;
    size_t max_field;
    char *in;
    size_t in_len, in_pos;
    int eof, started;
    long line;          /* physical line of the next byte */
    int after_cr;       /* the last byte was a CR: a following LF ends no new line */
    /* The record being built: field bytes, each NUL-terminated. */
    char *bytes;
    size_t nbytes, cap;
    size_t field_start; /* offset of the current field in bytes */
    size_t *starts;     /* offsets of kept fields */
    size_t nfields, nkept;
    size_t oversize;
    long rec_line;
    /* Handed out through wb_csv_record. */
    char *field[WB_CSV_MAX_FIELDS];
    size_t len[WB_CSV_MAX_FIELDS];
};

struct wb_csv *wb_csv_new(FILE *f, size_t max_field)
{
    struct wb_csv *r = wb_xcalloc(1, sizeof *r);
    r->f = f;
    r->max_field = max_field;
    r->in = wb_xmalloc(CSV_CHUNK);
    r->line = 1;
    r->cap = 4096;
    r->bytes = wb_xmalloc(r->cap);
    r->starts = wb_xmalloc(WB_CSV_MAX_FIELDS * sizeof *r->starts);
    return r;
}

void wb_csv_free(struct wb_csv *r)
{
    if (!r)
        return;
    free(r->in);
    free(r->bytes);
    free(r->starts);
    free(r);
}

/* Refills the input buffer; 1 when bytes are available, 0 at EOF, -1 on error. */
static int csv_fill(struct wb_csv *r)
{
    if (r->in_pos < r->in_len)
        return 1;
    if (r->eof)
        return 0;
    r->in_len = fread(r->in, 1, CSV_CHUNK, r->f);
    r->in_pos = 0;
    if (r->in_len < CSV_CHUNK) {
        if (ferror(r->f))
            return -1;
        r->eof = 1;
    }
    if (!r->started) {
        r->started = 1;
        /* A BOM is an encoding mark, not part of the first column's name. */
        if (r->in_len >= 3 && memcmp(r->in, "\xEF\xBB\xBF", 3) == 0)
            r->in_pos = 3;
    }
    return r->in_pos < r->in_len;
}

/* Appends to the current field, keeping at most max_field bytes of it and
 * nothing of fields past WB_CSV_MAX_FIELDS. */
static void csv_put(struct wb_csv *r, const char *p, size_t n)
{
    if (r->nkept >= WB_CSV_MAX_FIELDS)
        return;
    size_t have = r->nbytes - r->field_start;
    if (have + n > r->max_field) {
        if (!r->oversize)
            r->oversize = r->nfields + 1;
        n = have < r->max_field ? r->max_field - have : 0;
    }
    if (r->nbytes + n + 1 > r->cap) {
        while (r->nbytes + n + 1 > r->cap)
            r->cap *= 2;
        r->bytes = wb_xrealloc(r->bytes, r->cap);
    }
    memcpy(r->bytes + r->nbytes, p, n);
    r->nbytes += n;
}

static void csv_end_field(struct wb_csv *r)
{
    if (r->nkept < WB_CSV_MAX_FIELDS) {
        csv_put(r, "", 0);
        r->bytes[r->nbytes++] = '\0';
        r->starts[r->nkept++] = r->field_start;
    }
    r->nfields++;
    r->field_start = r->nbytes;
}

static void csv_begin_record(struct wb_csv *r)
{
    r->nbytes = r->field_start = 0;
    r->nfields = r->nkept = 0;
    r->oversize = 0;
    r->rec_line = r->line;
}

static void csv_emit(struct wb_csv *r, struct wb_csv_record *rec, int unterminated)
{
    csv_end_field(r);
    for (size_t i = 0; i < r->nkept; i++) {
        r->field[i] = r->bytes + r->starts[i];
        size_t next = i + 1 < r->nkept ? r->starts[i + 1] : r->nbytes;
        r->len[i] = next - r->starts[i] - 1;
    }
    rec->line = r->rec_line;
    rec->nfields = r->nfields;
    rec->nkept = r->nkept;
    rec->field = r->field;
    rec->len = r->len;
    rec->oversize = r->oversize;
    rec->unterminated = unterminated;
}

/* Counts a line break byte: CR, or LF not preceded by CR. */
static void csv_count_line(struct wb_csv *r, char c)
{
    if (c == '\r' || !r->after_cr)
        r->line++;
    r->after_cr = c == '\r';
}

/* Length of the run of bytes that need no state change in an unquoted field. */
static size_t csv_plain_run(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r')
        i++;
    return i;
}

/* Same inside quotes, counting the line breaks it passes. */
static size_t csv_quoted_run(struct wb_csv *r, const char *p, size_t n)
{
    size_t i = 0;
    for (; i < n && p[i] != '"'; i++) {
        if (p[i] == '\n' || p[i] == '\r')
            csv_count_line(r, p[i]);
        else
            r->after_cr = 0;
    }
    return i;
}

/* Handles one byte that ends a field or record, or opens quotes. Returns 1
 * when a record is complete. */
static int csv_step(struct wb_csv *r, enum csv_state *st, char c)
{
    if (c == '\n' || c == '\r') {
        csv_count_line(r, c);
        if (*st == ST_RECORD)
            return 0; /* blank line, or the LF of a CRLF */
        *st = ST_RECORD;
        return 1;
    }
    r->after_cr = 0;
    if (*st == ST_RECORD)
        csv_begin_record(r);
    if (c == ',') {
        csv_end_field(r);
        *st = ST_FIELD;
    } else if (c == '"' && *st != ST_PLAIN) {
        *st = ST_QUOTED;
    } else {
        /* Text after a closing quote, or a quote inside an unquoted field,
         * is kept as written, as most producers mean it. */
        csv_put(r, &c, 1);
        *st = ST_PLAIN;
    }
    return 0;
}

int wb_csv_next(struct wb_csv *r, struct wb_csv_record *rec)
{
    enum csv_state st = ST_RECORD;
    for (;;) {
        int f = csv_fill(r);
        if (f < 0)
            return -1;
        if (f == 0)
            break;
        const char *p = r->in + r->in_pos;
        size_t n = r->in_len - r->in_pos, k;
        if (st == ST_PLAIN && (k = csv_plain_run(p, n)) > 0) {
            csv_put(r, p, k);
            r->in_pos += k;
            continue;
        }
        if (st == ST_QUOTED) {
            k = csv_quoted_run(r, p, n);
            csv_put(r, p, k);
            r->in_pos += k;
            if (k < n) {
                r->in_pos++;
                r->after_cr = 0;
                st = ST_QUOTE;
            }
            continue;
        }
        r->in_pos++;
        if (st == ST_QUOTE && p[0] == '"') {
            /* "" inside quotes is one literal quote. */
            csv_put(r, "\"", 1);
            st = ST_QUOTED;
            continue;
        }
        if (csv_step(r, &st, p[0])) {
            csv_emit(r, rec, 0);
            return 1;
        }
    }
    if (st == ST_RECORD)
        return 0;
    /* The last record had no line end; an open quote makes it an error. */
    csv_emit(r, rec, st == ST_QUOTED);
    return 1;
}

/* Bytes a UTF-8 sequence starting with lead b takes, 0 when b cannot lead. */
static int csv_seq_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

int wb_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        /* Most CSV text is ASCII: skip it eight bytes at a time. */
        if (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & 0x8080808080808080ull)) {
                p += 8;
                continue;
            }
        }
        int k = csv_seq_len(*p);
        if (k == 0 || end - p < k)
            return 0;
        for (int i = 1; i < k; i++)
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        /* Overlong 3- and 4-byte forms, surrogates, and above U+10FFFF. */
        if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
            (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
            return 0;
        p += k;
    }
    return 1;
}
