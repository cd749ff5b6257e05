/* Out-of-office return dates (lib/engage/ooo.c): the labelled corpus of
 * real-shaped auto-replies (tests/corpus/ooo.json), the Date field, and
 * hostile input. */
#include "warmbench/ical.h"
#include "warmbench/ooo.h"
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS WB_SQL_DIR "/../tests/corpus/ooo.json"

static int32_t day_of(const char *iso)
{
    int y, m, d;
    ck_assert_int_eq(sscanf(iso, "%d-%d-%d", &y, &m, &d), 3);
    return wb_day_from_civil(y, m, d);
}

static void iso_of(int32_t day, char out[32])
{
    int y, m, d;
    wb_day_to_civil(day, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02d", y, m, d);
}

/* The return date of text sent on the day named by date ("YYYY-MM-DD"),
 * as "YYYY-MM-DD" or "null". */
static const char *ret(const char *date, const char *subject, const char *text)
{
    static char out[32];
    int32_t back;
    if (wb_ooo_return_day(subject, text, day_of(date), &back) < 0)
        return "null";
    iso_of(back, out);
    return out;
}

START_TEST(test_corpus)
{
    json_error_t err;
    json_t *all = json_load_file(CORPUS, 0, &err);
    ck_assert_msg(all, "%s: %s", CORPUS, err.text);
    size_t i, ok = 0, dated = 0;
    json_t *c;
    json_array_foreach(all, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *want = json_string_value(json_object_get(c, "expect"));
        int32_t today, back;
        ck_assert_msg(wb_ooo_mail_day(json_string_value(json_object_get(c, "date")), &today) == 0,
                      "%s: Date", id);
        char got[32] = "null";
        if (wb_ooo_return_day(json_string_value(json_object_get(c, "subject")),
                              json_string_value(json_object_get(c, "text")), today, &back) == 0)
            iso_of(back, got);
        dated += want != NULL;
        if (!strcmp(got, want ? want : "null"))
            ok++;
        else
            fprintf(stderr, "ooo corpus %s: want %s, got %s\n", id, want ? want : "null", got);
    }
    /* Issue 15's bar: at least 40 replies, dated and undated, all right. */
    ck_assert_uint_ge(json_array_size(all), 40);
    ck_assert_uint_ge(dated, 20);
    ck_assert_uint_ge(json_array_size(all) - dated, 10);
    ck_assert_uint_eq(ok, json_array_size(all));
    json_decref(all);
}
END_TEST

START_TEST(test_mail_day)
{
    int32_t d;
    ck_assert_int_eq(wb_ooo_mail_day("Tue, 5 Jan 2027 23:30:00 -0800", &d), 0);
    ck_assert_int_eq(d, day_of("2027-01-05")); /* the writer's own day, not UTC's */
    ck_assert_int_eq(wb_ooo_mail_day("5 January 2027 09:00 +0100", &d), 0);
    ck_assert_int_eq(d, day_of("2027-01-05"));
    ck_assert_int_eq(wb_ooo_mail_day("  Mon, 1 Mar 99 00:00:00 GMT", &d), 0);
    ck_assert_int_eq(d, day_of("1999-03-01"));
    ck_assert_int_eq(wb_ooo_mail_day("Thu, 29 Feb 2027 10:00:00 +0000", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day("yesterday", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day("Tue, 5 Foo 2027", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day("Tue, 5 Jan -2027", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day("Tue, 99999999999999999999 Jan 2027", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day("", &d), -1);
    ck_assert_int_eq(wb_ooo_mail_day(NULL, &d), -1);
}
END_TEST

START_TEST(test_wordings)
{
    /* The brief's own examples, mail of Monday 21 December 2026. */
    const char *t = "2026-12-21";
    ck_assert_str_eq(ret(t, "", "I'm back on 12 January."), "2027-01-12");
    ck_assert_str_eq(ret(t, "", "I'm away until 14.01.2027."), "2027-01-14");
    ck_assert_str_eq(ret(t, "", "Ich bin bis zum 3. Januar im Urlaub."), "2027-01-03");
    ck_assert_str_eq(ret(t, "", "Ich bin ab dem 5.1. wieder da."), "2027-01-05");
    ck_assert_str_eq(ret(t, "", "Je serai de retour le 6 janvier."), "2027-01-06");
    ck_assert_str_eq(ret(t, "", "Regreso el 7 de enero."), "2027-01-07");
    ck_assert_str_eq(ret(t, "", "Estoy fuera hasta el 10/01/2027."), "2027-01-10");
    ck_assert_str_eq(ret(t, "Out of office until 2027-01-14", ""), "2027-01-14");
    ck_assert_str_eq(ret(t, "", "Back Monday."), "2026-12-28");   /* not today: next week */
    ck_assert_str_eq(ret(t, "", "back on 31 April"), "null");     /* no such day */
    ck_assert_str_eq(ret(t, "", "until 29 February"), "null");    /* 2027 has none */
    ck_assert_str_eq(ret(t, "", "back on 20 December"), "null");  /* rolled a year: too far */
    ck_assert_str_eq(ret(t, "", "back on 21 December"), "2026-12-21"); /* today itself */
    ck_assert_str_eq(ret(t, "", "12 January"), "null");            /* no cue */
    ck_assert_str_eq(ret(t, "", "I'm out. 12 January is my birthday."), "null");
    ck_assert_str_eq(ret(t, "", "until 2027-13-01"), "null");
    ck_assert_str_eq(ret(t, "", "until 02/03/2027"), "null");     /* en: 2 Mar or 3 Feb */
    ck_assert_str_eq(ret(t, "", "Ich bin bis 02/03/2027 weg."), "2027-03-02"); /* de: day first */
    ck_assert_str_eq(ret(t, "", "In meetings until 12.10 pm."), "null"); /* times */
    ck_assert_str_eq(ret(t, "", "Ich bin bis 10.12 Uhr im Termin."), "null");
}
END_TEST

START_TEST(test_hostile)
{
    int32_t today = day_of("2026-12-21"), back;
    /* Every byte value, long runs of digits and marks, no NUL until the end. */
    size_t n = 200000;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + (i * 7919) % 255);
    s[n] = '\0';
    (void)wb_ooo_return_day(s, s, today, &back);
    memset(s, '9', n);
    (void)wb_ooo_return_day("until", s, today, &back);
    for (size_t i = 0; i < n; i++)
        s[i] = "until 1.1."[i % 10];
    ck_assert_int_eq(wb_ooo_return_day(NULL, s, today, &back), 0);
    ck_assert_int_eq(back, day_of("2027-01-01"));
    /* Truncated UTF-8 at the end, dates at the very end of the text. */
    ck_assert_int_eq(wb_ooo_return_day("", "back \xc3", today, &back), -1);
    ck_assert_int_eq(wb_ooo_return_day("", "until 2027-01-", today, &back), -1);
    ck_assert_int_eq(wb_ooo_return_day("", "until 14.01", today, &back), 0);
    ck_assert_int_eq(wb_ooo_return_day("", "back Monday 12", today, &back), -1);
    ck_assert_int_eq(wb_ooo_return_day(NULL, NULL, today, &back), -1);
    /* Days far from the epoch. */
    (void)wb_ooo_return_day("", "until 1 January 2027", -800000, &back);
    free(s);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("ooo");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_corpus);
    tcase_add_test(tc, test_mail_day);
    tcase_add_test(tc, test_wordings);
    tcase_add_test(tc, test_hostile);
    suite_add_tcase(s, tc);
    return s;
}
