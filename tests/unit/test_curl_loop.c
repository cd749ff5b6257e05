#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "warmbench/curl_loop.h"

struct got {
    int calls;
    CURLcode rc;
    size_t bytes;
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    ((struct got *)ud)->bytes += sz * n;
    return sz * n;
}

static void done(CURL *easy, CURLcode rc, void *ud)
{
    struct got *g = ud;
    g->calls++;
    g->rc = rc;
    curl_easy_cleanup(easy);
}

START_TEST(test_file_transfers_complete_once)
{
    char path[] = "/tmp/wbcl-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello", 5), 5);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "file://%s", path);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct wb_curl_loop *cl = wb_curl_loop_new(&loop);
    struct got g[5];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 5; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &g[i]);
        ck_assert_int_eq(wb_curl_loop_add(cl, e, done, &g[i]), 0);
    }
    ck_assert_uint_eq(wb_curl_loop_active(cl), 5);
    ck_assert_int_eq(g[0].calls, 0); /* never from inside add */
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(g[i].calls, 1);
        ck_assert_int_eq(g[i].rc, CURLE_OK);
        ck_assert_uint_eq(g[i].bytes, 5);
    }
    ck_assert_uint_eq(wb_curl_loop_active(cl), 0);
    wb_curl_loop_free(cl);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    unlink(path);
}
END_TEST

struct stall {
    struct wb_curl_loop *cl;
    struct got g;
    uv_timer_t t;
};

static void stop_all(uv_timer_t *t)
{
    struct stall *s = t->data;
    wb_curl_loop_free(s->cl);
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_free_aborts_running_transfers)
{
    /* A listener that never answers keeps the transfer running. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(lfd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct stall s;
    memset(&s, 0, sizeof s);
    s.cl = wb_curl_loop_new(&loop);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    ck_assert_int_eq(wb_curl_loop_add(s.cl, e, done, &s.g), 0);
    uv_timer_init(&loop, &s.t);
    s.t.data = &s;
    uv_timer_start(&s.t, stop_all, 200, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.g.calls, 1);
    ck_assert_int_eq(s.g.rc, CURLE_ABORTED_BY_CALLBACK);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    close(lfd);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("curl_loop");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_file_transfers_complete_once);
    tcase_add_test(tc, test_free_aborts_running_transfers);
    suite_add_tcase(s, tc);
    return s;
}
