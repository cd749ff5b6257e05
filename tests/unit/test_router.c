#include <check.h>
#include <string.h>
#include "warmbench/tokens.h"
#include "warmbench/router.h"

static const unsigned char key[] = "test-secret-0123456789abcdef-0123456789";
#define KL (sizeof key - 1)

static char *tok(enum wb_token_kind kind, int64_t id, int link)
{
    static char bufs[8][WB_TOKEN_MAX];
    static int n;
    char *t = bufs[n++ % 8];
    ck_assert_uint_gt(wb_token_make(key, KL, kind, id, link, t, WB_TOKEN_MAX), 0);
    return t;
}

static enum wb_route_kind route(const char *method, const char *fmt, const char *t, bool admin,
                                bool split, struct wb_route *r)
{
    char path[256];
    snprintf(path, sizeof path, fmt, t);
    return wb_route(method, path, admin, split, key, KL, r);
}

START_TEST(test_token_routes)
{
    struct wb_route r;
    ck_assert_int_eq(route("GET", "/o/%s.gif", tok(WB_TOKEN_OPEN, 42, 0), false, false, &r),
                     WB_ROUTE_OPEN);
    ck_assert(r.tok.message_id == 42);
    ck_assert(!r.head);
    ck_assert_int_eq(route("GET", "/c/%s", tok(WB_TOKEN_CLICK, 7, 3), false, false, &r),
                     WB_ROUTE_CLICK);
    ck_assert(r.tok.message_id == 7);
    ck_assert_int_eq(r.tok.link, 3);
    ck_assert_int_eq(route("HEAD", "/c/%s", tok(WB_TOKEN_CLICK, 7, 3), false, false, &r),
                     WB_ROUTE_CLICK);
    ck_assert(r.head);
    ck_assert_int_eq(route("GET", "/u/%s", tok(WB_TOKEN_UNSUB, 9, 0), false, false, &r),
                     WB_ROUTE_UNSUB_PAGE);
    ck_assert_int_eq(route("POST", "/u/%s", tok(WB_TOKEN_UNSUB, 9, 0), false, false, &r),
                     WB_ROUTE_UNSUB_POST);
}
END_TEST

START_TEST(test_wrong_kind_and_method)
{
    struct wb_route r;
    const char *o = tok(WB_TOKEN_OPEN, 1, 0), *c = tok(WB_TOKEN_CLICK, 1, 0);
    const char *u = tok(WB_TOKEN_UNSUB, 1, 0), *b = tok(WB_TOKEN_BOUNCE, 1, 0);
    ck_assert_int_eq(route("GET", "/c/%s", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/c/%s", u, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/c/%s", b, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/%s.gif", c, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/u/%s", c, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("POST", "/c/%s", c, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("POST", "/o/%s.gif", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("PUT", "/u/%s", u, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("DELETE", "/c/%s", c, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("get", "/c/%s", c, false, false, &r), WB_ROUTE_NONE);
}
END_TEST

START_TEST(test_altered_and_malformed_paths)
{
    struct wb_route r;
    char t[WB_TOKEN_MAX];
    strcpy(t, tok(WB_TOKEN_CLICK, 5, 1));
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++) {
        char saved = t[i];
        t[i] = saved == 'A' ? 'B' : 'A';
        ck_assert_int_eq(route("GET", "/c/%s", t, false, false, &r), WB_ROUTE_NONE);
        t[i] = saved;
    }
    ck_assert_int_eq(route("GET", "/c/%s", t, false, false, &r), WB_ROUTE_CLICK);
    t[n - 1] = '\0';
    ck_assert_int_eq(route("GET", "/c/%s", t, false, false, &r), WB_ROUTE_NONE);
    const char *o = tok(WB_TOKEN_OPEN, 5, 0);
    ck_assert_int_eq(route("GET", "/o/%s", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/%s.gifx", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/%s.gif/", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "//o/%s.gif", o, false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/.gif%s", "", false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/%s", ".gif", false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/c/%s", "", false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "%s", "", false, false, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/c/%s",
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                           false, false, &r), WB_ROUTE_NONE);
}
END_TEST

START_TEST(test_other_key_rejected)
{
    static const unsigned char other[] = "another-secret";
    char t[WB_TOKEN_MAX], path[80];
    wb_token_make(other, sizeof other - 1, WB_TOKEN_CLICK, 5, 0, t, sizeof t);
    snprintf(path, sizeof path, "/c/%s", t);
    struct wb_route r;
    ck_assert_int_eq(wb_route("GET", path, false, false, key, KL, &r), WB_ROUTE_NONE);
}
END_TEST

START_TEST(test_admin_split)
{
    struct wb_route r;
    const char *o = tok(WB_TOKEN_OPEN, 1, 0);
    /* No admin listener: everything on the public one. */
    ck_assert_int_eq(wb_route("GET", "/healthz", false, false, key, KL, &r), WB_ROUTE_HEALTHZ);
    ck_assert_int_eq(wb_route("GET", "/metrics", false, false, key, KL, &r), WB_ROUTE_METRICS);
    ck_assert_int_eq(wb_route("HEAD", "/healthz", false, false, key, KL, &r), WB_ROUTE_HEALTHZ);
    ck_assert_int_eq(wb_route("POST", "/healthz", false, false, key, KL, &r), WB_ROUTE_NONE);
    /* With one: health and metrics only there, tracking only public. */
    ck_assert_int_eq(wb_route("GET", "/healthz", false, true, key, KL, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(wb_route("GET", "/metrics", false, true, key, KL, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(wb_route("GET", "/healthz", true, true, key, KL, &r), WB_ROUTE_HEALTHZ);
    ck_assert_int_eq(wb_route("GET", "/metrics", true, true, key, KL, &r), WB_ROUTE_METRICS);
    ck_assert_int_eq(route("GET", "/o/%s.gif", o, true, true, &r), WB_ROUTE_NONE);
    ck_assert_int_eq(route("GET", "/o/%s.gif", o, false, true, &r), WB_ROUTE_OPEN);
    ck_assert_int_eq(wb_route("GET", "/healthz/", false, false, key, KL, &r), WB_ROUTE_NONE);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, test_token_routes);
    tcase_add_test(tc, test_wrong_kind_and_method);
    tcase_add_test(tc, test_altered_and_malformed_paths);
    tcase_add_test(tc, test_other_key_rejected);
    tcase_add_test(tc, test_admin_split);
    suite_add_tcase(s, tc);
    return s;
}
