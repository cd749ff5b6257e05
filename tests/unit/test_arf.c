/* Complaint reports (ARF, RFC 5965): recognised by their report type and
 * Feedback-Type, and the reported mail found by its Message-ID. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/arf.h"

static const char HEAD[] =
    "From: <staff@hotmail.example>\r\n"
    "To: <fbl@bounces.example.com>\r\n"
    "Subject: complaint about message\r\n"
    "Content-Type: multipart/report; report-type=\"Feedback-Report\";\r\n"
    "\tboundary=\"part1\"\r\n\r\n";

static const char BODY[] =
    "--part1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
    "--part1\r\nContent-Type: message/feedback-report\r\n\r\n"
    "Feedback-Type: Abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
    "--part1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    "From: Ana <ana@example.com>\r\nMessage-ID: <wb.42.0011aabb@example.com>\r\n"
    "Message-ID: no brackets here\r\n"
    "--part1--\r\n";

static int parse(const char *head, struct wb_mail_head *h)
{
    return wb_mail_head_parse(head, strlen(head), h, NULL);
}

START_TEST(test_feedback_report)
{
    struct wb_mail_head h = {0};
    ck_assert_int_eq(parse(HEAD, &h), 0);
    char type[32];
    ck_assert_int_eq(wb_arf_feedback_type(&h, BODY, strlen(BODY), type, sizeof type), 0);
    ck_assert_str_eq(type, "abuse");
    ck_assert(wb_arf_is_complaint(type));
    ck_assert(!wb_arf_is_complaint("not-spam"));
    ck_assert(!wb_arf_is_complaint("auth-failure"));
    char *ids[WB_ARF_MAX_IDS];
    ck_assert_uint_eq(wb_arf_message_ids(BODY, strlen(BODY), ids), 1);
    ck_assert_str_eq(ids[0], "wb.42.0011aabb@example.com");
    free(ids[0]);
    wb_mail_head_free(&h);
}
END_TEST

START_TEST(test_not_a_complaint)
{
    struct wb_mail_head h = {0};
    char type[32];
    /* A DSN is a report too, of another type. */
    ck_assert_int_eq(parse("From: <mailer-daemon@x.example>\r\n"
                           "Content-Type: multipart/report; report-type=delivery-status;"
                           " boundary=b\r\n\r\n", &h), 0);
    ck_assert_int_eq(wb_arf_feedback_type(&h, BODY, strlen(BODY), type, sizeof type), -1);
    wb_mail_head_free(&h);
    /* The right type without a Feedback-Type field, or with an empty one. */
    ck_assert_int_eq(parse(HEAD, &h), 0);
    const char *no = "--part1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--part1--\r\n";
    ck_assert_int_eq(wb_arf_feedback_type(&h, no, strlen(no), type, sizeof type), -1);
    const char *empty = "Feedback-Type: \r\n";
    ck_assert_int_eq(wb_arf_feedback_type(&h, empty, strlen(empty), type, sizeof type), -1);
    ck_assert_int_eq(wb_arf_feedback_type(&h, NULL, 0, type, sizeof type), -1);
    wb_mail_head_free(&h);
    ck_assert_int_eq(parse("From: <a@b.example>\r\nSubject: hi\r\n\r\n", &h), 0);
    ck_assert_int_eq(wb_arf_feedback_type(&h, BODY, strlen(BODY), type, sizeof type), -1);
    wb_mail_head_free(&h);
}
END_TEST

START_TEST(test_ids_bounded)
{
    char body[4096] = "", *ids[WB_ARF_MAX_IDS];
    for (int i = 0; i < 20; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), "Message-ID: <%d@x.example>\n", i);
    ck_assert_uint_eq(wb_arf_message_ids(body, strlen(body), ids), WB_ARF_MAX_IDS);
    ck_assert_str_eq(ids[7], "7@x.example");
    for (int i = 0; i < WB_ARF_MAX_IDS; i++)
        free(ids[i]);
    const char *bad = "Message-ID: <>\nMessage-ID: <a b@c>\nMessage-ID: <unclosed\n";
    ck_assert_uint_eq(wb_arf_message_ids(bad, strlen(bad), ids), 0);
    /* A NUL or a control byte inside (found by tests/fuzz/fuzz_mail): the
     * NUL made an empty id, or cut "<a\0b@c>" to "a". */
    const char ctl[] = "Message-ID: <\0\0x@c>\nMessage-ID: <a\0b@c>\nMessage-ID: <a\x1b@c>\n";
    ck_assert_uint_eq(wb_arf_message_ids(ctl, sizeof ctl - 1, ids), 0);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("arf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_feedback_report);
    tcase_add_test(tc, test_not_a_complaint);
    tcase_add_test(tc, test_ids_bounded);
    suite_add_tcase(s, tc);
    return s;
}
