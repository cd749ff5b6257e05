/* Events from the ATS (SPEC "Handoff to the ATS": POST /ats/events).
 *
 * A request is checked in this order, and any failure stores nothing:
 * body larger than WB_ATS_BODY_MAX → 413; Warmbench-Signature not valid
 * for the ATS secret within WB_ATS_TOLERANCE_S of now → 401; body not the
 * strict JSON shape below → 400 naming the field; a sequence the
 * configuration does not know → 404. Then one statement, the function of
 * its type (wb_ats_rejected, wb_ats_applied, wb_ats_hired in
 * sql/functions/070_ats.sql, called with bound parameters), stores it in
 * one transaction and the answer, 202, is given after the commit:
 *
 *   {"type": "candidate.rejected" | "candidate.applied" | "candidate.hired",
 *    "id": "ATS event id (replay protection, ≤ 200 characters)",
 *    "candidate": {"email": ..., optional first_name, last_name, title,
 *                  company, location, timezone, tags [..], skills [..],
 *                  consent (opt_in|legitimate_interest), source},
 *    "tags": [..],            optional, added to the candidate
 *    "enroll": "SEQUENCE"}    required for candidate.rejected
 *
 * 202 bodies: {"status": "stored", "enroll": VERDICT} (VERDICT as from
 * `warmbench enroll`: enrolled, already, no_consent, busy, suppressed,
 * unsubscribed; absent when nothing was to be enrolled), {"status":
 * "duplicate"} for an id seen before (nothing changes), {"status":
 * "suppressed"} for a rejected candidate whose address (or its hash) is
 * suppressed (only the id is kept), {"status": "unknown_candidate"} for
 * applied/hired about an address not in the pool (only the id is kept:
 * the ATS's applicants are not imported into the pool this way). */
#ifndef WB_ATS_IN_H
#define WB_ATS_IN_H
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"

#define WB_ATS_BODY_MAX (64 * 1024)
#define WB_ATS_TOLERANCE_S 300
#define WB_ATS_ID_MAX 200       /* characters */
#define WB_ATS_FIELD_MAX 1000   /* characters of any other string */

/* A validated event. Strings point into root (or are NULL when absent). */
struct wb_ats_event {
    json_t *root;
    const char *type;           /* candidate.rejected|applied|hired */
    const char *id;
    char *email;                /* as given, trimmed of surrounding spaces (malloc'd) */
    const char *sequence;       /* NULL when not given */
    json_t *candidate;          /* the candidate object as given */
    char **tags;                /* top-level and candidate tags, malloc'd */
    size_t ntags;
};

/* Parses and validates body (pure). 0, or -1 with a message naming the
 * field in err ("candidate.email: invalid email address"). */
int wb_ats_parse(const char *body, size_t len, struct wb_ats_event *ev, char *err, size_t errsz);
void wb_ats_event_free(struct wb_ats_event *ev);

/* The address check the import applies (pure). */
bool wb_ats_email_ok(const char *s, size_t n);
/* 0 when s (valid UTF-8) holds no control character and at most max
 * characters; else -1 with why, at path, in err. */
int wb_ats_text_ok(const char *s, size_t max, const char *path, char *err, size_t errsz);

/* The JSON sent to the event's function as p_candidate: the candidate's
 * fields with email trimmed (malloc'd). */
char *wb_ats_candidate_json(const struct wb_ats_event *ev);

/* ---- the request ---- */

/* status is the HTTP status; body is a JSON text (owned by the caller of
 * neither: copy it). */
typedef void (*wb_ats_done_fn)(int status, const char *body, void *ud);

/* One POST as the HTTP server received it. */
struct wb_ats_request {
    const char *sig;            /* Warmbench-Signature header, NULL when absent */
    const char *body;
    size_t len;
    bool too_big;               /* the body exceeded WB_ATS_BODY_MAX */
    long long now;              /* Unix time, for the signature's tolerance */
    wb_ats_done_fn done;        /* called once when the statement ends */
    void *ud;
};

/* Handles one POST. Returns 0 when answered at once (status and body in
 * *status and *out, malloc'd), 1 when the statement is queued: rq->done is
 * then called exactly once (503 when the connection is lost; the event may
 * or may not have been stored, and a retry with the same id is safe). */
int wb_ats_in_handle(const struct wb_config *cfg, struct wb_pg *pg,
                     const struct wb_ats_request *rq, int *status, char **out);

/* Stores a validated event (ev stays the caller's): 404 at once for a
 * sequence the configuration does not know (cfg NULL: the database's
 * function checks it, answering 404 too), else as wb_ats_in_handle
 * (1: queued, done is called; 0: answered in *status and *out). */
int wb_ats_in_store(const struct wb_config *cfg, struct wb_pg *pg, struct wb_ats_event *ev,
                    wb_ats_done_fn done, void *ud, int *status, char **out);

/* ---- a vendor's own web hooks: POST /ats/events/KIND ---- */

struct wb_ats_header;
struct wb_ats_session;

/* One POST to /ats/events/KIND as the HTTP server received it. */
struct wb_ats_vendor_request {
    const char *kind;                     /* KIND from the path */
    const struct wb_ats_header *headers;  /* every request header */
    size_t nheaders;
    const char *body;
    size_t len;
    bool too_big;                         /* the body exceeded WB_ATS_BODY_MAX */
    double now;
    wb_ats_done_fn done;
    void *ud;
    struct wb_ats_session *ats;           /* the daemon's vendor session, for the
                                           * lookup of an event without an address
                                           * (NULL: such events get 400) */
};

/* Checks and stores a vendor's web hook (lib/ats/ats_in_vendor.c), in this
 * order, any failure storing nothing: the configured kind with a
 * webhook_secret_file, else 404; 413; the vendor's handshake (200, with
 * *echo: one header line to add to the answer); the vendor's signature
 * (401, also outside its replay window); its body (400 naming the field);
 * events warmbench does not use: 200 {"status": "ignored"}; an event
 * without an address is completed first by the vendor's lookup (queued: 1;
 * 503 when it can be tried again, 400 when not). Then the event
 * as candidate.rejected (enrolled into ats.rejected_enroll),
 * candidate.applied or candidate.hired, with "KIND:" + the vendor's event
 * id (a digest of the body when it has none) as the replay id: answered as
 * wb_ats_in_handle. *echo is NULL or malloc'd. */
int wb_ats_in_vendor_handle(const struct wb_config *cfg, struct wb_pg *pg,
                            const struct wb_ats_vendor_request *rq, int *status, char **out,
                            char **echo);

/* The statement storing an event of type ("candidate.rejected", ...);
 * NULL for any other type. $1 id, $2 candidate (JSON), $3 tags (text[]),
 * $4 sequence or NULL. Exposed for tests and drivers. */
const char *wb_ats_event_sql(const char *type);

#endif
