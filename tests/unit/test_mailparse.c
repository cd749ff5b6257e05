#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/mailparse.h"
#include "warmbench/tokens.h"

static const unsigned char key[] = "test-secret-0123456789abcdef-0123456789";
#define KL (sizeof key - 1)

static struct wb_mail_head head(const char *s, size_t *off)
{
    struct wb_mail_head h;
    ck_assert_int_eq(wb_mail_head_parse(s, strlen(s), &h, off), 0);
    return h;
}

START_TEST(test_unfold_and_body_offset)
{
    const char *m = "Subject: a long\r\n\tsubject\r\nTO : x@y\r\nX-Empty:\r\n\r\nbody\r\n";
    size_t off;
    struct wb_mail_head h = head(m, &off);
    ck_assert_uint_eq(h.n, 3);
    ck_assert_str_eq(wb_mail_head_get(&h, "subject"), "a long\tsubject");
    ck_assert_str_eq(wb_mail_head_get(&h, "To"), "x@y");
    ck_assert_str_eq(wb_mail_head_get(&h, "x-empty"), "");
    ck_assert_str_eq(m + off, "body\r\n");
    ck_assert_ptr_null(wb_mail_head_get(&h, "From"));
    wb_mail_head_free(&h);
}
END_TEST

START_TEST(test_malformed_headers_rejected)
{
    struct wb_mail_head h;
    const char *bad[] = {" starts with a continuation\r\n", "no colon here\r\n",
                         "From nobody Mon Jan 1\r\n", ": empty name\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(wb_mail_head_parse(bad[i], strlen(bad[i]), &h, NULL), -1);
    const char nul[] = "Subject: a\0b\r\n";
    ck_assert_int_eq(wb_mail_head_parse(nul, sizeof nul - 1, &h, NULL), -1);
    /* too many fields, and one field too long */
    size_t n = (WB_MAIL_MAX_FIELDS + 1) * 8;
    char *many = calloc(n + 1, 1);
    for (int i = 0; i <= WB_MAIL_MAX_FIELDS; i++)
        strcat(many, "X-A: b\r\n");
    ck_assert_int_eq(wb_mail_head_parse(many, strlen(many), &h, NULL), -1);
    free(many);
    static char big[WB_MAIL_MAX_FIELD + 64] = "X-Big: ";
    memset(big + 7, 'a', WB_MAIL_MAX_FIELD);
    memcpy(big + 7 + WB_MAIL_MAX_FIELD, "\r\n", 3);
    ck_assert_int_eq(wb_mail_head_parse(big, strlen(big), &h, NULL), -1);
    ck_assert_uint_eq(h.n, 0);
}
END_TEST

START_TEST(test_rfc2047_subjects)
{
    struct { const char *in, *out; } c[] = {
        {"=?UTF-8?Q?Abwesenheitsnotiz:_Caf=C3=A9?=", "Abwesenheitsnotiz: Café"},
        {"=?utf-8?B?UsOpcG9uc2UgYXV0b21hdGlxdWU=?=", "Réponse automatique"},
        {"=?ISO-8859-1?Q?R=E9ponse?= =?ISO-8859-1?Q?_automatique?=", "Réponse automatique"},
        {"Re: =?utf-8?q?hola?=  world", "Re: hola world"},
        {"=?bogus?X?abc?= plain", "=?bogus?X?abc?= plain"},
        {"=?no-such-charset?Q?caf=E9?=", "café"},
        {"latin1 \xe9t\xe9", "latin1 été"},
        {"ctl\x01here", "ctl here"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *s = wb_mail_decode_words(c[i].in);
        ck_assert_str_eq(s, c[i].out);
        free(s);
    }
}
END_TEST

START_TEST(test_refs_order_and_dedup)
{
    struct wb_mail_head h = head("In-Reply-To: <wb.2.ab@example.com>\r\n"
                                 "References: <root@x> <wb.1.aa@example.com>\r\n"
                                 " <wb.2.ab@example.com>\r\n\r\n", NULL);
    char **ids;
    size_t n = wb_mail_refs(&h, &ids);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(ids[0], "wb.2.ab@example.com");
    ck_assert_str_eq(ids[1], "wb.1.aa@example.com");
    ck_assert_str_eq(ids[2], "root@x");
    wb_mail_strv_free(ids, n);
    wb_mail_head_free(&h);
    h = head("In-Reply-To: wb.3.cc@example.com (bare)\r\n\r\n", NULL);
    n = wb_mail_refs(&h, &ids);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(ids[0], "wb.3.cc@example.com");
    wb_mail_strv_free(ids, n);
    wb_mail_head_free(&h);
}
END_TEST

START_TEST(test_auto_markers)
{
    struct { const char *h; bool is_auto; } c[] = {
        {"Auto-Submitted: auto-replied\r\n", true},
        {"Auto-Submitted: No\r\n", false},
        {"Auto-Submitted: auto-generated; owner-email=x@y\r\n", true},
        {"X-Autoreply: yes\r\n", true},
        {"Precedence: bulk\r\n", true},
        {"Precedence: auto_reply\r\n", true},
        {"Precedence: first-class\r\n", false},
        {"Subject: hi\r\n", false},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct wb_mail_head h = head(c[i].h, NULL);
        ck_assert_msg(wb_mail_is_auto(&h) == c[i].is_auto, "%s", c[i].h);
        wb_mail_head_free(&h);
    }
}
END_TEST

START_TEST(test_params)
{
    char v[64];
    ck_assert_int_eq(wb_mail_param("multipart/report; report-type=delivery-status;\t"
                                   "boundary=\"a \\\"b\\\" c\"", "boundary", v, sizeof v), 0);
    ck_assert_str_eq(v, "a \"b\" c");
    ck_assert_int_eq(wb_mail_param("text/plain; CHARSET=iso-8859-1", "charset", v, sizeof v), 0);
    ck_assert_str_eq(v, "iso-8859-1");
    ck_assert_int_eq(wb_mail_param("text/plain", "charset", v, sizeof v), -1);
    ck_assert_int_eq(wb_mail_param("text/plain; charset=0123456789", "charset", v, 4), -1);
}
END_TEST

static const char dsn_head[] =
    "To: b+%s@bounces.example.com\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"BND\"\r\n\r\n";
static const char dsn_body[] =
    "--BND\r\nContent-Type: text/plain\r\n\r\nStatus: 4.0.0 in the human part is ignored\r\n"
    "--BND\r\nContent-Type: message/delivery-status\r\n\r\n"
    "Reporting-MTA: dns; mx.example.org\r\n\r\n"
    "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\n"
    "Status: 5.1.1 (user unknown)\r\n\r\n"
    "--BND\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n--BND--\r\n";

START_TEST(test_dsn_status_and_token)
{
    char tok[WB_TOKEN_MAX], hb[512], st[16];
    wb_token_make(key, KL, WB_TOKEN_BOUNCE, 4242, 0, tok, sizeof tok);
    snprintf(hb, sizeof hb, dsn_head, tok);
    size_t off;
    struct wb_mail_head h = head(hb, &off);
    ck_assert_int_eq(wb_mail_dsn_status(&h, dsn_body, strlen(dsn_body), st), 0);
    ck_assert_str_eq(st, "5.1.1");
    int64_t id = 0;
    ck_assert_int_eq(wb_mail_bounce_message(&h, NULL, 0, "bounces.example.com", key, KL, &id), 0);
    ck_assert(id == 4242);
    ck_assert_int_eq(wb_mail_bounce_message(&h, NULL, 0, "other.example.com", key, KL, &id), -1);
    wb_mail_head_free(&h);
    /* no DSN part: any Status line; uppercase token in the body */
    h = head("Subject: Undelivered Mail\r\n\r\n", NULL);
    char body[256];
    for (char *p = tok; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(body, sizeof body, "Return-Path: <B+%s@Bounces.Example.com>\r\nStatus: 4.4.1\r\n", tok);
    ck_assert_int_eq(wb_mail_dsn_status(&h, body, strlen(body), st), 0);
    ck_assert_str_eq(st, "4.4.1");
    ck_assert_int_eq(wb_mail_bounce_message(&h, body, strlen(body), "bounces.example.com", key,
                                            KL, &id), 0);
    /* an altered token is not ours */
    char *t = strstr(body, "+") + 1;
    t[3] = t[3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(wb_mail_bounce_message(&h, body, strlen(body), "bounces.example.com", key,
                                            KL, &id), -1);
    ck_assert_int_eq(wb_mail_dsn_status(&h, "Status: 5.1\r\n", 13, st), -1);
    ck_assert_int_eq(wb_mail_dsn_status(&h, "Status: 9.1.1\r\n", 15, st), -1);
    wb_mail_head_free(&h);
}
END_TEST

START_TEST(test_first_text)
{
    struct wb_mail_head h = head(
        "Content-Type: multipart/mixed; boundary=outer\r\n\r\n", NULL);
    const char *body =
        "preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n"
        "--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nJa, gerne! Gr=FC=DFe=\r\n aus K=F6ln\r\n"
        "--inner--\r\n--outer\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
        "attached\r\n--outer--\r\n";
    char *t = wb_mail_first_text(&h, body, strlen(body));
    ck_assert_str_eq(t, "Ja, gerne! Grüße aus Köln");
    free(t);
    wb_mail_head_free(&h);
    h = head("Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n", NULL);
    const char *b64 = "PHA+WWVzICZhbXA7IHRoYW5rcyZuYnNwOyEgJiMyMzM7PC9wPjxibG9ja3F1b3RlPm9sZDwv\r\n"
                      "YmxvY2txdW90ZT4=\r\n"; /* <p>Yes &amp; thanks&nbsp;! &#233;</p><blockquote>old</blockquote> */
    t = wb_mail_first_text(&h, b64, strlen(b64));
    ck_assert_str_eq(t, "\nYes & thanks ! é\n");
    free(t);
    wb_mail_head_free(&h);
    /* broken multipart: no boundary found → no text, no crash */
    h = head("Content-Type: multipart/mixed; boundary=zz\r\n\r\n", NULL);
    ck_assert_ptr_null(wb_mail_first_text(&h, "garbage", 7));
    wb_mail_head_free(&h);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("mailparse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_unfold_and_body_offset);
    tcase_add_test(tc, test_malformed_headers_rejected);
    tcase_add_test(tc, test_rfc2047_subjects);
    tcase_add_test(tc, test_refs_order_and_dedup);
    tcase_add_test(tc, test_auto_markers);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_dsn_status_and_token);
    tcase_add_test(tc, test_first_text);
    suite_add_tcase(s, tc);
    return s;
}
