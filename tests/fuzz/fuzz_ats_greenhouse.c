/* libFuzzer target for the Greenhouse adapter's readers of outside input:
 * the web hook parser and signature check, the token answer, and every
 * handoff step's decision on an answer (and the rate pace).
 * Input: the body (a web hook, or an API answer).
 * Oracles: a parsed event has a known type, an address unless ignored, and
 * no control character in any string; a refusal says why and leaves
 * nothing; a body signed as Greenhouse signs it ("sha256 HEX") verifies
 * and the same signature fails for a body one byte shorter; a decision is
 * a known verdict, NEXT names a known step, DEAD/RETRY say why, an id
 * has no control character; a token has no CR or LF and expires later. */
#include "warmbench/ats_vendor.h"
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct wb_ats_vendor wb_ats_vendor_greenhouse;
#define GH (&wb_ats_vendor_greenhouse)

static const unsigned char key[] = "fuzz-greenhouse-secret";
#define KL (sizeof key - 1)
#define NOW 1700000000.0

static void fg_clean(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

static void fg_signature(const char *body, size_t len)
{
    char hex[65], val[80];
    wb_ats_hmac_hex(key, KL, body, len, hex);
    snprintf(val, sizeof val, "sha256 %s", hex);
    struct wb_ats_header h[] = {{"Signature", val}};
    if (GH->verify(h, 1, body, len, key, KL, NOW) != WB_ATS_SIG_OK)
        abort();
    if (len && GH->verify(h, 1, body, len - 1, key, KL, NOW) == WB_ATS_SIG_OK)
        abort();
}

static void fg_parse(const char *body, size_t len)
{
    struct wb_ats_header h[] = {{"Greenhouse-Event-ID", "ev-1"}};
    struct wb_ats_inbound ev;
    char err[WB_ATS_ERR_MAX] = "";
    if (GH->parse(h, 1, body, len, &ev, err, sizeof err) < 0) {
        if (!err[0] || ev.email || ev.event_id)
            abort();
        return;
    }
    if (ev.type > WB_ATS_IN_HIRED || (ev.type != WB_ATS_IN_IGNORED && !ev.email))
        abort();
    const char *f[] = {ev.event_id, ev.email, ev.first_name, ev.last_name,
                       ev.candidate_id, ev.reason, ev.job_id};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        fg_clean(f[i]);
    wb_ats_inbound_free(&ev);
}

static void fg_token(const char *body, size_t len)
{
    struct wb_ats_resp rs = {.status = 200, .body = body, .len = len, .now = NOW};
    char *tok = NULL, err[WB_ATS_ERR_MAX];
    double exp = 0;
    if (GH->token_parse(&rs, &tok, &exp, err, sizeof err) == 0) {
        if (!tok || strpbrk(tok, "\r\n") || exp <= NOW)
            abort();
        free(tok);
    }
}

/* The body as the answer to each step, with and without a stored id. */
static void fg_decide(const char *body, size_t len)
{
    static const long statuses[] = {200, 201, 401, 422, 429, 503};
    struct wb_ats_api api = {.kind = "greenhouse", .base_url = "http://x", .secret = "k",
                             .secret_len = 1, .job_id = "7", .user_id = "9"};
    json_t *p = json_pack("{s{ss}}", "candidate", "email", "ada@example.org");
    struct wb_ats_header h[] = {{"Retry-After", "5"}, {"X-RateLimit-Remaining", "0"},
                                {"X-RateLimit-Reset", "1700000009"}};
    for (int step = 0; step < 4; step++)
        for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++) {
            json_t *st = json_object();
            struct wb_ats_handoff ho = {.api = &api, .payload = p, .step = step, .state = st,
                                        .ats_id = step > 1 ? "42" : NULL, .token = "t"};
            struct wb_ats_resp rs = {.status = statuses[s], .headers = h, .nheaders = 3,
                                     .body = body, .len = len, .now = NOW};
            struct wb_ats_outcome o;
            GH->decide(&ho, &rs, &o);
            if (o.verdict > WB_ATS_REAUTH ||
                (o.verdict == WB_ATS_NEXT && (o.next_step < 0 || o.next_step > 3)) ||
                ((o.verdict == WB_ATS_DEAD || o.verdict == WB_ATS_RETRY) && !o.error) ||
                o.retry_after_s < 0)
                abort();
            fg_clean(o.ats_id);
            wb_ats_outcome_free(&o);
            if (GH->pace(&rs) < 0)
                abort();
            json_decref(st);
        }
    json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    fg_signature(body, size);
    fg_parse(body, size);
    fg_token(body, size);
    fg_decide(body, size);
    return 0;
}
