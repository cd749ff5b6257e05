#include <check.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/buf.h"
#include "warmbench/mime.h"

/* Decodes every =?UTF-8?B?...?= word in h, checking each is <= 75 chars,
 * holds whole UTF-8 characters and each folded line is <= 998. */
static char *decode_words(const char *h)
{
    struct wb_buf out;
    wb_buf_init(&out);
    const char *line = h;
    for (const char *nl; (nl = strstr(line, "\r\n")); line = nl + 2) {
        ck_assert_int_eq(nl[2], ' ');
        ck_assert_int_le(nl - line, 998);
    }
    ck_assert_uint_le(strlen(line), 998);
    for (const char *p = h; (p = strstr(p, "=?UTF-8?B?"));) {
        const char *end = strstr(p + 10, "?=");
        ck_assert_ptr_nonnull(end);
        ck_assert_int_le(end + 2 - p, 75);
        unsigned char raw[64];
        int n = EVP_DecodeBlock(raw, (const unsigned char *)p + 10, (int)(end - p - 10));
        ck_assert_int_ge(n, 0);
        while (n > 0 && end[-1] == '=') { /* EVP_DecodeBlock counts padding */
            n--;
            end--;
        }
        ck_assert((raw[0] & 0xC0) != 0x80);
        wb_buf_append(&out, raw, (size_t)n);
        p = strstr(p + 10, "?=") + 2;
    }
    return out.data ? wb_buf_steal(&out) : strdup("");
}

START_TEST(test_sanitize_replaces_controls)
{
    char *s = wb_mime_sanitize("a\r\nb\tc\x01\x7f" "d");
    ck_assert_str_eq(s, "a  b c  d");
    free(s);
}
END_TEST

START_TEST(test_header_text_plain_and_encoded)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mime_header_text(&b, 9, "Hello there");
    ck_assert_str_eq(b.data, "Hello there");
    wb_buf_reset(&b);
    wb_mime_header_text(&b, 9, "Hi\r\nBcc: x@y");
    ck_assert_str_eq(b.data, "Hi  Bcc: x@y");
    wb_buf_reset(&b);
    /* Text that looks like an encoded word is encoded, not passed on. */
    wb_mime_header_text(&b, 9, "=?UTF-8?B?AAAA?=");
    ck_assert(strncmp(b.data, "=?UTF-8?B?", 10) == 0);
    char *d = decode_words(b.data);
    ck_assert_str_eq(d, "=?UTF-8?B?AAAA?=");
    free(d);
    wb_buf_reset(&b);
    const char *u = "Café ☕ — ünïcödé 日本語のテキストがとても長い件名です, déjà vu, "
                    "façade, naïve, 😀😀😀😀😀😀😀😀😀😀 and more";
    wb_mime_header_text(&b, 9, u);
    d = decode_words(b.data);
    ck_assert_str_eq(d, u);
    free(d);
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_long_ascii_header_is_folded)
{
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mime_header_text(&b, 9, big);
    char *d = decode_words(b.data);
    ck_assert_str_eq(d, big);
    free(d);
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_phrase_forms)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mime_phrase(&b, 6, "Ana Ruiz");
    ck_assert_str_eq(b.data, "Ana Ruiz");
    wb_buf_reset(&b);
    wb_mime_phrase(&b, 6, "Ruiz, Ana");
    ck_assert_str_eq(b.data, "\"Ruiz, Ana\"");
    wb_buf_reset(&b);
    wb_mime_phrase(&b, 6, "a\"b\\c <x@y>");
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c <x@y>\"");
    wb_buf_reset(&b);
    wb_mime_phrase(&b, 6, "Evil\r\nBcc: v@x");
    ck_assert_str_eq(b.data, "\"Evil  Bcc: v@x\"");
    wb_buf_reset(&b);
    wb_mime_phrase(&b, 6, "Zoë O'Brien");
    char *d = decode_words(b.data);
    ck_assert_str_eq(d, "Zoë O'Brien");
    free(d);
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_date_rfc5322)
{
    char d[32];
    wb_mime_date(0, d);
    ck_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    wb_mime_date(1700000000, d);
    ck_assert_str_eq(d, "Tue, 14 Nov 2023 22:13:20 +0000");
}
END_TEST

START_TEST(test_quoted_printable)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mime_qp(&b, "a \nb=c\r\n.dot\rFrom me\né\t");
    ck_assert_str_eq(b.data, "a=20\r\nb=3Dc\r\n=2Edot\r\n=46rom me\r\n=C3=A9=09");
    wb_buf_reset(&b);
    char line[400];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    line[100] = '\xc3';
    line[101] = '\xa9';
    wb_mime_qp(&b, line);
    size_t total = 0;
    for (char *p = b.data, *nl; p; p = nl ? nl + 2 : NULL) {
        nl = strstr(p, "\r\n");
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        ck_assert_uint_le(n, 76);
        if (nl)
            ck_assert_int_eq(p[n - 1], '=');
        total += n;
    }
    ck_assert_uint_gt(total, 398);
    /* Every byte escaped: the worst case for the room reserved up front. */
    for (size_t n = 1; n < 600; n += 37) {
        char all[600];
        memset(all, '\xff', n);
        all[n] = '\0';
        wb_buf_reset(&b);
        wb_mime_qp(&b, all);
        ck_assert_uint_eq(b.len, strlen(b.data));
        ck_assert_uint_eq(b.len, n * 3 + (n * 3 - 1) / 75 * 3);
    }
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_addr_ok)
{
    ck_assert(wb_mime_addr_ok("ana@example.com"));
    ck_assert(wb_mime_addr_ok("b+abc234@bounces.example.com"));
    ck_assert(!wb_mime_addr_ok("ana@example.com\r\nBcc: x@y"));
    ck_assert(!wb_mime_addr_ok("Ana <ana@example.com>"));
    ck_assert(!wb_mime_addr_ok("ana.example.com"));
    ck_assert(!wb_mime_addr_ok("a@b@c"));
    ck_assert(!wb_mime_addr_ok(""));
    ck_assert(!wb_mime_addr_ok("zoë@example.com"));
}
END_TEST

START_TEST(test_setup_refuses_and_builds)
{
    CURL *e = curl_easy_init();
    struct wb_mail_handles h;
    char err[128];
    struct wb_mail m = {.from_name = "Ana", .from_email = "ana@example.com",
                        .to_email = "x@example.org\r\nBcc: v@example.org", .subject = "s",
                        .text = "t", .message_id = "1@example.com"};
    ck_assert_int_eq(wb_mail_setup(e, &m, &h, err, sizeof err), -1);
    ck_assert_str_eq(err, "bad To address");
    m.to_email = "x@example.org";
    m.message_id = "1@example.com>\r\nX: y";
    ck_assert_int_eq(wb_mail_setup(e, &m, &h, err, sizeof err), -1);
    m.message_id = "1@example.com";
    m.text = NULL;
    ck_assert_int_eq(wb_mail_setup(e, &m, &h, err, sizeof err), -1);
    m.text = "hello";
    m.html = "<p>hello</p>";
    m.in_reply_to = "0@example.com";
    m.list_unsubscribe_url = "https://go.example.com/u/T";
    m.subject = "a\r\nX-Injected: 1";
    ck_assert_int_eq(wb_mail_setup(e, &m, &h, err, sizeof err), 0);
    ck_assert_uint_eq(h.raw_len, strlen(h.raw));
    /* Every line ends in CRLF; the injection stayed inside its header. */
    for (const char *p = h.raw; (p = strchr(p, '\n')); p++)
        ck_assert(p > h.raw && p[-1] == '\r');
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nReferences: <0@example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nSubject: a  X-Injected: 1\r\n"));
    ck_assert_ptr_null(strstr(h.raw, "\r\nX-Injected"));
    const char *ct = strstr(h.raw, "\r\nContent-Type: multipart/alternative; boundary=\"");
    ck_assert_ptr_nonnull(ct);
    char bnd[64];
    ck_assert_int_eq(sscanf(ct, "\r\nContent-Type: multipart/alternative; boundary=\"%63[^\"]\"", bnd), 1);
    char want[512];
    snprintf(want, sizeof want, "\r\n\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\nhello\r\n--%s\r\n"
             "Content-Type: text/html; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>hello</p>\r\n--%s--\r\n",
             bnd, bnd, bnd);
    ck_assert_str_eq(strstr(h.raw, "\r\n\r\n"), want);
    wb_mail_handles_free(&h);
    m.html = NULL;
    ck_assert_int_eq(wb_mail_setup(e, &m, &h, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nMIME-Version: 1.0\r\n"));
    ck_assert_ptr_null(strstr(h.raw, "multipart"));
    wb_mail_handles_free(&h);
    curl_easy_cleanup(e);
}
END_TEST

/* Feedback-ID is carried as built, and nothing that could end the header
 * gets in. */
START_TEST(test_feedback_id)
{
    struct wb_mail m = {.from_email = "ana@example.com", .to_email = "x@example.org",
                        .subject = "s", .text = "hello", .message_id = "1@example.com",
                        .feedback_id = "2:nurture:ana:warmbench"};
    struct wb_mail_handles h = {0};
    char err[128];
    ck_assert_int_eq(wb_mail_prepare(&m, &h, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(h.raw, "\r\nFeedback-ID: 2:nurture:ana:warmbench\r\n"));
    wb_mail_handles_free(&h);
    m.feedback_id = "2:nurture:ana\r\nBcc: x@evil.example";
    ck_assert_int_eq(wb_mail_prepare(&m, &h, err, sizeof err), -1);
    ck_assert_str_eq(err, "bad Feedback-ID");
    m.feedback_id = "";
    ck_assert_int_eq(wb_mail_prepare(&m, &h, err, sizeof err), -1);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sanitize_replaces_controls);
    tcase_add_test(tc, test_header_text_plain_and_encoded);
    tcase_add_test(tc, test_long_ascii_header_is_folded);
    tcase_add_test(tc, test_phrase_forms);
    tcase_add_test(tc, test_date_rfc5322);
    tcase_add_test(tc, test_quoted_printable);
    tcase_add_test(tc, test_addr_ok);
    tcase_add_test(tc, test_setup_refuses_and_builds);
    tcase_add_test(tc, test_feedback_id);
    suite_add_tcase(s, tc);
    return s;
}
