/* CSV import (see import.h). The C side parses, checks what SQL cannot
 * see (shape, encoding, size), splits the ;-lists and flags addresses that
 * may repeat, and streams rows with COPY into a temp staging table. SQL
 * then finds the odd rows (rejected or repeated) in one pass and stores
 * the rest in two more (an UPDATE of the addresses already stored, an
 * INSERT of the others), so a million rows cost a few passes, not a
 * million round trips. */
#include "warmbench/import.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "warmbench/buf.h"
#include "warmbench/csv.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"

/* COPY data is sent in batches of about this size: one CopyData message
 * per row would cost a syscall-sized overhead each. */
#define COPY_BATCH (64 * 1024)

/* Known columns, in staging-table order; anything else goes to attrs. */
static const char *const std_cols[] = {
    "email", "first_name", "last_name", "title", "company", "location",
    "timezone", "tags", "skills", "consent", "source", "added_at",
};
#define N_STD (sizeof std_cols / sizeof std_cols[0])
enum { COL_EMAIL = 0, COL_TAGS = 7, COL_SKILLS = 8, COL_ADDED_AT = 11 };

/* One line, one @, no spaces, controls or address punctuation, and a
 * domain of at least two non-empty dot-separated labels. */
static const char email_re[] =
    "^[^@<>()\\[\\],;:\"\\\\[:space:][:cntrl:]]+"
    "@[^@<>()\\[\\],;:\"\\\\.[:space:][:cntrl:]]+"
    "(\\.[^@<>()\\[\\],;:\"\\\\.[:space:][:cntrl:]]+)+$";

struct header {
    size_t ncols;
    char **name;        /* as written, for messages */
    char **stage;       /* staging column each CSV column goes to */
    int has[N_STD];
    size_t email_col;   /* CSV column of the address */
    size_t nextra;
    char **extra;       /* attrs keys, in staging order x1..xN */
};

/* One item of a ;-separated list, pointing into the record. */
struct item {
    const char *p;
    size_t n;
};

struct import {
    PGconn *c;
    const char *path;
    FILE *report;
    struct wb_import_result *res;
    char *const *tags;  /* --tag values, added to every row */
    size_t ntags;
    struct header h;
    struct wb_buf out;  /* COPY batch */
    struct item *items; /* scratch for one list */
    size_t nitems, cap;
    struct wb_buf lit;  /* scratch for one array literal */
    uint64_t *seen;     /* hashes of the addresses so far (0 = free slot) */
    size_t nseen, seen_cap;
    char *salt;         /* the installation's salt (wb_hash_salt) */
    unsigned char (*sup)[32]; /* every suppression's address hash, sorted */
    size_t nsup;
    struct wb_buf hin;  /* scratch: salt + lowered address */
};

static void imp_header_free(struct header *h)
{
    for (size_t i = 0; i < h->ncols; i++) {
        free(h->name[i]);
        free(h->stage[i]);
    }
    free(h->name);
    free(h->stage);
    free(h->extra);
    memset(h, 0, sizeof *h);
}

static int imp_std_index(const char *name)
{
    for (size_t i = 0; i < N_STD; i++)
        if (strcasecmp(name, std_cols[i]) == 0)
            return (int)i;
    return -1;
}

/* Copies name without surrounding spaces (spreadsheets add them). */
static char *imp_trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return wb_xstrndup(s, n);
}

/* Checks the header record; returns NULL when fine, else why not
 * (malloc'd). */
static char *imp_header_problem(const struct wb_csv_record *rec)
{
    if (rec->unterminated)
        return wb_xstrdup("unterminated quoted field in the header");
    if (rec->nfields > rec->nkept)
        return wb_xasprintf("more than %d columns in the header", WB_CSV_MAX_FIELDS);
    if (rec->oversize)
        return wb_xasprintf("header column %zu is too long", rec->oversize);
    for (size_t i = 0; i < rec->nkept; i++)
        if (!wb_utf8_valid(rec->field[i], rec->len[i]) || memchr(rec->field[i], 0, rec->len[i]))
            return wb_xasprintf("header column %zu is not valid UTF-8 text", i + 1);
    return NULL;
}

/* Maps each column to its staging column; returns NULL or why not. */
static char *imp_header_map(struct header *h, const struct wb_csv_record *rec)
{
    h->ncols = rec->nkept;
    h->name = wb_xcalloc(h->ncols, sizeof *h->name);
    h->stage = wb_xcalloc(h->ncols, sizeof *h->stage);
    h->extra = wb_xcalloc(h->ncols, sizeof *h->extra);
    for (size_t i = 0; i < h->ncols; i++) {
        h->name[i] = imp_trimmed(rec->field[i], rec->len[i]);
        if (!h->name[i][0])
            return wb_xasprintf("column %zu has no name", i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(h->name[i], h->name[j]) == 0)
                return wb_xasprintf("column \"%s\" appears twice", h->name[i]);
        int k = imp_std_index(h->name[i]);
        if (k >= 0) {
            h->has[k] = 1;
            h->stage[i] = wb_xstrdup(std_cols[k]);
            if (k == COL_EMAIL)
                h->email_col = i;
        } else {
            h->extra[h->nextra++] = h->name[i];
            h->stage[i] = wb_xasprintf("x%zu", h->nextra);
        }
    }
    if (!h->has[COL_EMAIL])
        return wb_xstrdup("the header has no email column");
    return NULL;
}

/* Prints reason with control characters replaced, so a hostile cell
 * cannot rewrite the operator's terminal. */
static void imp_print_reason(FILE *out, const char *path, long line, const char *reason)
{
    fprintf(out, "%s:%ld: ", path, line);
    for (const char *p = reason; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, out);
    fputc('\n', out);
}

/* Reads and maps the header; reports and returns -1 when unusable. */
static int imp_read_header(struct import *im, struct wb_csv *csv)
{
    struct wb_csv_record rec;
    int n = wb_csv_next(csv, &rec);
    if (n < 0) {
        fprintf(stderr, "warmbench: %s: %s\n", im->path, strerror(errno));
        return -1;
    }
    char *why = n == 0 ? wb_xstrdup("empty file, no header row") : imp_header_problem(&rec);
    if (!why)
        why = imp_header_map(&im->h, &rec);
    if (!why)
        return 0;
    imp_print_reason(im->report, im->path, n ? rec.line : 1L, why);
    free(why);
    return -1;
}

/* Appends s[0..n) in COPY text format: backslash, tab, LF and CR escaped. */
/* A cell goes to COPY as text with its control characters (C0 but tab and
 * line feed, DEL, C1) made spaces, as the ATS path's wb_text_clean does:
 * `show`, `pool` and the report print these values, and an escape
 * sequence from a CSV must not reach an operator's terminal. */
static void imp_copy_text(struct wb_buf *b, const char *s, size_t n)
{
    wb_buf_reserve(b, 2 * n);
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char u = (unsigned char)s[i];
        char c = s[i];
        if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f) {
            c = ' ';
        } else if (u == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            c = ' '; /* U+0080..U+009F, two bytes in UTF-8 */
            i++;
        }
        if (c == '\\' || c == '\t' || c == '\n') {
            *o++ = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : '\\';
        }
        *o++ = c;
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

/* Why the record cannot be staged, or NULL (malloc'd). */
static bool imp_digits(const char *p, size_t n, int *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        *v = *v * 10 + (p[i] - '0');
    }
    return true;
}

/* HH:MM (and :SS when want_s) at p, each in range. */
static bool imp_clock_ok(const char *p, size_t n, bool want_s)
{
    int hh, mm, ss = 0;
    if (n != (want_s ? 8u : 5u) || p[2] != ':' || (want_s && p[5] != ':'))
        return false;
    return imp_digits(p, 2, &hh) && imp_digits(p + 3, 2, &mm) &&
           (!want_s || imp_digits(p + 6, 2, &ss)) && hh < 24 && mm < 60 && ss < 61;
}

bool wb_import_date_ok(const char *p, size_t n)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (n < 10 || p[4] != '-' || p[7] != '-' || !imp_digits(p, 4, &y) ||
        !imp_digits(p + 5, 2, &m) || !imp_digits(p + 8, 2, &d) || y < 1970 || m < 1 ||
        m > 12 || d < 1 || d > mdays[m - 1] ||
        (m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
        return false;
    if (n == 10)
        return true;
    if ((p[10] != 'T' && p[10] != 't' && p[10] != ' ') || n < 20 || !imp_clock_ok(p + 11, 8, true))
        return false;
    size_t i = 19;
    if (p[i] == '.') /* a fraction of a second, 1 to 9 digits */
        for (i++; i < n && i < 29 && p[i] >= '0' && p[i] <= '9'; i++)
            ;
    if (p[i - 1] == '.')
        return false;
    if (n - i == 1)
        return p[i] == 'Z' || p[i] == 'z';
    return n - i == 6 && (p[i] == '+' || p[i] == '-') && imp_clock_ok(p + i + 1, 5, false);
}

/* The added_at cell of a row, when the file has that column and it is
 * neither empty nor a date wb_import_date_ok takes: why not. */
static char *imp_added_at_problem(const struct header *h, const struct wb_csv_record *rec)
{
    for (size_t i = 0; h->has[COL_ADDED_AT] && i < h->ncols; i++) {
        if (strcmp(h->stage[i], "added_at"))
            continue;
        const char *p = rec->field[i];
        size_t n = rec->len[i];
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n && !wb_import_date_ok(p, n))
            return wb_xasprintf("invalid added_at \"%.*s\" (expected YYYY-MM-DD or an RFC 3339 "
                                "time such as 2026-10-05T09:30:00Z)",
                                (int)(n > 60 ? 60 : n), p);
    }
    return NULL;
}

static char *imp_row_problem(const struct header *h, const struct wb_csv_record *rec)
{
    if (rec->unterminated)
        return wb_xstrdup("unterminated quoted field");
    if (rec->nfields != h->ncols)
        return wb_xasprintf("expected %zu fields, found %zu", h->ncols, rec->nfields);
    if (rec->oversize)
        return wb_xasprintf("field %zu (%s) is longer than %d bytes", rec->oversize,
                            h->name[rec->oversize - 1], WB_IMPORT_MAX_FIELD);
    for (size_t i = 0; i < rec->nkept; i++) {
        if (!wb_utf8_valid(rec->field[i], rec->len[i]))
            return wb_xasprintf("invalid UTF-8 in field %zu (%s)", i + 1, h->name[i]);
        if (memchr(rec->field[i], 0, rec->len[i]))
            return wb_xasprintf("NUL byte in field %zu (%s)", i + 1, h->name[i]);
    }
    return imp_added_at_problem(h, rec);
}

static void imp_add_item(struct import *im, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    if (im->nitems == im->cap) {
        im->cap = im->cap ? 2 * im->cap : 16;
        im->items = wb_xrealloc(im->items, im->cap * sizeof *im->items);
    }
    im->items[im->nitems++] = (struct item){p, n};
}

static int imp_item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int d = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return d ? d : (x->n > y->n) - (x->n < y->n);
}

/* Appends a ;-separated list (plus the --tag values when with_tags) as a
 * text[] literal: trimmed, without empties or repeats, sorted. Done here
 * rather than in SQL, where a per-row subquery costs more than the rest
 * of the row. */
static void imp_put_list(struct import *im, const char *s, size_t n, int with_tags)
{
    im->nitems = 0;
    for (const char *end = s + n, *semi; s < end; s = semi + 1) {
        semi = memchr(s, ';', (size_t)(end - s));
        if (!semi)
            semi = end;
        imp_add_item(im, s, (size_t)(semi - s));
    }
    for (size_t i = 0; with_tags && i < im->ntags; i++)
        imp_add_item(im, im->tags[i], strlen(im->tags[i]));
    qsort(im->items, im->nitems, sizeof *im->items, imp_item_cmp);
    struct wb_buf *l = &im->lit;
    wb_buf_reset(l);
    wb_buf_putc(l, '{');
    for (size_t i = 0; i < im->nitems; i++) {
        if (i && imp_item_cmp(&im->items[i - 1], &im->items[i]) == 0)
            continue;
        if (l->len > 1)
            wb_buf_putc(l, ',');
        wb_buf_putc(l, '"');
        for (size_t k = 0; k < im->items[i].n; k++) {
            char c = im->items[i].p[k];
            if (c == '"' || c == '\\')
                wb_buf_putc(l, '\\');
            wb_buf_putc(l, c);
        }
        wb_buf_putc(l, '"');
    }
    wb_buf_putc(l, '}');
    imp_copy_text(&im->out, l->data, l->len);
}

/* The file has no tags column but --tag was given: stage one anyway. */
static int imp_extra_tags_col(const struct import *im)
{
    return !im->h.has[COL_TAGS] && im->ntags > 0;
}

/* A known column's value is staged without leading and trailing spaces
 * (what SQL's btrim() removes, and only that), so that the statements that
 * read the staging table do not trim ten columns of every row (about a
 * second at a million rows); attrs columns are kept as written. */
static void imp_put_field(struct import *im, const struct wb_csv_record *rec, size_t i)
{
    const char *stage = im->h.stage[i];
    const char *p = rec->field[i];
    size_t n = rec->len[i];
    if (strcmp(stage, "tags") == 0) {
        imp_put_list(im, p, n, 1);
    } else if (strcmp(stage, "skills") == 0) {
        imp_put_list(im, p, n, 0);
    } else if (stage[0] == 'x') {
        imp_copy_text(&im->out, p, n);
    } else {
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        imp_copy_text(&im->out, p, n);
    }
}

/* Hash of an address as SQL's lower(btrim()) would key it, folding only
 * ASCII; *unsure is set when it holds other bytes, whose case folding is
 * the database's business. */
static uint64_t imp_addr_hash(const char *p, size_t n, int *unsure)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a splitmix64 finish */
    *unsure = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        *unsure |= c >= 0x80;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 0x100000001b3ull;
    }
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

static void imp_seen_grow(struct import *im)
{
    size_t cap = im->seen_cap ? 2 * im->seen_cap : 1024;
    uint64_t *t = wb_xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < im->seen_cap; i++) {
        if (!im->seen[i])
            continue;
        size_t j = im->seen[i] & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = im->seen[i];
    }
    free(im->seen);
    im->seen = t;
    im->seen_cap = cap;
}

/* 1 when the row's address may repeat an earlier one. Deduplicating in
 * SQL then only looks at these addresses instead of grouping every row;
 * a false positive (hash collision, non-ASCII) only costs a little. */
static int imp_maybe_dup(struct import *im, const struct wb_csv_record *rec)
{
    int unsure;
    size_t col = im->h.email_col;
    uint64_t h = imp_addr_hash(rec->field[col], rec->len[col], &unsure);
    if (2 * (im->nseen + 1) > im->seen_cap)
        imp_seen_grow(im);
    size_t j = h & (im->seen_cap - 1);
    while (im->seen[j] && im->seen[j] != h)
        j = (j + 1) & (im->seen_cap - 1);
    if (im->seen[j])
        return 1;
    im->seen[j] = h;
    im->nseen++;
    return unsure;
}

static int imp_digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int imp_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads the salt and every suppression's address hash (sorted, binary),
 * so that each row's hash is computed and looked up here: in SQL the
 * SHA-256 of a million addresses took 1.4 s of the import (README
 * "Scale"). A hash that is not 64 lowercase hex digits (none is) can match
 * no computed one and is left out. */
static int imp_load_suppressions(struct import *im)
{
    PGresult *r = wb_db_exec(im->c, PGRES_TUPLES_OK, "import: suppressions",
                             "SELECT wb_hash_salt()", 0, NULL);
    if (!r)
        return -1;
    im->salt = PQgetisnull(r, 0, 0) ? NULL : wb_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = wb_db_exec(im->c, PGRES_TUPLES_OK, "import: suppressions",
                   "SELECT email_hash FROM suppressions", 0, NULL);
    if (!r)
        return -1;
    int n = PQntuples(r);
    im->sup = wb_xcalloc((size_t)n + 1, sizeof *im->sup);
    for (int i = 0; i < n; i++) {
        const char *h = PQgetvalue(r, i, 0);
        if (strlen(h) != 64)
            continue;
        int ok = 1;
        for (int k = 0; k < 32 && ok; k++) {
            int hi = imp_hexval(h[2 * k]), lo = imp_hexval(h[2 * k + 1]);
            ok = hi >= 0 && lo >= 0;
            im->sup[im->nsup][k] = (unsigned char)(hi << 4 | lo);
        }
        im->nsup += (size_t)ok;
    }
    PQclear(r);
    qsort(im->sup, im->nsup, sizeof *im->sup, imp_digest_cmp);
    return 0;
}

/* Whether the row's address hash (wb_email_hash: SHA-256 of the salt and
 * lower(btrim(address))) is in the suppression list: "t" or "f", or "\N"
 * when SQL must compute it: an address with a non-ASCII byte, whose case
 * folding is the database's, or no salt. btrim trims spaces only. */
static const char *imp_suppressed_flag(struct import *im, const struct wb_csv_record *rec)
{
    const char *p = rec->field[im->h.email_col];
    size_t n = rec->len[im->h.email_col];
    while (n && *p == ' ')
        p++, n--;
    while (n && p[n - 1] == ' ')
        n--;
    if (!im->salt)
        return "\\N";
    struct wb_buf *b = &im->hin;
    wb_buf_reset(b);
    wb_buf_puts(b, im->salt);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80)
            return "\\N";
        wb_buf_putc(b, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(b->data, b->len, md, &len, EVP_sha256(), NULL) || len != 32)
        return "\\N";
    return im->nsup && bsearch(md, im->sup, im->nsup, sizeof *im->sup, imp_digest_cmp) ? "t"
                                                                                         : "f";
}

/* One staging row: line, reject reason (\N when none), maybe-duplicate
 * flag, suppressed-hash flag, then the fields; a rejected row carries only
 * line and reason. */
static void imp_stage_row(struct import *im, const struct wb_csv_record *rec)
{
    struct wb_buf *b = &im->out;
    char *why = imp_row_problem(&im->h, rec);
    wb_buf_printf(b, "%ld\t", rec->line);
    if (why) {
        imp_copy_text(b, why, strlen(why));
    } else {
        wb_buf_append(b, imp_maybe_dup(im, rec) ? "\\N\tt\t" : "\\N\tf\t", 5);
        wb_buf_puts(b, imp_suppressed_flag(im, rec));
    }
    size_t ncols = im->h.ncols + (size_t)imp_extra_tags_col(im);
    if (why)
        wb_buf_append(b, "\t\\N\t\\N", 6);
    for (size_t i = 0; i < ncols; i++) {
        wb_buf_putc(b, '\t');
        if (why)
            wb_buf_append(b, "\\N", 2);
        else if (i < im->h.ncols)
            imp_put_field(im, rec, i);
        else
            imp_put_list(im, "", 0, 1);
    }
    wb_buf_putc(b, '\n');
    free(why);
}

static int imp_flush_copy(struct import *im)
{
    if (im->out.len == 0)
        return 0;
    if (PQputCopyData(im->c, im->out.data, (int)im->out.len) != 1) {
        fprintf(stderr, "warmbench: import: COPY: %s", PQerrorMessage(im->c));
        return -1;
    }
    wb_buf_reset(&im->out);
    return 0;
}

/* Ends COPY, aborting it when failed is non-zero; returns 0 when the
 * server stored every row. */
static int imp_end_copy(struct import *im, int failed)
{
    if (!failed && imp_flush_copy(im) < 0)
        failed = 1;
    if (PQputCopyEnd(im->c, failed ? "import aborted" : NULL) != 1) {
        fprintf(stderr, "warmbench: import: COPY: %s", PQerrorMessage(im->c));
        failed = 1;
    }
    PGresult *r;
    while ((r = PQgetResult(im->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
            wb_db_report("import: COPY", r);
            failed = 1;
        }
        PQclear(r);
    }
    return failed ? -1 : 0;
}

/* Streams every data row of the file into the staging table. */
static int imp_stream_rows(struct import *im, struct wb_csv *csv)
{
    struct wb_buf sql;
    wb_buf_init(&sql);
    wb_buf_puts(&sql, "COPY wb_import_stage (line, reject, dup, hs");
    for (size_t i = 0; i < im->h.ncols; i++)
        wb_buf_printf(&sql, ", %s", im->h.stage[i]);
    if (imp_extra_tags_col(im))
        wb_buf_puts(&sql, ", tags");
    wb_buf_puts(&sql, ") FROM STDIN");
    PGresult *r = wb_db_exec(im->c, PGRES_COPY_IN, "import: COPY", sql.data, 0, NULL);
    wb_buf_free(&sql);
    if (!r)
        return -1;
    PQclear(r);
    struct wb_csv_record rec;
    int n = 0, failed = 0;
    while (!failed && (n = wb_csv_next(csv, &rec)) == 1) {
        im->res->rows++;
        imp_stage_row(im, &rec);
        if (im->out.len >= COPY_BATCH)
            failed = imp_flush_copy(im) < 0;
    }
    if (!failed && n < 0) {
        fprintf(stderr, "warmbench: %s: %s\n", im->path, strerror(errno));
        failed = 1;
    }
    return imp_end_copy(im, failed);
}

/* The staging table: every known column (NULL when the file lacks it)
 * and x1..xN for the extra ones. Temp, so it writes no WAL. */
static int imp_create_stage(struct import *im)
{
    struct wb_buf sql;
    wb_buf_init(&sql);
    wb_buf_puts(&sql, "CREATE TEMP TABLE wb_import_stage (line bigint NOT NULL, reject text,"
                      " dup boolean, hs boolean");
    for (size_t i = 0; i < N_STD; i++)
        wb_buf_printf(&sql, ", %s %s", std_cols[i],
                      i == COL_TAGS || i == COL_SKILLS ? "text[]" : "text");
    for (size_t i = 0; i < im->h.nextra; i++)
        wb_buf_printf(&sql, ", x%zu text", i + 1);
    wb_buf_puts(&sql, ") ON COMMIT DROP");
    int rc = wb_db_cmd(im->c, "import: staging table", sql.data, 0, NULL);
    wb_buf_free(&sql);
    return rc;
}

/* Zone names, loaded once: pg_timezone_names reads the zone files on
 * every scan. Keyed case-insensitively; the canonical spelling is kept. */
static const char tz_sql[] =
    "CREATE TEMP TABLE wb_import_tz ON COMMIT DROP AS"
    " SELECT DISTINCT ON (lower(name)) lower(name) AS key, name"
    " FROM pg_timezone_names ORDER BY lower(name), name";

/* attrs of a row: the non-empty extra columns as strings. */
static void imp_attrs_expr(struct import *im, struct wb_buf *sql)
{
    if (im->h.nextra == 0) {
        wb_buf_puts(sql, "'{}'::jsonb");
        return;
    }
    wb_buf_puts(sql, "jsonb_strip_nulls(jsonb_object(ARRAY[");
    for (size_t i = 0; i < im->h.nextra; i++) {
        const char *k = im->h.extra[i];
        char *lit = PQescapeLiteral(im->c, k, strlen(k));
        wb_buf_printf(sql, "%s%s", i ? ", " : "", lit ? lit : "''");
        PQfreemem(lit);
    }
    wb_buf_puts(sql, "]::text[], ARRAY[");
    for (size_t i = 0; i < im->h.nextra; i++)
        wb_buf_printf(sql, "%sNULLIF(s.x%zu, '')", i ? ", " : "", i + 1);
    wb_buf_puts(sql, "]::text[]))");
}

/* A staged row with its cleaned address, its key (lower case), zone and
 * consent, each computed once per row: the OFFSET 0 keeps the subquery
 * from being pulled up, which would copy the expressions into every place
 * that names them (the key alone was computed four times a row). */
#define STAGE_FROM \
    " FROM (SELECT s0.*, coalesce(s0.email, '') AS a_addr," \
    "              coalesce(s0.timezone, '') AS a_tz," \
    "              coalesce(s0.consent, '') AS a_consent," \
    "              lower(coalesce(s0.email, '')) AS a_key" \
    "       FROM wb_import_stage s0 OFFSET 0) s" \
    " CROSS JOIN LATERAL (SELECT s.a_addr AS addr, s.a_tz AS tz, s.a_consent AS consent," \
    "                            s.a_key AS key) a" \
    " LEFT JOIN wb_import_tz z ON z.key = lower(a.tz)"

/* A row's added_at (checked by wb_import_date_ok): a date is midnight UTC. */
#define ADDED_AT \
    "(CASE WHEN coalesce(s.added_at, '') = '' THEN NULL" \
    " WHEN length(s.added_at) = 10 THEN s.added_at::date::timestamp AT TIME ZONE 'UTC'" \
    " ELSE s.added_at::timestamptz END)"

/* The odd rows: every rejected row with its reason, and every row of an
 * address C flagged as possibly repeated. Usually few, so the dedupe and
 * the report work on a small table while the good rows stream from the
 * staging table straight into candidates. Suppression is tested last so
 * the salted hash is computed only for rows otherwise valid (and not at
 * all when the list is empty: a hashed IN over no rows skips its left
 * side). Repeats are found by a hash join, linear however many there are.
 * OFFSET 0 keeps the CASE from being evaluated twice. */
static const char odd_sql[] =
    "CREATE TEMP TABLE wb_import_odd ON COMMIT DROP AS"
    " SELECT line, key, reject FROM ("
    "  SELECT s.line, a.key, d.key IS NOT NULL AS repeated,"
    "   CASE"
    "    WHEN s.reject IS NOT NULL THEN s.reject"
    "    WHEN a.addr = '' THEN 'missing email address'"
    "    WHEN length(a.addr) > 254 OR a.addr !~ $1"
    "     THEN format('invalid email address \"%s\"', left(a.addr, 100))"
    "    WHEN a.tz <> '' AND z.name IS NULL"
    "     THEN format('unknown time zone \"%s\"', left(a.tz, 100))"
    "    WHEN a.consent NOT IN ('', 'opt_in', 'legitimate_interest')"
    "     THEN format('invalid consent \"%s\" (expected opt_in, legitimate_interest or empty)',"
    "                 left(a.consent, 100))"
    /* A day of slack: a date written in a zone ahead of UTC. */
    "    WHEN " ADDED_AT " > now() + interval '1 day'"
    "     THEN format('added_at \"%s\" is in the future', s.added_at)"
    "    WHEN a.key IN (SELECT lower(email) FROM suppressions WHERE email IS NOT NULL)"
    "      OR coalesce(s.hs, wb_email_hash_salted(a.addr, (SELECT wb_hash_salt()))"
    "         IN (SELECT email_hash FROM suppressions))"
    "     THEN 'suppressed'"
    "   END AS reject"
    STAGE_FROM
    "  LEFT JOIN (SELECT DISTINCT lower(coalesce(email, '')) AS key"
    "             FROM wb_import_stage WHERE dup) d ON d.key = a.key"
    "  OFFSET 0"
    " ) x"
    " WHERE reject IS NOT NULL OR repeated";

/* Upserts every staged row that is not skipped, then returns the counts
 * and the report. The last valid row for an address wins. */
static const char upsert_head[] =
    "WITH win AS (SELECT key, max(line) AS line FROM wb_import_odd"
    "             WHERE reject IS NULL GROUP BY key),"
    " skip AS (SELECT o.line FROM wb_import_odd o LEFT JOIN win w ON w.key = o.key"
    "          WHERE o.reject IS NOT NULL OR o.line <> w.line),"
    /* An empty cell keeps what is stored; tags, skills and attrs merge. */
    " up AS ("
    "  INSERT INTO candidates AS c (email, first_name, last_name, title, company, location,"
    "         timezone, tags, skills, consent, consent_at, created_at, source, attrs)"
    "  SELECT a.addr, coalesce(s.first_name, ''), coalesce(s.last_name, ''),"
    "         coalesce(s.title, ''), coalesce(s.company, ''),"
    "         coalesce(s.location, ''), z.name,"
    "         coalesce(s.tags, '{}'), coalesce(s.skills, '{}'), NULLIF(a.consent, ''),"
    "         CASE WHEN a.consent <> '' THEN now() END, coalesce(" ADDED_AT ", now()),"
    "         coalesce(s.source, ''), ";
/* ... the attrs expression goes here ... */
static const char upsert_tail[] =
    STAGE_FROM
    "  WHERE NOT EXISTS (SELECT 1 FROM skip k WHERE k.line = s.line)"
    "  ON CONFLICT (lower(email)) DO UPDATE SET"
    "   first_name = CASE WHEN EXCLUDED.first_name = '' THEN c.first_name ELSE EXCLUDED.first_name END,"
    "   last_name = CASE WHEN EXCLUDED.last_name = '' THEN c.last_name ELSE EXCLUDED.last_name END,"
    "   title = CASE WHEN EXCLUDED.title = '' THEN c.title ELSE EXCLUDED.title END,"
    "   company = CASE WHEN EXCLUDED.company = '' THEN c.company ELSE EXCLUDED.company END,"
    "   location = CASE WHEN EXCLUDED.location = '' THEN c.location ELSE EXCLUDED.location END,"
    "   timezone = coalesce(EXCLUDED.timezone, c.timezone),"
    "   tags = CASE WHEN EXCLUDED.tags <@ c.tags THEN c.tags"
    "          ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.tags || EXCLUDED.tags) t ORDER BY 1) END,"
    "   skills = CASE WHEN EXCLUDED.skills <@ c.skills THEN c.skills"
    "          ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.skills || EXCLUDED.skills) t ORDER BY 1) END,"
    "   consent = coalesce(EXCLUDED.consent, c.consent),"
    "   consent_at = CASE WHEN EXCLUDED.consent IS DISTINCT FROM c.consent"
    "                      AND EXCLUDED.consent IS NOT NULL THEN now() ELSE c.consent_at END,"
    "   source = CASE WHEN EXCLUDED.source = '' THEN c.source ELSE EXCLUDED.source END,"
    "   attrs = c.attrs || EXCLUDED.attrs,"
    "   updated_at = now()"
    "  RETURNING (xmax = 0) AS inserted"
    " )"
    /* First the counts, then every rejected or superseded row by line. */
    " SELECT 0 AS kind, NULL::bigint AS line, NULL::text AS reason,"
    "        count(*) FILTER (WHERE inserted) AS imported,"
    "        count(*) FILTER (WHERE NOT inserted) AS updated"
    " FROM up"
    " UNION ALL"
    " SELECT * FROM ("
    "  SELECT 1, line, reject, NULL::bigint, NULL::bigint FROM wb_import_odd"
    "  WHERE reject IS NOT NULL"
    "  UNION ALL"
    "  SELECT 2, o.line, format('duplicate of line %s, later row wins', w.line), NULL, NULL"
    "  FROM wb_import_odd o JOIN win w ON w.key = o.key AND o.line < w.line"
    "  WHERE o.reject IS NULL"
    "  ORDER BY 2"
    " ) r";

/* The fast path (imp_write_rows): the same rows and the same merge as the
 * upsert above, as an UPDATE of the addresses already stored, then a plain
 * INSERT of the others. INSERT ... ON CONFLICT pays a speculative insertion
 * per row: at a million new rows it took 18 s where the plain INSERT took
 * 10 (README "Scale"). Each statement takes its own snapshot, so a
 * candidate deleted meanwhile is inserted by the second; one inserted by
 * someone else meanwhile makes the INSERT fail on the unique key, and the
 * import goes back to its savepoint and runs the upsert instead. */
#define SKIP_CTE \
    "WITH win AS (SELECT key, max(line) AS line FROM wb_import_odd" \
    "             WHERE reject IS NULL GROUP BY key)," \
    " skip AS (SELECT o.line FROM wb_import_odd o LEFT JOIN win w ON w.key = o.key" \
    "          WHERE o.reject IS NOT NULL OR o.line <> w.line)"
/* The values of a row to store, as the upsert's INSERT lists them. */
#define ROW_VALUES \
    " a.addr, coalesce(s.first_name, ''), coalesce(s.last_name, '')," \
    " coalesce(s.title, ''), coalesce(s.company, '')," \
    " coalesce(s.location, ''), z.name," \
    " coalesce(s.tags, '{}'), coalesce(s.skills, '{}'), NULLIF(a.consent, '')," \
    " CASE WHEN a.consent <> '' THEN now() END, coalesce(" ADDED_AT ", now())," \
    " coalesce(s.source, ''), "
static const char update_head[] =
    SKIP_CTE ","
    " x AS (SELECT * FROM (SELECT" ROW_VALUES;
/* ... the attrs expression goes here ... */
static const char update_tail[] =
    STAGE_FROM
    "  WHERE NOT EXISTS (SELECT 1 FROM skip k WHERE k.line = s.line))"
    "  AS v (email, first_name, last_name, title, company, location, timezone, tags, skills,"
    "        consent, consent_at, created_at, source, attrs))"
    " UPDATE candidates c SET"
    "  first_name = CASE WHEN x.first_name = '' THEN c.first_name ELSE x.first_name END,"
    "  last_name = CASE WHEN x.last_name = '' THEN c.last_name ELSE x.last_name END,"
    "  title = CASE WHEN x.title = '' THEN c.title ELSE x.title END,"
    "  company = CASE WHEN x.company = '' THEN c.company ELSE x.company END,"
    "  location = CASE WHEN x.location = '' THEN c.location ELSE x.location END,"
    "  timezone = coalesce(x.timezone, c.timezone),"
    "  tags = CASE WHEN x.tags <@ c.tags THEN c.tags"
    "         ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.tags || x.tags) t ORDER BY 1) END,"
    "  skills = CASE WHEN x.skills <@ c.skills THEN c.skills"
    "         ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.skills || x.skills) t ORDER BY 1) END,"
    "  consent = coalesce(x.consent, c.consent),"
    "  consent_at = CASE WHEN x.consent IS DISTINCT FROM c.consent"
    "                     AND x.consent IS NOT NULL THEN now() ELSE c.consent_at END,"
    "  source = CASE WHEN x.source = '' THEN c.source ELSE x.source END,"
    "  attrs = c.attrs || x.attrs,"
    "  updated_at = now()"
    " FROM x WHERE lower(c.email) = lower(x.email)";
static const char insert_head[] =
    SKIP_CTE
    " INSERT INTO candidates (email, first_name, last_name, title, company, location,"
    "        timezone, tags, skills, consent, consent_at, created_at, source, attrs)"
    " SELECT" ROW_VALUES;
/* ... the attrs expression goes here ... */
static const char insert_tail[] =
    STAGE_FROM
    " WHERE NOT EXISTS (SELECT 1 FROM skip k WHERE k.line = s.line)"
    "   AND NOT EXISTS (SELECT 1 FROM candidates c WHERE lower(c.email) = a.key)";
/* Every rejected or superseded row by line, as the upsert reports them. */
static const char report_sql[] =
    "WITH win AS (SELECT key, max(line) AS line FROM wb_import_odd"
    "             WHERE reject IS NULL GROUP BY key)"
    " SELECT 1 AS kind, line, reject FROM wb_import_odd WHERE reject IS NOT NULL"
    " UNION ALL"
    " SELECT 2, o.line, format('duplicate of line %s, later row wins', w.line)"
    " FROM wb_import_odd o JOIN win w ON w.key = o.key AND o.line < w.line"
    " WHERE o.reject IS NULL"
    " ORDER BY 2";

static void imp_take_row(struct import *im, const PGresult *r)
{
    int kind = atoi(PQgetvalue(r, 0, 0));
    if (kind == 0) {
        im->res->imported = atol(PQgetvalue(r, 0, 3));
        im->res->updated = atol(PQgetvalue(r, 0, 4));
        return;
    }
    if (kind == 1)
        im->res->rejected++;
    else
        im->res->duplicates++;
    imp_print_reason(im->report, im->path, atol(PQgetvalue(r, 0, 1)), PQgetvalue(r, 0, 2));
}

static int imp_find_odd_rows(struct import *im)
{
    const char *params[1] = {email_re};
    return wb_db_cmd(im->c, "import: checks", odd_sql, 1, params);
}

/* Runs a statement whose rows take_row reads (the upsert's counts and
 * report, or the report alone), row by row, so that a file of a million
 * bad rows needs no million-row result in memory. */
static int imp_read_rows(struct import *im, const char *sql, const char *what)
{
    if (!PQsendQueryParams(im->c, sql, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsetSingleRowMode(im->c)) {
        fprintf(stderr, "warmbench: %s: %s", what, PQerrorMessage(im->c));
        return -1;
    }
    int failed = 0;
    PGresult *r;
    while ((r = PQgetResult(im->c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && !failed)
            imp_take_row(im, r);
        else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE && !failed) {
            wb_db_report(what, r);
            failed = 1;
        }
        PQclear(r);
    }
    return failed ? -1 : 0;
}

/* head + the attrs expression + tail, malloc'd. */
static char *imp_with_attrs(struct import *im, const char *head, const char *tail)
{
    struct wb_buf sql;
    wb_buf_init(&sql);
    wb_buf_puts(&sql, head);
    imp_attrs_expr(im, &sql);
    wb_buf_puts(&sql, tail);
    return sql.data;
}

/* The upsert-and-report statement: counts first, then the report. */
static int imp_upsert(struct import *im)
{
    char *sql = imp_with_attrs(im, upsert_head, upsert_tail);
    int rc = imp_read_rows(im, sql, "import");
    free(sql);
    return rc;
}

/* Runs a write; *n gets its row count. Returns 0, 1 when it failed on a
 * unique key (not reported), or -1 after reporting. */
static int imp_fast_write(struct import *im, const char *sql, long *n)
{
    PGresult *r = PQexecParams(im->c, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        *n = atol(PQcmdTuples(r));
        PQclear(r);
        return 0;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int rc = state && !strcmp(state, "23505") ? 1 : -1;
    if (rc < 0) {
        if (r)
            wb_db_report("import", r);
        else
            fprintf(stderr, "warmbench: import: %s", PQerrorMessage(im->c));
    }
    PQclear(r);
    return rc;
}

/* Stores the rows: the fast path under a savepoint, the upsert when an
 * address appeared meanwhile; then the report. */
static int imp_write_rows(struct import *im)
{
    if (wb_db_cmd(im->c, "import: savepoint", "SAVEPOINT wb_import_fast", 0, NULL) < 0)
        return -1;
    char *upd = imp_with_attrs(im, update_head, update_tail);
    char *ins = imp_with_attrs(im, insert_head, insert_tail);
    long updated = 0, imported = 0;
    int rc = imp_fast_write(im, upd, &updated);
    if (rc == 0)
        rc = imp_fast_write(im, ins, &imported);
    free(upd);
    free(ins);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (wb_db_cmd(im->c, "import: savepoint", "ROLLBACK TO SAVEPOINT wb_import_fast", 0,
                      NULL) < 0)
            return -1;
        return imp_upsert(im);
    }
    im->res->imported = imported;
    im->res->updated = updated;
    if (wb_db_cmd(im->c, "import: savepoint", "RELEASE SAVEPOINT wb_import_fast", 0, NULL) < 0)
        return -1;
    return imp_read_rows(im, report_sql, "import");
}

/* Room for the suppression list's hash (the IN tests stay hashed, not
 * rescanned per row, up to a few million addresses), and for the staging
 * table in this session's own buffers: with the default 8 MB each of its
 * three scans read it back from the kernel (a million rows are about
 * 250 MB; buffers are taken as the table grows). This transaction only;
 * temp_buffers can be set because the session has used no temp table yet. */
static const char settings_sql[] = "SET LOCAL work_mem = '128MB'";
static const char temp_buffers_sql[] = "SET LOCAL temp_buffers = '512MB'";

/* Everything between BEGIN and COMMIT. */
static int imp_run(struct import *im, struct wb_csv *csv)
{
    if (wb_db_cmd(im->c, "import: begin", "BEGIN", 0, NULL) < 0)
        return -1;
    if (wb_db_cmd(im->c, "import: settings", settings_sql, 0, NULL) < 0 ||
        wb_db_cmd(im->c, "import: settings", temp_buffers_sql, 0, NULL) < 0 ||
        imp_create_stage(im) < 0 ||
        wb_db_cmd(im->c, "import: time zones", tz_sql, 0, NULL) < 0 ||
        /* Its size lets the planner hash it rather than sort the file. */
        wb_db_cmd(im->c, "import: time zones", "ANALYZE wb_import_tz", 0, NULL) < 0 ||
        imp_load_suppressions(im) < 0 || imp_stream_rows(im, csv) < 0 ||
        imp_find_odd_rows(im) < 0 || imp_write_rows(im) < 0 ||
        wb_db_cmd(im->c, "import: commit", "COMMIT", 0, NULL) < 0) {
        PQclear(PQexec(im->c, "ROLLBACK"));
        return -1;
    }
    return 0;
}

int wb_import(PGconn *c, const char *path, char *const *tags, size_t ntags,
              struct wb_import_result *res, FILE *report)
{
    memset(res, 0, sizeof *res);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "warmbench: %s: %s\n", path, strerror(errno));
        return WB_EXIT_FAIL;
    }
    struct import im = {.c = c, .path = path, .report = report, .res = res,
                        .tags = tags, .ntags = ntags};
    wb_buf_init(&im.out);
    wb_buf_init(&im.lit);
    wb_buf_init(&im.hin);
    struct wb_csv *csv = wb_csv_new(f, WB_IMPORT_MAX_FIELD);
    int rc = WB_EXIT_DATAERR;
    if (imp_read_header(&im, csv) == 0) {
        rc = imp_run(&im, csv) < 0 ? WB_EXIT_FAIL : WB_EXIT_OK;
        if (rc == WB_EXIT_OK && res->rows > 0 && res->rejected == res->rows)
            rc = WB_EXIT_DATAERR;
    }
    wb_csv_free(csv);
    wb_buf_free(&im.out);
    wb_buf_free(&im.lit);
    free(im.items);
    free(im.seen);
    free(im.salt);
    free(im.sup);
    wb_buf_free(&im.hin);
    imp_header_free(&im.h);
    fclose(f);
    return rc;
}

void wb_import_print_summary(const struct wb_import_result *res, FILE *out)
{
    if (res->duplicates)
        fprintf(out, "skipped %ld duplicate row%s (the later row for an address wins)\n",
                res->duplicates, res->duplicates == 1 ? "" : "s");
    fprintf(out, "imported %ld, updated %ld, rejected %ld\n", res->imported, res->updated,
            res->rejected);
}
