#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/csv.h"
#include "warmbench/import.h"

/* Reads every record of text (n bytes) with the given field limit. */
struct parsed {
    FILE *f;
    struct wb_csv *r;
    struct wb_csv_record rec;
};

static void open_text(struct parsed *p, const char *text, size_t n, size_t max_field)
{
    p->f = fmemopen((void *)text, n, "r");
    ck_assert_ptr_nonnull(p->f);
    p->r = wb_csv_new(p->f, max_field);
}

static void close_text(struct parsed *p)
{
    wb_csv_free(p->r);
    fclose(p->f);
}

static void expect(struct parsed *p, long line, size_t nfields, const char *const *want)
{
    ck_assert_int_eq(wb_csv_next(p->r, &p->rec), 1);
    ck_assert_int_eq(p->rec.line, line);
    ck_assert_uint_eq(p->rec.nfields, nfields);
    ck_assert_int_eq(p->rec.unterminated, 0);
    for (size_t i = 0; i < nfields; i++) {
        ck_assert_str_eq(p->rec.field[i], want[i]);
        ck_assert_uint_eq(p->rec.len[i], strlen(want[i]));
    }
}

START_TEST(test_plain_and_quoted)
{
    static const char text[] = "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\n";
    struct parsed p;
    open_text(&p, text, sizeof text - 1, 100);
    expect(&p, 1, 3, (const char *[]){"a", "b", "c"});
    expect(&p, 2, 3, (const char *[]){"x, y", "say \"hi\"", ""});
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 0);
    close_text(&p);
}
END_TEST

START_TEST(test_embedded_newlines_and_line_numbers)
{
    static const char text[] = "h1,h2\n\"two\nlines\",x\n\"crlf\r\ninside\",y\nlast,z\n";
    struct parsed p;
    open_text(&p, text, sizeof text - 1, 100);
    expect(&p, 1, 2, (const char *[]){"h1", "h2"});
    expect(&p, 2, 2, (const char *[]){"two\nlines", "x"});
    expect(&p, 4, 2, (const char *[]){"crlf\r\ninside", "y"});
    expect(&p, 6, 2, (const char *[]){"last", "z"});
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 0);
    close_text(&p);
}
END_TEST

START_TEST(test_bom_crlf_blank_lines_no_final_newline)
{
    static const char text[] = "\xEF\xBB\xBF" "email,name\r\n\r\na@example.com,Zo\xC3\xAB\r\n\r\nb,\"\"";
    struct parsed p;
    open_text(&p, text, sizeof text - 1, 100);
    expect(&p, 1, 2, (const char *[]){"email", "name"});
    expect(&p, 3, 2, (const char *[]){"a@example.com", "Zo\xC3\xAB"});
    expect(&p, 5, 2, (const char *[]){"b", ""});
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 0);
    close_text(&p);
}
END_TEST

START_TEST(test_unterminated_quote)
{
    static const char text[] = "a,b\n1,2\n3,\"open\nstill open\n";
    struct parsed p;
    open_text(&p, text, sizeof text - 1, 100);
    expect(&p, 1, 2, (const char *[]){"a", "b"});
    expect(&p, 2, 2, (const char *[]){"1", "2"});
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 1);
    ck_assert_int_eq(p.rec.line, 3);
    ck_assert_int_eq(p.rec.unterminated, 1);
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 0);
    close_text(&p);
}
END_TEST

START_TEST(test_oversize_field)
{
    size_t big = 3u << 20; /* spans several read chunks */
    char *text = malloc(big + 64);
    size_t n = (size_t)sprintf(text, "a,b\nx,\"");
    memset(text + n, 'z', big);
    n += big;
    n += (size_t)sprintf(text + n, "\"\ny,ok\n");
    struct parsed p;
    open_text(&p, text, n, 65536);
    expect(&p, 1, 2, (const char *[]){"a", "b"});
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 1);
    ck_assert_int_eq(p.rec.line, 2);
    ck_assert_uint_eq(p.rec.oversize, 2);
    ck_assert_uint_eq(p.rec.len[1], 65536);
    expect(&p, 3, 2, (const char *[]){"y", "ok"});
    ck_assert_uint_eq(p.rec.oversize, 0);
    close_text(&p);
    free(text);
}
END_TEST

START_TEST(test_field_at_limit_is_not_oversize)
{
    static const char text[] = "abcd,\"ab\"\"c\"\n";
    struct parsed p;
    open_text(&p, text, sizeof text - 1, 4);
    expect(&p, 1, 2, (const char *[]){"abcd", "ab\"c"});
    ck_assert_uint_eq(p.rec.oversize, 0);
    close_text(&p);
}
END_TEST

START_TEST(test_too_many_fields)
{
    size_t nf = WB_CSV_MAX_FIELDS + 10;
    char *text = malloc(nf * 2 + 2);
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        text[n++] = 'x';
        text[n++] = i + 1 < nf ? ',' : '\n';
    }
    struct parsed p;
    open_text(&p, text, n, 100);
    ck_assert_int_eq(wb_csv_next(p.r, &p.rec), 1);
    ck_assert_uint_eq(p.rec.nfields, nf);
    ck_assert_uint_eq(p.rec.nkept, WB_CSV_MAX_FIELDS);
    close_text(&p);
    free(text);
}
END_TEST

START_TEST(test_utf8_validation)
{
    ck_assert_int_eq(wb_utf8_valid("plain ascii text, long enough", 29), 1);
    ck_assert_int_eq(wb_utf8_valid("Zo\xC3\xAB J\xC3\xBCrgen \xE6\x9D\x8E \xF0\x9F\x98\x80", 21), 1);
    ck_assert_int_eq(wb_utf8_valid("bad \xFF byte", 10), 0);
    ck_assert_int_eq(wb_utf8_valid("\xC0\xAF", 2), 0);          /* overlong '/' */
    ck_assert_int_eq(wb_utf8_valid("\xE0\x80\xAF", 3), 0);      /* overlong 3-byte */
    ck_assert_int_eq(wb_utf8_valid("\xED\xA0\x80", 3), 0);      /* surrogate */
    ck_assert_int_eq(wb_utf8_valid("\xF4\x90\x80\x80", 4), 0);  /* above U+10FFFF */
    ck_assert_int_eq(wb_utf8_valid("truncated \xC3", 11), 0);
    ck_assert_int_eq(wb_utf8_valid("\xC3(", 2), 0);             /* bad continuation */
    ck_assert_int_eq(wb_utf8_valid("", 0), 1);
}
END_TEST

/* The import's added_at column: a date or an RFC 3339 time, a real day. */
START_TEST(test_import_date)
{
    static const char *const ok[] = {
        "2026-09-28", "1970-01-01", "2024-02-29", "2026-09-28T09:30:00Z",
        "2026-09-28t09:30:00z", "2026-09-28 09:30:00+02:00", "2026-09-28T23:59:60-05:30",
        "2026-09-28T09:30:00.123456789Z"};
    static const char *const bad[] = {
        "", "2026-9-28", "28.09.2026", "2026-13-01", "2026-00-10", "2026-02-30",
        "2025-02-29", "1900-02-28", "1969-12-31", "2026-09-28T", "2026-09-28T9:30:00Z",
        "2026-09-28T24:00:00Z", "2026-09-28T09:60:00Z", "2026-09-28T09:30:00",
        "2026-09-28T09:30:00.Z", "2026-09-28T09:30:00+2:00", "2026-09-28T09:30:00+02:60",
        "2026-09-28T09:30:00ZZ", "2026-09-28T09:30:00.1234567890Z", "2026-09-28x",
        "２０２６-09-28", "2026-09-28T09:30:00Z; DROP TABLE candidates"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        ck_assert_msg(wb_import_date_ok(ok[i], strlen(ok[i])), "%s", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!wb_import_date_ok(bad[i], strlen(bad[i])), "%s", bad[i]);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_plain_and_quoted);
    tcase_add_test(tc, test_embedded_newlines_and_line_numbers);
    tcase_add_test(tc, test_bom_crlf_blank_lines_no_final_newline);
    tcase_add_test(tc, test_unterminated_quote);
    tcase_add_test(tc, test_oversize_field);
    tcase_add_test(tc, test_field_at_limit_is_not_oversize);
    tcase_add_test(tc, test_too_many_fields);
    tcase_add_test(tc, test_utf8_validation);
    tcase_add_test(tc, test_import_date);
    suite_add_tcase(s, tc);
    return s;
}
