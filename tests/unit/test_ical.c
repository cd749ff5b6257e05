/* Holiday calendars: the closed days an iCalendar file names (all-day
 * events, yearly rules, spans, RDATE/EXDATE) and every malformed file
 * refused at its file:line:column. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ical.h"

#define CAL(body) "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" body "END:VCALENDAR\r\n"

static int32_t D(int y, int m, int d)
{
    return wb_day_from_civil(y, m, d);
}

/* Parses text for years y0..y1; returns the result code, fills *out and
 * the first diagnostic's text ("line:col: msg") into first. */
static int parse(const char *text, int y0, int y1, struct wb_dayset *out, char *first, size_t n)
{
    struct wb_diags d;
    wb_diags_init(&d);
    memset(out, 0, sizeof *out);
    int rc = wb_ical_closed_days(text, strlen(text), "h.ics", y0, y1, out, &d);
    if (first) {
        first[0] = '\0';
        if (d.n)
            snprintf(first, n, "%d:%d: %s", d.v[0].line, d.v[0].col, d.v[0].msg);
    }
    if (rc == 0)
        ck_assert_uint_eq(d.n, 0);
    else
        ck_assert_uint_gt(d.n, 0);
    wb_diags_free(&d);
    return rc;
}

static int has(const struct wb_dayset *s, int32_t day)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == day)
            return 1;
    return 0;
}

START_TEST(test_civil_round_trip)
{
    ck_assert_int_eq(D(1970, 1, 1), 0);
    ck_assert_int_eq(wb_day_weekday(D(1970, 1, 1)), 3);  /* Thursday */
    ck_assert_int_eq(wb_day_weekday(D(2027, 12, 24)), 4); /* Friday */
    ck_assert_int_eq(wb_day_weekday(D(1969, 12, 29)), 0); /* Monday, before day 0 */
    for (int32_t z = D(1900, 1, 1); z < D(2100, 12, 31); z += 13) {
        int y, m, d;
        wb_day_to_civil(z, &y, &m, &d);
        ck_assert_int_eq(D(y, m, d), z);
    }
    ck_assert_int_eq(D(2028, 3, 1) - D(2028, 2, 28), 2); /* leap year */
    ck_assert_int_eq(D(2100, 3, 1) - D(2100, 2, 28), 1); /* not one */
}
END_TEST

START_TEST(test_single_days_and_spans)
{
    struct wb_dayset s;
    ck_assert_int_eq(parse(CAL("BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20271225\r\n"
                               "SUMMARY:Christmas Day\r\nEND:VEVENT\r\n"
                               "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270412\r\n"
                               "DTEND;VALUE=DATE:20270415\r\nEND:VEVENT\r\n"
                               "BEGIN:VEVENT\r\nDTSTART:20270801\r\nDURATION:P1W\r\nEND:VEVENT\r\n"
                               "BEGIN:VEVENT\r\nDTSTART:20301225\r\nEND:VEVENT\r\n"),
                           2027, 2028, &s, NULL, 0),
                     0);
    /* Dec 25; Apr 12-14 (DTEND exclusive); Aug 1-7; 2030 is outside. */
    ck_assert_uint_eq(s.n, 1 + 3 + 7);
    ck_assert(has(&s, D(2027, 12, 25)));
    ck_assert(has(&s, D(2027, 4, 14)));
    ck_assert(!has(&s, D(2027, 4, 15)));
    ck_assert(has(&s, D(2027, 8, 7)));
    ck_assert(!has(&s, D(2027, 8, 8)));
    for (size_t i = 1; i < s.n; i++)
        ck_assert_int_lt(s.v[i - 1], s.v[i]); /* sorted, no repeats */
    wb_dayset_free(&s);
}
END_TEST

START_TEST(test_yearly_rules)
{
    struct wb_dayset s;
    /* Fixed date from 2001; Thanksgiving (4th Thursday of November);
     * Memorial Day (last Monday of May) with one year left out; a rule
     * that ends (COUNT) and one that ends by UNTIL. */
    ck_assert_int_eq(
        parse(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20010101\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20201126\r\n"
                  "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200525\r\n"
                  "RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO\r\nEXDATE;VALUE=DATE:20280529\r\n"
                  "END:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260704\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n"
                  "END:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200301\r\n"
                  "RRULE:FREQ=YEARLY;UNTIL=20270302\r\nRDATE;VALUE=DATE:20280302,20280303\r\n"
                  "END:VEVENT\r\n"),
              2027, 2029, &s, NULL, 0),
        0);
    ck_assert(has(&s, D(2027, 1, 1)) && has(&s, D(2028, 1, 1)) && has(&s, D(2029, 1, 1)));
    ck_assert(has(&s, D(2027, 11, 25)) && has(&s, D(2028, 11, 23)) && has(&s, D(2029, 11, 22)));
    ck_assert(has(&s, D(2027, 5, 31)) && !has(&s, D(2028, 5, 29)) && has(&s, D(2029, 5, 28)));
    ck_assert(has(&s, D(2027, 7, 4)) && !has(&s, D(2028, 7, 4))); /* COUNT=2: 2026, 2027 */
    ck_assert(has(&s, D(2027, 3, 1)) && !has(&s, D(2028, 3, 1)));
    ck_assert(has(&s, D(2028, 3, 2)) && has(&s, D(2028, 3, 3)));
    ck_assert_uint_eq(s.n, 3 + 3 + 2 + 1 + 1 + 2);
    wb_dayset_free(&s);
}
END_TEST

START_TEST(test_folding_lf_bom_other_components)
{
    struct wb_dayset s;
    /* LF line ends, a byte order mark, a folded RRULE, lower-case names, a
     * VTIMEZONE and an alarm inside the event, a cancelled event. */
    const char *text =
        "\xef\xbb\xbf" "BEGIN:VCALENDAR\nversion:2.0\n"
        "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\n"
        "END:STANDARD\nEND:VTIMEZONE\n"
        "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20271003\nRRULE:FREQ=YE\n ARLY;BYMONTH=10\n"
        "SUMMARY;LANGUAGE=de:Tag der Deutschen\n  Einheit\n"
        "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT1H\nEND:VALARM\nEND:VEVENT\n"
        "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20270501\nSTATUS:CANCELLED\nEND:VEVENT\n"
        "END:VCALENDAR\n";
    char err[256];
    ck_assert_int_eq(parse(text, 2027, 2028, &s, err, sizeof err), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert(has(&s, D(2027, 10, 3)) && has(&s, D(2028, 10, 3)));
    wb_dayset_free(&s);
}
END_TEST

static void refused(const char *text, const char *where, const char *what)
{
    struct wb_dayset s = {0};
    char err[512];
    ck_assert_msg(parse(text, 2027, 2028, &s, err, sizeof err) == -1, "accepted: %s", text);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_msg(!strncmp(err, where, strlen(where)), "%s: want at %s", err, where);
    ck_assert_msg(strstr(err, what) != NULL, "%s: want \"%s\"", err, what);
}

START_TEST(test_malformed_files_at_their_place)
{
    refused("", "1:1:", "not an iCalendar file");
    refused("hello world\n", "1:6:", "unexpected ' '");
    refused("BEGIN:VEVENT\r\n", "1:7:", "expected BEGIN:VCALENDAR");
    refused("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\n",
            "2:1:", "BEGIN:VEVENT is never closed");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nEND:VTODO\r\n"), "6:5:",
            "END:VTODO does not close BEGIN:VEVENT (line 4)");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART:20271225T090000Z\r\nEND:VEVENT\r\n"), "5:9:",
            "date-time: a holiday is an all-day event");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE-TIME:20271225T090000\r\nEND:VEVENT\r\n"),
            "5:1:", "all-day event");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270230\r\nEND:VEVENT\r\n"), "5:20:",
            "bad date \"20270230\"");
    refused(CAL("BEGIN:VEVENT\r\nSUMMARY:no start\r\nEND:VEVENT\r\n"), "6:1:",
            "has no DTSTART");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n"),
            "6:7:", "only FREQ=YEARLY");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nRRULE:FREQ=YEARLY;BYMONTH=13\r\n"
                "END:VEVENT\r\n"),
            "6:7:", "bad RRULE");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nRRULE:BYDAY=MO\r\nEND:VEVENT\r\n"),
            "6:7:", "bad RRULE");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nDTEND;VALUE=DATE:20271225\r\n"
                "END:VEVENT\r\n"),
            "6:1:", "DTEND must be after DTSTART");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nDURATION:PT8H\r\nEND:VEVENT\r\n"),
            "6:10:", "not whole days");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nDTSTART;VALUE=DATE:20271226\r\n"
                "END:VEVENT\r\n"),
            "6:1:", "DTSTART given twice");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=\"DATE:20271225\r\nEND:VEVENT\r\n"), "5:15:",
            "unclosed quoted");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;=DATE:20271225\r\nEND:VEVENT\r\n"), "5:9:",
            "expected a parameter NAME=VALUE");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nEND:VEVENT\r\n;X\r\n"), "7:1:",
            "expected a property name");
    refused(" folded first\r\n", "1:1:", "continuation line with no line before");
    refused("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nEND:VCALENDAR\r\n", "2:9:", "VERSION 1.0");
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20271225\r\nEXDATE;VALUE=DATE:2027122\r\n"
                "END:VEVENT\r\n"),
            "6:19:", "bad date");
    /* The position of a fold's continuation is its own line's. */
    refused(CAL("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:2027\r\n 1232\r\nEND:VEVENT\r\n"), "5:20:",
            "bad date \"20271232\"");
}
END_TEST

START_TEST(test_nul_byte)
{
    static const char text[] = "BEGIN:VCALENDAR\r\nSUMMARY:x\0y\r\nEND:VCALENDAR\r\n";
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_dayset s = {0};
    ck_assert_int_eq(wb_ical_closed_days(text, sizeof text - 1, "h.ics", 2027, 2027, &s, &d), -1);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 2);
    ck_assert_int_eq(d.v[0].col, 10);
    ck_assert_str_eq(d.v[0].file, "h.ics");
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_country_codes)
{
    ck_assert(wb_country_valid("DE"));
    ck_assert(wb_country_valid("de"));
    ck_assert(wb_country_valid("GB"));
    ck_assert(wb_country_valid("AD"));
    ck_assert(wb_country_valid("ZW"));
    ck_assert(!wb_country_valid("UK")); /* not assigned: GB is */
    ck_assert(!wb_country_valid("XX"));
    ck_assert(!wb_country_valid("EU"));
    ck_assert(!wb_country_valid("DEU"));
    ck_assert(!wb_country_valid("D"));
    ck_assert(!wb_country_valid(""));
    ck_assert(!wb_country_valid("1A"));
    ck_assert(!wb_country_valid(NULL));
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("ical");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_civil_round_trip);
    tcase_add_test(tc, test_single_days_and_spans);
    tcase_add_test(tc, test_yearly_rules);
    tcase_add_test(tc, test_folding_lf_bom_other_components);
    tcase_add_test(tc, test_malformed_files_at_their_place);
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_country_codes);
    suite_add_tcase(s, tc);
    return s;
}
