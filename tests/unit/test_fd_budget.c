/* The descriptor budget: the outbound reserve from a configuration, the
 * HTTP listeners' share of RLIMIT_NOFILE, and raising the soft limit. */
#include <check.h>
#include <string.h>
#include <sys/resource.h>
#include "warmbench/config.h"
#include "warmbench/fd_budget.h"
#include "warmbench/http_loop.h"

static struct rlimit saved;

static void save_limit(void)
{
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
}

static void restore_limit(void)
{
    setrlimit(RLIMIT_NOFILE, &saved);
    wb_http_reserve_fds(WB_HTTP_RESERVE_DEFAULT);
}

static void soft_limit(rlim_t n)
{
    struct rlimit r = saved;
    r.rlim_cur = n;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &r), 0);
}

START_TEST(test_reserve_grows_with_outbound_work)
{
    struct wb_config c;
    memset(&c, 0, sizeof c);
    c.smtp.connections = 8;
    unsigned base = wb_fd_reserve(&c);
    /* 8 SMTP connections and the top mailbox: 4 descriptors each, beside
     * the fixed part (loop, files, PostgreSQL, curl's cache). */
    ck_assert_uint_eq(base, 96 + 16 + 4 * 9);
    struct wb_sender s[2];
    memset(s, 0, sizeof s);
    s[0].smtp.connections = 4;
    s[1].smtp.connections = 16;
    c.senders = s;
    c.n_senders = 2;
    /* Each sender: its connections, its IMAP poller and its token. */
    ck_assert_uint_eq(wb_fd_reserve(&c), base + 4 * (4 + 2 + 16 + 2));
    c.ats.enabled = true;
    ck_assert_uint_eq(wb_fd_reserve(&c), base + 4 * (4 + 2 + 16 + 2) + 4 * 32);
}
END_TEST

START_TEST(test_budget_is_the_limit_less_the_reserve)
{
    save_limit();
    soft_limit(1000);
    wb_http_reserve_fds(300);
    ck_assert_uint_eq(wb_http_conn_budget(), 700);
    wb_http_reserve_fds(2000); /* more than the limit: a floor, not 0 */
    ck_assert_uint_eq(wb_http_conn_budget(), 16);
    restore_limit();
}
END_TEST

START_TEST(test_raise_takes_the_hard_limit)
{
    save_limit();
    if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max < 600)
        return; /* nothing to raise to in this environment */
    soft_limit(512);
    unsigned long was = 0, now = 0;
    ck_assert_int_eq(wb_fd_raise_limit(&was, &now), 0);
    ck_assert_uint_eq(was, 512);
    ck_assert_uint_eq(now, (unsigned long)saved.rlim_max);
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    ck_assert_uint_eq(r.rlim_cur, saved.rlim_max);
    /* Already at the hard limit: nothing to do, no error. */
    ck_assert_int_eq(wb_fd_raise_limit(&was, &now), 0);
    ck_assert_uint_eq(was, now);
    restore_limit();
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("fd_budget");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reserve_grows_with_outbound_work);
    tcase_add_test(tc, test_budget_is_the_limit_less_the_reserve);
    tcase_add_test(tc, test_raise_takes_the_hard_limit);
    suite_add_tcase(s, tc);
    return s;
}
