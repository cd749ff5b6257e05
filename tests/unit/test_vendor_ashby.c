/* The Ashby adapter's pure parts: requests as Ashby documents them, the
 * answers (success:false, 429, lag of the search), the signature and the
 * webhook bodies, hostile ones included. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ats_vendor.h"

extern const struct wb_ats_vendor wb_ats_vendor_ashby;
#define V (&wb_ats_vendor_ashby)

static const char KEY[] = "ashby-key-123";
static const unsigned char WH[] = "whsec-ashby";
#define WHLEN (sizeof WH - 1)

static struct wb_ats_api api(const char *job)
{
    struct wb_ats_api a = {.kind = "ashby", .base_url = "http://127.0.0.1:9", .secret = KEY,
                           .secret_len = sizeof KEY - 1, .job_id = job};
    return a;
}

static json_t *payload(void)
{
    return json_loads("{\"type\":\"candidate.handoff\",\"id\":\"k1\",\"reason\":\"reply\","
                      "\"sequence\":\"backend\",\"candidate\":{\"email\":\"ada@example.org\","
                      "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\",\"title\":\"Engineer\","
                      "\"company\":\"Analytical\"},\"engagement\":[{\"type\":\"reply\","
                      "\"step\":1,\"at\":\"2026-01-02T03:04:05Z\"}]}",
                      0, NULL);
}

static const char *hdr(const struct wb_ats_req *rq, const char *prefix)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (!strncmp(rq->headers[i], prefix, strlen(prefix)))
            return rq->headers[i] + strlen(prefix);
    return NULL;
}

static struct wb_ats_resp resp(long status, const char *body)
{
    struct wb_ats_resp r = {.status = status, .body = body, .len = body ? strlen(body) : 0,
                            .now = 1000};
    return r;
}

START_TEST(test_find_request)
{
    struct wb_ats_api a = api(NULL);
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 0, .state = st};
    struct wb_ats_req rq;
    int skip = 99;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "POST");
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidate.search");
    /* base64("ashby-key-123:") */
    ck_assert_str_eq(hdr(&rq, "Authorization: Basic "), "YXNoYnkta2V5LTEyMzo=");
    ck_assert_ptr_nonnull(hdr(&rq, "Content-Type: application/json"));
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "email")), "ada@example.org");
    json_decref(b);
    wb_ats_req_free(&rq);
    json_decref(p);
    json_decref(st);
}
END_TEST

/* Not found → CREATE; found → its id, then ATTACH (skipped without a job). */
START_TEST(test_find_decides)
{
    struct wb_ats_api a = api(NULL);
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 0, .state = st};
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "{\"success\":true,\"results\":[]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 1);
    ck_assert_ptr_null(o.ats_id);
    wb_ats_outcome_free(&o);

    r = resp(200, "{\"success\":true,\"results\":[{\"id\":\"c-42\",\"name\":\"Ada\"}]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 2);
    ck_assert_str_eq(o.ats_id, "c-42");
    wb_ats_outcome_free(&o);

    /* Search lags a fresh create: the stored id is used, nothing created twice. */
    ho.ats_id = "c-stored";
    r = resp(200, "{\"success\":true,\"results\":[]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 2);
    wb_ats_outcome_free(&o);

    /* ATTACH without a job: skipped to NOTE. */
    ho.step = 2;
    struct wb_ats_req rq;
    int skip = 99;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 1);
    ck_assert_int_eq(skip, 3);
    json_decref(p);
    json_decref(st);
}
END_TEST

START_TEST(test_create_attach_note)
{
    struct wb_ats_api a = api("job-7");
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 1, .state = st};
    struct wb_ats_req rq;
    int skip = 99;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidate.create");
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "name")), "Ada Lovelace");
    ck_assert_str_eq(json_string_value(json_object_get(b, "email")), "ada@example.org");
    ck_assert_str_eq(json_string_value(json_object_get(b, "position")), "Engineer");
    json_decref(b);
    wb_ats_req_free(&rq);

    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "{\"success\":true,\"results\":{\"id\":\"c-new\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 2);
    ck_assert_str_eq(o.ats_id, "c-new");
    wb_ats_outcome_free(&o);

    ho.step = 2;
    ho.ats_id = "c-new";
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/application.create");
    b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "candidateId")), "c-new");
    ck_assert_str_eq(json_string_value(json_object_get(b, "jobId")), "job-7");
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(200, "{\"success\":true,\"results\":{\"id\":\"app-1\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.next_step, 3);
    wb_ats_outcome_free(&o);
    /* A retry of this handoff does not attach twice. */
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 1);
    ck_assert_int_eq(skip, 3);

    ho.step = 3;
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidate.createNote");
    b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "candidateId")), "c-new");
    json_t *note = json_object_get(b, "note");
    ck_assert_str_eq(json_string_value(json_object_get(note, "type")), "text/plain");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(note, "value")), "reply"));
    ck_assert(json_is_false(json_object_get(b, "sendNotifications")));
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(200, "{\"success\":true,\"results\":{\"id\":\"n-1\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DONE);
    wb_ats_outcome_free(&o);
    json_decref(p);
    json_decref(st);
}
END_TEST

/* 200 with success:false is Ashby's 4xx: dead with its message; a 429 or a
 * 5xx is retried with Retry-After; 401/403 dead (a static key); garbage
 * is retried. */
START_TEST(test_errors)
{
    struct wb_ats_api a = api("job-7");
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 1, .state = st};
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "{\"success\":false,\"errorInfo\":{\"code\":"
                                     "\"invalid_input\",\"message\":\"Email is invalid\","
                                     "\"requestId\":\"01J\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    ck_assert_ptr_nonnull(strstr(o.error, "Email is invalid"));
    wb_ats_outcome_free(&o);

    struct wb_ats_header h[] = {{"Retry-After", "7"}};
    r = resp(429, "{\"success\":false,\"errorInfo\":{\"code\":\"rate_limit_exceeded\"}}");
    r.headers = h;
    r.nheaders = 1;
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert(o.retry_after_s == 7);
    wb_ats_outcome_free(&o);

    r = resp(403, "{\"success\":false,\"errorInfo\":{\"code\":\"missing_endpoint_permission\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    ck_assert_ptr_nonnull(strstr(o.error, "403"));
    wb_ats_outcome_free(&o);

    r = resp(200, "<html>gateway</html>");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    wb_ats_outcome_free(&o);

    r = resp(200, "{\"success\":true,\"results\":{}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);

    /* application.create for someone already on the job: attached. */
    ho.step = 2;
    ho.ats_id = "c-1";
    r = resp(200, "{\"success\":false,\"errorInfo\":{\"code\":\"application_already_exists\","
                  "\"message\":\"Candidate already has an active application\"}}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 3);
    wb_ats_outcome_free(&o);

    /* A key that cannot be a Basic user name never goes out. */
    struct wb_ats_api bad = api(NULL);
    bad.secret = "a:b";
    bad.secret_len = 3;
    ho.api = &bad;
    ho.step = 0;
    struct wb_ats_req rq;
    int skip;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), -1);
    bad.secret = "k\r\nX: y";
    bad.secret_len = 7;
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), -1);
    json_decref(p);
    json_decref(st);
}
END_TEST

static enum wb_ats_sig verify(const char *sig, const char *body)
{
    struct wb_ats_header h[] = {{"Content-Type", "application/json"}, {"ashby-signature", sig}};
    return V->verify(h, sig ? 2 : 1, body, strlen(body), WH, WHLEN, 1000);
}

/* Ashby-Signature: sha256=HMAC(secret, raw body); computed independently:
 * printf '%s' '{"action":"ping"}' | openssl dgst -sha256 -hmac whsec-ashby */
START_TEST(test_signature)
{
    const char *body = "{\"action\":\"ping\"}";
    char hex[65];
    wb_ats_hmac_hex(WH, WHLEN, body, strlen(body), hex);
    ck_assert_str_eq(hex, "a6056114330b2ac88757fcd91779d8abc8965e8199046b86305d24eb757d7eb0");
    char good[80];
    snprintf(good, sizeof good, "sha256=%s", hex);
    ck_assert_int_eq(verify(good, body), WB_ATS_SIG_OK);
    ck_assert_int_eq(verify(NULL, body), WB_ATS_SIG_MISSING);
    ck_assert_int_eq(verify(good, "{\"action\":\"pinG\"}"), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify(hex, body), WB_ATS_SIG_FORGED);          /* no scheme */
    ck_assert_int_eq(verify("sha1=abc", body), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify("sha256=", body), WB_ATS_SIG_FORGED);
    good[20] = good[20] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(verify(good, body), WB_ATS_SIG_FORGED);
}
END_TEST

static int parse(const char *body, struct wb_ats_inbound *ev, char *err)
{
    return V->parse(NULL, 0, body, strlen(body), ev, err, WB_ATS_ERR_MAX);
}

/* Bodies shaped as Ashby's documentation shows them. */
START_TEST(test_parse_events)
{
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(
        parse("{\"webhookActionId\":\"75395d87-4044-4dc4-bc29-0cec185e5f06\","
              "\"action\":\"applicationUpdate\",\"data\":{\"application\":{\"id\":\"a-1\","
              "\"status\":\"Archived\",\"archiveReason\":{\"text\":\"Position filled\"},"
              "\"candidate\":{\"id\":\"c-1\",\"name\":\"Silver Medal\","
              "\"primaryEmailAddress\":{\"value\":\"silver@example.org\",\"type\":\"Personal\","
              "\"isPrimary\":true}},\"job\":{\"id\":\"job-7\",\"title\":\"Backend\"}}}}",
              &ev, err),
        0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_REJECTED);
    ck_assert_str_eq(ev.event_id, "75395d87-4044-4dc4-bc29-0cec185e5f06");
    ck_assert_str_eq(ev.email, "silver@example.org");
    ck_assert_str_eq(ev.first_name, "Silver");
    ck_assert_str_eq(ev.last_name, "Medal");
    ck_assert_str_eq(ev.candidate_id, "c-1");
    ck_assert_str_eq(ev.job_id, "job-7");
    ck_assert_str_eq(ev.reason, "Position filled");
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse("{\"webhookActionId\":\"w2\",\"action\":\"candidateHire\",\"data\":"
                           "{\"application\":{\"id\":\"a-1\",\"status\":\"Hired\",\"candidate\":"
                           "{\"id\":\"c-1\",\"name\":\"Ada\",\"emailAddresses\":[{\"value\":"
                           "\"ada@example.org\"}]}},\"offer\":{\"id\":\"o-1\"}}}",
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_HIRED);
    ck_assert_str_eq(ev.email, "ada@example.org");
    ck_assert_str_eq(ev.first_name, "Ada");
    ck_assert_ptr_null(ev.last_name);
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse("{\"webhookActionId\":\"w3\",\"action\":\"applicationSubmit\",\"data\":"
                           "{\"application\":{\"status\":\"Active\",\"candidate\":{\"id\":\"c\"}}}}",
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_APPLIED);
    ck_assert_ptr_null(ev.email);
    wb_ats_inbound_free(&ev);

    /* A stage move, a ping: nothing to store. */
    ck_assert_int_eq(parse("{\"action\":\"applicationUpdate\",\"data\":{\"application\":"
                           "{\"status\":\"Active\"}}}", &ev, err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
    ck_assert_int_eq(parse("{\"action\":\"ping\",\"data\":{\"webhook\":{}}}", &ev, err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
}
END_TEST

START_TEST(test_parse_hostile)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"action\":1}",
        "{\"data\":{}}",
        "{\"action\":\"candidateHire\",\"data\":{}}",
        "{\"action\":\"candidateHire\",\"data\":{\"application\":[]}}",
        "{\"action\":\"candidateHire\",\"data\":{\"application\":{\"candidate\":\"x\"}}}",
        "{\"action\":\"candidateHire\",\"webhookActionId\":7,\"data\":{\"application\":"
        "{\"candidate\":{}}}}",
        "{\"action\":\"candidateHire\",\"data\":{\"application\":{\"candidate\":"
        "{\"primaryEmailAddress\":{\"value\":\"a@b.c\\r\\nBcc: x@y.z\"}}}}}",
        "{\"action\":\"candidateHire\",\"data\":{\"application\":{\"candidate\":"
        "{\"name\":[\"x\"]}}}}",
        "{\"action\":\"candidateHire\",\"action\":\"applicationSubmit\",\"data\":{}}",
        "{\"action\":\"candidateHire\",\"data\":{\"application\":{\"candidate\":{}}}",
    };
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(parse(bad[i], &ev, err) == -1, "accepted: %s", bad[i]);
        ck_assert_msg(err[0], "no message for %s", bad[i]);
        ck_assert_ptr_null(ev.email);
    }
    /* A name of 1001 characters. */
    char big[1200];
    int n = snprintf(big, sizeof big, "{\"action\":\"candidateHire\",\"data\":{\"application\":"
                                      "{\"candidate\":{\"name\":\"");
    memset(big + n, 'x', 1001);
    strcpy(big + n + 1001, "\"}}}}");
    ck_assert_int_eq(parse(big, &ev, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "name"));
}
END_TEST

START_TEST(test_check)
{
    struct wb_ats_api a = api(NULL);
    struct wb_ats_req rq;
    char err[WB_ATS_ERR_MAX], msg[200];
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_AUTH, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/apiKey.info");
    wb_ats_req_free(&rq);
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_JOB, &rq, err, sizeof err), 1);
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_USER, &rq, err, sizeof err), 1);
    a.job_id = "job-7";
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_JOB, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/job.info");
    wb_ats_req_free(&rq);

    struct wb_ats_resp r = resp(401, "{\"success\":false}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_REFUSED);
    r = resp(403, "");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_REFUSED);
    r = resp(0, NULL);
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_FAILED);
    r = resp(200, "{\"success\":true,\"results\":{\"title\":\"warmbench\"}}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_ptr_nonnull(strstr(msg, "warmbench"));
    r = resp(200, "{\"success\":false,\"errorInfo\":{\"code\":\"job_not_found\"}}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg),
                     WB_ATS_CHECK_NOT_FOUND);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("vendor_ashby");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_find_request);
    tcase_add_test(tc, test_find_decides);
    tcase_add_test(tc, test_create_attach_note);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_signature);
    tcase_add_test(tc, test_parse_events);
    tcase_add_test(tc, test_parse_hostile);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}
