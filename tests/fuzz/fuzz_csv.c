/* libFuzzer target for the CSV reader (csv.h) behind `warmbench import`.
 * Input: byte 0 picks the field limit (1..256 bytes); the rest is the file.
 * Oracle: a plain reference reader of the same rules (RFC 4180 quotes,
 * CRLF/LF/CR line ends, blank lines skipped, a leading BOM dropped, text
 * after a closing quote kept) gives the same records, fields, limits and
 * flags; wb_utf8_valid agrees with a byte-by-byte decoder. */
#include "warmbench/csv.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the reference: one record at a time over the whole input ---- */

struct ref {
    const uint8_t *p;
    size_t n, i;
    long line;
    bool after_cr;
};

struct ref_rec {
    long line;
    size_t nfields, oversize;
    int unterminated;
    char *buf;      /* fields, each NUL-terminated, kept ones only */
    size_t len, cap, kept, fstart;
    size_t flen[WB_CSV_MAX_FIELDS];
};

static void rr_put(struct ref_rec *r, size_t max, uint8_t c)
{
    if (r->kept >= WB_CSV_MAX_FIELDS)
        return;
    if (r->len - r->fstart >= max) {
        if (!r->oversize)
            r->oversize = r->nfields + 1;
        return;
    }
    if (r->len + 2 > r->cap)
        r->buf = realloc(r->buf, r->cap = r->cap * 2 + 64);
    r->buf[r->len++] = (char)c;
}

static void rr_end(struct ref_rec *r)
{
    if (r->kept < WB_CSV_MAX_FIELDS) {
        if (r->len + 1 > r->cap)
            r->buf = realloc(r->buf, r->cap = r->cap * 2 + 64);
        r->flen[r->kept++] = r->len - r->fstart;
        r->buf[r->len++] = '\0';
    }
    r->nfields++;
    r->fstart = r->len;
}

static void ref_nl(struct ref *s, uint8_t c)
{
    if (c == '\r' || !s->after_cr)
        s->line++;
    s->after_cr = c == '\r';
}

/* 1 and *r filled, or 0 at the end. */
static int ref_next(struct ref *s, size_t max, struct ref_rec *r)
{
    enum { REC, FIELD, PLAIN, QUOTED, QUOTE } st = REC;
    r->len = r->kept = r->fstart = r->nfields = r->oversize = 0;
    r->unterminated = 0;
    while (s->i < s->n) {
        uint8_t c = s->p[s->i++];
        if (st == QUOTED) {
            if (c == '"') {
                s->after_cr = false;
                st = QUOTE;
            } else {
                if (c == '\n' || c == '\r')
                    ref_nl(s, c);
                else
                    s->after_cr = false;
                rr_put(r, max, c);
            }
            continue;
        }
        if (st == QUOTE && c == '"') {
            rr_put(r, max, c);
            st = QUOTED;
            continue;
        }
        if (c == '\n' || c == '\r') {
            ref_nl(s, c);
            if (st == REC)
                continue;
            rr_end(r);
            return 1;
        }
        s->after_cr = false;
        if (st == REC)
            r->line = s->line;
        if (c == ',') {
            rr_end(r);
            st = FIELD;
        } else if (c == '"' && st != PLAIN) {
            st = QUOTED;
        } else {
            rr_put(r, max, c);
            st = PLAIN;
        }
    }
    if (st == REC)
        return 0;
    r->unterminated = st == QUOTED;
    rr_end(r);
    return 1;
}

/* ---- UTF-8, decoded one code point at a time ---- */

static bool ref_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || n - i < k)
            return false;
        if (k > 1)
            c &= 0x7F >> k;
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            c = c << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < min[k] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 1 + data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (ref_utf8(p, n) != (wb_utf8_valid((const char *)p, n) == 1))
        abort();
    FILE *f = fmemopen(n ? (void *)p : (void *)"", n, "r");
    if (!f)
        return 0;
    struct wb_csv *c = wb_csv_new(f, max);
    struct ref s = {p, n, n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0, 1, false};
    struct ref_rec want = {0};
    struct wb_csv_record got;
    for (;;) {
        int a = wb_csv_next(c, &got), b = ref_next(&s, max, &want);
        if (a != b)
            abort();
        if (a != 1)
            break;
        if (got.line != want.line || got.nfields != want.nfields || got.nkept != want.kept ||
            got.oversize != want.oversize || got.unterminated != want.unterminated)
            abort();
        const char *w = want.buf;
        for (size_t i = 0; i < got.nkept; i++) {
            if (got.len[i] != want.flen[i] || memcmp(got.field[i], w, got.len[i]) ||
                got.field[i][got.len[i]])
                abort();
            w += want.flen[i] + 1;
        }
    }
    free(want.buf);
    wb_csv_free(c);
    fclose(f);
    return 0;
}
