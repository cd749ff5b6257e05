/* Native ATS vendors (SPEC "Native ATS adapters"): one small interface, one
 * file per vendor (lib/ats/vendor_<kind>.c) plus its tests.
 *
 * Every vendor function is PURE: no I/O, no clock, no globals. It builds
 * HTTP requests and reads HTTP responses; the engines do the I/O:
 *
 * OUT (lib/ats/handoff.c, on curl_loop, one handoff's requests in
 * sequence). A handoff row carries `ats_step` (int, 0 at first), `ats_state`
 * (a JSON object the vendor keeps between steps, e.g. the application id)
 * and the person's ATS id when known (stored per candidate and kind, so a
 * second handoff of the same person starts with it). For each request:
 *   1. token: when vendor->token_build is set and the engine holds no valid
 *      token, it runs token_build/token_parse first (cached in the engine
 *      for all handoffs, until expiry or a WB_ATS_REAUTH verdict);
 *   2. build(ho) → one request; 1 = nothing to send at this step (go to
 *      *skip_to, or done when it is WB_ATS_STEP_DONE); -1 = the handoff
 *      cannot be sent (dead, with err);
 *   3. the engine waits for the vendor's pace (see `pace`), sends it;
 *   4. decide(ho, response) → NEXT (step, maybe the ATS id, state changed),
 *      DONE, RETRY (with Retry-After), DEAD, or REAUTH.
 *   The engine STORES step, state and ATS id before it sends the next
 *   request. Each new attempt (after a RETRY, a lost lease or a crash)
 *   starts at min(stored step, vendor->restart_step) with the stored state
 *   and ATS id: restart_step is the FIND-by-email step, so an answer lost
 *   after CREATE is found by email instead of created twice (no vendor
 *   offers an idempotency key); steps already done are skipped by build
 *   (returning 1) from what `state` records. Retries, backoff, max_attempts,
 *   the dead list and `webhooks --retry` are the generic webhook's (SPEC
 *   "Handoff to the ATS").
 *   Typical steps: FIND(by email) → CREATE (only when not found) →
 *   ATTACH(job_id, when set) → NOTE(reason + engagement timeline) → DONE.
 *
 * IN (lib/ats/ats_in.c, POST /ats/events/KIND): handshake (optional) →
 *   verify(headers, raw body, secret, now) → parse → (lookup_build /
 *   lookup_parse when the event has no email) → the generic event paths
 *   (candidate.applied / rejected / hired, sql/functions/070_ats.sql), with
 *   "KIND:" + event_id as the replay id (a digest of the body when the
 *   vendor gives no id).
 *
 * CHECK (`warmbench ats check`): token (if any), then check_build/
 *   check_parse for WB_ATS_CHECK_AUTH, _JOB (when job_id is set), _USER
 *   (when the kind has a user id).
 *
 * Ownership: every char * in an output struct is malloc'd and belongs to
 * the caller (freed with the matching _free function). Inputs are borrowed. */
#ifndef WB_ATS_VENDOR_H
#define WB_ATS_VENDOR_H
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define WB_ATS_MAX_HEADERS 8
#define WB_ATS_STEP_DONE (-1)
#define WB_ATS_ERR_MAX 256

/* The configuration a vendor reads (from warmbench.json "ats"). Strings
 * are NULL when not set; base_url is never NULL (the vendor's default when
 * not configured) and has no trailing '/'. */
struct wb_ats_api {
    const char *kind;
    const char *base_url;
    const char *token_url;      /* greenhouse */
    const char *client_id;      /* greenhouse */
    const char *user_id;        /* greenhouse (sub / On-Behalf-Of), lever (perform_as) */
    const char *secret;         /* the api secret read from its file: greenhouse
                                 * client secret, ashby/lever API key, workable /
                                 * smartrecruiters token */
    size_t secret_len;
    const char *job_id;         /* optional */
    const char *source;         /* optional, e.g. "warmbench" */
};

/* ---- HTTP, as plain data ---- */

struct wb_ats_header {
    const char *name;
    const char *value;
};

/* A request to send. method is a static string ("GET", "POST", "PUT",
 * "PATCH"); url, headers[i] ("Name: value", no CR/LF) and body are malloc'd. */
struct wb_ats_req {
    const char *method;
    char *url;
    char *headers[WB_ATS_MAX_HEADERS];
    size_t nheaders;
    char *body;                 /* NULL: no body */
};

/* A response received (or a transport failure: status 0). The body is the
 * first bytes of the answer (the engine keeps up to WB_ATS_RESP_MAX), NUL
 * terminated. headers are the final response's. */
#define WB_ATS_RESP_MAX (256 * 1024)
struct wb_ats_resp {
    long status;                /* 0: no HTTP answer (refused, timeout) */
    const struct wb_ats_header *headers;
    size_t nheaders;
    const char *body;
    size_t len;
    double now;                 /* Unix time the answer arrived */
};

/* ---- out: the handoff step machine ---- */

struct wb_ats_handoff {
    const struct wb_ats_api *api;
    const json_t *payload;      /* the SPEC "Handoff to the ATS" body: type, id,
                                 * reason, sequence, candidate{email, first_name,
                                 * last_name, title, company, tags, attrs},
                                 * engagement[{type, step, at, ...}] */
    const char *ats_id;         /* the person's id at the vendor, NULL if not known */
    int step;                   /* 0 at first; vendor-defined meaning */
    json_t *state;              /* a JSON object kept between steps; decide may
                                 * change it (the engine stores it) */
    const char *token;          /* the engine's bearer token (token vendors), else NULL */
};

enum wb_ats_verdict {
    WB_ATS_NEXT,                /* run step `next_step` */
    WB_ATS_DONE,                /* delivered */
    WB_ATS_RETRY,               /* later (backoff, at least retry_after_s) */
    WB_ATS_DEAD,                /* permanent failure: the dead list */
    WB_ATS_REAUTH,              /* token refused: drop it, get a new one, same step
                                 * (the engine retries instead after one REAUTH) */
};

struct wb_ats_outcome {
    enum wb_ats_verdict verdict;
    int next_step;              /* NEXT */
    char *ats_id;               /* the person's id when this response told it, else NULL */
    double retry_after_s;       /* RETRY: 0 = plain backoff */
    char *error;                /* RETRY / DEAD / REAUTH: why (for last_error) */
};

/* ---- in: vendor webhooks ---- */

enum wb_ats_sig {
    WB_ATS_SIG_OK,
    WB_ATS_SIG_MISSING,         /* no signature header/field → 401 */
    WB_ATS_SIG_FORGED,          /* does not match → 401 */
    WB_ATS_SIG_STALE,           /* outside the vendor's replay window → 401 */
};

enum wb_ats_in_type {
    WB_ATS_IN_IGNORED,          /* an event warmbench does not use: 200, nothing stored */
    WB_ATS_IN_APPLIED,          /* → candidate.applied */
    WB_ATS_IN_REJECTED,         /* → candidate.rejected (+ ats.rejected_enroll) */
    WB_ATS_IN_HIRED,            /* → candidate.hired */
};

/* What parse found. Any field may be NULL but type. */
struct wb_ats_inbound {
    enum wb_ats_in_type type;
    char *event_id;             /* the vendor's delivery/event id (replay protection) */
    char *email;                /* NULL: lookup_build may complete it */
    char *first_name, *last_name;
    char *candidate_id;         /* the person's id at the vendor */
    char *lookup_id;            /* what lookup_build needs (e.g. Lever opportunity id) */
    char *reason;               /* rejection reason, for the tags/log */
    char *job_id;
};

/* ---- ats check ---- */

enum wb_ats_check_what { WB_ATS_CHECK_AUTH, WB_ATS_CHECK_JOB, WB_ATS_CHECK_USER };

enum wb_ats_check_result {
    WB_ATS_CHECK_OK,
    WB_ATS_CHECK_NOT_FOUND,     /* the job / user does not exist → exit 78 */
    WB_ATS_CHECK_REFUSED,       /* the credential was refused (401/403) → exit 78 */
    WB_ATS_CHECK_FAILED,        /* anything else (5xx, 429, garbage) → exit 69 */
};

/* ---- the vendor ---- */

struct wb_ats_vendor {
    const char *kind;               /* "greenhouse", ... as in ats.kind */
    const char *default_base_url;   /* no trailing '/' */
    bool has_user;                  /* the kind takes api.user_id (check USER) */

    /* Token (optional: NULL for static credentials). token_parse sets
     * *token (malloc'd) and *expires_at (Unix time; the engine renews a
     * little before). -1 with err: refused (4xx) or unreadable. */
    int (*token_build)(const struct wb_ats_api *api, struct wb_ats_req *rq, char *err,
                       size_t errsz);
    int (*token_parse)(const struct wb_ats_resp *rs, char **token, double *expires_at,
                       char *err, size_t errsz);

    /* Out. The step a RETRY (or a crash) restarts from. */
    int restart_step;
    int (*build)(const struct wb_ats_handoff *ho, struct wb_ats_req *rq, int *skip_to,
                 char *err, size_t errsz);
    void (*decide)(const struct wb_ats_handoff *ho, const struct wb_ats_resp *rs,
                   struct wb_ats_outcome *out);
    /* Rate limit: the Unix time before which no request should go to the
     * vendor, read from a response's headers (any response, also 2xx); 0
     * when the headers ask for nothing. May be NULL. */
    double (*pace)(const struct wb_ats_resp *rs);

    /* In. handshake (optional): 1 when the request is a subscription
     * handshake, with *echo set to one header line to answer with
     * ("X-Hook-Secret: ..."), answered 200 and nothing stored. */
    int (*handshake)(const struct wb_ats_header *h, size_t nh, char **echo);
    enum wb_ats_sig (*verify)(const struct wb_ats_header *h, size_t nh, const char *body,
                              size_t len, const unsigned char *secret, size_t secret_len,
                              double now);
    /* 0, or -1 with err naming the field (→ 400, nothing stored). */
    int (*parse)(const struct wb_ats_header *h, size_t nh, const char *body, size_t len,
                 struct wb_ats_inbound *ev, char *err, size_t errsz);
    /* Optional: for an event without an email. lookup_parse fills ev->email
     * (and names); -1 with err when it cannot (→ 503 so the vendor retries,
     * or dead when permanent: *permanent set). It may also set ev->type from
     * what it read (SmartRecruiters: the application's status), including
     * WB_ATS_IN_IGNORED: then nothing is stored (200). */
    int (*lookup_build)(const struct wb_ats_api *api, const char *token,
                        const struct wb_ats_inbound *ev, struct wb_ats_req *rq, char *err,
                        size_t errsz);
    int (*lookup_parse)(const struct wb_ats_resp *rs, struct wb_ats_inbound *ev, bool *permanent,
                        char *err, size_t errsz);

    /* Check. check_build returns 1 when `what` does not apply (no job_id,
     * no user for this kind, or the token step already proved AUTH), 0 with
     * the request, -1 with err. check_parse writes a one-line message. */
    int (*check_build)(const struct wb_ats_api *api, const char *token,
                       enum wb_ats_check_what what, struct wb_ats_req *rq, char *err,
                       size_t errsz);
    enum wb_ats_check_result (*check_parse)(enum wb_ats_check_what what,
                                            const struct wb_ats_resp *rs, char *msg,
                                            size_t msgsz);
};

/* The vendor of a kind; NULL for "webhook" and unknown kinds. A new vendor
 * is its file lib/ats/vendor_<kind>.c defining `const struct wb_ats_vendor
 * wb_ats_vendor_<kind>` plus one line in the table of lib/ats/ats_vendor.c. */
const struct wb_ats_vendor *wb_ats_vendor_find(const char *kind);

/* ---- helpers shared by the vendors (lib/ats/ats_vendor.c), all pure ---- */

void wb_ats_req_init(struct wb_ats_req *rq, const char *method, char *url);
/* Adds "Name: value" (printf-style); -1 when full or it would hold CR/LF. */
int wb_ats_req_header(struct wb_ats_req *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the body to the compact JSON of obj (steals the reference) and adds
 * Content-Type: application/json. */
void wb_ats_req_json(struct wb_ats_req *rq, json_t *obj);
void wb_ats_req_free(struct wb_ats_req *rq);

void wb_ats_outcome_free(struct wb_ats_outcome *o);
void wb_ats_inbound_free(struct wb_ats_inbound *ev);

/* Case-insensitive header lookup; NULL when absent. */
const char *wb_ats_header_get(const struct wb_ats_header *h, size_t nh, const char *name);

/* The verdict of a non-2xx (or transport-failed) response, as SPEC's
 * delivery rules: 408, 429, 5xx, status 0 → RETRY (Retry-After honoured,
 * seconds or HTTP date); 401 → REAUTH when token vendor, else DEAD; other
 * 4xx → DEAD. error gets "HTTP 422: <body excerpt>" (cleaned of controls). */
void wb_ats_outcome_http(const struct wb_ats_resp *rs, bool token_vendor,
                         struct wb_ats_outcome *out);
/* Retry-After (delta seconds or HTTP-date) relative to rs->now; 0 if none. */
double wb_ats_retry_after(const struct wb_ats_resp *rs);

/* "Basic " + base64(user ":" pass) (malloc'd), for an Authorization header. */
char *wb_ats_basic_auth(const char *user, const char *pass, size_t pass_len);
/* url-escaped copy of s (RFC 3986 unreserved kept). */
char *wb_ats_url_escape(const char *s);
/* hex HMAC-SHA256(key, data), lower case, into out[65]. */
void wb_ats_hmac_hex(const unsigned char *key, size_t keylen, const void *data, size_t len,
                     char out[65]);
/* Constant-time comparison of a hex digest against expected (case-insensitive). */
bool wb_ats_hex_equal(const char *given, size_t given_len, const char expected[65]);

/* The note every vendor adds: the reason, the sequence and the engagement
 * timeline of the payload, plain text, one event per line (malloc'd). */
char *wb_ats_note_text(const json_t *payload);
/* Shortcuts into the payload's candidate; NULL when absent or not a string. */
const char *wb_ats_cand_str(const json_t *payload, const char *key);
/* A JSON string member of obj, or NULL. */
const char *wb_ats_json_str(const json_t *obj, const char *key);
/* Copies a JSON string (1..200 characters, no control character) or
 * integer id as text (malloc'd), NULL otherwise. */
char *wb_ats_json_id(const json_t *v);
/* A web hook's body as a JSON object (duplicate keys refused), or NULL
 * with why in err. */
json_t *wb_ats_load_object(const char *body, size_t len, char *err, size_t errsz);
/* An optional string member of a web hook, copied to *out (malloc'd):
 * absent or null leaves NULL; a string without control characters of at
 * most max characters is taken; anything else is an error at path. */
int wb_ats_json_take(const json_t *obj, const char *key, const char *path, size_t max,
                     char **out, char *err, size_t errsz);
/* A request whose credential is the vendor's token in one header
 * ("X-SmartToken: ", "Authorization: Bearer "), asking for JSON, with
 * body (taken; may be NULL). On a token that cannot go in a header, says
 * so for vendor, frees what it took and returns -1. */
int wb_ats_req_token(const struct wb_ats_api *api, const char *method, char *url, json_t *body,
                     const char *vendor, const char *header, struct wb_ats_req *rq, char *err,
                     size_t errsz);

#endif
