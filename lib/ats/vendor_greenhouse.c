/* Greenhouse, Harvest v3 (docs/ats/greenhouse.md): OAuth client
 * credentials at token_url, then Bearer calls under base_url:
 *   FIND   GET  /v3/candidates?email=E        (every attempt starts here)
 *   CREATE POST /v3/candidates                (only when FIND found nobody)
 *   ATTACH POST /v3/applications              (prospect on ats.job_id, when set)
 *   NOTE   POST /v3/notes                     (reason + engagement timeline)
 * and `ats check` reads GET /v3/jobs?ids=J and GET /v3/users?ids=U.
 * Inbound web hooks are signed "Signature: sha256 HEX" (HMAC-SHA256 of the
 * raw body, no timestamp) and carry Greenhouse-Event-ID. Pure functions. */
#include "warmbench/ats_vendor.h"
#include "warmbench/ical.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { GH_FIND, GH_CREATE, GH_ATTACH, GH_NOTE };

#define GH_TOKEN_TTL_S 3600.0 /* the documented lifetime, when the answer omits it */
#define GH_WINDOW_S 10.0      /* the rate limit's rolling window */

static void gh_err(char *err, size_t errsz, const char *msg)
{
    snprintf(err, errsz, "%s", msg);
}

/* Greenhouse ids are integers: sent as JSON numbers when they are. */
static json_t *gh_id_json(const char *id)
{
    if (id[0] && strspn(id, "0123456789") == strlen(id) && strlen(id) < 19)
        return json_integer(strtoll(id, NULL, 10));
    return json_string(id);
}

static int gh_auth(const struct wb_ats_handoff *ho, struct wb_ats_req *rq)
{
    if (!ho->token || wb_ats_req_header(rq, "Authorization: Bearer %s", ho->token) < 0)
        return -1;
    return wb_ats_req_header(rq, "Accept: application/json");
}

/* ---- token ---------------------------------------------------------------- */

static int gh_token_build(const struct wb_ats_api *api, struct wb_ats_req *rq, char *err,
                          size_t errsz)
{
    if (!api->token_url || !api->client_id || !api->secret || !api->user_id) {
        gh_err(err, errsz, "greenhouse needs api.token_url, client_id, client_secret_file "
                           "and user_id");
        return -1;
    }
    wb_ats_req_init(rq, "POST", wb_xstrdup(api->token_url));
    char *basic = wb_ats_basic_auth(api->client_id, api->secret, api->secret_len);
    int rc = wb_ats_req_header(rq, "Authorization: %s", basic);
    free(basic);
    char *sub = wb_ats_url_escape(api->user_id);
    rq->body = wb_xasprintf("grant_type=client_credentials&sub=%s", sub);
    free(sub);
    if (rc < 0 ||
        wb_ats_req_header(rq, "Content-Type: application/x-www-form-urlencoded") < 0) {
        gh_err(err, errsz, "api.client_id cannot go in a header");
        return -1;
    }
    return 0;
}

/* "2099-12-31T23:59:59[.fff](Z|+hh:mm|-hh:mm)" as Unix time; -1 when not. */
static double gh_iso8601(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long off = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6 || oh > 23 || om > 59)
            return -1;
        off = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    } else if (strcmp(p, "Z") != 0) {
        return -1;
    }
    return (double)wb_day_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + sec - off;
}

/* When the token expires: expires_in (RFC 6749 seconds) when given, else
 * expires_at (what Greenhouse's own Harvest v3 client reads: an ISO 8601
 * time, or Unix seconds), else the documented hour. A time in the past or
 * more than a day ahead is not believed. */
static double gh_token_expiry(json_t *o, double now)
{
    json_t *in = json_object_get(o, "expires_in");
    if (json_is_number(in) && json_number_value(in) > 0 && json_number_value(in) <= 86400)
        return now + json_number_value(in);
    json_t *at = json_object_get(o, "expires_at");
    double t = json_is_number(at)   ? json_number_value(at)
               : json_is_string(at) ? gh_iso8601(json_string_value(at))
                                    : -1;
    if (t > now && t <= now + 86400)
        return t;
    return now + GH_TOKEN_TTL_S;
}

static int gh_token_parse(const struct wb_ats_resp *rs, char **token, double *expires_at,
                          char *err, size_t errsz)
{
    json_t *o = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    const char *tok = wb_ats_json_str(o, "access_token");
    if (rs->status < 200 || rs->status >= 300 || !tok || !tok[0] || strpbrk(tok, "\r\n")) {
        snprintf(err, errsz, "token endpoint: HTTP %ld%s", rs->status,
                 rs->status >= 200 && rs->status < 300 ? " without an access_token" : "");
        json_decref(o);
        return -1;
    }
    *token = wb_xstrdup(tok);
    *expires_at = gh_token_expiry(o, rs->now);
    json_decref(o);
    return 0;
}

/* ---- out: build --------------------------------------------------------- */

static json_t *gh_candidate_body(const struct wb_ats_handoff *ho, const char *email)
{
    const char *first = wb_ats_cand_str(ho->payload, "first_name");
    const char *last = wb_ats_cand_str(ho->payload, "last_name");
    /* Greenhouse requires both names; the address's local part stands in. */
    char *local = wb_xstrndup(email, strcspn(email, "@"));
    json_t *o = json_object();
    json_object_set_new(o, "first_name", json_string(first && first[0] ? first : local));
    json_object_set_new(o, "last_name", json_string(last && last[0] ? last : "-"));
    free(local);
    const char *co = wb_ats_cand_str(ho->payload, "company");
    const char *ti = wb_ats_cand_str(ho->payload, "title");
    if (co && co[0])
        json_object_set_new(o, "company", json_string(co));
    if (ti && ti[0])
        json_object_set_new(o, "title", json_string(ti));
    json_object_set_new(o, "email_addresses",
                        json_pack("[{ssss}]", "value", email, "type", "personal"));
    if (ho->api->source)
        json_object_set_new(o, "tags", json_pack("[s]", ho->api->source));
    return o;
}

static int gh_build(const struct wb_ats_handoff *ho, struct wb_ats_req *rq, int *skip_to,
                    char *err, size_t errsz)
{
    const char *email = wb_ats_cand_str(ho->payload, "email");
    const char *base = ho->api->base_url;
    if (!email || !email[0]) {
        gh_err(err, errsz, "the handoff has no candidate email");
        return -1;
    }
    if (ho->step > GH_CREATE && !ho->ats_id) {
        gh_err(err, errsz, "no Greenhouse candidate id at this step");
        return -1;
    }
    switch (ho->step) {
    case GH_FIND: {
        char *e = wb_ats_url_escape(email);
        wb_ats_req_init(rq, "GET", wb_xasprintf("%s/v3/candidates?email=%s&per_page=1", base, e));
        free(e);
        break;
    }
    case GH_CREATE:
        wb_ats_req_init(rq, "POST", wb_xasprintf("%s/v3/candidates", base));
        wb_ats_req_json(rq, gh_candidate_body(ho, email));
        break;
    case GH_ATTACH: {
        const char *done = wb_ats_json_str(ho->state, "attached_job");
        if (!ho->api->job_id || (done && !strcmp(done, ho->api->job_id))) {
            *skip_to = GH_NOTE;
            return 1;
        }
        wb_ats_req_init(rq, "POST", wb_xasprintf("%s/v3/applications", base));
        json_t *b = json_pack("{s:o,s:o,s:b}", "candidate_id", gh_id_json(ho->ats_id), "job_id",
                              gh_id_json(ho->api->job_id), "prospect", 1);
        wb_ats_req_json(rq, b);
        break;
    }
    case GH_NOTE: {
        wb_ats_req_init(rq, "POST", wb_xasprintf("%s/v3/notes", base));
        char *text = wb_ats_note_text(ho->payload);
        json_t *b = json_pack("{s:o,s:s,s:s,s:s}", "candidate_id", gh_id_json(ho->ats_id),
                              "body", text, "visibility", "public", "note_type", "NOTE");
        free(text);
        /* The author, as v1 required; the token's sub names the same user. */
        if (ho->api->user_id)
            json_object_set_new(b, "user_id", gh_id_json(ho->api->user_id));
        wb_ats_req_json(rq, b);
        break;
    }
    default:
        gh_err(err, errsz, "unknown step");
        return -1;
    }
    if (gh_auth(ho, rq) < 0) {
        wb_ats_req_free(rq);
        gh_err(err, errsz, "no usable access token");
        return -1;
    }
    return 0;
}

/* ---- out: decide ---------------------------------------------------------- */

/* The first candidate of a list answer: a bare array (as Harvest lists
 * are) or an object holding one under "data" or "candidates". */
static json_t *gh_first(json_t *o)
{
    json_t *arr = json_is_array(o) ? o : json_object_get(o, "data");
    if (!json_is_array(arr))
        arr = json_object_get(o, "candidates");
    return json_is_array(arr) ? json_array_get(arr, 0) : NULL;
}

static void gh_next(struct wb_ats_outcome *out, int step)
{
    out->verdict = WB_ATS_NEXT;
    out->next_step = step;
}

static void gh_unreadable(struct wb_ats_outcome *out, const char *what)
{
    out->verdict = WB_ATS_RETRY;
    out->error = wb_xasprintf("greenhouse: unreadable answer to %s", what);
}

/* "already" anywhere in the answer (bounded: the body need not end in NUL). */
static bool gh_says_already(const struct wb_ats_resp *rs)
{
    for (size_t i = 0; rs->body && i + 7 <= rs->len; i++)
        if (!strncasecmp(rs->body + i, "already", 7))
            return true;
    return false;
}

static void gh_decide(const struct wb_ats_handoff *ho, const struct wb_ats_resp *rs,
                      struct wb_ats_outcome *out)
{
    memset(out, 0, sizeof *out);
    bool ok = rs->status >= 200 && rs->status < 300;
    /* An application already there (a lost answer, then a retry) is what we wanted. */
    if (!ok && ho->step == GH_ATTACH && rs->status == 422 && gh_says_already(rs)) {
        json_object_set_new(ho->state, "attached_job", json_string(ho->api->job_id));
        gh_next(out, GH_NOTE);
        return;
    }
    if (!ok) {
        wb_ats_outcome_http(rs, true, out);
        return;
    }
    json_t *o = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    switch (ho->step) {
    case GH_FIND: {
        if (!json_is_array(o) && !json_is_object(o)) {
            gh_unreadable(out, "the lookup");
            break;
        }
        json_t *c = gh_first(o);
        if (c && !(out->ats_id = wb_ats_json_id(json_object_get(c, "id")))) {
            gh_unreadable(out, "the lookup");
            break;
        }
        gh_next(out, c ? GH_ATTACH : GH_CREATE);
        break;
    }
    case GH_CREATE:
        /* v3 answers {"candidate": {...}, "application": ...}; a bare
         * candidate is read too. No id: the next attempt finds the person
         * by email. */
        if (!(out->ats_id = wb_ats_json_id(json_object_get(o, "id"))) &&
            !(out->ats_id = wb_ats_json_id(json_object_get(json_object_get(o, "candidate"), "id"))))
            gh_unreadable(out, "the creation");
        else
            gh_next(out, GH_ATTACH);
        break;
    case GH_ATTACH:
        json_object_set_new(ho->state, "attached_job", json_string(ho->api->job_id));
        gh_next(out, GH_NOTE);
        break;
    default:
        out->verdict = WB_ATS_DONE;
    }
    json_decref(o);
}

/* X-RateLimit-Remaining spent: wait for X-RateLimit-Reset (Unix time), or a
 * whole window when it is not given; a 429 waits for its Retry-After. */
static double gh_pace(const struct wb_ats_resp *rs)
{
    if (rs->status == 429) {
        double ra = wb_ats_retry_after(rs);
        return rs->now + (ra > 0 ? ra : GH_WINDOW_S);
    }
    const char *rem = wb_ats_header_get(rs->headers, rs->nheaders, "X-RateLimit-Remaining");
    if (!rem || atol(rem) > 0 || !isdigit((unsigned char)rem[0]))
        return 0;
    const char *reset = wb_ats_header_get(rs->headers, rs->nheaders, "X-RateLimit-Reset");
    double t = reset ? strtod(reset, NULL) : 0;
    return t > rs->now && t < rs->now + 3600 ? t : rs->now + GH_WINDOW_S;
}

/* ---- in ------------------------------------------------------------------ */

static enum wb_ats_sig gh_verify(const struct wb_ats_header *h, size_t nh, const char *body,
                                 size_t len, const unsigned char *secret, size_t secret_len,
                                 double now)
{
    (void)now; /* no timestamp: replays are caught by Greenhouse-Event-ID */
    const char *sig = wb_ats_header_get(h, nh, "Signature");
    if (!sig || !sig[0])
        return WB_ATS_SIG_MISSING;
    if (strncasecmp(sig, "sha256 ", 7))
        return WB_ATS_SIG_FORGED;
    const char *hex = sig + 7;
    while (*hex == ' ')
        hex++;
    size_t n = strlen(hex);
    while (n && hex[n - 1] == ' ')
        n--;
    char want[65];
    wb_ats_hmac_hex(secret, secret_len, body, len, want);
    return wb_ats_hex_equal(hex, n, want) ? WB_ATS_SIG_OK : WB_ATS_SIG_FORGED;
}

static enum wb_ats_in_type gh_type(const char *action)
{
    if (!strcmp(action, "reject_candidate"))
        return WB_ATS_IN_REJECTED;
    if (!strcmp(action, "hire_candidate"))
        return WB_ATS_IN_HIRED;
    if (!strcmp(action, "new_candidate_application") ||
        !strcmp(action, "new_prospect_application"))
        return WB_ATS_IN_APPLIED;
    return WB_ATS_IN_IGNORED;
}

/* The personal address when marked so, else the first one. */
static const char *gh_email(json_t *cand)
{
    json_t *arr = json_object_get(cand, "email_addresses"), *e;
    const char *first = NULL;
    size_t i;
    json_array_foreach(arr, i, e) {
        const char *v = wb_ats_json_str(e, "value");
        const char *t = wb_ats_json_str(e, "type");
        if (v && t && !strcmp(t, "personal"))
            return v;
        if (v && !first)
            first = v;
    }
    return first;
}

static char *gh_dup(const char *s)
{
    return s ? wb_xstrdup(s) : NULL;
}

static bool gh_has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Every string taken from the event, refused when it holds a control
 * character (no such text is a person's name or address). */
static int gh_clean(const struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    const char *f[] = {ev->event_id, ev->email, ev->first_name, ev->last_name,
                       ev->candidate_id, ev->reason, ev->job_id};
    const char *names[] = {"Greenhouse-Event-ID", "candidate.email_addresses",
                           "candidate.first_name", "candidate.last_name", "candidate.id",
                           "application.rejection_reason.name", "application.jobs"};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (gh_has_control(f[i])) {
            snprintf(err, errsz, "%s: control characters are not allowed", names[i]);
            return -1;
        }
    }
    return 0;
}

static int gh_parse(const struct wb_ats_header *h, size_t nh, const char *body, size_t len,
                    struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    memset(ev, 0, sizeof *ev);
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *action = wb_ats_json_str(o, "action");
    int rc = -1;
    if (!action) {
        gh_err(err, errsz, json_is_object(o) ? "action: missing" : "body: not a JSON object");
        goto out;
    }
    ev->type = gh_type(action);
    ev->event_id = gh_dup(wb_ats_header_get(h, nh, "Greenhouse-Event-ID"));
    if (ev->type == WB_ATS_IN_IGNORED) {
        rc = gh_clean(ev, err, errsz);
        goto out;
    }
    json_t *app = json_object_get(json_object_get(o, "payload"), "application");
    json_t *cand = json_object_get(app, "candidate");
    if (!json_is_object(cand)) {
        gh_err(err, errsz, "payload.application.candidate: missing");
        goto out;
    }
    ev->email = gh_dup(gh_email(cand));
    ev->first_name = gh_dup(wb_ats_json_str(cand, "first_name"));
    ev->last_name = gh_dup(wb_ats_json_str(cand, "last_name"));
    ev->candidate_id = wb_ats_json_id(json_object_get(cand, "id"));
    ev->reason = gh_dup(wb_ats_json_str(json_object_get(app, "rejection_reason"), "name"));
    ev->job_id = wb_ats_json_id(json_object_get(json_array_get(json_object_get(app, "jobs"), 0),
                                                "id"));
    if (!ev->email) {
        gh_err(err, errsz, "payload.application.candidate.email_addresses: no address");
        goto out;
    }
    rc = gh_clean(ev, err, errsz);
out:
    if (rc < 0)
        wb_ats_inbound_free(ev);
    json_decref(o);
    return rc;
}

/* ---- check --------------------------------------------------------------- */

static int gh_check_build(const struct wb_ats_api *api, const char *token,
                          enum wb_ats_check_what what, struct wb_ats_req *rq, char *err,
                          size_t errsz)
{
    const char *id = what == WB_ATS_CHECK_JOB ? api->job_id
                     : what == WB_ATS_CHECK_USER ? api->user_id : NULL;
    if (!id) /* AUTH: the token was the proof */
        return 1;
    /* The list with its ids filter, which every v3 resource takes
     * (harvestdocs "List endpoints"), under the :list scope. */
    char *e = wb_ats_url_escape(id);
    wb_ats_req_init(rq, "GET", wb_xasprintf("%s/v3/%s?ids=%s&per_page=1", api->base_url,
                                           what == WB_ATS_CHECK_JOB ? "jobs" : "users", e));
    free(e);
    if (!token || wb_ats_req_header(rq, "Authorization: Bearer %s", token) < 0) {
        wb_ats_req_free(rq);
        gh_err(err, errsz, "no usable access token");
        return -1;
    }
    return 0;
}

static enum wb_ats_check_result gh_check_parse(enum wb_ats_check_what what,
                                               const struct wb_ats_resp *rs, char *msg,
                                               size_t msgsz)
{
    const char *noun = what == WB_ATS_CHECK_JOB ? "job" : "user";
    if (rs->status >= 200 && rs->status < 300) {
        json_t *o = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
        /* A list (what ?ids= answers); a single object is read too. */
        json_t *one = json_is_array(o) ? json_array_get(o, 0) : o;
        enum wb_ats_check_result r = WB_ATS_CHECK_OK;
        if (json_is_array(o) && !one) {
            snprintf(msg, msgsz, "%s not found (an empty list)", noun);
            r = WB_ATS_CHECK_NOT_FOUND;
        } else if (!json_is_object(one)) {
            snprintf(msg, msgsz, "%s: unreadable answer (HTTP %ld)", noun, rs->status);
            r = WB_ATS_CHECK_FAILED;
        } else {
            const char *name =
                wb_ats_json_str(one, what == WB_ATS_CHECK_JOB ? "name" : "first_name");
            if (name && gh_has_control(name))
                name = NULL;
            snprintf(msg, msgsz, "%s found%s%s", noun, name ? ": " : "", name ? name : "");
        }
        json_decref(o);
        return r;
    }
    if (rs->status == 404) {
        snprintf(msg, msgsz, "%s not found (HTTP 404)", noun);
        return WB_ATS_CHECK_NOT_FOUND;
    }
    if (rs->status == 401 || rs->status == 403) {
        snprintf(msg, msgsz, "%s: the credential was refused (HTTP %ld)", noun, rs->status);
        return WB_ATS_CHECK_REFUSED;
    }
    snprintf(msg, msgsz, "%s: HTTP %ld", noun, rs->status);
    return WB_ATS_CHECK_FAILED;
}

const struct wb_ats_vendor wb_ats_vendor_greenhouse = {
    .kind = "greenhouse",
    .default_base_url = "https://harvest.greenhouse.io",
    .has_user = true,
    .token_build = gh_token_build,
    .token_parse = gh_token_parse,
    .restart_step = GH_FIND,
    .build = gh_build,
    .decide = gh_decide,
    .pace = gh_pace,
    .verify = gh_verify,
    .parse = gh_parse,
    .check_build = gh_check_build,
    .check_parse = gh_check_parse,
};
