/* Token and device answers read without trusting the server
 * (oauth_parse.h), and the token file's checks and atomic write
 * (oauth_store.h). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "warmbench/oauth_parse.h"
#include "warmbench/oauth_store.h"

static void parse(long status, const char *body, struct wb_oauth_reply *r)
{
    wb_oauth_parse_token(status, body, body ? strlen(body) : 0, r);
}

START_TEST(test_token_ok)
{
    struct wb_oauth_reply r;
    parse(200, "{\"access_token\":\"ya29.a0\",\"token_type\":\"Bearer\",\"expires_in\":3599,"
               "\"refresh_token\":\"1//0g\",\"scope\":\"https://mail.google.com/\"}", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_TOKEN);
    ck_assert_str_eq(r.access_token, "ya29.a0");
    ck_assert_str_eq(r.refresh_token, "1//0g");
    ck_assert_int_eq(r.expires_in, 3599);
    wb_oauth_reply_free(&r);
    /* No rotation, expires_in as a string, token_type in lower case. */
    parse(200, "{\"access_token\":\"x\",\"token_type\":\"bearer\",\"expires_in\":\"60\"}", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_TOKEN);
    ck_assert_ptr_null(r.refresh_token);
    ck_assert_int_eq(r.expires_in, 60);
    wb_oauth_reply_free(&r);
    /* expires_in absent: an hour; nonsense: clamped to at least 1 s. */
    parse(200, "{\"access_token\":\"x\"}", &r);
    ck_assert_int_eq(r.expires_in, WB_OAUTH_DEFAULT_EXPIRES_S);
    wb_oauth_reply_free(&r);
    parse(200, "{\"access_token\":\"x\",\"expires_in\":-5}", &r);
    ck_assert_int_eq(r.expires_in, 1);
    wb_oauth_reply_free(&r);
    /* A huge real is clamped, not cast (undefined; it came out as 1 s). */
    parse(200, "{\"access_token\":\"x\",\"expires_in\":1e300}", &r);
    ck_assert_int_eq(r.expires_in, 366L * 24 * 3600);
    wb_oauth_reply_free(&r);
}
END_TEST

START_TEST(test_token_unusable)
{
    /* Each of these must never reach an AUTH line or the keeper. */
    const char *bad[] = {
        "{\"access_token\":\"a b\"}",                       /* space */
        "{\"access_token\":\"a\\r\\nMAIL FROM:<x>\"}",      /* CR LF: command injection */
        "{\"access_token\":\"a\\u0001auth=x\"}",            /* SASL field separator */
        "{\"access_token\":\"\"}",
        "{\"access_token\":42}",
        "{\"access_token\":\"x\",\"token_type\":\"mac\"}",
        "{\"access_token\":\"x\",\"refresh_token\":\"r\\n\"}",
        "{\"token_type\":\"Bearer\"}",
        "[\"access_token\"]",
        "<html>ok</html>",
        "{\"access_token\":\"x\",\"access_token\":\"y\"}",  /* duplicate keys */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wb_oauth_reply r;
        parse(200, bad[i], &r);
        ck_assert_msg(r.kind == WB_OAUTH_REPLY_BAD, "accepted %s", bad[i]);
        ck_assert_ptr_null(r.access_token);
        ck_assert_ptr_nonnull(r.message);
        wb_oauth_reply_free(&r);
    }
    struct wb_oauth_reply r;
    parse(200, NULL, &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_BAD);
    wb_oauth_reply_free(&r);
}
END_TEST

START_TEST(test_error_bodies)
{
    struct wb_oauth_reply r;
    parse(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired "
               "or revoked.\"}", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_ERROR);
    ck_assert_str_eq(r.error, "invalid_grant");
    ck_assert_str_eq(r.message, "HTTP 400 invalid_grant: Token has been expired or revoked.");
    wb_oauth_reply_free(&r);
    parse(400, "{\"error\":\"authorization_pending\"}", &r);
    ck_assert_str_eq(r.error, "authorization_pending");
    ck_assert_str_eq(r.message, "HTTP 400 authorization_pending");
    wb_oauth_reply_free(&r);
    /* A hostile code or description: no control bytes reach a log line. */
    parse(401, "{\"error\":\"bad\\u001b[31m\",\"error_description\":\"x\\ny\\u001b\"}", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_ERROR);
    ck_assert_str_eq(r.error, "bad????m");
    ck_assert_ptr_null(strchr(r.message, '\n'));
    ck_assert_ptr_null(strchr(r.message, 0x1b));
    wb_oauth_reply_free(&r);
    /* 503 with HTML, 500 with JSON that is no OAuth error, 200 with an error. */
    parse(503, "<html>Service Unavailable</html>", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_BAD);
    ck_assert_str_eq(r.message, "HTTP 503 with no JSON object");
    wb_oauth_reply_free(&r);
    parse(500, "{\"oops\":1}", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_BAD);
    wb_oauth_reply_free(&r);
    /* A parse error never quotes the body (it may hold a token). */
    parse(200, "{\"access_token\":\"SECRETTOKEN\",", &r);
    ck_assert_int_eq(r.kind, WB_OAUTH_REPLY_BAD);
    ck_assert_ptr_null(strstr(r.message, "SECRET"));
    wb_oauth_reply_free(&r);
}
END_TEST

START_TEST(test_device_answers)
{
    struct wb_oauth_device d;
    struct wb_oauth_reply e;
    const char *google = "{\"device_code\":\"AH-1\",\"user_code\":\"GQVQ-JKEC\","
                         "\"verification_url\":\"https://www.google.com/device\","
                         "\"expires_in\":1800,\"interval\":5}";
    ck_assert(wb_oauth_parse_device(200, google, strlen(google), &d, &e));
    ck_assert_str_eq(d.user_code, "GQVQ-JKEC");
    ck_assert_str_eq(d.verification_uri, "https://www.google.com/device");
    ck_assert_int_eq(d.interval, 5);
    ck_assert_int_eq(d.expires_in, 1800);
    wb_oauth_device_free(&d);
    wb_oauth_reply_free(&e);
    /* interval absent: 5 s; 0: at least 1 s. */
    const char *rfc = "{\"device_code\":\"x\",\"user_code\":\"A\",\"verification_uri\":"
                      "\"http://127.0.0.1/v\",\"verification_uri_complete\":\"javascript:x\","
                      "\"interval\":0}";
    ck_assert(wb_oauth_parse_device(200, rfc, strlen(rfc), &d, &e));
    ck_assert_int_eq(d.interval, 1);
    ck_assert_ptr_null(d.verification_uri_complete); /* not http(s): dropped */
    wb_oauth_device_free(&d);
    wb_oauth_reply_free(&e);
    /* A user code with an escape sequence is not printed on a terminal. */
    const char *esc = "{\"device_code\":\"x\",\"user_code\":\"\\u001b]0;x\","
                      "\"verification_uri\":\"https://a/b\"}";
    ck_assert(!wb_oauth_parse_device(200, esc, strlen(esc), &d, &e));
    ck_assert_int_eq(e.kind, WB_OAUTH_REPLY_BAD);
    wb_oauth_reply_free(&e);
    const char *err = "{\"error\":\"invalid_client\"}";
    ck_assert(!wb_oauth_parse_device(401, err, strlen(err), &d, &e));
    ck_assert_int_eq(e.kind, WB_OAUTH_REPLY_ERROR);
    ck_assert_str_eq(e.error, "invalid_client");
    wb_oauth_reply_free(&e);
}
END_TEST

static char *tmpdir(void)
{
    char *t = strdup("/tmp/wbtok-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

START_TEST(test_store_paths)
{
    char *p = wb_oauth_store_path("/t", "ana");
    ck_assert_str_eq(p, "/t/ana.json");
    free(p);
    const char *bad[] = {"", "../x", "a/b", ".hidden", "a\nb", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_ptr_null(wb_oauth_store_path("/t", bad[i]));
}
END_TEST

START_TEST(test_store_roundtrip_and_modes)
{
    char *dir = tmpdir();
    char *path = wb_oauth_store_path(dir, "ana");
    char *rt = NULL, *err = NULL;
    ck_assert_int_eq(wb_oauth_store_read(path, &rt, NULL, &err), WB_OAUTH_STORE_MISSING);
    free(err);
    struct wb_oauth_file_id a, b, now;
    /* A loose umask changes nothing: the file is 0600. */
    mode_t old = umask(0);
    ck_assert_int_eq(wb_oauth_store_write(path, "google", "rt-1", &a, &err), 0);
    umask(old);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert(wb_oauth_store_stat(path, &now));
    ck_assert(wb_oauth_file_id_eq(&a, &now));
    ck_assert_int_eq(wb_oauth_store_read(path, &rt, &b, &err), WB_OAUTH_STORE_OK);
    ck_assert_str_eq(rt, "rt-1");
    ck_assert(wb_oauth_file_id_eq(&a, &b));
    wb_oauth_wipe(rt);
    /* Replaced: another identity, no temporary file left. */
    ck_assert_int_eq(wb_oauth_store_write(path, "google", "rt-2", &b, &err), 0);
    ck_assert(!wb_oauth_file_id_eq(&a, &b));
    ck_assert_int_eq(wb_oauth_store_read(path, &rt, NULL, &err), WB_OAUTH_STORE_OK);
    ck_assert_str_eq(rt, "rt-2");
    wb_oauth_wipe(rt);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    /* Looser than 0600: refused, naming the file and the mode. */
    chmod(path, 0640);
    ck_assert_int_eq(wb_oauth_store_read(path, &rt, NULL, &err), WB_OAUTH_STORE_LOOSE);
    ck_assert_ptr_null(rt);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "mode 0640 is looser than 0600"));
    free(err);
    /* Not ours: JSON without a usable refresh_token; a symlink. */
    chmod(path, 0600);
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "{\"refresh_token\":\"a b\"}", 23), 23);
    close(fd);
    ck_assert_int_eq(wb_oauth_store_read(path, &rt, NULL, &err), WB_OAUTH_STORE_ERROR);
    ck_assert_ptr_null(strstr(err, "a b"));
    free(err);
    char *link = wb_oauth_store_path(dir, "bob");
    ck_assert_int_eq(symlink(path, link), 0);
    ck_assert_int_eq(wb_oauth_store_read(link, &rt, NULL, &err), WB_OAUTH_STORE_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
    free(err);
    /* A folder that does not exist: an error naming the file. */
    char *nowhere = wb_oauth_store_path("/nonexistent-wb", "ana");
    ck_assert_int_eq(wb_oauth_store_write(nowhere, "g", "rt", NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-wb/ana.json"));
    free(err);
    unlink(link);
    unlink(path);
    rmdir(dir);
    free(nowhere);
    free(link);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_token_ok_chars)
{
    ck_assert(wb_oauth_token_ok("ya29.A-_~+/=", 12));
    ck_assert(!wb_oauth_token_ok("", 0));
    ck_assert(!wb_oauth_token_ok("a\x7f", 2));
    ck_assert(!wb_oauth_token_ok("\xc3\xa9", 2));
    char *big = malloc(WB_OAUTH_TOKEN_MAX + 2);
    memset(big, 'a', WB_OAUTH_TOKEN_MAX + 1);
    big[WB_OAUTH_TOKEN_MAX + 1] = '\0';
    ck_assert(wb_oauth_token_ok(big, WB_OAUTH_TOKEN_MAX));
    ck_assert(!wb_oauth_token_ok(big, WB_OAUTH_TOKEN_MAX + 1));
    free(big);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("oauth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_token_ok);
    tcase_add_test(tc, test_token_unusable);
    tcase_add_test(tc, test_error_bodies);
    tcase_add_test(tc, test_device_answers);
    tcase_add_test(tc, test_store_paths);
    tcase_add_test(tc, test_store_roundtrip_and_modes);
    tcase_add_test(tc, test_token_ok_chars);
    suite_add_tcase(s, tc);
    return s;
}
