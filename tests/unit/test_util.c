/* wb_url_redacted: no password from a configured URL reaches a log line. */
#include <check.h>
#include <stdlib.h>
#include "warmbench/util.h"

static void same(const char *in, const char *want)
{
    char *got = wb_url_redacted(in);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_url_redacted)
{
    same("imaps://ana:s3cret@imap.example.com/INBOX", "imaps://***@imap.example.com/INBOX");
    same("smtp://user@smtp.example.com:587", "smtp://***@smtp.example.com:587");
    same("smtps://a%40b:p%3Aw@h:465/", "smtps://***@h:465/");
    same("smtp://smtp.example.com:587", "smtp://smtp.example.com:587");
    /* An "@" after the host is a path's, not user-info. */
    same("https://ats.example.com/hook?to=a@b", "https://ats.example.com/hook?to=a@b");
    same("imap://u:p@w@host/INBOX", "imap://***@host/INBOX");
    same("not a url", "not a url");
    same(NULL, "(none)");
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_url_redacted);
    suite_add_tcase(s, tc);
    return s;
}
