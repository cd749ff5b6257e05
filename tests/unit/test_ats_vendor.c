/* The vendor helpers and the Greenhouse adapter, as pure functions: the
 * step machine against Harvest v3's answers, the signature and the web
 * hook bodies (from Greenhouse's documentation examples, trimmed). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ats_vendor.h"

#define GH_SECRET "gh-webhook-secret"

static const char PAYLOAD[] =
    "{\"type\":\"candidate.handoff\",\"id\":\"k1\",\"reason\":\"reply\","
    "\"sequence\":\"backend\",\"candidate\":{\"email\":\"ana@example.com\","
    "\"first_name\":\"Ana\",\"last_name\":\"Ruiz\",\"title\":\"SRE\",\"company\":\"Acme\"},"
    "\"engagement\":[{\"type\":\"sent\",\"step\":1,\"at\":\"2026-03-01T10:00:00Z\"},"
    "{\"type\":\"replied\",\"step\":1,\"at\":\"2026-03-02T09:00:00Z\",\"intent\":\"interested\"}]}";

static struct wb_ats_api api_gh(void)
{
    return (struct wb_ats_api){.kind = "greenhouse", .base_url = "http://gh.test",
                               .token_url = "http://gh.test/token", .client_id = "cid",
                               .user_id = "4080", .secret = "shh", .secret_len = 3,
                               .job_id = "4012345", .source = "warmbench"};
}

struct fixture {
    struct wb_ats_api api;
    json_t *payload, *state;
    struct wb_ats_handoff ho;
};

static void fx_init(struct fixture *f, int step, const char *ats_id)
{
    f->api = api_gh();
    f->payload = json_loads(PAYLOAD, 0, NULL);
    f->state = json_object();
    f->ho = (struct wb_ats_handoff){.api = &f->api, .payload = f->payload, .ats_id = ats_id,
                                    .step = step, .state = f->state, .token = "tok"};
}

static void fx_free(struct fixture *f)
{
    json_decref(f->payload);
    json_decref(f->state);
}

static struct wb_ats_resp resp(long status, const char *body, const struct wb_ats_header *h,
                               size_t nh)
{
    return (struct wb_ats_resp){.status = status, .headers = h, .nheaders = nh, .body = body,
                                .len = body ? strlen(body) : 0, .now = 1000000.0};
}

static const struct wb_ats_vendor *gh(void)
{
    const struct wb_ats_vendor *v = wb_ats_vendor_find("greenhouse");
    ck_assert_ptr_nonnull(v);
    return v;
}

static bool has_header(const struct wb_ats_req *rq, const char *line)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (!strcmp(rq->headers[i], line))
            return true;
    return false;
}

START_TEST(test_table)
{
    ck_assert_ptr_null(wb_ats_vendor_find("webhook"));
    ck_assert_ptr_null(wb_ats_vendor_find(NULL));
    ck_assert_ptr_null(wb_ats_vendor_find("nope"));
    ck_assert_str_eq(gh()->kind, "greenhouse");
}
END_TEST

START_TEST(test_helpers)
{
    struct wb_ats_header h[] = {{"retry-after", "7"}};
    struct wb_ats_resp r = resp(429, "slow down", h, 1);
    ck_assert(wb_ats_retry_after(&r) == 7.0);
    h[0].value = "Thu, 01 Jan 1970 11:46:50 GMT"; /* 42410 s */
    r.now = 42400;
    ck_assert(wb_ats_retry_after(&r) == 10.0);
    h[0].value = "soon";
    ck_assert(wb_ats_retry_after(&r) == 0.0);

    struct wb_ats_outcome o = {0};
    h[0].value = "3";
    wb_ats_outcome_http(&r, true, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert(o.retry_after_s == 3.0);
    ck_assert_str_eq(o.error, "HTTP 429: slow down");
    wb_ats_outcome_free(&o);
    r = resp(401, "{\"error\":\"expired\"}", NULL, 0);
    wb_ats_outcome_http(&r, true, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_REAUTH);
    wb_ats_outcome_free(&o);
    wb_ats_outcome_http(&r, false, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(0, "Connection refused\r\nx", NULL, 0);
    wb_ats_outcome_http(&r, false, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert_ptr_null(strpbrk(o.error, "\r\n"));
    wb_ats_outcome_free(&o);

    char *e = wb_ats_url_escape("a+b@c d.e");
    ck_assert_str_eq(e, "a%2Bb%40c%20d.e");
    free(e);
    char *b = wb_ats_basic_auth("cid", "shh", 3);
    ck_assert_str_eq(b, "Basic Y2lkOnNoaA==");
    free(b);

    struct wb_ats_req rq;
    wb_ats_req_init(&rq, "GET", NULL);
    ck_assert_int_eq(wb_ats_req_header(&rq, "X-A: %s", "evil\r\nX-B: 1"), -1);
    ck_assert_int_eq(wb_ats_req_header(&rq, "X-A: %s", "fine"), 0);
    ck_assert_uint_eq(rq.nheaders, 1);
    wb_ats_req_free(&rq);
}
END_TEST

START_TEST(test_note_text)
{
    json_t *p = json_loads(PAYLOAD, 0, NULL);
    char *t = wb_ats_note_text(p);
    ck_assert_str_eq(t, "warmbench handoff: reply, sequence backend\n"
                        "- 2026-03-01T10:00:00Z sent (step 1)\n"
                        "- 2026-03-02T09:00:00Z replied (step 1, intent interested)\n");
    free(t);
    json_decref(p);
}
END_TEST

START_TEST(test_gh_token)
{
    struct wb_ats_api api = api_gh();
    struct wb_ats_req rq;
    char err[256];
    ck_assert_int_eq(gh()->token_build(&api, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "POST");
    ck_assert_str_eq(rq.url, "http://gh.test/token");
    ck_assert_str_eq(rq.body, "grant_type=client_credentials&sub=4080");
    ck_assert(has_header(&rq, "Authorization: Basic Y2lkOnNoaA=="));
    wb_ats_req_free(&rq);

    char *tok = NULL;
    double exp = 0;
    struct wb_ats_resp r =
        resp(200, "{\"access_token\":\"jwt.x.y\",\"token_type\":\"Bearer\",\"expires_in\":3600}",
             NULL, 0);
    ck_assert_int_eq(gh()->token_parse(&r, &tok, &exp, err, sizeof err), 0);
    ck_assert_str_eq(tok, "jwt.x.y");
    ck_assert(exp == 1003600.0);
    free(tok);
    /* Greenhouse's own v3 client reads expires_at (ISO 8601) instead. */
    const char *at[][2] = {
        {"\"1970-01-12T14:16:40Z\"", "1001800"},
        {"\"1970-01-12T16:16:40.250+02:00\"", "1001800"},
        {"1001800", "1001800"},
        {"\"1970-01-12T12:00:00Z\"", "1003600"}, /* past: the documented hour */
        {"\"2099-12-31T23:59:59Z\"", "1003600"}, /* beyond a day: not believed */
        {"\"1970-01-12T14:16:40\"", "1003600"},  /* no zone */
        {"\"tomorrow\"", "1003600"},
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"access_token\":\"t\",\"token_type\":\"Bearer\","
                                    "\"expires_at\":%s}", at[i][0]);
        r = resp(200, body, NULL, 0);
        ck_assert_int_eq(gh()->token_parse(&r, &tok, &exp, err, sizeof err), 0);
        ck_assert_msg(exp == atof(at[i][1]), "%s -> %f", at[i][0], exp);
        free(tok);
    }
    r = resp(401, "{\"error\":\"invalid_client\"}", NULL, 0);
    ck_assert_int_eq(gh()->token_parse(&r, &tok, &exp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "401"));
    r = resp(200, "{\"access_token\":\"a\\r\\nX: y\"}", NULL, 0);
    ck_assert_int_eq(gh()->token_parse(&r, &tok, &exp, err, sizeof err), -1);
}
END_TEST

/* The whole machine for a new person: FIND (nobody) → CREATE → ATTACH → NOTE. */
START_TEST(test_gh_new_person)
{
    struct fixture f;
    fx_init(&f, 0, NULL);
    struct wb_ats_req rq;
    struct wb_ats_outcome o;
    char err[256];
    int skip = -2;
    ck_assert_int_eq(gh()->build(&f.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "GET");
    ck_assert_str_eq(rq.url, "http://gh.test/v3/candidates?email=ana%40example.com&per_page=1");
    ck_assert(has_header(&rq, "Authorization: Bearer tok"));
    wb_ats_req_free(&rq);
    struct wb_ats_resp r = resp(200, "[]", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_ptr_null(o.ats_id);
    f.ho.step = o.next_step;
    wb_ats_outcome_free(&o);

    ck_assert_int_eq(gh()->build(&f.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://gh.test/v3/candidates");
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "first_name")), "Ana");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(b, "email_addresses"), 0), "value")),
                     "ana@example.com");
    json_decref(b);
    wb_ats_req_free(&rq);
    /* A bare candidate, then v3's {"candidate", "application"}; neither id: retry. */
    r = resp(201, "{\"id\":53883394,\"first_name\":\"Ana\"}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_str_eq(o.ats_id, "53883394");
    wb_ats_outcome_free(&o);
    r = resp(201, "{\"candidate\":{\"id\":53883394,\"first_name\":\"Ana\"},\"application\":null}",
             NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_str_eq(o.ats_id, "53883394");
    wb_ats_outcome_free(&o);
    r = resp(201, "{\"candidate\":{\"first_name\":\"Ana\"}}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert_ptr_null(o.ats_id);
    wb_ats_outcome_free(&o);
    r = resp(201, "{\"candidate\":{\"id\":53883394}}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    f.ho.step = o.next_step;
    f.ho.ats_id = "53883394";
    wb_ats_outcome_free(&o);

    ck_assert_int_eq(gh()->build(&f.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://gh.test/v3/applications");
    ck_assert_str_eq(rq.body, "{\"candidate_id\":53883394,\"job_id\":4012345,\"prospect\":true}");
    wb_ats_req_free(&rq);
    r = resp(201, "{\"id\":69306314}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    f.ho.step = o.next_step;
    wb_ats_outcome_free(&o);
    /* A retry that comes back here skips the application already made. */
    struct fixture g = f;
    g.ho.step = 2;
    ck_assert_int_eq(gh()->build(&g.ho, &rq, &skip, err, sizeof err), 1);
    ck_assert_int_eq(skip, 3);

    ck_assert_int_eq(gh()->build(&f.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://gh.test/v3/notes");
    b = json_loads(rq.body, 0, NULL);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(b, "body")), "replied"));
    ck_assert_int_eq(json_integer_value(json_object_get(b, "candidate_id")), 53883394);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "user_id")), 4080);
    ck_assert_str_eq(json_string_value(json_object_get(b, "visibility")), "public");
    ck_assert_str_eq(json_string_value(json_object_get(b, "note_type")), "NOTE");
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(201, "{\"id\":1}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DONE);
    wb_ats_outcome_free(&o);
    fx_free(&f);
}
END_TEST

START_TEST(test_gh_found_and_errors)
{
    struct fixture f;
    fx_init(&f, 0, NULL);
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "[{\"id\":777,\"first_name\":\"Ana\"}]", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 2); /* not CREATE */
    ck_assert_str_eq(o.ats_id, "777");
    wb_ats_outcome_free(&o);
    r = resp(200, "<html>", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    wb_ats_outcome_free(&o);
    struct wb_ats_header h[] = {{"Retry-After", "2"}};
    r = resp(429, "{\"message\":\"Rate limit exceeded\"}", h, 1);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert(o.retry_after_s == 2.0);
    wb_ats_outcome_free(&o);
    ck_assert(gh()->pace(&r) == 1000002.0);
    r = resp(422, "{\"errors\":[{\"message\":\"first_name is required\"}]}", NULL, 0);
    f.ho.step = 1;
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(401, "{\"message\":\"token expired\"}", NULL, 0);
    gh()->decide(&f.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_REAUTH);
    wb_ats_outcome_free(&o);
    /* Remaining 0: wait for the reset (or a window). */
    struct wb_ats_header rl[] = {{"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1000005"}};
    r = resp(200, "[]", rl, 2);
    ck_assert(gh()->pace(&r) == 1000005.0);
    rl[1].value = "junk";
    ck_assert(gh()->pace(&r) == 1000010.0);
    rl[0].value = "12";
    ck_assert(gh()->pace(&r) == 0.0);
    fx_free(&f);
}
END_TEST

static const char REJECT[] =
    "{\"action\":\"reject_candidate\",\"payload\":{\"application\":{\"id\":71980812,"
    "\"status\":\"rejected\",\"rejection_reason\":{\"id\":8,\"name\":\"Lacking skill(s)\"},"
    "\"jobs\":[{\"id\":4012345,\"name\":\"SRE\"}],\"candidate\":{\"id\":60304594,"
    "\"first_name\":\"Ana\",\"last_name\":\"Ruiz\",\"email_addresses\":["
    "{\"value\":\"work@acme.com\",\"type\":\"work\"},"
    "{\"value\":\"ana@example.com\",\"type\":\"personal\"}]}}}}";

START_TEST(test_gh_verify)
{
    char hex[65], sig[80];
    wb_ats_hmac_hex((const unsigned char *)GH_SECRET, strlen(GH_SECRET), REJECT, strlen(REJECT),
                    hex);
    snprintf(sig, sizeof sig, "sha256 %s", hex);
    struct wb_ats_header h[] = {{"Signature", sig}};
    const unsigned char *k = (const unsigned char *)GH_SECRET;
    size_t kl = strlen(GH_SECRET), n = strlen(REJECT);
    ck_assert_int_eq(gh()->verify(h, 1, REJECT, n, k, kl, 0), WB_ATS_SIG_OK);
    ck_assert_int_eq(gh()->verify(h, 1, REJECT, n - 1, k, kl, 0), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(gh()->verify(h, 1, REJECT, n, k, kl - 1, 0), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(gh()->verify(h, 0, REJECT, n, k, kl, 0), WB_ATS_SIG_MISSING);
    sig[3] = '=';
    ck_assert_int_eq(gh()->verify(h, 1, REJECT, n, k, kl, 0), WB_ATS_SIG_FORGED);
    snprintf(sig, sizeof sig, "sha256 %.63s", hex);
    ck_assert_int_eq(gh()->verify(h, 1, REJECT, n, k, kl, 0), WB_ATS_SIG_FORGED);
}
END_TEST

START_TEST(test_gh_parse)
{
    struct wb_ats_header h[] = {{"Greenhouse-Event-ID", "ev-1"}};
    struct wb_ats_inbound ev;
    char err[256];
    ck_assert_int_eq(gh()->parse(h, 1, REJECT, strlen(REJECT), &ev, err, sizeof err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_REJECTED);
    ck_assert_str_eq(ev.event_id, "ev-1");
    ck_assert_str_eq(ev.email, "ana@example.com");
    ck_assert_str_eq(ev.candidate_id, "60304594");
    ck_assert_str_eq(ev.reason, "Lacking skill(s)");
    ck_assert_str_eq(ev.job_id, "4012345");
    wb_ats_inbound_free(&ev);

    const char *ping = "{\"action\":\"ping\",\"payload\":{\"web_hook_id\":1}}";
    ck_assert_int_eq(gh()->parse(h, 0, ping, strlen(ping), &ev, err, sizeof err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);

    /* A control character in a name: refused, not passed on. */
    const char *ctl = "{\"action\":\"hire_candidate\",\"payload\":{\"application\":"
                      "{\"candidate\":{\"first_name\":\"A\\u001b[2J\",\"email_addresses\":"
                      "[{\"value\":\"a@b.org\"}]}}}}";
    ck_assert_int_eq(gh()->parse(h, 1, ctl, strlen(ctl), &ev, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "first_name"));

    const char *bad[] = {"", "[1]", "{\"payload\":{}}",
                         "{\"action\":\"hire_candidate\",\"payload\":{}}",
                         "{\"action\":\"hire_candidate\",\"payload\":{\"application\":"
                         "{\"candidate\":{\"email_addresses\":[]}}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(gh()->parse(h, 1, bad[i], strlen(bad[i]), &ev, err, sizeof err), -1);
        ck_assert_ptr_null(ev.email);
    }
}
END_TEST

START_TEST(test_gh_check)
{
    struct wb_ats_api api = api_gh();
    struct wb_ats_req rq;
    char err[256], msg[256];
    ck_assert_int_eq(gh()->check_build(&api, "tok", WB_ATS_CHECK_AUTH, &rq, err, sizeof err), 1);
    ck_assert_int_eq(gh()->check_build(&api, "tok", WB_ATS_CHECK_JOB, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://gh.test/v3/jobs?ids=4012345&per_page=1");
    ck_assert(has_header(&rq, "Authorization: Bearer tok"));
    wb_ats_req_free(&rq);
    ck_assert_int_eq(gh()->check_build(&api, "tok", WB_ATS_CHECK_USER, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://gh.test/v3/users?ids=4080&per_page=1");
    wb_ats_req_free(&rq);
    struct wb_ats_resp r = resp(200, "[]", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg),
                     WB_ATS_CHECK_NOT_FOUND);
    ck_assert_str_eq(msg, "job not found (an empty list)");
    r = resp(200, "[{\"id\":4012345,\"name\":\"Site Reliability Engineer\"}]", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_str_eq(msg, "job found: Site Reliability Engineer");
    r = resp(200, "[{\"id\":1,\"name\":\"x\\u001b[2J\"}]", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_str_eq(msg, "job found");
    r = resp(200, "[7]", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg),
                     WB_ATS_CHECK_FAILED);
    r = resp(404, "{\"message\":\"Resource not found\"}", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg),
                     WB_ATS_CHECK_NOT_FOUND);
    r = resp(403, "", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_USER, &r, msg, sizeof msg),
                     WB_ATS_CHECK_REFUSED);
    r = resp(200, "{\"id\":4080,\"first_name\":\"Lee\"}", NULL, 0);
    ck_assert_int_eq(gh()->check_parse(WB_ATS_CHECK_USER, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_str_eq(msg, "user found: Lee");
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("ats_vendor");
    TCase *t = tcase_create("core");
    tcase_add_test(t, test_table);
    tcase_add_test(t, test_helpers);
    tcase_add_test(t, test_note_text);
    tcase_add_test(t, test_gh_token);
    tcase_add_test(t, test_gh_new_person);
    tcase_add_test(t, test_gh_found_and_errors);
    tcase_add_test(t, test_gh_verify);
    tcase_add_test(t, test_gh_parse);
    tcase_add_test(t, test_gh_check);
    suite_add_tcase(s, t);
    return s;
}
