#include <check.h>
#include <string.h>
#include "warmbench/machine.h"

static const char *browser =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";

static struct wb_machine_req req(const char *ua)
{
    return (struct wb_machine_req){ua, NULL, "203.0.113.9", false, 3600, 5};
}

START_TEST(test_person_open_and_click)
{
    struct wb_machine_req r = req(browser);
    ck_assert_ptr_null(wb_machine_open(&r));
    ck_assert_ptr_null(wb_machine_click(&r));
}
END_TEST

START_TEST(test_apple_mpp)
{
    struct wb_machine_req r = req("Mozilla/5.0");
    ck_assert_str_eq(wb_machine_open(&r), "apple-mpp");
    r = req(browser);
    r.remote_ip = "17.58.1.2";
    ck_assert_str_eq(wb_machine_open(&r), "apple-mpp");
    r.remote_ip = "::ffff:17.58.1.2";
    ck_assert_str_eq(wb_machine_open(&r), "apple-mpp");
    r.remote_ip = "172.16.0.1"; /* not 17/8 */
    ck_assert_ptr_null(wb_machine_open(&r));
}
END_TEST

START_TEST(test_image_proxies)
{
    static const char *const uas[] = {
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "googleimageproxy", "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "Barracuda Sentinel", "Mimecast", "proofpoint url defense"};
    for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
        struct wb_machine_req r = req(uas[i]);
        ck_assert_ptr_nonnull(wb_machine_open(&r));
    }
    struct wb_machine_req r = req(uas[0]);
    ck_assert_str_eq(wb_machine_open(&r), "google-proxy");
}
END_TEST

START_TEST(test_no_agent_and_prefetch)
{
    struct wb_machine_req r = req(NULL);
    ck_assert_str_eq(wb_machine_open(&r), "no-agent");
    ck_assert_str_eq(wb_machine_click(&r), "no-agent");
    r = req("");
    ck_assert_str_eq(wb_machine_open(&r), "no-agent");
    r = req(browser);
    r.purpose = "prefetch";
    ck_assert_str_eq(wb_machine_open(&r), "prefetch");
    ck_assert_str_eq(wb_machine_click(&r), "prefetch");
}
END_TEST

START_TEST(test_scanners_click)
{
    static const char *const uas[] = {"Barracuda Sentinel (EE)", "Mimecast-URL-Protect",
                                      "Proofpoint", "python-requests/2.31.0", "curl/7.88.1",
                                      "Wget/1.21", "Go-http-client/1.1", "Slackbot-LinkExpanding 1.0",
                                      "facebookexternalhit/1.1", "Mozilla/5.0 (compatible; bingbot/2.0)"};
    for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
        struct wb_machine_req r = req(uas[i]);
        ck_assert_msg(wb_machine_click(&r) != NULL, "%s", uas[i]);
    }
}
END_TEST

START_TEST(test_head_and_too_soon)
{
    struct wb_machine_req r = req(browser);
    r.head = true;
    ck_assert_str_eq(wb_machine_click(&r), "head");
    ck_assert_str_eq(wb_machine_open(&r), "head");
    r = req(browser);
    r.since_send_s = 4.9;
    ck_assert_str_eq(wb_machine_click(&r), "too-soon");
    r.since_send_s = 5.0;
    ck_assert_ptr_null(wb_machine_click(&r));
    r.since_send_s = -1; /* unknown send time: no judgement on timing */
    ck_assert_ptr_null(wb_machine_click(&r));
    r.since_send_s = 0;
    r.machine_click_s = 0; /* the check turned off */
    ck_assert_ptr_null(wb_machine_click(&r));
}
END_TEST

START_TEST(test_opens_ignore_timing)
{
    struct wb_machine_req r = req(browser);
    r.since_send_s = 0.1;
    ck_assert_ptr_null(wb_machine_open(&r));
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("machine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_person_open_and_click);
    tcase_add_test(tc, test_apple_mpp);
    tcase_add_test(tc, test_image_proxies);
    tcase_add_test(tc, test_no_agent_and_prefetch);
    tcase_add_test(tc, test_scanners_click);
    tcase_add_test(tc, test_head_and_too_soon);
    tcase_add_test(tc, test_opens_ignore_timing);
    suite_add_tcase(s, tc);
    return s;
}
