/* Workable (SPEC "Native ATS adapters"), against workable.readme.io (SPI
 * v3) as of 2026-12: https://SUBDOMAIN.workable.com/spi/v3, a Bearer
 * token, 10 requests per 10 s for an account token with
 * X-Rate-Limit-Limit / -Remaining / -Reset on every answer and 429 above.
 *
 * Out: FIND (GET /candidates?email=) → CREATE (POST
 * /jobs/JOB/candidates, or /talent_pool/candidates without a job, with
 * "sourced": true so that Workable sends the person no "thank you for
 * applying" mail) → ATTACH (POST /candidates/ID/copy to the job, for a
 * person found elsewhere) → NOTE (POST /candidates/ID/comments). Copy and
 * comment need a member id: ats.api.user_id. A retry starts again at FIND.
 * In: {"id", "event_type", "fired_at", "resource_type", "data": candidate}
 * signed X-Workable-Signature = HMAC-SHA256(token, raw body) (hex; base64
 * is accepted too: the documentation does not say). candidate_created →
 * applied (a sourced one is ignored: nobody applied, e.g. our own handoff),
 * data.disqualified → rejected, stage hired (or hired_at set) → hired. */
#include "warmbench/ats_vendor.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { WK_FIND, WK_CREATE, WK_ATTACH, WK_NOTE };

#define WK_STR_MAX 1000   /* characters of a string taken from a webhook */
#define WK_EVENT_ID_MAX 190

/* ---- out ---------------------------------------------------------------- */

/* The API root: base_url is the account's https://SUB.workable.com (or
 * already ends in /spi/v3). */
static char *wk_url(const struct wb_ats_api *api, const char *fmt, const char *a, const char *b)
{
    const char *root = api->base_url;
    size_t n = strlen(root);
    bool has_spi = n >= 7 && !strcmp(root + n - 7, "/spi/v3");
    char *path = wb_xasprintf(fmt, a ? a : "", b ? b : "");
    char *url = wb_xasprintf("%s%s%s", root, has_spi ? "" : "/spi/v3", path);
    free(path);
    return url;
}

static int wk_request(const struct wb_ats_api *api, const char *method, char *url, json_t *body,
                      struct wb_ats_req *rq, char *err, size_t errsz)
{
    return wb_ats_req_token(api, method, url, body, "workable", "Authorization: Bearer ", rq, err,
                            errsz);
}

static bool wk_has_job(const struct wb_ats_api *api)
{
    return api->job_id && *api->job_id;
}

static json_t *wk_candidate_body(const json_t *payload)
{
    const char *f = wb_ats_cand_str(payload, "first_name");
    const char *l = wb_ats_cand_str(payload, "last_name");
    const char *e = wb_ats_cand_str(payload, "email");
    const char *title = wb_ats_cand_str(payload, "title");
    json_t *c = json_object();
    if (f && *f && l && *l) {
        json_object_set_new(c, "firstname", json_string(f));
        json_object_set_new(c, "lastname", json_string(l));
    } else {
        /* One name or none: Workable takes "name" instead of both parts. */
        const char *one = f && *f ? f : l && *l ? l : NULL;
        const char *at = strchr(e, '@');
        json_object_set_new(c, "name", one ? json_string(one)
                                           : json_stringn(e, at ? (size_t)(at - e) : strlen(e)));
    }
    json_object_set_new(c, "email", json_string(e));
    if (title && *title)
        json_object_set_new(c, "headline", json_string(title));
    return json_pack("{sbso}", "sourced", 1, "candidate", c);
}

static int wk_need_member(const struct wb_ats_handoff *ho, char *err, size_t errsz)
{
    if (ho->api->user_id && *ho->api->user_id)
        return 0;
    snprintf(err, errsz, "workable: ats.api.user_id (the member who comments and copies) is not set");
    return -1;
}

static int wk_build(const struct wb_ats_handoff *ho, struct wb_ats_req *rq, int *skip_to,
                    char *err, size_t errsz)
{
    const struct wb_ats_api *api = ho->api;
    const char *email = wb_ats_cand_str(ho->payload, "email");
    if (!email || !*email) {
        snprintf(err, errsz, "workable: the handoff has no candidate email");
        return -1;
    }
    if (ho->step > WK_CREATE && !ho->ats_id) {
        snprintf(err, errsz, "workable: step %d without the candidate's Workable id", ho->step);
        return -1;
    }
    char *esc;
    int rc;
    switch (ho->step) {
    case WK_FIND:
        esc = wb_ats_url_escape(email);
        rc = wk_request(api, "GET", wk_url(api, "/candidates?email=%s&limit=100", esc, NULL),
                            NULL, rq, err, errsz);
        free(esc);
        return rc;
    case WK_CREATE:
        if (!wk_has_job(api))
            return wk_request(api, "POST", wk_url(api, "/talent_pool/candidates", NULL, NULL),
                              wk_candidate_body(ho->payload), rq, err, errsz);
        esc = wb_ats_url_escape(api->job_id);
        rc = wk_request(api, "POST", wk_url(api, "/jobs/%s/candidates", esc, NULL),
                        wk_candidate_body(ho->payload), rq, err, errsz);
        free(esc);
        return rc;
    case WK_ATTACH:
        if (!wk_has_job(api) || json_is_true(json_object_get(ho->state, "attached"))) {
            *skip_to = WK_NOTE;
            return 1;
        }
        if (wk_need_member(ho, err, errsz) < 0)
            return -1;
        esc = wb_ats_url_escape(ho->ats_id);
        rc = wk_request(api, "POST", wk_url(api, "/candidates/%s/copy", esc, NULL),
                        json_pack("{ssss}", "member_id", api->user_id, "target_job_shortcode",
                                  api->job_id),
                        rq, err, errsz);
        free(esc);
        return rc;
    case WK_NOTE: {
        if (wk_need_member(ho, err, errsz) < 0)
            return -1;
        char *text = wb_ats_note_text(ho->payload);
        json_t *b = json_pack("{sss{ss}}", "member_id", api->user_id, "comment", "body", text);
        free(text);
        esc = wb_ats_url_escape(ho->ats_id);
        rc = wk_request(api, "POST", wk_url(api, "/candidates/%s/comments", esc, NULL), b, rq,
                        err, errsz);
        free(esc);
        return rc;
    }
    default:
        snprintf(err, errsz, "workable: unknown step %d", ho->step);
        return -1;
    }
}

/* X-Rate-Limit-Reset as a Unix time: seconds, milliseconds, a delta of a
 * few seconds, ISO 8601 or an HTTP date ("timestamp of next interval"). */
static double wk_reset_time(const char *v, double now)
{
    while (*v == ' ')
        v++;
    char *end;
    double d = strtod(v, &end);
    if (end != v && (*end == '\0' || *end == ' ')) {
        if (!isfinite(d) || d < 0)
            return 0;
        return d > 1e11 ? d / 1000.0 : d < 1e6 ? now + d : d;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        rest = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest)
        return 0;
    return (double)timegm(&tm);
}

/* No request before the interval resets once none remain in it. */
static double wk_pace(const struct wb_ats_resp *rs)
{
    const char *rem = wb_ats_header_get(rs->headers, rs->nheaders, "X-Rate-Limit-Remaining");
    const char *reset = wb_ats_header_get(rs->headers, rs->nheaders, "X-Rate-Limit-Reset");
    if (!rem || !reset || atol(rem) > 0 || !isdigit((unsigned char)rem[strspn(rem, " ")]))
        return rs->status == 429 && reset ? wk_reset_time(reset, rs->now) : 0;
    double t = wk_reset_time(reset, rs->now);
    /* A clock far off or a nonsense value: at most one interval (10 s) and a bit. */
    return t > rs->now + 60 ? rs->now + 11 : t;
}

static void wk_dead(struct wb_ats_outcome *out, const char *what)
{
    out->verdict = WB_ATS_DEAD;
    out->error = wb_xasprintf("workable: %s", what);
}

/* The candidate object of an answer: {"candidate": {...}} or the object itself. */
static char *wk_answer_id(json_t *r)
{
    json_t *c = json_object_get(r, "candidate");
    return wb_ats_json_id(json_object_get(json_is_object(c) ? c : r, "id"));
}

/* GET /candidates: prefer the person's candidacy in the job (nothing to
 * attach), then any other (copied to the job), else the id stored from an
 * earlier handoff (search may lag a fresh create), else CREATE. */
static void wk_found(const struct wb_ats_handoff *ho, json_t *r, struct wb_ats_outcome *out)
{
    json_t *list = json_object_get(r, "candidates"), *c;
    if (!json_is_array(list)) {
        wk_dead(out, "GET /candidates answered without a candidates array");
        return;
    }
    const char *email = wb_ats_cand_str(ho->payload, "email");
    size_t i;
    out->verdict = WB_ATS_NEXT;
    json_array_foreach(list, i, c) {
        const char *e = wb_ats_json_str(c, "email");
        char *id = wb_ats_json_id(json_object_get(c, "id"));
        if (!id || !e || strcasecmp(e, email)) {
            free(id);
            continue;
        }
        const char *sc = wb_ats_json_str(json_object_get(c, "job"), "shortcode");
        bool in_job = wk_has_job(ho->api) && sc && !strcmp(sc, ho->api->job_id);
        if (!out->ats_id || in_job) {
            free(out->ats_id);
            out->ats_id = id;
        } else {
            free(id);
        }
        if (in_job) {
            json_object_set_new(ho->state, "attached", json_true());
            break;
        }
    }
    out->next_step = out->ats_id || ho->ats_id ? WK_ATTACH : WK_CREATE;
}

static void wk_decide(const struct wb_ats_handoff *ho, const struct wb_ats_resp *rs,
                      struct wb_ats_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (rs->status < 200 || rs->status >= 300) {
        wb_ats_outcome_http(rs, false, out);
        /* A 429 without Retry-After: until the interval resets. */
        if (out->verdict == WB_ATS_RETRY && out->retry_after_s <= 0) {
            double t = wk_pace(rs);
            out->retry_after_s = t > rs->now ? t - rs->now : 0;
        }
        return;
    }
    if (ho->step == WK_NOTE) {
        out->verdict = WB_ATS_DONE; /* 201, a plain-text body */
        return;
    }
    json_t *r = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    if (!json_is_object(r)) {
        out->verdict = WB_ATS_RETRY;
        out->error = wb_xstrdup("workable: the answer is not JSON");
    } else if (ho->step == WK_FIND) {
        wk_found(ho, r, out);
    } else if (!(out->ats_id = wk_answer_id(r))) {
        wk_dead(out, ho->step == WK_CREATE ? "the created candidate has no id"
                                           : "the copied candidate has no id");
    } else {
        /* Created in the job or copied to it: attached either way. */
        json_object_set_new(ho->state, "attached", json_boolean(wk_has_job(ho->api)));
        out->verdict = WB_ATS_NEXT;
        out->next_step = ho->step == WK_CREATE ? WK_ATTACH : WK_NOTE;
    }
    json_decref(r);
}

/* ---- in ----------------------------------------------------------------- */

/* Hex (either case) or base64 of the HMAC-SHA256 of the raw body. */
static enum wb_ats_sig wk_verify(const struct wb_ats_header *h, size_t nh, const char *body,
                                 size_t len, const unsigned char *secret, size_t secret_len,
                                 double now)
{
    (void)now; /* no timestamp: replays are caught by the event id */
    const char *sig = wb_ats_header_get(h, nh, "X-Workable-Signature");
    if (!sig)
        return WB_ATS_SIG_MISSING;
    sig += strspn(sig, " ");
    size_t n = strcspn(sig, " ");
    char want[65];
    wb_ats_hmac_hex(secret, secret_len, body, len, want);
    if (n == 64)
        return wb_ats_hex_equal(sig, n, want) ? WB_ATS_SIG_OK : WB_ATS_SIG_FORGED;
    if (n != 44)
        return WB_ATS_SIG_FORGED;
    unsigned char raw[32], b64[45];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(want + 2 * i, "%2x", &v);
        raw[i] = (unsigned char)v;
    }
    EVP_EncodeBlock(b64, raw, 32);
    return CRYPTO_memcmp(b64, sig, 44) == 0 ? WB_ATS_SIG_OK : WB_ATS_SIG_FORGED;
}

static bool wk_hired(const json_t *c)
{
    const char *stage = wb_ats_json_str(c, "stage");
    json_t *at = json_object_get(c, "hired_at");
    return (stage && !strcasecmp(stage, "hired")) || (json_is_string(at) && json_string_length(at));
}

static enum wb_ats_in_type wk_type(const char *event, const json_t *c)
{
    bool created = !strcmp(event, "candidate_created");
    if (!created && strcmp(event, "candidate_moved"))
        return WB_ATS_IN_IGNORED;
    if (json_is_true(json_object_get(c, "disqualified")))
        return WB_ATS_IN_REJECTED;
    if (wk_hired(c))
        return WB_ATS_IN_HIRED;
    if (created && !json_is_true(json_object_get(c, "sourced")))
        return WB_ATS_IN_APPLIED;
    return WB_ATS_IN_IGNORED;
}

/* A string member of a web hook, at most WK_STR_MAX characters (ats_vendor.h). */
static int wk_take(const json_t *obj, const char *key, const char *path, char **out, char *err,
                   size_t errsz)
{
    return wb_ats_json_take(obj, key, path, WK_STR_MAX, out, err, errsz);
}

/* The delivery's id with the time it fired: the same on every redelivery,
 * different for two events even if "id" named the subscription. */
static int wk_event_id(const json_t *r, struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    json_t *idv = json_object_get(r, "id");
    char *id = wb_ats_json_id(idv), *fired = NULL;
    if (idv && !json_is_null(idv) && !id) {
        snprintf(err, errsz, "id: not an id (a string of 1 to 200 characters or a number)");
        return -1;
    }
    if (wk_take(r, "fired_at", "fired_at", &fired, err, errsz) < 0) {
        free(id);
        return -1;
    }
    if (id)
        ev->event_id = fired ? wb_xasprintf("%s@%s", id, fired) : wb_xstrdup(id);
    free(id);
    free(fired);
    if (ev->event_id && (strlen(ev->event_id) > WK_EVENT_ID_MAX ||
                         strpbrk(ev->event_id, "\r\n"))) {
        snprintf(err, errsz, "id: longer than %d characters", WK_EVENT_ID_MAX);
        return -1;
    }
    return 0;
}

static int wk_parse(const struct wb_ats_header *h, size_t nh, const char *body, size_t len,
                    struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    (void)h;
    (void)nh;
    memset(ev, 0, sizeof *ev);
    json_t *r = wb_ats_load_object(body, len, err, errsz);
    if (!r)
        return -1;
    int rc = -1;
    const char *event = wb_ats_json_str(r, "event_type");
    json_t *c = json_object_get(r, "data");
    if (!event) {
        snprintf(err, errsz, "event_type: required (a string)");
        goto out;
    }
    if ((ev->type = wk_type(event, c)) == WB_ATS_IN_IGNORED) {
        rc = 0;
        goto out;
    }
    if (!json_is_object(c)) {
        snprintf(err, errsz, "data: must be an object");
        goto out;
    }
    if (wk_event_id(r, ev, err, errsz) < 0 ||
        wk_take(c, "email", "data.email", &ev->email, err, errsz) < 0 ||
        wk_take(c, "firstname", "data.firstname", &ev->first_name, err, errsz) < 0 ||
        wk_take(c, "lastname", "data.lastname", &ev->last_name, err, errsz) < 0 ||
        wk_take(c, "disqualification_reason", "data.disqualification_reason", &ev->reason, err,
                errsz) < 0)
        goto out;
    ev->candidate_id = wb_ats_json_id(json_object_get(c, "id"));
    ev->job_id = wb_ats_json_id(json_object_get(json_object_get(c, "job"), "shortcode"));
    rc = 0;
out:
    json_decref(r);
    if (rc < 0)
        wb_ats_inbound_free(ev);
    return rc;
}

/* ---- ats check ---------------------------------------------------------- */

static int wk_check_build(const struct wb_ats_api *api, const char *token,
                          enum wb_ats_check_what what, struct wb_ats_req *rq, char *err,
                          size_t errsz)
{
    (void)token;
    char *esc;
    int rc;
    switch (what) {
    case WB_ATS_CHECK_AUTH:
        return wk_request(api, "GET", wk_url(api, "/stages", NULL, NULL), NULL, rq, err, errsz);
    case WB_ATS_CHECK_JOB:
        if (!wk_has_job(api))
            return 1;
        esc = wb_ats_url_escape(api->job_id);
        rc = wk_request(api, "GET", wk_url(api, "/jobs/%s", esc, NULL), NULL, rq, err, errsz);
        free(esc);
        return rc;
    default:
        /* The member: check_parse cannot tell which one was asked for. */
        return 1;
    }
}

static enum wb_ats_check_result wk_check_parse(enum wb_ats_check_what what,
                                               const struct wb_ats_resp *rs, char *msg,
                                               size_t msgsz)
{
    static const char *const names[] = {"token", "job", "user"};
    if (rs->status == 401 || rs->status == 403) {
        snprintf(msg, msgsz, "the token was refused (HTTP %ld)", rs->status);
        return WB_ATS_CHECK_REFUSED;
    }
    if (rs->status == 404 && what == WB_ATS_CHECK_JOB) {
        snprintf(msg, msgsz, "job not found (HTTP 404)");
        return WB_ATS_CHECK_NOT_FOUND;
    }
    json_t *r = rs->status >= 200 && rs->status < 300
                    ? json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL) : NULL;
    enum wb_ats_check_result res = WB_ATS_CHECK_OK;
    if (!json_is_object(r)) {
        snprintf(msg, msgsz, rs->status ? "HTTP %ld" : "no answer%.0ld", rs->status);
        res = WB_ATS_CHECK_FAILED;
    } else {
        const char *t = wb_ats_json_str(r, what == WB_ATS_CHECK_JOB ? "title" : "x");
        snprintf(msg, msgsz, "%s accepted%s%s%s", names[what], t ? " (\"" : "", t ? t : "",
                 t ? "\")" : "");
    }
    json_decref(r);
    wb_text_clean_inplace(msg, strlen(msg));
    return res;
}

const struct wb_ats_vendor wb_ats_vendor_workable = {
    .kind = "workable",
    .default_base_url = "https://www.workable.com",
    .has_user = false, /* user_id is a member id; `ats check` does not probe it */
    .restart_step = WK_FIND,
    .build = wk_build,
    .decide = wk_decide,
    .pace = wk_pace,
    .verify = wk_verify,
    .parse = wk_parse,
    .check_build = wk_check_build,
    .check_parse = wk_check_parse,
};
