/* libFuzzer target for the Ashby, Workable and SmartRecruiters adapters'
 * readers of outside input: the web hook parser, the signature check, the
 * SmartRecruiters lookup, and every handoff step's decision on an answer.
 * Input: "KIND\n" (ashby, workable or smartrecruiters; anything else picks
 * by the first byte) then the body.
 * Oracles: a parsed event has a known type and no control character in
 * any of its strings; a refusal says why; a body signed as the vendor signs
 * it verifies and the same signature fails for another body; a decision is
 * a known verdict, NEXT names a step, DEAD/RETRY say why, an id has no
 * control character. */
#include "warmbench/ats_vendor.h"
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct wb_ats_vendor wb_ats_vendor_ashby;
extern const struct wb_ats_vendor wb_ats_vendor_workable;
extern const struct wb_ats_vendor wb_ats_vendor_smartrecruiters;

static const unsigned char key[] = "fuzz-vendor-secret";
#define KL (sizeof key - 1)
#define NOW 1700000000.0

static void fv_clean(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

static void fv_event(const struct wb_ats_inbound *ev)
{
    if (ev->type > WB_ATS_IN_HIRED)
        abort();
    const char *f[] = {ev->event_id, ev->email, ev->first_name, ev->last_name,
                       ev->candidate_id, ev->lookup_id, ev->reason, ev->job_id};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        fv_clean(f[i]);
}

/* The vendor's own signing of body, then verify must accept it and reject
 * it for a body one byte shorter. */
static void fv_signature(const struct wb_ats_vendor *v, const char *body, size_t len)
{
    char hex[65], val[80], ts[16];
    wb_ats_hmac_hex(key, KL, body, len, hex);
    snprintf(ts, sizeof ts, "%.0f", NOW);
    struct wb_ats_header h[4];
    size_t nh = 1;
    if (v == &wb_ats_vendor_ashby) {
        snprintf(val, sizeof val, "sha256=%s", hex);
        h[0] = (struct wb_ats_header){"Ashby-Signature", val};
    } else if (v == &wb_ats_vendor_workable) {
        h[0] = (struct wb_ats_header){"X-Workable-Signature", hex};
    } else {
        /* timestamp.body.... with every event header absent */
        char *m = malloc(strlen(ts) + len + 6);
        size_t n = (size_t)sprintf(m, "%s.", ts);
        memcpy(m + n, body, len);
        memcpy(m + n + len, "....", 4);
        wb_ats_hmac_hex(key, KL, m, n + len + 4, hex);
        free(m);
        snprintf(val, sizeof val, "v1=%s", hex);
        h[0] = (struct wb_ats_header){"smartrecruiters-signature", val};
        h[1] = (struct wb_ats_header){"smartrecruiters-timestamp", ts};
        nh = 2;
    }
    if (v->verify(h, nh, body, len, key, KL, NOW) != WB_ATS_SIG_OK)
        abort();
    if (len && v->verify(h, nh, body, len - 1, key, KL, NOW) == WB_ATS_SIG_OK)
        abort();
}

static void fv_parse(const struct wb_ats_vendor *v, const char *body, size_t len)
{
    struct wb_ats_header h[] = {{"event-name", "application.status.updated"},
                                {"event-id", "e1"}};
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX] = "";
    if (v->parse(h, 2, body, len, &ev, err, sizeof err) < 0) {
        if (!err[0])
            abort();
        return;
    }
    fv_event(&ev);
    if (v->lookup_parse) {
        struct wb_ats_resp rs = {.status = 200, .body = body, .len = len, .now = NOW};
        bool perm;
        if (v->lookup_parse(&rs, &ev, &perm, err, sizeof err) == 0)
            fv_event(&ev);
    }
    wb_ats_inbound_free(&ev);
}

/* The body as the answer to each step, with and without a stored id. */
static void fv_decide(const struct wb_ats_vendor *v, const char *body, size_t len)
{
    static const long statuses[] = {200, 201, 429, 503};
    struct wb_ats_api api = {.kind = v->kind, .base_url = "http://x", .secret = "k",
                             .secret_len = 1, .job_id = "JOB7", .user_id = "m"};
    json_t *p = json_pack("{s{ss}}", "candidate", "email", "ada@example.org");
    struct wb_ats_header h[] = {{"Retry-After", "5"}, {"X-Rate-Limit-Remaining", "0"},
                                {"X-Rate-Limit-Reset", "1700000009"},
                                {"X-RateLimit-Remaining", "0"}};
    for (int step = 0; step < 4; step++)
        for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++) {
            json_t *st = json_object();
            struct wb_ats_handoff ho = {.api = &api, .payload = p, .step = step, .state = st,
                                        .ats_id = step % 2 ? "c-1" : NULL};
            struct wb_ats_resp rs = {.status = statuses[s], .headers = h, .nheaders = 4,
                                     .body = body, .len = len, .now = NOW};
            struct wb_ats_outcome o;
            v->decide(&ho, &rs, &o);
            if (o.verdict > WB_ATS_REAUTH || (o.verdict == WB_ATS_NEXT && o.next_step < 0) ||
                ((o.verdict == WB_ATS_DEAD || o.verdict == WB_ATS_RETRY) && !o.error) ||
                o.retry_after_s < 0)
                abort();
            fv_clean(o.ats_id);
            wb_ats_outcome_free(&o);
            if (v->pace)
                (void)v->pace(&rs);
            json_decref(st);
        }
    json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct wb_ats_vendor *const vs[] = {
        &wb_ats_vendor_ashby, &wb_ats_vendor_workable, &wb_ats_vendor_smartrecruiters};
    const struct wb_ats_vendor *v = vs[size ? data[0] % 3 : 0];
    const char *body = (const char *)data;
    size_t len = size;
    const uint8_t *nl = memchr(data, '\n', size < 20 ? size : 20);
    if (nl) {
        for (size_t i = 0; i < 3; i++)
            if ((size_t)(nl - data) == strlen(vs[i]->kind) &&
                !memcmp(data, vs[i]->kind, (size_t)(nl - data))) {
                v = vs[i];
                body = (const char *)nl + 1;
                len = size - (size_t)(nl - data) - 1;
            }
    }
    fv_signature(v, body, len);
    fv_parse(v, body, len);
    fv_decide(v, body, len);
    return 0;
}
