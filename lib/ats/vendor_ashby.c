/* Ashby (SPEC "Native ATS adapters"), against developers.ashbyhq.com as of
 * 2026-12: an RPC API (POST https://api.ashbyhq.com/CATEGORY.method, JSON
 * bodies), Basic auth with the API key as user name and no password. A
 * refused request that "would be a 4xx" comes back as HTTP 200 with
 * {"success": false, "errorInfo": {"code", "message"}}; a good one as
 * {"success": true, "results": ...}.
 *
 * Out: FIND (candidate.search by email) → CREATE (candidate.create, only
 * when not found) → ATTACH (application.create, when job_id is set) →
 * NOTE (candidate.createNote). A retry starts again at FIND, so a 429 or a
 * crash after candidate.create finds the person instead of creating them
 * twice.
 * In: {"webhookActionId", "action", "data": {"application": {...}}} signed
 * "Ashby-Signature: sha256=HEX" (HMAC-SHA256 of the raw body, no
 * timestamp: replays are caught by webhookActionId, the same on every
 * retry of one event). applicationSubmit → applied, applicationUpdate with
 * status Archived → rejected, candidateHire → hired. */
#include "warmbench/ats_vendor.h"
#include "warmbench/util.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { AS_FIND, AS_CREATE, AS_ATTACH, AS_NOTE };

#define AS_STR_MAX 1000 /* characters of a string taken from a webhook */

/* ---- out ---------------------------------------------------------------- */

/* "Authorization: Basic base64(KEY + ":")" (user KEY, empty password);
 * -1 when the key cannot be a user name (':', spaces, controls, NUL). */
static int as_auth(const struct wb_ats_api *api, struct wb_ats_req *rq)
{
    size_t n = api->secret_len;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)api->secret[i] < 0x21 || api->secret[i] == ':' ||
            api->secret[i] == 0x7f)
            return -1;
    char *user = wb_xstrndup(api->secret, n);
    char *auth = wb_ats_basic_auth(user, "", 0);
    int rc = wb_ats_req_header(rq, "Authorization: %s", auth);
    OPENSSL_cleanse(user, n);
    OPENSSL_cleanse(auth, strlen(auth));
    free(user);
    free(auth);
    return rc;
}

static int as_request(const struct wb_ats_api *api, const char *method_name, json_t *body,
                      struct wb_ats_req *rq, char *err, size_t errsz)
{
    wb_ats_req_init(rq, "POST", wb_xasprintf("%s/%s", api->base_url, method_name));
    if (!api->secret || !api->secret_len || as_auth(api, rq) < 0 ||
        wb_ats_req_header(rq, "Accept: application/json; version=1") < 0) {
        snprintf(err, errsz, "ashby: the API key is empty or holds ':', spaces or controls");
        json_decref(body);
        wb_ats_req_free(rq);
        return -1;
    }
    wb_ats_req_json(rq, body);
    return 0;
}

/* "First Last", else the address's local part: candidate.create needs a name. */
static json_t *as_name(const json_t *payload)
{
    const char *f = wb_ats_cand_str(payload, "first_name");
    const char *l = wb_ats_cand_str(payload, "last_name");
    f = f && *f ? f : NULL;
    l = l && *l ? l : NULL;
    if (f || l) {
        char *s = wb_xasprintf("%s%s%s", f ? f : "", f && l ? " " : "", l ? l : "");
        json_t *j = json_string(s);
        free(s);
        return j;
    }
    const char *e = wb_ats_cand_str(payload, "email");
    const char *at = strchr(e, '@');
    return json_stringn(e, at ? (size_t)(at - e) : strlen(e));
}

static json_t *as_create_body(const struct wb_ats_handoff *ho)
{
    json_t *b = json_object();
    json_object_set_new(b, "name", as_name(ho->payload));
    json_object_set_new(b, "email", json_string(wb_ats_cand_str(ho->payload, "email")));
    const char *title = wb_ats_cand_str(ho->payload, "title");
    const char *company = wb_ats_cand_str(ho->payload, "company");
    if (title && *title)
        json_object_set_new(b, "position", json_string(title));
    if (company && *company)
        json_object_set_new(b, "company", json_string(company));
    return b;
}

static int as_build(const struct wb_ats_handoff *ho, struct wb_ats_req *rq, int *skip_to,
                    char *err, size_t errsz)
{
    const char *email = wb_ats_cand_str(ho->payload, "email");
    if (!email || !*email) {
        snprintf(err, errsz, "ashby: the handoff has no candidate email");
        return -1;
    }
    if (ho->step > AS_CREATE && !ho->ats_id) {
        snprintf(err, errsz, "ashby: step %d without the candidate's Ashby id", ho->step);
        return -1;
    }
    switch (ho->step) {
    case AS_FIND:
        return as_request(ho->api, "candidate.search", json_pack("{ss}", "email", email), rq,
                          err, errsz);
    case AS_CREATE:
        return as_request(ho->api, "candidate.create", as_create_body(ho), rq, err, errsz);
    case AS_ATTACH:
        /* No job, or attached by an earlier attempt of this handoff. */
        if (!ho->api->job_id || !*ho->api->job_id ||
            json_is_true(json_object_get(ho->state, "attached"))) {
            *skip_to = AS_NOTE;
            return 1;
        }
        return as_request(ho->api, "application.create",
                          json_pack("{ssss}", "candidateId", ho->ats_id, "jobId", ho->api->job_id),
                          rq, err, errsz);
    case AS_NOTE: {
        char *text = wb_ats_note_text(ho->payload);
        json_t *b = json_pack("{sss{ssss}sb}", "candidateId", ho->ats_id, "note", "type",
                              "text/plain", "value", text, "sendNotifications", 0);
        free(text);
        return as_request(ho->api, "candidate.createNote", b, rq, err, errsz);
    }
    default:
        snprintf(err, errsz, "ashby: unknown step %d", ho->step);
        return -1;
    }
}

static void as_dead(struct wb_ats_outcome *out, const char *fmt, const char *a, const char *b)
{
    char *raw = wb_xasprintf(fmt, a, b ? b : "");
    out->verdict = WB_ATS_DEAD;
    out->error = wb_text_clean(raw, strlen(raw));
    free(raw);
}

/* The person is known: ATTACH (build skips it when there is no job). */
static void as_next_after_person(struct wb_ats_outcome *out)
{
    out->verdict = WB_ATS_NEXT;
    out->next_step = AS_ATTACH;
}

/* candidate.search: the first result with an id (several results are one
 * person before a merge). None: the id stored from an earlier handoff or
 * attempt (Ashby's search may lag a fresh candidate.create; the person's
 * address may have changed there), else CREATE. */
static void as_found(const struct wb_ats_handoff *ho, json_t *results, struct wb_ats_outcome *out)
{
    if (!json_is_array(results)) {
        as_dead(out, "ashby: candidate.search: no results array%s%s", "", NULL);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(results, i, c) {
        char *id = wb_ats_json_id(json_object_get(c, "id"));
        if (id && *id) {
            out->ats_id = id;
            as_next_after_person(out);
            return;
        }
        free(id);
    }
    if (ho->ats_id && *ho->ats_id) {
        as_next_after_person(out);
        return;
    }
    out->verdict = WB_ATS_NEXT;
    out->next_step = AS_CREATE;
}

/* application.create refused because the person already applied to that
 * job: the attachment exists, which is what was asked. */
static bool as_already_applied(const char *code, const char *msg)
{
    return (code && strstr(code, "already")) || (msg && strcasestr(msg, "already"));
}

static void as_decide(const struct wb_ats_handoff *ho, const struct wb_ats_resp *rs,
                      struct wb_ats_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (rs->status < 200 || rs->status >= 300) {
        wb_ats_outcome_http(rs, false, out);
        return;
    }
    json_t *r = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    json_t *ok = json_object_get(r, "success");
    if (!json_is_boolean(ok)) {
        /* A proxy's page or a cut answer: try again later, from FIND. */
        out->verdict = WB_ATS_RETRY;
        out->error = wb_xstrdup("ashby: the answer is not an Ashby response");
        json_decref(r);
        return;
    }
    json_t *res = json_object_get(r, "results");
    if (!json_is_true(ok)) {
        json_t *ei = json_object_get(r, "errorInfo");
        const char *code = wb_ats_json_str(ei, "code"), *msg = wb_ats_json_str(ei, "message");
        if (ho->step == AS_ATTACH && as_already_applied(code, msg)) {
            json_object_set_new(ho->state, "attached", json_true());
            out->verdict = WB_ATS_NEXT;
            out->next_step = AS_NOTE;
        } else {
            as_dead(out, "ashby: %s: %s", code ? code : "error", msg);
        }
        json_decref(r);
        return;
    }
    switch (ho->step) {
    case AS_FIND:
        as_found(ho, res, out);
        break;
    case AS_CREATE:
        out->ats_id = wb_ats_json_id(json_object_get(res, "id"));
        if (out->ats_id && *out->ats_id)
            as_next_after_person(out);
        else
            as_dead(out, "ashby: candidate.create answered without an id%s%s", "", NULL);
        break;
    case AS_ATTACH:
        json_object_set_new(ho->state, "attached", json_true());
        out->verdict = WB_ATS_NEXT;
        out->next_step = AS_NOTE;
        break;
    default:
        out->verdict = WB_ATS_DONE;
        break;
    }
    json_decref(r);
}

/* ---- in ----------------------------------------------------------------- */

static enum wb_ats_sig as_verify(const struct wb_ats_header *h, size_t nh, const char *body,
                                 size_t len, const unsigned char *secret, size_t secret_len,
                                 double now)
{
    (void)now; /* no timestamp: replays are caught by webhookActionId */
    const char *sig = wb_ats_header_get(h, nh, "Ashby-Signature");
    if (!sig)
        return WB_ATS_SIG_MISSING;
    sig += strspn(sig, " \t");
    if (strncasecmp(sig, "sha256=", 7))
        return WB_ATS_SIG_FORGED;
    sig += 7;
    size_t n = strcspn(sig, " \t");
    char want[65];
    wb_ats_hmac_hex(secret, secret_len, body, len, want);
    return wb_ats_hex_equal(sig, n, want) ? WB_ATS_SIG_OK : WB_ATS_SIG_FORGED;
}

static enum wb_ats_in_type as_type(const char *action, const char *status)
{
    if (!strcmp(action, "applicationSubmit"))
        return WB_ATS_IN_APPLIED;
    if (!strcmp(action, "candidateHire"))
        return WB_ATS_IN_HIRED;
    /* Other updates (stage moves, Hired: candidateHire says it) are not ours. */
    if (!strcmp(action, "applicationUpdate") && status && !strcmp(status, "Archived"))
        return WB_ATS_IN_REJECTED;
    return WB_ATS_IN_IGNORED;
}

/* "Ada Lovelace" → "Ada", "Lovelace"; one word is a first name. */
static void as_split_name(char *name, struct wb_ats_inbound *ev)
{
    if (!name)
        return;
    char *sp = strchr(name, ' ');
    if (sp) {
        ev->last_name = wb_xstrdup(sp + strspn(sp, " "));
        *sp = '\0';
    }
    ev->first_name = name;
}

/* A string member of a web hook, at most AS_STR_MAX characters (ats_vendor.h). */
static int as_take(const json_t *obj, const char *key, const char *path, char **out, char *err,
                   size_t errsz)
{
    return wb_ats_json_take(obj, key, path, AS_STR_MAX, out, err, errsz);
}

/* The candidate's address: primaryEmailAddress.value, else the first of
 * emailAddresses. */
static int as_email(const json_t *cand, struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    json_t *p = json_object_get(cand, "primaryEmailAddress");
    if (json_is_object(p))
        return as_take(p, "value", "data.application.candidate.primaryEmailAddress.value",
                       &ev->email, err, errsz);
    json_t *all = json_object_get(cand, "emailAddresses");
    if (json_is_array(all) && json_array_size(all) > 0)
        return as_take(json_array_get(all, 0), "value",
                       "data.application.candidate.emailAddresses[0].value", &ev->email, err,
                       errsz);
    return 0;
}

static int as_parse_application(const json_t *app, struct wb_ats_inbound *ev, char *err,
                                size_t errsz)
{
    json_t *cand = json_object_get(app, "candidate");
    if (!json_is_object(cand)) {
        snprintf(err, errsz, "data.application.candidate: must be an object");
        return -1;
    }
    char *name = NULL;
    if (as_email(cand, ev, err, errsz) < 0 ||
        as_take(cand, "name", "data.application.candidate.name", &name, err, errsz) < 0)
        return -1;
    as_split_name(name, ev);
    ev->candidate_id = wb_ats_json_id(json_object_get(cand, "id"));
    json_t *job = json_object_get(app, "job");
    ev->job_id = wb_ats_json_id(json_object_get(job, "id"));
    json_t *why = json_object_get(app, "archiveReason");
    if (json_is_object(why) && as_take(why, "text", "data.application.archiveReason.text",
                                       &ev->reason, err, errsz) < 0)
        return -1;
    return 0;
}

static int as_parse(const struct wb_ats_header *h, size_t nh, const char *body, size_t len,
                    struct wb_ats_inbound *ev, char *err, size_t errsz)
{
    (void)h;
    (void)nh;
    memset(ev, 0, sizeof *ev);
    json_t *r = wb_ats_load_object(body, len, err, errsz);
    if (!r)
        return -1;
    int rc = -1;
    const char *action = wb_ats_json_str(r, "action");
    json_t *data = json_object_get(r, "data");
    if (!action) {
        snprintf(err, errsz, "action: required (a string)");
        goto out;
    }
    if (as_take(r, "webhookActionId", "webhookActionId", &ev->event_id, err, errsz) < 0)
        goto out;
    json_t *app = json_object_get(data, "application");
    ev->type = as_type(action, wb_ats_json_str(app, "status"));
    if (ev->type == WB_ATS_IN_IGNORED) {
        rc = 0;
        goto out;
    }
    if (!json_is_object(app)) {
        snprintf(err, errsz, "data.application: must be an object");
        goto out;
    }
    rc = as_parse_application(app, ev, err, errsz);
out:
    json_decref(r);
    if (rc < 0)
        wb_ats_inbound_free(ev);
    return rc;
}

/* ---- ats check ---------------------------------------------------------- */

static int as_check_build(const struct wb_ats_api *api, const char *token,
                          enum wb_ats_check_what what, struct wb_ats_req *rq, char *err,
                          size_t errsz)
{
    (void)token;
    if (what == WB_ATS_CHECK_AUTH)
        return as_request(api, "apiKey.info", json_object(), rq, err, errsz);
    if (what == WB_ATS_CHECK_JOB && api->job_id && *api->job_id)
        return as_request(api, "job.info", json_pack("{ss}", "id", api->job_id), rq, err, errsz);
    return 1;
}

static enum wb_ats_check_result as_check_parse(enum wb_ats_check_what what,
                                               const struct wb_ats_resp *rs, char *msg,
                                               size_t msgsz)
{
    if (rs->status == 401 || rs->status == 403) {
        snprintf(msg, msgsz, "the API key was refused (HTTP %ld)", rs->status);
        return WB_ATS_CHECK_REFUSED;
    }
    if (rs->status < 200 || rs->status >= 300) {
        snprintf(msg, msgsz, rs->status ? "HTTP %ld" : "no answer%.0ld", rs->status);
        return WB_ATS_CHECK_FAILED;
    }
    json_t *r = json_loadb(rs->body ? rs->body : "", rs->len, 0, NULL);
    json_t *ok = json_object_get(r, "success");
    enum wb_ats_check_result res = WB_ATS_CHECK_FAILED;
    if (json_is_true(ok)) {
        json_t *x = json_object_get(r, "results");
        const char *t = wb_ats_json_str(x, "title");
        snprintf(msg, msgsz, what == WB_ATS_CHECK_AUTH ? "API key \"%s\" accepted" : "job \"%s\" found",
                 t ? t : "?");
        res = WB_ATS_CHECK_OK;
    } else if (json_is_false(ok)) {
        json_t *ei = json_object_get(r, "errorInfo");
        const char *m = wb_ats_json_str(ei, "message"), *c = wb_ats_json_str(ei, "code");
        snprintf(msg, msgsz, "%s", m ? m : c ? c : "refused");
        res = what == WB_ATS_CHECK_JOB ? WB_ATS_CHECK_NOT_FOUND : WB_ATS_CHECK_REFUSED;
    } else {
        snprintf(msg, msgsz, "the answer is not an Ashby response");
    }
    json_decref(r);
    wb_text_clean_inplace(msg, strlen(msg));
    return res;
}

const struct wb_ats_vendor wb_ats_vendor_ashby = {
    .kind = "ashby",
    .default_base_url = "https://api.ashbyhq.com",
    .has_user = false,
    .restart_step = AS_FIND,
    .build = as_build,
    .decide = as_decide,
    .verify = as_verify,
    .parse = as_parse,
    .check_build = as_check_build,
    .check_parse = as_check_parse,
};
