#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ats_in.h"
#include "warmbench/webhook_sign.h"

static int parse(const char *body, struct wb_ats_event *ev, char *err, size_t errsz)
{
    return wb_ats_parse(body, strlen(body), ev, err, errsz);
}

/* body must be refused with an error mentioning field. */
static void refused(const char *body, const char *field)
{
    struct wb_ats_event ev;
    char err[256] = "";
    ck_assert_msg(parse(body, &ev, err, sizeof err) == -1, "accepted: %s", body);
    ck_assert_msg(strstr(err, field) != NULL, "\"%s\" lacks \"%s\" for %s", err, field, body);
    ck_assert_ptr_null(ev.root);
}

START_TEST(test_valid_rejected)
{
    struct wb_ats_event ev;
    char err[256];
    const char *body =
        "{\"type\":\"candidate.rejected\",\"id\":\"e1\",\"enroll\":\"nurture\","
        "\"candidate\":{\"email\":\"  Ana@Example.org \",\"first_name\":\"Ana\","
        "\"timezone\":\"UTC\",\"tags\":[\"a\"],\"skills\":[\"go\"],\"consent\":\"opt_in\","
        "\"source\":\"ats\"},\"tags\":[\"silver\",\"b\"]}";
    ck_assert_int_eq(parse(body, &ev, err, sizeof err), 0);
    ck_assert_str_eq(ev.type, "candidate.rejected");
    ck_assert_str_eq(ev.id, "e1");
    ck_assert_str_eq(ev.email, "Ana@Example.org");
    ck_assert_str_eq(ev.sequence, "nurture");
    ck_assert_uint_eq(ev.ntags, 3);
    ck_assert_str_eq(ev.tags[0], "a");
    ck_assert_str_eq(ev.tags[2], "b");
    char *c = wb_ats_candidate_json(&ev);
    ck_assert_ptr_nonnull(strstr(c, "\"email\":\"Ana@Example.org\""));
    ck_assert_ptr_null(strstr(c, "\"tags\""));
    free(c);
    wb_ats_event_free(&ev);
}
END_TEST

START_TEST(test_valid_hired_without_enroll)
{
    struct wb_ats_event ev;
    char err[256];
    ck_assert_int_eq(parse("{\"type\":\"candidate.hired\",\"id\":\"h\","
                           "\"candidate\":{\"email\":\"a@b.co\"}}",
                           &ev, err, sizeof err),
                     0);
    ck_assert_ptr_null(ev.sequence);
    ck_assert_uint_eq(ev.ntags, 0);
    wb_ats_event_free(&ev);
}
END_TEST

#define CAND "\"candidate\":{\"email\":\"a@b.co\"}"
#define HEAD "{\"type\":\"candidate.rejected\",\"id\":\"e\",\"enroll\":\"s\","

START_TEST(test_refusals_name_the_field)
{
    refused("", "invalid JSON");
    refused("{", "invalid JSON");
    refused("[1]", "object");
    refused("{\"type\":\"candidate.rejected\",\"type\":\"candidate.hired\"}", "invalid JSON");
    refused("{\"id\":\"e\",\"enroll\":\"s\"," CAND "}", "type");
    refused("{\"type\":\"candidate.moved\",\"id\":\"e\"," CAND "}", "type");
    refused("{\"type\":7,\"id\":\"e\"," CAND "}", "type");
    refused("{\"type\":\"candidate.rejected\",\"enroll\":\"s\"," CAND "}", "id");
    refused("{\"type\":\"candidate.rejected\",\"id\":\"\",\"enroll\":\"s\"," CAND "}", "id");
    refused("{\"type\":\"candidate.rejected\",\"id\":1,\"enroll\":\"s\"," CAND "}", "id");
    refused("{\"type\":\"candidate.rejected\",\"id\":\"e\"," CAND "}", "enroll");
    refused(HEAD CAND ",\"enroll\":3}", "invalid JSON"); /* duplicate key */
    refused("{\"type\":\"candidate.rejected\",\"id\":\"e\",\"enroll\":[]," CAND "}", "enroll");
    refused(HEAD "\"candidate\":null}", "candidate");
    refused(HEAD "\"x\":1," CAND "}", "x: unknown field");
    refused(HEAD "\"candidate\":{}}", "candidate.email");
    refused(HEAD "\"candidate\":{\"email\":\"no-at\"}}", "candidate.email");
    refused(HEAD "\"candidate\":{\"email\":\"a@b\"}}", "candidate.email");
    refused(HEAD "\"candidate\":{\"email\":\"a@b..c\"}}", "candidate.email");
    refused(HEAD "\"candidate\":{\"email\":\"a b@c.d\"}}", "candidate.email");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"age\":3}}", "candidate.age");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"title\":[]}}", "candidate.title");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"consent\":\"maybe\"}}",
            "candidate.consent");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"tags\":\"x\"}}", "candidate.tags");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"skills\":[\"\"]}}",
            "candidate.skills[0]");
    refused(HEAD "\"candidate\":{\"email\":\"a@b.co\",\"company\":\"a\\u0001\"}}",
            "candidate.company");
    refused(HEAD CAND ",\"tags\":[\"ok\",2]}", "tags[1]");
}
END_TEST

START_TEST(test_id_length_counts_characters)
{
    char body[2048], id[1024];
    /* 200 two-byte characters are fine, 201 are not. */
    for (int n = 200; n <= 201; n++) {
        id[0] = 0;
        for (int i = 0; i < n; i++)
            strcat(id, "\xc3\xa9");
        snprintf(body, sizeof body,
                 "{\"type\":\"candidate.applied\",\"id\":\"%s\"," CAND "}", id);
        struct wb_ats_event ev;
        char err[256];
        int rc = parse(body, &ev, err, sizeof err);
        ck_assert_int_eq(rc, n == 200 ? 0 : -1);
        if (rc == 0)
            wb_ats_event_free(&ev);
    }
}
END_TEST

START_TEST(test_email_syntax)
{
    const char *good[] = {"a@b.co", "first.last+tag@sub.example.org", "\xc3\xa9@b.co"};
    const char *bad[] = {"", "@b.co", "a@", "a@b", "a@.b", "a@b.", "a@@b.co", "a<b@c.d",
                         "a@b,c.d", "a\t@b.co", "a@b .co", "a\"b@c.d"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(wb_ats_email_ok(good[i], strlen(good[i])), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!wb_ats_email_ok(bad[i], strlen(bad[i])), "%s", bad[i]);
}
END_TEST

START_TEST(test_one_statement_per_type)
{
    /* Each type has its own function, called with bound parameters only. */
    const char *types[] = {"candidate.rejected", "candidate.applied", "candidate.hired"};
    const char *fns[] = {"wb_ats_rejected($1,", "wb_ats_applied($1,", "wb_ats_hired($1,"};
    for (size_t i = 0; i < 3; i++) {
        const char *sql = wb_ats_event_sql(types[i]);
        ck_assert_ptr_nonnull(sql);
        ck_assert_msg(strstr(sql, fns[i]) != NULL, "%s", sql);
        ck_assert_ptr_nonnull(strstr(sql, "$4)"));
    }
    ck_assert_ptr_null(wb_ats_event_sql("candidate.moved"));
    ck_assert_ptr_null(wb_ats_event_sql(NULL));
}
END_TEST

static void never_done(int status, const char *body, void *ud)
{
    (void)status, (void)body, (void)ud;
    ck_abort_msg("no statement should run");
}

/* Handles body (signed now unless sig is given) without a database:
 * every answer here is given before any statement. */
static int answer(const char *body, const char *sig, bool too_big, char **out)
{
    static unsigned char key[] = "k3y";
    struct wb_config cfg = {0};
    cfg.ats.secret = key;
    cfg.ats.secret_len = 3;
    char header[WB_SIG_HEADER_MAX];
    wb_webhook_sign(key, 3, 1000, body, strlen(body), header);
    const struct wb_ats_request rq = {.sig = sig ? sig : header, .body = body,
                                      .len = strlen(body), .too_big = too_big, .now = 1000,
                                      .done = never_done};
    int status = 0;
    *out = NULL;
    ck_assert_int_eq(wb_ats_in_handle(&cfg, NULL, &rq, &status, out), 0);
    ck_assert_ptr_nonnull(*out);
    return status;
}

START_TEST(test_answers_before_the_database)
{
    char *out;
    ck_assert_int_eq(answer("{}", NULL, true, &out), 413);
    free(out);
    ck_assert_int_eq(answer("{}", "t=1000,v1=00", false, &out), 401);
    free(out);
    ck_assert_int_eq(answer("{\"type\":1}", NULL, false, &out), 400);
    ck_assert_ptr_nonnull(strstr(out, "type"));
    free(out);
    ck_assert_int_eq(answer(HEAD CAND "}", NULL, false, &out), 404);
    ck_assert_str_eq(out, "{\"error\":\"unknown sequence \\\"s\\\"\"}");
    free(out);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("ats_in");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_valid_rejected);
    tcase_add_test(tc, test_valid_hired_without_enroll);
    tcase_add_test(tc, test_refusals_name_the_field);
    tcase_add_test(tc, test_id_length_counts_characters);
    tcase_add_test(tc, test_email_syntax);
    tcase_add_test(tc, test_one_statement_per_type);
    tcase_add_test(tc, test_answers_before_the_database);
    suite_add_tcase(s, tc);
    return s;
}
