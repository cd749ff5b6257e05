/* One native handoff attempt: token → pace → build → request → decide →
 * store the progress → next step, each link a loop callback. See
 * ats_run.h; the vendor's functions are pure (ats_vendor.h). */
#include "warmbench/ats_run.h"
#include "warmbench/ats_config.h"
#include "warmbench/ats_http.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define MAX_SKIPS 16              /* steps a vendor may skip in a row */
#define TOKEN_MARGIN_S 60.0       /* renew a token this long before it expires */

static const char progress_sql[] =
    "SELECT wb_ats_progress($1::bigint, $2, $3, $4::int, $5::jsonb, $6, $7::int)";

struct wb_ats_run {
    struct wb_ats_session *s;
    int64_t id;
    json_t *payload, *state;
    char *ats_id;
    int step, skips;
    long last_status;             /* of the last answer, for the outcome */
    bool reauthed;
    bool cancelled;               /* ended: memory waits for the pg reply or the timer */
    bool pg_pending, http_active, waiting_token, timer_init, timer_open;
    bool finish_after_store;      /* the stored step was the last */
    struct wb_ats_http http;
    uv_timer_t timer;
    wb_ats_run_done_fn done;
    void *ud;
    struct wb_ats_inbound *ev;    /* a lookup: the event it completes */
    wb_ats_lookup_done_fn ldone;
    TAILQ_ENTRY(wb_ats_run) link; /* in s->waiting */
    LIST_ENTRY(wb_ats_run) lookups; /* a lookup, in s->lookups */
};
TAILQ_HEAD(ar_runs, wb_ats_run);

struct wb_ats_session {
    uv_loop_t *loop;
    struct wb_curl_loop *cl;
    struct wb_pg *pg;
    char *owner;
    const struct wb_ats_vendor *v;
    struct wb_ats_api api;
    char *token;
    double token_renew;           /* renew the token from this time on */
    bool token_busy;
    struct wb_ats_http tok;       /* the token request, while token_busy */
    struct ar_runs waiting;       /* runs waiting for the token */
    LIST_HEAD(, wb_ats_run) lookups; /* lookups under way */
    double not_before;            /* the vendor's pace: no request before this */
};

static void ar_go(struct wb_ats_run *r);
static void ar_lookup_answer(struct wb_ats_run *r, struct wb_ats_resp *rs);

static double ar_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- ending a run --------------------------------------------------------- */

static void ar_maybe_free(struct wb_ats_run *r)
{
    if (!r->cancelled || r->pg_pending || r->timer_open)
        return;
    json_decref(r->payload);
    json_decref(r->state);
    free(r->ats_id);
    free(r);
}

static void ar_timer_closed(uv_handle_t *t)
{
    struct wb_ats_run *r = t->data;
    r->timer_open = false;
    ar_maybe_free(r);
}

/* Stops whatever the run waits for; its memory goes once nothing refers to it. */
static void ar_release(struct wb_ats_run *r)
{
    r->cancelled = true;
    if (r->http_active) {
        wb_curl_loop_cancel(r->s->cl, r->http.easy);
        r->http_active = false;
    }
    wb_ats_http_free(&r->http);
    if (r->waiting_token) {
        TAILQ_REMOVE(&r->s->waiting, r, link);
        r->waiting_token = false;
    }
    if (r->timer_init && !uv_is_closing((uv_handle_t *)&r->timer)) {
        r->timer_open = true;
        uv_close((uv_handle_t *)&r->timer, ar_timer_closed);
    }
    ar_maybe_free(r);
}

static void ar_finish(struct wb_ats_run *r, enum wb_ats_verdict v, long status, char *error,
                      double retry_after)
{
    wb_ats_run_done_fn done = r->done;
    wb_ats_lookup_done_fn ldone = r->ldone;
    void *ud = r->ud;
    if (ldone)
        LIST_REMOVE(r, lookups);
    ar_release(r);
    if (!ldone) {
        done(ud, v, status, error, retry_after);
        return;
    }
    ldone(ud, v == WB_ATS_DONE ? 0 : v == WB_ATS_DEAD ? -2 : -1, error ? error : "");
    free(error);
}

static void ar_fail(struct wb_ats_run *r, enum wb_ats_verdict v, const char *what)
{
    ar_finish(r, v, 0, wb_xasprintf("%s: %s", r->s->v->kind, what), 0);
}

/* --- progress ------------------------------------------------------------ */

static void ar_on_stored(PGresult *res, void *ud)
{
    struct wb_ats_run *r = ud;
    r->pg_pending = false;
    if (r->cancelled) {
        ar_maybe_free(r);
        return;
    }
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ar_fail(r, WB_ATS_RETRY, "storing the step reached failed");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t")) {
        ar_fail(r, WB_ATS_RETRY, "lease lost before the next step");
        return;
    }
    if (r->finish_after_store)
        ar_finish(r, WB_ATS_DONE, r->last_status, NULL, 0);
    else
        ar_go(r);
}

/* Step, state and ATS id are in the database before the next request. */
static void ar_store(struct wb_ats_run *r)
{
    char id[24], step[16], lease[16];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    snprintf(step, sizeof step, "%d", r->step);
    snprintf(lease, sizeof lease, "%d", WB_ATS_LEASE_S);
    char *state = json_dumps(r->state, JSON_COMPACT);
    const char *p[] = {id, r->s->owner, r->s->v->kind, step, state, r->ats_id, lease};
    int rc = wb_pg_query(r->s->pg, progress_sql, 7, p, ar_on_stored, r);
    free(state);
    if (rc < 0) {
        ar_fail(r, WB_ATS_RETRY, "database unavailable to store the step reached");
        return;
    }
    r->pg_pending = true;
}

/* --- a response ---------------------------------------------------------- */

static void ar_take_id(struct wb_ats_run *r, struct wb_ats_outcome *o)
{
    if (!o->ats_id)
        return;
    free(r->ats_id);
    r->ats_id = o->ats_id;
    o->ats_id = NULL;
}

static void ar_apply(struct wb_ats_run *r, struct wb_ats_outcome *o, long status,
                     const char *token)
{
    struct wb_ats_session *s = r->s;
    switch (o->verdict) {
    case WB_ATS_NEXT:
        ar_take_id(r, o);
        r->step = o->next_step;
        r->skips = 0;
        ar_store(r);
        break;
    case WB_ATS_DONE:
        ar_take_id(r, o);
        r->finish_after_store = true;
        ar_store(r);
        break;
    case WB_ATS_REAUTH:
        if (!r->reauthed) {
            /* Once per attempt: a fresh token, the same step. */
            r->reauthed = true;
            if (s->token && token && !strcmp(s->token, token)) {
                free(s->token);
                s->token = NULL;
            }
            ar_go(r);
            break;
        }
        /* Refused twice: a retry later. */
        __attribute__((fallthrough));
    case WB_ATS_RETRY:
        ar_finish(r, WB_ATS_RETRY, status, o->error, o->retry_after_s);
        o->error = NULL;
        break;
    case WB_ATS_DEAD:
        ar_finish(r, WB_ATS_DEAD, status, o->error, 0);
        o->error = NULL;
        break;
    }
}

static void ar_on_response(CURL *easy, CURLcode rc, void *ud)
{
    (void)easy;
    struct wb_ats_run *r = ud;
    struct wb_ats_session *s = r->s;
    r->http_active = false;
    if (!s->v) { /* a reload made the kind "webhook" meanwhile */
        ar_finish(r, WB_ATS_RETRY, 0, wb_xstrdup("ats.kind changed during the attempt"), 0);
        return;
    }
    struct wb_ats_resp rs;
    wb_ats_http_resp(&r->http, rc, ar_now(), &rs);
    if (s->v->pace) {
        double t = s->v->pace(&rs);
        if (t > s->not_before)
            s->not_before = t;
    }
    if (r->ev) {
        ar_lookup_answer(r, &rs);
        return;
    }
    char *token = s->token ? wb_xstrdup(s->token) : NULL;
    const struct wb_ats_handoff ho = {&s->api, r->payload, r->ats_id, r->step, r->state, token};
    struct wb_ats_outcome o;
    memset(&o, 0, sizeof o);
    s->v->decide(&ho, &rs, &o);
    long status = r->last_status = rs.status;
    wb_ats_http_free(&r->http);
    ar_apply(r, &o, status, token);
    free(token);
    wb_ats_outcome_free(&o);
}

/* --- a request ------------------------------------------------------------ */

static void ar_on_timer(uv_timer_t *t)
{
    ar_go(t->data);
}

static void ar_on_first(uv_timer_t *t)
{
    struct wb_ats_run *r = t->data;
    if (!r->ev && !json_is_object(r->payload))
        ar_fail(r, WB_ATS_DEAD, "the handoff's payload is not a JSON object");
    else
        ar_go(r);
}

static void ar_timer(struct wb_ats_run *r, uint64_t ms, uv_timer_cb cb)
{
    if (!r->timer_init) {
        uv_timer_init(r->s->loop, &r->timer);
        r->timer.data = r;
        r->timer_init = true;
    }
    uv_timer_start(&r->timer, cb, ms, 0);
}

/* Waits for the vendor's pace; true when the run goes on now. */
static bool ar_paced(struct wb_ats_run *r)
{
    double wait = r->s->not_before - ar_now();
    if (wait <= 0)
        return true;
    if (wait > WB_ATS_PACE_MAX_S) {
        ar_finish(r, WB_ATS_RETRY, 429,
                  wb_xasprintf("%s: rate limit: next request in %.0f s", r->s->v->kind, wait),
                  wait);
        return false;
    }
    ar_timer(r, (uint64_t)(wait * 1000.0) + 1, ar_on_timer);
    return false;
}

static void ar_send(struct wb_ats_run *r, struct wb_ats_req *rq)
{
    int rc = wb_ats_http_init(&r->http, rq);
    wb_ats_req_free(rq);
    if (rc < 0 || wb_curl_loop_add(r->s->cl, r->http.easy, ar_on_response, r) < 0) {
        wb_ats_http_free(&r->http);
        ar_fail(r, WB_ATS_RETRY, "could not start the request");
        return;
    }
    r->http_active = true;
}

/* --- an inbound lookup ---------------------------------------------------- */

static void ar_lookup_send(struct wb_ats_run *r)
{
    struct wb_ats_session *s = r->s;
    struct wb_ats_req rq;
    memset(&rq, 0, sizeof rq);
    char err[WB_ATS_ERR_MAX] = "";
    if (s->v->lookup_build(&s->api, s->token, r->ev, &rq, err, sizeof err) < 0) {
        ar_fail(r, WB_ATS_DEAD, err[0] ? err : "nothing to look up");
        return;
    }
    ar_send(r, &rq);
}

static void ar_lookup_answer(struct wb_ats_run *r, struct wb_ats_resp *rs)
{
    struct wb_ats_session *s = r->s;
    char err[WB_ATS_ERR_MAX] = "";
    bool permanent = false;
    /* A refused token gets one new one, as a handoff's step does. */
    if (rs->status == 401 && s->v->token_build && !r->reauthed) {
        r->reauthed = true;
        free(s->token);
        s->token = NULL;
        wb_ats_http_free(&r->http);
        ar_go(r);
        return;
    }
    int rc = s->v->lookup_parse(rs, r->ev, &permanent, err, sizeof err);
    long status = rs->status;
    wb_ats_http_free(&r->http);
    if (rc == 0)
        ar_finish(r, WB_ATS_DONE, status, NULL, 0);
    else
        ar_finish(r, permanent ? WB_ATS_DEAD : WB_ATS_RETRY, status,
                  wb_xstrdup(err[0] ? err : "the lookup failed"), 0);
}

static bool ar_token_ok(const struct wb_ats_session *s)
{
    return !s->v->token_build || (s->token && ar_now() < s->token_renew);
}

static void ar_need_token(struct wb_ats_run *r);

static void ar_go(struct wb_ats_run *r)
{
    struct wb_ats_session *s = r->s;
    if (!s->v) { /* a reload made the kind "webhook" meanwhile */
        ar_finish(r, WB_ATS_RETRY, 0, wb_xstrdup("ats.kind changed during the attempt"), 0);
        return;
    }
    if (!ar_token_ok(s)) {
        ar_need_token(r);
        return;
    }
    if (!ar_paced(r))
        return;
    if (r->ev) {
        ar_lookup_send(r);
        return;
    }
    for (;;) {
        const struct wb_ats_handoff ho = {&s->api, r->payload, r->ats_id, r->step, r->state,
                                          s->token};
        struct wb_ats_req rq;
        memset(&rq, 0, sizeof rq);
        char err[WB_ATS_ERR_MAX] = "";
        int skip = WB_ATS_STEP_DONE;
        int rc = s->v->build(&ho, &rq, &skip, err, sizeof err);
        if (rc == 0) {
            ar_send(r, &rq);
            return;
        }
        if (rc < 0) {
            ar_fail(r, WB_ATS_DEAD, err[0] ? err : "the handoff cannot be sent");
            return;
        }
        if (skip == WB_ATS_STEP_DONE) {
            r->finish_after_store = true;
            ar_store(r);
            return;
        }
        if (++r->skips > MAX_SKIPS) {
            ar_fail(r, WB_ATS_DEAD, "the adapter skipped steps in a loop");
            return;
        }
        r->step = skip;
    }
}

/* --- the token ------------------------------------------------------------ */

/* Every waiting run goes on (token) or ends as a retry (error). */
static void ar_token_done(struct wb_ats_session *s, long status, const char *error)
{
    struct ar_runs runs;
    TAILQ_INIT(&runs);
    TAILQ_CONCAT(&runs, &s->waiting, link);
    struct wb_ats_run *r;
    while ((r = TAILQ_FIRST(&runs))) {
        TAILQ_REMOVE(&runs, r, link);
        r->waiting_token = false;
        if (error)
            ar_finish(r, WB_ATS_RETRY, status, wb_xstrdup(error), 0);
        else
            ar_go(r);
    }
}

static void ar_on_token(CURL *easy, CURLcode rc, void *ud)
{
    (void)easy;
    struct wb_ats_session *s = ud;
    s->token_busy = false;
    if (!s->v) { /* a reload made the kind "webhook" meanwhile */
        wb_ats_http_free(&s->tok);
        ar_token_done(s, 0, "ats.kind changed during the token request");
        return;
    }
    struct wb_ats_resp rs;
    wb_ats_http_resp(&s->tok, rc, ar_now(), &rs);
    char err[WB_ATS_ERR_MAX] = "", *tok = NULL;
    double exp = 0;
    long status = rs.status;
    int ok = s->v->token_parse(&rs, &tok, &exp, err, sizeof err);
    if (ok == 0 && exp < rs.now + 2) {
        /* Taken as given, it would be fetched again at once, in a loop. */
        free(tok);
        snprintf(err, sizeof err, "the token expires at once");
        ok = -1;
    }
    char *why = ok < 0 ? wb_xasprintf("%s: access token: %s%s%.200s", s->v->kind, err,
                                      status ? "" : ": ", status ? "" : rs.body)
                       : NULL;
    wb_ats_http_free(&s->tok);
    if (ok == 0) {
        free(s->token);
        s->token = tok;
        /* Renewed a minute early, or halfway for a short-lived token. */
        double life = exp - rs.now, margin = life / 2 < TOKEN_MARGIN_S ? life / 2 : TOKEN_MARGIN_S;
        s->token_renew = exp - margin;
    } else {
        wb_warn("%s", why);
    }
    ar_token_done(s, status, why);
    free(why);
}

static void ar_need_token(struct wb_ats_run *r)
{
    struct wb_ats_session *s = r->s;
    TAILQ_INSERT_TAIL(&s->waiting, r, link);
    r->waiting_token = true;
    if (s->token_busy)
        return;
    struct wb_ats_req rq;
    memset(&rq, 0, sizeof rq);
    char err[WB_ATS_ERR_MAX] = "";
    if (s->v->token_build(&s->api, &rq, err, sizeof err) < 0) {
        char *why = wb_xasprintf("%s: access token: %s", s->v->kind, err);
        ar_token_done(s, 0, why);
        free(why);
        return;
    }
    int rc = wb_ats_http_init(&s->tok, &rq);
    wb_ats_req_free(&rq);
    if (rc < 0 || wb_curl_loop_add(s->cl, s->tok.easy, ar_on_token, s) < 0) {
        wb_ats_http_free(&s->tok);
        ar_token_done(s, 0, "could not start the token request");
        return;
    }
    s->token_busy = true;
}

/* --- public --------------------------------------------------------------- */

struct wb_ats_session *wb_ats_session_new(uv_loop_t *loop, struct wb_curl_loop *cl,
                                          struct wb_pg *pg, const char *owner)
{
    struct wb_ats_session *s = wb_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cl = cl;
    s->pg = pg;
    s->owner = wb_xstrdup(owner);
    TAILQ_INIT(&s->waiting);
    LIST_INIT(&s->lookups);
    return s;
}

void wb_ats_session_set_config(struct wb_ats_session *s, const struct wb_config *cfg)
{
    s->v = wb_ats_vendor_of(cfg);
    if (s->v)
        wb_ats_api_of(cfg, s->v, &s->api);
    else
        memset(&s->api, 0, sizeof s->api);
    /* The credentials may have changed: the next request gets a new token. */
    free(s->token);
    s->token = NULL;
}

const struct wb_ats_vendor *wb_ats_session_vendor(const struct wb_ats_session *s)
{
    return s->v;
}

void wb_ats_session_free(struct wb_ats_session *s)
{
    if (!s)
        return;
    /* Lookups are answered (try again later), so that their requests end. */
    struct wb_ats_run *l;
    while ((l = LIST_FIRST(&s->lookups)))
        ar_finish(l, WB_ATS_RETRY, 0, wb_xstrdup("shutting down"), 0);
    if (s->token_busy)
        wb_curl_loop_cancel(s->cl, s->tok.easy);
    wb_ats_http_free(&s->tok);
    free(s->token);
    free(s->owner);
    free(s);
}

struct wb_ats_run *wb_ats_run_start(struct wb_ats_session *s, const struct wb_ats_run_args *a,
                                    wb_ats_run_done_fn done, void *ud)
{
    struct wb_ats_run *r = wb_xcalloc(1, sizeof *r);
    r->s = s;
    r->id = a->id;
    r->done = done;
    r->ud = ud;
    r->payload = json_loads(a->payload ? a->payload : "", 0, NULL);
    bool same_kind = a->ats_kind && !strcmp(a->ats_kind, s->v->kind);
    r->state = same_kind ? json_loads(a->state ? a->state : "", 0, NULL) : NULL;
    if (!json_is_object(r->state)) {
        json_decref(r->state);
        r->state = json_object();
    }
    /* A new attempt resumes no later than the step that finds the person. */
    int restart = s->v->restart_step;
    r->step = !same_kind ? 0 : a->step < restart ? a->step : restart;
    r->ats_id = a->ats_id ? wb_xstrdup(a->ats_id) : NULL;
    /* done comes from the loop, never from inside this call. */
    ar_timer(r, 0, ar_on_first);
    return r;
}

void wb_ats_run_cancel(struct wb_ats_run *r)
{
    if (r && !r->cancelled)
        ar_release(r);
}

void wb_ats_lookup_start(struct wb_ats_session *s, struct wb_ats_inbound *ev,
                         wb_ats_lookup_done_fn done, void *ud)
{
    struct wb_ats_run *r = wb_xcalloc(1, sizeof *r);
    r->s = s;
    r->ev = ev;
    r->ldone = done;
    r->ud = ud;
    LIST_INSERT_HEAD(&s->lookups, r, lookups);
    ar_timer(r, 0, ar_on_first);
}
