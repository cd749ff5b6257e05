/* SmartRecruiters (SPEC "Native ATS adapters"), against
 * developers.smartrecruiters.com as of 2026-12: https://api.smartrecruiters.com
 * with an X-SmartToken header; 10 requests per second and 8 at once, told
 * by X-RateLimit-Remaining / X-RateLimit-Concurrent-Remaining, 429 above.
 *
 * Out: FIND (GET /candidates?q=ADDRESS) → CREATE (POST /jobs/JOB/candidates,
 * or POST /candidates into the talent pool, only when not found) → NOTE
 * (POST /messages/shares, the candidate #-tagged, an open note). A person
 * found already is not attached to job_id (no endpoint for that could be
 * confirmed). A retry starts again at FIND.
 * In: a subscription's handshake echoes X-Hook-Secret. Deliveries carry
 * {"job_id", "candidate_id"} and the headers event-name, event-id,
 * event-version, link; "smartrecruiters-signature: v1=HEX[;v1=HEX...]" is
 * HMAC-SHA256 of timestamp.body.event-id.event-name.event-version.link
 * (an absent header counts as ""), smartrecruiters-timestamp within 300 s
 * of now. The body has no address: one lookup (GET /candidates/ID) gives
 * it and, for application.status.updated, the status on that job (REJECTED
 * → rejected, HIRED → hired, else nothing). */
#include "warmbench/ats_vendor.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { SR_FIND, SR_CREATE, SR_NOTE };

#define SR_WINDOW_S 300.0 /* the signature's replay window */
#define SR_STR_MAX 1000
#define SR_ID_MAX 190

/* ---- out ---------------------------------------------------------------- */

static int sr_request(const struct wb_ats_api *api, const char *method, char *url, json_t *body,
                      struct wb_ats_req *rq, char *err, size_t errsz)
{
    return wb_ats_req_token(api, method, url, body, "smartrecruiters", "X-SmartToken: ", rq, err,
                            errsz);
}

static char *sr_url(const struct wb_ats_api *api, const char *fmt, const char *arg)
{
    char *esc = arg ? wb_ats_url_escape(arg) : NULL;
    char *path = wb_xasprintf(fmt, esc ? esc : "");
    char *url = wb_xasprintf("%s%s", api->base_url, path);
    free(esc);
    free(path);
    return url;
}

/* firstName and lastName are both required: a missing one is "-", both
 * missing the address's local part and "-". */
static json_t *sr_candidate_body(const json_t *payload)
{
    const char *f = wb_ats_cand_str(payload, "first_name");
    const char *l = wb_ats_cand_str(payload, "last_name");
    const char *e = wb_ats_cand_str(payload, "email");
    json_t *c = json_object();
    if (f && *f)
        json_object_set_new(c, "firstName", json_string(f));
    else {
        const char *at = strchr(e, '@');
        json_object_set_new(c, "firstName", json_stringn(e, at ? (size_t)(at - e) : strlen(e)));
    }
    json_object_set_new(c, "lastName", json_string(l && *l ? l : "-"));
    json_object_set_new(c, "email", json_string(e));
    return c;
}

static int sr_build(const struct wb_ats_handoff *ho, struct wb_ats_req *rq, int *skip_to,
                    char *err, size_t errsz)
{
    (void)skip_to;
    const struct wb_ats_api *api = ho->api;
    const char *email = wb_ats_cand_str(ho->payload, "email");
    if (!email || !*email) {
        snprintf(err, errsz, "smartrecruiters: the handoff has no candidate email");
        return -1;
    }
    switch (ho->step) {
    case SR_FIND:
        return sr_request(api, "GET", sr_url(api, "/candidates?q=%s&limit=100", email), NULL, rq,
                          err, errsz);
    case SR_CREATE:
        if (api->job_id && *api->job_id)
            return sr_request(api, "POST", sr_url(api, "/jobs/%s/candidates", api->job_id),
                              sr_candidate_body(ho->payload), rq, err, errsz);
        return sr_request(api, "POST", sr_url(api, "/candidates", NULL),
                          sr_candidate_body(ho->payload), rq, err, errsz);
    case SR_NOTE: {
        if (!ho->ats_id || strpbrk(ho->ats_id, "[]")) {
            snprintf(err, errsz, "smartrecruiters: no usable candidate id for the note");
            return -1;
        }
        char *text = wb_ats_note_text(ho->payload);
        char *content = wb_xasprintf("#[CANDIDATE:%s] %s", ho->ats_id, text);
        json_t *b = json_pack("{sss{sb}}", "content", content, "shareWith", "openNote", 1);
        free(text);
        free(content);
        return sr_request(api, "POST", sr_url(api, "/messages/shares", NULL), b, rq, err, errsz);
    }
    default:
        snprintf(err, errsz, "smartrecruiters: unknown step %d", ho->step);
        return -1;
    }
}

static long sr_header_num(const struct wb_ats_resp *rs, const char *name)
{
    const char *v = wb_ats_header_get(rs->headers, rs->nheaders, name);
    if (!v)
        return -1;
    v += strspn(v, " ");
    return isdigit((unsigned char)*v) ? atol(v) : -1;
}

/* The per-second window used up: wait for the next second; no slot free
 * among the 8: a short pause. */
static double sr_pace(const struct wb_ats_resp *rs)
{
    if (sr_header_num(rs, "X-RateLimit-Remaining") == 0)
        return rs->now + 1.0;
    if (sr_header_num(rs, "X-RateLimit-Concurrent-Remaining") == 0)
        return rs->now + 0.2;
    return 0;
}

/* GET /candidates: the first whose address is the one asked for (q is a
 * keyword search); none: the stored id (the search lists only people
 * with an application, and may lag a create), else CREATE. */
static void sr_found(const struct wb_ats_handoff *ho, json_t *r, struct wb_ats_outcome *out)
{
    json_t *list = json_object_get(r, "content"), *c;
    const char *email = wb_ats_cand_str(ho->payload, "email");
    size_t i;
    out->verdict = WB_ATS_NEXT;
    json_array_foreach(list, i, c) {
        const char *e = wb_ats_json_str(c, "email");
        char *id = wb_ats_json_id(json_object_get(c, "id"));
        if (id && e && !strcasecmp(e, email)) {
            out->ats_id = id;
            out->next_step = SR_NOTE;
            return;
        }
        free(id);
    }
    out->next_step = ho->ats_id && *ho->ats_id ? SR_NOTE : SR_CREATE;
}

static void sr_decide(const struct wb_ats_handoff *ho, const struct wb_ats_resp *rs,
                      struct wb_ats_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (rs->status < 200 || rs->status >= 300) {
        wb_ats_outcome_http(rs, false, out);
        /* SmartRecruiters' windows are one second long. */
        if (out->verdict == WB_ATS_RETRY && rs->status == 429 && out->retry_after_s <= 0)
            out->retry_after_s = 1.0;
        return;
    }
    if (ho->step == SR_NOTE) {
        out->verdict = WB_ATS_DONE;
        return;
    }
    json_t *r = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    if (!json_is_object(r)) {
        out->verdict = WB_ATS_RETRY;
        out->error = wb_xstrdup("smartrecruiters: the answer is not JSON");
    } else if (ho->step == SR_FIND) {
        if (json_is_array(json_object_get(r, "content"))) {
            sr_found(ho, r, out);
        } else {
            out->verdict = WB_ATS_DEAD;
            out->error = wb_xstrdup("smartrecruiters: GET /candidates answered without content");
        }
    } else if ((out->ats_id = wb_ats_json_id(json_object_get(r, "id")))) {
        out->verdict = WB_ATS_NEXT;
        out->next_step = SR_NOTE;
    } else {
        out->verdict = WB_ATS_DEAD;
        out->error = wb_xstrdup("smartrecruiters: the created candidate has no id");
    }
    json_decref(r);
}

/* ---- in ----------------------------------------------------------------- */

static int sr_handshake(const struct wb_ats_header *h, size_t nh, char **echo)
{
    const char *s = wb_ats_header_get(h, nh, "X-Hook-Secret");
    if (!s)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0; /* cannot be echoed in a header: not a handshake we answer */
    *echo = wb_xasprintf("X-Hook-Secret: %s", s);
    return 1;
}

static const char *sr_hdr(const struct wb_ats_header *h, size_t nh, const char *name)
{
    const char *v = wb_ats_header_get(h, nh, name);
    return v ? v : "";
}

/* Any v1= segment of the header matching (several during a key rotation). */
static bool sr_any_v1(const char *sig, const char want[65])
{
    const char *p = sig;
    while (*p) {
        p += strspn(p, " ;");
        size_t n = strcspn(p, ";");
        if (n > 3 && !strncmp(p, "v1=", 3)) {
            size_t hl = n - 3;
            while (hl && p[3 + hl - 1] == ' ')
                hl--;
            if (wb_ats_hex_equal(p + 3, hl, want))
                return true;
        }
        p += n;
    }
    return false;
}

/* timestamp.body.event-id.event-name.event-version.link, the body as
 * bytes (it may hold anything), into a malloc'd buffer of *n bytes. */
static char *sr_signed_text(const struct wb_ats_header *h, size_t nh, const char *ts,
                            const char *body, size_t len, size_t *n)
{
    const char *tail[] = {sr_hdr(h, nh, "event-id"), sr_hdr(h, nh, "event-name"),
                          sr_hdr(h, nh, "event-version"), sr_hdr(h, nh, "link")};
    size_t total = strlen(ts) + 1 + len;
    for (size_t i = 0; i < 4; i++)
        total += 1 + strlen(tail[i]);
    char *m = wb_xmalloc(total + 1), *p = m;
    p = stpcpy(p, ts);
    *p++ = '.';
    if (len)
        memcpy(p, body, len);
    p += len;
    for (size_t i = 0; i < 4; i++) {
        *p++ = '.';
        p = stpcpy(p, tail[i]);
    }
    *n = total;
    return m;
}

static enum wb_ats_sig sr_verify(const struct wb_ats_header *h, size_t nh, const char *body,
                                 size_t len, const unsigned char *secret, size_t secret_len,
                                 double now)
{
    const char *sig = wb_ats_header_get(h, nh, "smartrecruiters-signature");
    const char *ts = wb_ats_header_get(h, nh, "smartrecruiters-timestamp");
    if (!sig || !ts)
        return WB_ATS_SIG_MISSING;
    char *end;
    double t = strtod(ts, &end);
    if (end == ts || *end || !isfinite(t))
        return WB_ATS_SIG_FORGED;
    size_t ml;
    char *msg = sr_signed_text(h, nh, ts, body, len, &ml);
    char want[65];
    wb_ats_hmac_hex(secret, secret_len, msg, ml, want);
    free(msg);
    if (!sr_any_v1(sig, want))
        return WB_ATS_SIG_FORGED;
    return fabs(now - t) > SR_WINDOW_S ? WB_ATS_SIG_STALE : WB_ATS_SIG_OK;
}

/* An id from the body (snake or camel case), printable, bounded. */
static int sr_id(const json_t *r, const char *a, const char *b, char **out, char *err,
                 size_t errsz)
{
    json_t *v = json_object_get(r, a);
    *out = wb_ats_json_id(v ? v : json_object_get(r, b));
    if (*out && (strlen(*out) > SR_ID_MAX || strpbrk(*out, "\r\n\t/?#%\\"))) {
        snprintf(err, errsz, "%s: not an id", a);
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static int sr_parse(const struct wb_ats_header *h, size_t nh, const char *body, size_t len,
                    struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    memset(ev, 0, sizeof *ev);
    const char *name = sr_hdr(h, nh, "event-name");
    if (!strcmp(name, "application.created"))
        ev->type = WB_ATS_IN_APPLIED;
    else if (!strcmp(name, "application.status.updated"))
        ev->type = WB_ATS_IN_REJECTED; /* provisional: the lookup reads the status */
    else
        return 0; /* WB_ATS_IN_IGNORED */
    json_t *r = wb_ats_load_object(body, len, err, errsz);
    int rc = -1;
    if (r && sr_id(r, "candidate_id", "candidateId", &ev->candidate_id, err, errsz) == 0 &&
        sr_id(r, "job_id", "jobId", &ev->job_id, err, errsz) == 0) {
        if (!ev->candidate_id) {
            snprintf(err, errsz, "candidate_id: required");
        } else {
            const char *eid = wb_ats_header_get(h, nh, "event-id");
            if (eid && *eid && strlen(eid) <= SR_ID_MAX && !strpbrk(eid, "\r\n"))
                ev->event_id = wb_xstrdup(eid);
            ev->lookup_id = wb_xstrdup(ev->candidate_id);
            rc = 0;
        }
    }
    json_decref(r);
    if (rc < 0)
        wb_ats_inbound_free(ev);
    return rc;
}

static int sr_lookup_build(const struct wb_ats_api *api, const char *token,
                           const struct wb_ats_inbound *ev, struct wb_ats_req *rq, char *err,
                           size_t errsz)
{
    (void)token;
    if (!ev->lookup_id) {
        snprintf(err, errsz, "smartrecruiters: nothing to look up");
        return -1;
    }
    return sr_request(api, "GET", sr_url(api, "/candidates/%s", ev->lookup_id), NULL, rq, err,
                      errsz);
}

/* The status of one assignment {"job": {"id"}, "status"} when it is job_id's
 * (or any, without a job id). */
static const char *sr_assignment_status(const json_t *a, const char *job_id)
{
    const char *jid = wb_ats_json_str(json_object_get(a, "job"), "id");
    if (job_id && (!jid || strcmp(jid, job_id)))
        return NULL;
    json_t *st = json_object_get(a, "status");
    return json_is_string(st) ? json_string_value(st) : wb_ats_json_str(st, "status");
}

/* The status of the candidate's application to job_id: the primary
 * assignment or one of the secondary ones. */
static const char *sr_status(const json_t *c, const char *job_id)
{
    const char *st = sr_assignment_status(json_object_get(c, "primaryAssignment"), job_id);
    json_t *as = json_object_get(c, "secondaryAssignments"), *a;
    size_t i;
    json_array_foreach(as, i, a) {
        if (st)
            break;
        st = sr_assignment_status(a, job_id);
    }
    return st;
}

static char *sr_clean(const char *s)
{
    if (!s || !*s)
        return NULL;
    size_t n = strlen(s) > SR_STR_MAX ? SR_STR_MAX : strlen(s);
    return wb_text_clean(s, n);
}

static int sr_lookup_parse(const struct wb_ats_resp *rs, struct wb_ats_inbound *ev,
                           bool *permanent, char *err, size_t errsz)
{
    *permanent = rs->status == 404 || rs->status == 401 || rs->status == 403;
    if (rs->status != 200) {
        snprintf(err, errsz, "smartrecruiters: GET /candidates/ID: HTTP %ld", rs->status);
        return -1;
    }
    json_t *c = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    const char *email = wb_ats_json_str(c, "email");
    if (!email || !*email || strpbrk(email, "\r\n")) {
        *permanent = true;
        snprintf(err, errsz, "smartrecruiters: the candidate has no usable email");
        json_decref(c);
        return -1;
    }
    ev->email = wb_xstrdup(email);
    ev->first_name = sr_clean(wb_ats_json_str(c, "firstName"));
    ev->last_name = sr_clean(wb_ats_json_str(c, "lastName"));
    if (ev->type != WB_ATS_IN_APPLIED) {
        const char *st = sr_status(c, ev->job_id);
        ev->type = st && !strcasecmp(st, "REJECTED") ? WB_ATS_IN_REJECTED
                   : st && !strcasecmp(st, "HIRED")  ? WB_ATS_IN_HIRED
                                                     : WB_ATS_IN_IGNORED;
    }
    json_decref(c);
    return 0;
}

/* ---- ats check ---------------------------------------------------------- */

static int sr_check_build(const struct wb_ats_api *api, const char *token,
                          enum wb_ats_check_what what, struct wb_ats_req *rq, char *err,
                          size_t errsz)
{
    (void)token;
    if (what == WB_ATS_CHECK_AUTH)
        return sr_request(api, "GET", sr_url(api, "/configuration/sources?limit=1", NULL), NULL,
                          rq, err, errsz);
    if (what == WB_ATS_CHECK_JOB && api->job_id && *api->job_id)
        return sr_request(api, "GET", sr_url(api, "/jobs/%s", api->job_id), NULL, rq, err,
                          errsz);
    return 1;
}

static enum wb_ats_check_result sr_check_parse(enum wb_ats_check_what what,
                                               const struct wb_ats_resp *rs, char *msg,
                                               size_t msgsz)
{
    if (rs->status == 401 || rs->status == 403) {
        snprintf(msg, msgsz, "the token was refused (HTTP %ld)", rs->status);
        return WB_ATS_CHECK_REFUSED;
    }
    if (rs->status == 404 && what == WB_ATS_CHECK_JOB) {
        snprintf(msg, msgsz, "job not found (HTTP 404)");
        return WB_ATS_CHECK_NOT_FOUND;
    }
    if (rs->status < 200 || rs->status >= 300) {
        snprintf(msg, msgsz, rs->status ? "HTTP %ld" : "no answer%.0ld", rs->status);
        return WB_ATS_CHECK_FAILED;
    }
    json_t *r = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    const char *t = wb_ats_json_str(r, "title");
    snprintf(msg, msgsz, what == WB_ATS_CHECK_JOB ? "job \"%s\" found" : "token accepted%.0s",
             t ? t : "?");
    json_decref(r);
    wb_text_clean_inplace(msg, strlen(msg));
    return WB_ATS_CHECK_OK;
}

const struct wb_ats_vendor wb_ats_vendor_smartrecruiters = {
    .kind = "smartrecruiters",
    .default_base_url = "https://api.smartrecruiters.com",
    .has_user = false,
    .restart_step = SR_FIND,
    .build = sr_build,
    .decide = sr_decide,
    .pace = sr_pace,
    .handshake = sr_handshake,
    .verify = sr_verify,
    .parse = sr_parse,
    .lookup_build = sr_lookup_build,
    .lookup_parse = sr_lookup_parse,
    .check_build = sr_check_build,
    .check_parse = sr_check_parse,
};
