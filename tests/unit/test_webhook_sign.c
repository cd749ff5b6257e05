#include <check.h>
#include <stdio.h>
#include <string.h>
#include "warmbench/webhook_sign.h"

static const unsigned char KEY[] = "ats-secret";
#define KLEN (sizeof KEY - 1)

/* Computed independently: printf '1700000000.{"a":1}' |
 * openssl dgst -sha256 -hmac ats-secret */
START_TEST(test_sign_known_vector)
{
    char h[WB_SIG_HEADER_MAX];
    wb_webhook_sign(KEY, KLEN, 1700000000, "{\"a\":1}", 7, h);
    ck_assert_str_eq(h, "t=1700000000,v1="
                        "50217b15f28bf4ada8207b22510f6d063f68d1fe1e8dbc6482894b1e5b385e45");
}
END_TEST

START_TEST(test_verify_roundtrip)
{
    char h[WB_SIG_HEADER_MAX];
    const char *body = "{\"type\":\"candidate.rejected\"}";
    wb_webhook_sign(KEY, KLEN, 1000, body, strlen(body), h);
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, h, body, strlen(body), 1000, 300), WB_SIG_OK);
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, h, body, strlen(body), 1300, 300), WB_SIG_OK);
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, h, body, strlen(body), 1301, 300), WB_SIG_STALE);
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, h, body, strlen(body), 699, 300), WB_SIG_STALE);
    /* One changed byte of the body, or another key, fails. */
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, h, "{\"type\":\"candidate.rejecteD\"}",
                                       strlen(body), 1000, 300), WB_SIG_MISMATCH);
    ck_assert_int_eq(wb_webhook_verify((const unsigned char *)"other", 5, h, body, strlen(body),
                                       1000, 300), WB_SIG_MISMATCH);
    /* The timestamp is signed: moving it breaks the signature. */
    char moved[WB_SIG_HEADER_MAX];
    snprintf(moved, sizeof moved, "t=1001%s", strchr(h, ','));
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, moved, body, strlen(body), 1000, 300),
                     WB_SIG_MISMATCH);
}
END_TEST

START_TEST(test_verify_rotation_and_spaces)
{
    char h[WB_SIG_HEADER_MAX], multi[256];
    wb_webhook_sign(KEY, KLEN, 5000, "x", 1, h);
    snprintf(multi, sizeof multi, "t=5000, v1=%064d, v0=zz,%s", 0, strchr(h, ',') + 1);
    ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, multi, "x", 1, 5000, 10), WB_SIG_OK);
}
END_TEST

START_TEST(test_verify_malformed)
{
    const char *bad[] = {NULL, "", "t=5", "v1=" "00", "t=abc,v1=00",
                         "t=5,v1=zz00000000000000000000000000000000000000000000000000000000000000",
                         "t=-5,v1=0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(wb_webhook_verify(KEY, KLEN, bad[i], "x", 1, 5, 10), WB_SIG_MALFORMED);
    ck_assert_int_eq(
        wb_webhook_verify(KEY, KLEN,
                          "t=5,v1=0000000000000000000000000000000000000000000000000000000000000000",
                          "x", 1, 5, 10),
        WB_SIG_MISMATCH);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("webhook_sign");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sign_known_vector);
    tcase_add_test(tc, test_verify_roundtrip);
    tcase_add_test(tc, test_verify_rotation_and_spaces);
    tcase_add_test(tc, test_verify_malformed);
    suite_add_tcase(s, tc);
    return s;
}
