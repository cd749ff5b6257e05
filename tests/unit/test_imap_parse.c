/* The IMAP poller's reading of UID SEARCH and STATUS answers: only
 * RFC 3501 numbers (1..2^32-1, digits only) on a "* SEARCH" line count,
 * never a signed number, one on the next line or a MODSEQ. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include "warmbench/imap_parse.h"

START_TEST(test_search_plain)
{
    uint64_t *u;
    size_t n = wb_imap_search_uids("* SEARCH 9 3 3 17\r\n* 4 EXISTS\r\n* search 4\r\n", 3, &u);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(u[0], 4);
    ck_assert_uint_eq(u[1], 9);
    ck_assert_uint_eq(u[2], 17);
    free(u);
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCH\r\n", 0, &u), 0);
    ck_assert_ptr_null(u);
}
END_TEST

/* Each of these named a UID before (found by tests/fuzz/fuzz_imap). */
START_TEST(test_search_hostile)
{
    uint64_t *u;
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCH -1 +5\r\n", 0, &u), 0);
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCH 12 \r\n 13\r\n", 0, &u), 1);
    ck_assert_uint_eq(u[0], 12);
    free(u);
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCH 2 (MODSEQ 917162500)\r\n", 0, &u), 1);
    ck_assert_uint_eq(u[0], 2);
    free(u);
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCH 4294967296 0 4294967295\r\n", 0, &u), 1);
    ck_assert_uint_eq(u[0], 4294967295u);
    free(u);
    ck_assert_uint_eq(wb_imap_search_uids("* SEARCHES 5\r\n", 0, &u), 0);
}
END_TEST

START_TEST(test_status)
{
    const char *s = "* STATUS INBOX (MESSAGES 3 UIDNEXT 18 UIDVALIDITY 1700000001)\r\n";
    ck_assert_uint_eq(wb_imap_status_value(s, "UIDVALIDITY "), 1700000001u);
    ck_assert_uint_eq(wb_imap_status_value(s, "UIDNEXT "), 18);
    ck_assert_uint_eq(wb_imap_status_value("* STATUS X (UIDNEXT -1)", "UIDNEXT "), 0);
    ck_assert_uint_eq(wb_imap_status_value("* STATUS X (UIDNEXT 99999999999)", "UIDNEXT "), 0);
    ck_assert_uint_eq(wb_imap_status_value("* STATUS X (UIDNEXT  7)", "UIDNEXT "), 0);
    ck_assert_uint_eq(wb_imap_status_value("* STATUS X ()", "UIDVALIDITY "), 0);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("imap_parse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_search_plain);
    tcase_add_test(tc, test_search_hostile);
    tcase_add_test(tc, test_status);
    suite_add_tcase(s, tc);
    return s;
}
