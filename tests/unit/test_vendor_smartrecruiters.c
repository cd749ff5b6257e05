/* The SmartRecruiters adapter's pure parts: requests, answers (429, the
 * rate headers), the handshake, the signature (SmartRecruiters' own
 * published example), replays, the lookup and hostile bodies. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ats_vendor.h"

extern const struct wb_ats_vendor wb_ats_vendor_smartrecruiters;
#define V (&wb_ats_vendor_smartrecruiters)

static const char TOKEN[] = "sr-token-5";

static struct wb_ats_api api(const char *job)
{
    struct wb_ats_api a = {.kind = "smartrecruiters", .base_url = "http://127.0.0.1:9",
                           .secret = TOKEN, .secret_len = sizeof TOKEN - 1, .job_id = job};
    return a;
}

static json_t *payload(void)
{
    return json_loads("{\"reason\":\"reply\",\"sequence\":\"backend\",\"candidate\":{\"email\":"
                      "\"ada@example.org\",\"first_name\":\"Ada\"},\"engagement\":[]}",
                      0, NULL);
}

static struct wb_ats_resp resp(long status, const char *body)
{
    struct wb_ats_resp r = {.status = status, .body = body, .len = body ? strlen(body) : 0,
                            .now = 1574080900};
    return r;
}

START_TEST(test_steps)
{
    struct wb_ats_api a = api("job-uuid-1");
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 0, .state = st};
    struct wb_ats_req rq;
    int skip;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "GET");
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidates?q=ada%40example.org&limit=100");
    ck_assert_str_eq(rq.headers[0], "X-SmartToken: sr-token-5");
    wb_ats_req_free(&rq);

    /* A keyword hit on someone else is not the person. */
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "{\"totalFound\":1,\"content\":[{\"id\":\"x\",\"email\":"
                                     "\"ada@example.org.evil\"}]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.next_step, 1);
    ck_assert_ptr_null(o.ats_id);
    wb_ats_outcome_free(&o);
    r = resp(200, "{\"totalFound\":1,\"content\":[{\"id\":\"c-9\",\"email\":\"Ada@Example.org\"}]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.next_step, 2);
    ck_assert_str_eq(o.ats_id, "c-9");
    wb_ats_outcome_free(&o);

    ho.step = 1;
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/jobs/job-uuid-1/candidates");
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "firstName")), "Ada");
    ck_assert_str_eq(json_string_value(json_object_get(b, "lastName")), "-");
    ck_assert_str_eq(json_string_value(json_object_get(b, "email")), "ada@example.org");
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(201, "{\"id\":\"c-new\",\"firstName\":\"Ada\"}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.next_step, 2);
    ck_assert_str_eq(o.ats_id, "c-new");
    wb_ats_outcome_free(&o);

    a.job_id = NULL;
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidates");
    wb_ats_req_free(&rq);

    ho.step = 2;
    ho.ats_id = "c-new";
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/messages/shares");
    b = json_loads(rq.body, 0, NULL);
    const char *content = json_string_value(json_object_get(b, "content"));
    ck_assert(!strncmp(content, "#[CANDIDATE:c-new] warmbench handoff: reply", 43));
    ck_assert(json_is_true(json_object_get(json_object_get(b, "shareWith"), "openNote")));
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(201, "{\"id\":\"m-1\"}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DONE);
    wb_ats_outcome_free(&o);
    /* An id that would break out of the #-tag never goes out. */
    ho.ats_id = "x] @[USER:1";
    ck_assert_int_eq(V->build(&ho, &rq, &skip, err, sizeof err), -1);
    json_decref(p);
    json_decref(st);
}
END_TEST

START_TEST(test_rate_and_errors)
{
    struct wb_ats_api a = api(NULL);
    json_t *p = payload(), *st = json_object();
    struct wb_ats_handoff ho = {.api = &a, .payload = p, .step = 1, .state = st};
    struct wb_ats_outcome o;
    struct wb_ats_header h[] = {{"X-RateLimit-Limit", "10"}, {"X-RateLimit-Remaining", "0"},
                                {"X-RateLimit-Concurrent-Limit", "8"},
                                {"X-RateLimit-Concurrent-Remaining", "3"}};
    struct wb_ats_resp r = resp(429, "{\"errors\":[{\"code\":\"TOO_MANY_REQUESTS\"}]}");
    r.headers = h;
    r.nheaders = 4;
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert(o.retry_after_s == 1.0);
    wb_ats_outcome_free(&o);
    ck_assert(V->pace(&r) == r.now + 1.0);
    h[1].value = "4";
    ck_assert(V->pace(&r) == 0);
    h[3].value = "0";
    ck_assert(V->pace(&r) > r.now);
    r.nheaders = 0;
    ck_assert(V->pace(&r) == 0);

    r = resp(400, "{\"errors\":[{\"code\":\"INVALID\",\"message\":\"email: must be valid\"}]}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    ck_assert_ptr_nonnull(strstr(o.error, "must be valid"));
    wb_ats_outcome_free(&o);
    r = resp(401, "");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(201, "{}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    ho.step = 0;
    r = resp(200, "{\"nope\":1}");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(502, "<html>");
    V->decide(&ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    wb_ats_outcome_free(&o);
    json_decref(p);
    json_decref(st);
}
END_TEST

START_TEST(test_handshake)
{
    char *echo = NULL;
    struct wb_ats_header h[] = {{"X-Hook-Secret", "4jn8fs9011jj8"}};
    ck_assert_int_eq(V->handshake(h, 1, &echo), 1);
    ck_assert_str_eq(echo, "X-Hook-Secret: 4jn8fs9011jj8");
    free(echo);
    echo = NULL;
    ck_assert_int_eq(V->handshake(h, 0, &echo), 0);
    struct wb_ats_header bad[] = {{"x-hook-secret", "a\r\nSet-Cookie: x"}};
    ck_assert_int_eq(V->handshake(bad, 1, &echo), 0);
    ck_assert_ptr_null(echo);
}
END_TEST

/* SmartRecruiters' own example ("Create a webhook subscription secret
 * key"): key HeBVky2bccvvkcXPimH8c, timestamp 1574080897, event 123
 * application.created v201910, link <http://smartrecruiters.com/endpoint>;
 * rel=self, body {"job_id":"jid","candidate_id":"cid"} → v1=2e9291f1…. */
static const unsigned char SRKEY[] = "HeBVky2bccvvkcXPimH8c";
static const char SRBODY[] = "{\"job_id\":\"jid\",\"candidate_id\":\"cid\"}";
#define SRSIG "2e9291f10d44ca10204a4cd81b05d73b6a316b2b605d4e2e0e0b37b40198ce1f"

static enum wb_ats_sig verify_with(const char *sig, const char *ts, const char *name,
                                   const char *body, double now)
{
    struct wb_ats_header h[] = {{"content-type", "application/json"},
                                {"event-id", "123"},
                                {"link", "<http://smartrecruiters.com/endpoint>; rel=self"},
                                {"event-name", name},
                                {"event-version", "v201910"},
                                {"smartrecruiters-timestamp", ts},
                                {"smartrecruiters-signature", sig}};
    size_t n = sig ? 7 : 6;
    return V->verify(h, n, body, strlen(body), SRKEY, sizeof SRKEY - 1, now);
}

START_TEST(test_signature)
{
    const char *ok = "v1=" SRSIG;
    ck_assert_int_eq(verify_with(ok, "1574080897", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_OK);
    /* Key rotation: several signatures, any one matching. */
    ck_assert_int_eq(verify_with("v1=" "0000000000000000000000000000000000000000000000000000000000000000"
                                 ";v1=" SRSIG,
                                 "1574080897", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_OK);
    /* Replayed later than the window; or early. */
    ck_assert_int_eq(verify_with(ok, "1574080897", "application.created", SRBODY, 1574080897 + 301),
                     WB_ATS_SIG_STALE);
    ck_assert_int_eq(verify_with(ok, "1574080897", "application.created", SRBODY, 1574080897 - 301),
                     WB_ATS_SIG_STALE);
    /* A changed timestamp, event name or body: forged. */
    ck_assert_int_eq(verify_with(ok, "1574080898", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify_with(ok, "1574080897", "application.status.updated", SRBODY,
                                 1574080900),
                     WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify_with(ok, "1574080897", "application.created",
                                 "{\"job_id\":\"jid\",\"candidate_id\":\"cie\"}", 1574080900),
                     WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify_with(NULL, "1574080897", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_MISSING);
    ck_assert_int_eq(verify_with("v2=" SRSIG, "1574080897", "application.created", SRBODY,
                                 1574080900),
                     WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify_with(ok, "15740808x7", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify_with(ok, "", "application.created", SRBODY, 1574080900),
                     WB_ATS_SIG_FORGED);
}
END_TEST

static int parse_as(const char *name, const char *body, struct wb_ats_inbound *ev, char *err)
{
    struct wb_ats_header h[] = {{"event-name", name}, {"event-id", "ev-77"}};
    return V->parse(h, 2, body, strlen(body), ev, err, WB_ATS_ERR_MAX);
}

START_TEST(test_parse_and_lookup)
{
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(parse_as("application.status.updated",
                              "{\"job_id\":\"job-1\",\"candidate_id\":\"c-1\"}", &ev, err),
                     0);
    ck_assert_str_eq(ev.event_id, "ev-77");
    ck_assert_str_eq(ev.lookup_id, "c-1");
    ck_assert_ptr_null(ev.email);

    struct wb_ats_api a = api(NULL);
    struct wb_ats_req rq;
    ck_assert_int_eq(V->lookup_build(&a, NULL, &ev, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/candidates/c-1");
    wb_ats_req_free(&rq);
    bool perm;
    struct wb_ats_resp r = resp(200, "{\"id\":\"c-1\",\"firstName\":\"Silver\",\"lastName\":"
                                     "\"Medal\",\"email\":\"silver@example.org\","
                                     "\"primaryAssignment\":{\"job\":{\"id\":\"job-0\"},"
                                     "\"status\":\"IN_REVIEW\"},\"secondaryAssignments\":[{\"job\":"
                                     "{\"id\":\"job-1\"},\"status\":\"REJECTED\"}]}");
    ck_assert_int_eq(V->lookup_parse(&r, &ev, &perm, err, sizeof err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_REJECTED);
    ck_assert_str_eq(ev.email, "silver@example.org");
    ck_assert_str_eq(ev.first_name, "Silver");
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse_as("application.status.updated",
                              "{\"jobId\":\"job-0\",\"candidateId\":\"c-1\"}", &ev, err), 0);
    ck_assert_int_eq(V->lookup_parse(&r, &ev, &perm, err, sizeof err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED); /* IN_REVIEW on job-0 */
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse_as("application.created", "{\"job_id\":\"job-0\",\"candidate_id\":\"c\"}",
                              &ev, err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_APPLIED);
    r = resp(404, "{\"errors\":[]}");
    ck_assert_int_eq(V->lookup_parse(&r, &ev, &perm, err, sizeof err), -1);
    ck_assert(perm);
    r = resp(503, "");
    ck_assert_int_eq(V->lookup_parse(&r, &ev, &perm, err, sizeof err), -1);
    ck_assert(!perm);
    r = resp(200, "{\"email\":\"a@b.c\\r\\nBcc: x@y.z\"}");
    ck_assert_int_eq(V->lookup_parse(&r, &ev, &perm, err, sizeof err), -1);
    ck_assert_ptr_null(ev.email);
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse_as("position.created", "not even json", &ev, err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
}
END_TEST

START_TEST(test_parse_hostile)
{
    static const char *const bad[] = {
        "",
        "[1]",
        "{\"job_id\":\"j\"}",
        "{\"candidate_id\":{\"x\":1}}",
        "{\"candidate_id\":\"../../configuration\"}",
        "{\"candidate_id\":\"c\\r\\n\"}",
        "{\"candidate_id\":\"c\",\"candidate_id\":\"d\"}",
        "{\"candidate_id\":\"c\"",
    };
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(parse_as("application.created", bad[i], &ev, err) == -1, "accepted: %s",
                      bad[i]);
        ck_assert_msg(err[0], "no message for %s", bad[i]);
        ck_assert_ptr_null(ev.lookup_id);
    }
}
END_TEST

START_TEST(test_check)
{
    struct wb_ats_api a = api(NULL);
    struct wb_ats_req rq;
    char err[WB_ATS_ERR_MAX], msg[160];
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_AUTH, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/configuration/sources?limit=1");
    wb_ats_req_free(&rq);
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_JOB, &rq, err, sizeof err), 1);
    struct wb_ats_resp r = resp(401, "");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_REFUSED);
    r = resp(404, "");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg), WB_ATS_CHECK_NOT_FOUND);
    r = resp(0, NULL);
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_FAILED);
    r = resp(200, "{\"title\":\"Backend\"}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_ptr_nonnull(strstr(msg, "Backend"));
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("vendor_smartrecruiters");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_steps);
    tcase_add_test(tc, test_rate_and_errors);
    tcase_add_test(tc, test_handshake);
    tcase_add_test(tc, test_signature);
    tcase_add_test(tc, test_parse_and_lookup);
    tcase_add_test(tc, test_parse_hostile);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}
