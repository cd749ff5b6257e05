/* The Workable adapter's pure parts: SPI v3 requests, the answers (429,
 * X-Rate-Limit-* pacing, error bodies), the signature and the webhook
 * bodies, hostile ones included. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/ats_vendor.h"

extern const struct wb_ats_vendor wb_ats_vendor_workable;
#define V (&wb_ats_vendor_workable)

static const char TOKEN[] = "wk-token-9";
#define TLEN (sizeof TOKEN - 1)

static struct wb_ats_api api(const char *job, const char *member)
{
    struct wb_ats_api a = {.kind = "workable", .base_url = "http://127.0.0.1:9",
                           .secret = TOKEN, .secret_len = TLEN, .job_id = job,
                           .user_id = member};
    return a;
}

static json_t *payload(const char *first, const char *last)
{
    json_t *p = json_loads("{\"type\":\"candidate.handoff\",\"id\":\"k1\",\"reason\":\"reply\","
                           "\"candidate\":{\"email\":\"ada@example.org\",\"title\":\"Engineer\"},"
                           "\"engagement\":[]}",
                           0, NULL);
    json_t *c = json_object_get(p, "candidate");
    if (first)
        json_object_set_new(c, "first_name", json_string(first));
    if (last)
        json_object_set_new(c, "last_name", json_string(last));
    return p;
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
                            .now = 1700000000};
    return r;
}

struct step_ctx {
    struct wb_ats_api a;
    json_t *p, *st;
    struct wb_ats_handoff ho;
};

static void ctx_init(struct step_ctx *c, const char *job, const char *member, int step)
{
    c->a = api(job, member);
    c->p = payload("Ada", "Lovelace");
    c->st = json_object();
    struct wb_ats_handoff ho = {.api = &c->a, .payload = c->p, .step = step, .state = c->st};
    c->ho = ho;
}

static void ctx_free(struct step_ctx *c)
{
    json_decref(c->p);
    json_decref(c->st);
}

START_TEST(test_find)
{
    struct step_ctx c;
    ctx_init(&c, "JOB7", "m-1", 0);
    struct wb_ats_req rq;
    int skip;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "GET");
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/candidates?email=ada%40example.org&limit=100");
    ck_assert_str_eq(hdr(&rq, "Authorization: Bearer "), TOKEN);
    ck_assert_ptr_null(rq.body);
    wb_ats_req_free(&rq);

    /* Not found → CREATE. */
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(200, "{\"candidates\":[],\"paging\":{}}");
    c.ho.state = c.st;
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_int_eq(o.next_step, 1);
    wb_ats_outcome_free(&o);

    /* Found in another job: that one, then ATTACH (copy). */
    r = resp(200, "{\"candidates\":[{\"id\":\"c-other\",\"email\":\"ADA@example.org\","
                  "\"job\":{\"shortcode\":\"OTHER\"}},{\"id\":\"c-x\",\"email\":"
                  "\"someone@example.org\",\"job\":{\"shortcode\":\"JOB7\"}}]}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.next_step, 2);
    ck_assert_str_eq(o.ats_id, "c-other");
    ck_assert(!json_is_true(json_object_get(c.st, "attached")));
    wb_ats_outcome_free(&o);

    /* Found in the job: that candidacy, nothing to attach. */
    r = resp(200, "{\"candidates\":[{\"id\":\"c-other\",\"email\":\"ada@example.org\","
                  "\"job\":{\"shortcode\":\"OTHER\"}},{\"id\":\"c-in\",\"email\":"
                  "\"ada@example.org\",\"job\":{\"shortcode\":\"JOB7\"}}]}");
    V->decide(&c.ho, &r, &o);
    ck_assert_str_eq(o.ats_id, "c-in");
    ck_assert(json_is_true(json_object_get(c.st, "attached")));
    wb_ats_outcome_free(&o);
    c.ho.step = 2;
    c.ho.ats_id = "c-in";
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 1);
    ck_assert_int_eq(skip, 3);
    ctx_free(&c);
}
END_TEST

START_TEST(test_create)
{
    struct step_ctx c;
    ctx_init(&c, "JOB7", "m-1", 1);
    struct wb_ats_req rq;
    int skip;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.method, "POST");
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/jobs/JOB7/candidates");
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert(json_is_true(json_object_get(b, "sourced")));
    json_t *cand = json_object_get(b, "candidate");
    ck_assert_str_eq(json_string_value(json_object_get(cand, "firstname")), "Ada");
    ck_assert_str_eq(json_string_value(json_object_get(cand, "lastname")), "Lovelace");
    ck_assert_str_eq(json_string_value(json_object_get(cand, "email")), "ada@example.org");
    ck_assert_str_eq(json_string_value(json_object_get(cand, "headline")), "Engineer");
    json_decref(b);
    wb_ats_req_free(&rq);

    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(201, "{\"status\":\"created\",\"candidate\":{\"id\":\"c-new\"}}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_NEXT);
    ck_assert_str_eq(o.ats_id, "c-new");
    ck_assert(json_is_true(json_object_get(c.st, "attached")));
    wb_ats_outcome_free(&o);

    /* Without a job: the talent pool; one name only goes as "name". */
    struct wb_ats_api a = api(NULL, "m-1");
    json_t *p = payload("Ada", NULL);
    c.ho.api = &a;
    c.ho.payload = p;
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/talent_pool/candidates");
    b = json_loads(rq.body, 0, NULL);
    cand = json_object_get(b, "candidate");
    ck_assert_str_eq(json_string_value(json_object_get(cand, "name")), "Ada");
    ck_assert_ptr_null(json_object_get(cand, "firstname"));
    json_decref(b);
    wb_ats_req_free(&rq);
    json_decref(p);

    /* base_url given with /spi/v3 already. */
    a.base_url = "https://acme.workable.com/spi/v3";
    p = payload(NULL, NULL);
    c.ho.payload = p;
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "https://acme.workable.com/spi/v3/talent_pool/candidates");
    b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "candidate"), "name")),
                     "ada");
    json_decref(b);
    wb_ats_req_free(&rq);
    json_decref(p);
    ctx_free(&c);
}
END_TEST

START_TEST(test_attach_note)
{
    struct step_ctx c;
    ctx_init(&c, "JOB7", "m-1", 2);
    c.ho.ats_id = "c-other";
    struct wb_ats_req rq;
    int skip;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/candidates/c-other/copy");
    json_t *b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "member_id")), "m-1");
    ck_assert_str_eq(json_string_value(json_object_get(b, "target_job_shortcode")), "JOB7");
    json_decref(b);
    wb_ats_req_free(&rq);
    struct wb_ats_outcome o;
    struct wb_ats_resp r = resp(201, "{\"candidate\":{\"id\":\"c-copy\"}}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.next_step, 3);
    ck_assert_str_eq(o.ats_id, "c-copy");
    wb_ats_outcome_free(&o);

    c.ho.step = 3;
    c.ho.ats_id = "c-copy";
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/candidates/c-copy/comments");
    b = json_loads(rq.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(b, "member_id")), "m-1");
    const char *text = json_string_value(json_object_get(json_object_get(b, "comment"), "body"));
    ck_assert_ptr_nonnull(strstr(text, "warmbench handoff: reply"));
    json_decref(b);
    wb_ats_req_free(&rq);
    r = resp(201, "");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DONE);
    wb_ats_outcome_free(&o);

    /* No member id: a clear error, nothing sent. */
    c.a.user_id = NULL;
    err[0] = '\0';
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "user_id"));
    /* An id with a slash stays one path segment. */
    c.a.user_id = "m-1";
    c.ho.ats_id = "../jobs";
    ck_assert_int_eq(V->build(&c.ho, &rq, &skip, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/candidates/..%2Fjobs/comments");
    wb_ats_req_free(&rq);
    ctx_free(&c);
}
END_TEST

/* 429 with and without Retry-After, X-Rate-Limit-Remaining 0 pacing, error
 * bodies. */
START_TEST(test_rate_and_errors)
{
    struct step_ctx c;
    ctx_init(&c, NULL, "m-1", 1);
    struct wb_ats_outcome o;
    struct wb_ats_header h429[] = {{"X-Rate-Limit-Limit", "10"},
                                   {"X-Rate-Limit-Remaining", "0"},
                                   {"X-Rate-Limit-Reset", "1700000006"}};
    struct wb_ats_resp r = resp(429, "{\"error\":\"Too many requests\"}");
    r.headers = h429;
    r.nheaders = 3;
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    ck_assert(o.retry_after_s == 6);
    ck_assert_ptr_nonnull(strstr(o.error, "429"));
    wb_ats_outcome_free(&o);
    ck_assert(V->pace(&r) == 1700000006);

    struct wb_ats_header hra[] = {{"Retry-After", "3"}, {"X-Rate-Limit-Remaining", "0"},
                                  {"X-Rate-Limit-Reset", "1700000006"}};
    r.headers = hra;
    V->decide(&c.ho, &r, &o);
    ck_assert(o.retry_after_s == 3);
    wb_ats_outcome_free(&o);

    /* Requests left: no pause; the last one used: until the reset (ms and ISO too). */
    struct wb_ats_header ok[] = {{"X-Rate-Limit-Remaining", "4"},
                                 {"X-Rate-Limit-Reset", "1700000009"}};
    r = resp(200, "{}");
    r.headers = ok;
    r.nheaders = 2;
    ck_assert(V->pace(&r) == 0);
    ok[0].value = "0";
    ck_assert(V->pace(&r) == 1700000009);
    ok[1].value = "1700000009000";
    ck_assert(V->pace(&r) == 1700000009);
    ok[1].value = "2023-11-14T22:13:29Z";
    ck_assert(V->pace(&r) == 1700000009);
    ok[1].value = "9999999999"; /* a nonsense reset: at most one interval */
    ck_assert(V->pace(&r) == 1700000011);
    ok[1].value = "soon";
    ck_assert(V->pace(&r) == 0);
    r.nheaders = 0;
    ck_assert(V->pace(&r) == 0);

    r = resp(401, "{\"error\":\"Not authorized\"}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    ck_assert_ptr_nonnull(strstr(o.error, "Not authorized"));
    wb_ats_outcome_free(&o);
    r = resp(422, "{\"error\":\"Validation failed: Email is invalid\"}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(503, "<html>");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    wb_ats_outcome_free(&o);
    r = resp(201, "{\"candidate\":{}}");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_DEAD);
    wb_ats_outcome_free(&o);
    r = resp(200, "not json");
    V->decide(&c.ho, &r, &o);
    ck_assert_int_eq(o.verdict, WB_ATS_RETRY);
    wb_ats_outcome_free(&o);
    ctx_free(&c);
}
END_TEST

static enum wb_ats_sig verify(const char *sig, const char *body)
{
    struct wb_ats_header h[] = {{"X-Workable-Signature", sig}};
    return V->verify(h, sig ? 1 : 0, body, strlen(body), (const unsigned char *)TOKEN, TLEN, 0);
}

/* Computed independently: printf '%s' '{"event_type":"candidate_moved"}' |
 * openssl dgst -sha256 -hmac wk-token-9 (-binary | base64 for the other form). */
START_TEST(test_signature)
{
    const char *body = "{\"event_type\":\"candidate_moved\"}";
    const char *hex = "7c92453af0fb5cfd772437547193550343d03405d972d8327c0b1d1a4b9f67c6";
    ck_assert_int_eq(verify(hex, body), WB_ATS_SIG_OK);
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    ck_assert_int_eq(verify(upper, body), WB_ATS_SIG_OK);
    ck_assert_int_eq(verify("fJJFOvD7XP13JDdUcZNVA0PQNAXZctgyfAsdGkufZ8Y=", body), WB_ATS_SIG_OK);
    ck_assert_int_eq(verify(NULL, body), WB_ATS_SIG_MISSING);
    ck_assert_int_eq(verify(hex, "{\"event_type\":\"candidate_moveD\"}"), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify("sha256=abc", body), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify("", body), WB_ATS_SIG_FORGED);
    ck_assert_int_eq(verify("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", body), WB_ATS_SIG_FORGED);
}
END_TEST

static int parse(const char *body, struct wb_ats_inbound *ev, char *err)
{
    return V->parse(NULL, 0, body, strlen(body), ev, err, WB_ATS_ERR_MAX);
}

#define ENVELOPE(ev, data)                                                                     \
    "{\"id\":\"9f2a\",\"event_type\":\"" ev "\",\"fired_at\":\"2026-12-06T08:00:00Z\","       \
    "\"resource_type\":\"candidate\",\"data\":" data "}"

START_TEST(test_parse_events)
{
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    ck_assert_int_eq(parse(ENVELOPE("candidate_moved",
                                    "{\"id\":\"c-1\",\"name\":\"Silver Medal\",\"firstname\":"
                                    "\"Silver\",\"lastname\":\"Medal\",\"email\":"
                                    "\"silver@example.org\",\"stage\":\"interview\","
                                    "\"disqualified\":true,\"disqualification_reason\":"
                                    "\"Hired someone else\",\"job\":{\"shortcode\":\"JOB7\","
                                    "\"title\":\"Backend\"},\"sourced\":false}"),
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_REJECTED);
    ck_assert_str_eq(ev.event_id, "9f2a@2026-12-06T08:00:00Z");
    ck_assert_str_eq(ev.email, "silver@example.org");
    ck_assert_str_eq(ev.first_name, "Silver");
    ck_assert_str_eq(ev.last_name, "Medal");
    ck_assert_str_eq(ev.reason, "Hired someone else");
    ck_assert_str_eq(ev.candidate_id, "c-1");
    ck_assert_str_eq(ev.job_id, "JOB7");
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse(ENVELOPE("candidate_moved",
                                    "{\"id\":\"c-1\",\"email\":\"ada@example.org\","
                                    "\"stage\":\"hired\",\"disqualified\":false,"
                                    "\"hired_at\":\"2026-12-06\"}"),
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_HIRED);
    wb_ats_inbound_free(&ev);

    ck_assert_int_eq(parse(ENVELOPE("candidate_created",
                                    "{\"id\":\"c-2\",\"email\":\"new@example.org\","
                                    "\"stage\":\"applied\",\"disqualified\":false,"
                                    "\"sourced\":false}"),
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_APPLIED);
    wb_ats_inbound_free(&ev);

    /* Sourced (our own handoff, or a recruiter's upload) and plain moves: nothing. */
    ck_assert_int_eq(parse(ENVELOPE("candidate_created", "{\"id\":\"c-3\",\"sourced\":true}"),
                           &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
    ck_assert_int_eq(parse(ENVELOPE("candidate_moved", "{\"stage\":\"phone-screen\"}"), &ev, err),
                     0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
    ck_assert_int_eq(parse(ENVELOPE("employee_created", "{}"), &ev, err), 0);
    ck_assert_int_eq(ev.type, WB_ATS_IN_IGNORED);
    wb_ats_inbound_free(&ev);
}
END_TEST

START_TEST(test_parse_hostile)
{
    static const char *const bad[] = {
        "",
        "null",
        "{\"event_type\":5}",
        "{\"data\":{}}",
        "{\"event_type\":\"candidate_moved\",\"data\":{\"disqualified\":true,\"email\":7}}",
        "{\"event_type\":\"candidate_moved\",\"data\":{\"disqualified\":true,"
        "\"email\":\"a@b.c\\nBcc: x@y.z\"}}",
        "{\"event_type\":\"candidate_moved\",\"id\":\"x\",\"fired_at\":[],"
        "\"data\":{\"disqualified\":true}}",
        "{\"event_type\":\"candidate_moved\",\"event_type\":\"candidate_created\",\"data\":{}}",
        "{\"event_type\":\"candidate_moved\",\"data\":{\"disqualified\":true}",
    };
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(parse(bad[i], &ev, err) == -1, "accepted: %s", bad[i]);
        ck_assert_msg(err[0], "no message for %s", bad[i]);
        ck_assert_ptr_null(ev.email);
    }
    /* An id too long for a replay key. */
    char big[600];
    int n = snprintf(big, sizeof big, "{\"event_type\":\"candidate_moved\",\"id\":\"");
    memset(big + n, 'a', 300);
    strcpy(big + n + 300, "\",\"data\":{\"disqualified\":true}}");
    ck_assert_int_eq(parse(big, &ev, err), -1);
}
END_TEST

START_TEST(test_check)
{
    struct wb_ats_api a = api(NULL, NULL);
    struct wb_ats_req rq;
    char err[WB_ATS_ERR_MAX], msg[200];
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_AUTH, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/stages");
    wb_ats_req_free(&rq);
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_JOB, &rq, err, sizeof err), 1);
    a.job_id = "JOB7";
    ck_assert_int_eq(V->check_build(&a, NULL, WB_ATS_CHECK_JOB, &rq, err, sizeof err), 0);
    ck_assert_str_eq(rq.url, "http://127.0.0.1:9/spi/v3/jobs/JOB7");
    wb_ats_req_free(&rq);
    struct wb_ats_resp r = resp(401, "{\"error\":\"Not authorized\"}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_REFUSED);
    r = resp(404, "{\"error\":\"Not found\"}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg),
                     WB_ATS_CHECK_NOT_FOUND);
    r = resp(0, NULL);
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_FAILED);
    r = resp(429, "");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_AUTH, &r, msg, sizeof msg), WB_ATS_CHECK_FAILED);
    r = resp(200, "{\"shortcode\":\"JOB7\",\"title\":\"Backend\"}");
    ck_assert_int_eq(V->check_parse(WB_ATS_CHECK_JOB, &r, msg, sizeof msg), WB_ATS_CHECK_OK);
    ck_assert_ptr_nonnull(strstr(msg, "Backend"));
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("vendor_workable");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_attach_note);
    tcase_add_test(tc, test_rate_and_errors);
    tcase_add_test(tc, test_signature);
    tcase_add_test(tc, test_parse_events);
    tcase_add_test(tc, test_parse_hostile);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}
