/* The handoff delivery engine. A tick (recover expired leases → claim up to
 * the free POST slots → read the next due time) runs as a chain of pg_loop
 * callbacks; each claimed row becomes one signed POST on the curl loop;
 * outcomes are written back in batches by one statement. The claim builds
 * the payload in SQL and stores it, so every retry sends the same body
 * under the same Idempotency-Key. */
#include "warmbench/handoff.h"
#include "warmbench/json_order.h"
#include "warmbench/ats_run.h"
#include "warmbench/buf.h"
#include "warmbench/engine.h"
#include "warmbench/log.h"
#include "warmbench/outcomes.h"
#include "warmbench/pgtext.h"
#include "warmbench/states.h"
#include "warmbench/tasks.h"
#include "warmbench/util.h"
#include "warmbench/webhook_sign.h"
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define MAX_INFLIGHT 32
#define CONNECT_TIMEOUT_S 10
#define TOTAL_TIMEOUT_S 30
/* Covers one POST (at most TOTAL_TIMEOUT_S) and storing its outcome. */
#define LEASE_S (TOTAL_TIMEOUT_S * 2)
#define ERROR_KEEP 1024
#define FLUSH_DELAY_MS 20
#define RESULT_BATCH 256
#define MAX_BACKOFF_S (6 * 3600)
#define MAX_RETRY_AFTER_S (24 * 3600)
#define MAX_SLEEP_S 60.0

#define RFC3339(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Expired leases go back to pending (same key) unless that was the last
 * allowed attempt; handoffs whose candidate was erased are not sent. */
static const char recover_sql[] =
    "WITH back AS ("
    " UPDATE handoffs SET"
    "  state = CASE WHEN attempts >= $1::int THEN 'dead' ELSE 'pending' END,"
    "  last_error = CASE WHEN attempts >= $1::int"
    "   THEN 'lease expired during the last attempt (outcome unknown)' ELSE last_error END,"
    "  next_attempt_at = now(), lease_owner = NULL, lease_until = NULL"
    " WHERE state = 'delivering' AND lease_until < now() RETURNING state),"
    " gone AS ("
    " UPDATE handoffs SET state = 'dead', last_error = 'candidate erased before delivery',"
    "  payload = NULL"
    " WHERE state = 'pending' AND candidate_id IS NULL RETURNING 1)"
    "SELECT (SELECT count(*) FROM back WHERE state = 'pending'),"
    " (SELECT count(*) FROM back WHERE state = 'dead'), (SELECT count(*) FROM gone)";

/* $1 batch, $2 owner, $3 lease seconds, $4 the targets configured (ats,
 * tasks: sql/030_tasks.sql), $5 the native ATS kind (NULL: the webhook).
 * Rows: id, key, attempts, payload, target, then for the native kinds the
 * progress (ats_kind, ats_step, ats_state: 025) and the person's ATS id. */
static const char claim_sql[] =
    "WITH pick AS MATERIALIZED ("
    " SELECT id FROM handoffs WHERE state = 'pending' AND next_attempt_at <= now()"
    "  AND target = ANY ($4::text[])"
    " ORDER BY next_attempt_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED)"
    "UPDATE handoffs h SET state = 'delivering', lease_owner = $2,"
    " lease_until = now() + make_interval(secs => $3::int), attempts = h.attempts + 1,"
    " payload = coalesce(h.payload, jsonb_build_object("
    "  'type', 'candidate.handoff', 'id', h.idempotency_key::text,"
    "  'occurred_at', " RFC3339("h.created_at") ","
    "  'reason', h.reason, 'sequence', h.sequence_id,"
    "  'candidate', (SELECT jsonb_build_object('email', c.email, 'first_name', c.first_name,"
    "    'last_name', c.last_name, 'title', c.title, 'company', c.company,"
    "    'tags', to_jsonb(c.tags), 'attrs', c.attrs)"
    "   FROM candidates c WHERE c.id = h.candidate_id),"
    /* The human timeline of that sequence (all of it for a handoff without
     * one), with the detail an ATS can use: which link, which intent (and the
     * model's confidence in it). */
    "  'engagement', coalesce((SELECT jsonb_agg(jsonb_build_object('type', e.type,"
    "     'step', e.step, 'at', " RFC3339("e.at") ")"
    "     || jsonb_strip_nulls(jsonb_build_object('link', e.detail->'link',"
    "        'intent', e.detail->'intent', 'confidence', e.detail->'confidence',"
    "        'kind', e.detail->'kind',"
    "        'reason', e.detail->'reason'))"
    "     ORDER BY e.at, e.id)"
    "   FROM events e WHERE e.candidate_id = h.candidate_id AND NOT e.machine"
    "    AND (h.sequence_id IS NULL OR e.sequence_id = h.sequence_id)), '[]'::jsonb)))"
    " FROM pick WHERE h.id = pick.id"
    " RETURNING h.id, h.idempotency_key, h.attempts, h.payload::text, h.target,"
    " h.ats_kind, h.ats_step, h.ats_state::text,"
    " (SELECT a.ats_id FROM candidate_ats a WHERE a.candidate_id = h.candidate_id"
    "   AND a.kind = $5)";

/* Outcomes of a batch. $1 ids, $2 states (delivered|pending|dead), $3 HTTP
 * statuses (0 = none), $4 errors, $5 retry delays (s), $6 owner. Only rows
 * still leased to us change, except that a 2xx is recorded even after the
 * lease was lost (the ATS has it; a second POST carries the same key). */
static const char results_sql[] =
    "WITH o AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[],"
    "  $5::float8[]) AS o(id, state, status, err, delay)),"
    " u AS ("
    " UPDATE handoffs h SET state = o.state,"
    "  delivered_at = CASE WHEN o.state = 'delivered' THEN now() ELSE h.delivered_at END,"
    "  next_attempt_at = CASE WHEN o.state = 'pending'"
    "   THEN now() + make_interval(secs => o.delay) ELSE h.next_attempt_at END,"
    "  last_status = nullif(o.status, 0), last_error = nullif(o.err, ''),"
    "  lease_owner = NULL, lease_until = NULL"
    " FROM o WHERE h.id = o.id AND ((h.state = 'delivering' AND h.lease_owner = $6)"
    "  OR (o.state = 'delivered' AND h.state IN ('pending', 'delivering')))"
    " RETURNING 1)"
    "SELECT count(*) FROM u";

/* Seconds until something may need us: a pending retry, or a lease that
 * expires (ours or another daemon's), of the targets configured ($1).
 * NULL when neither. */
static const char wake_sql[] =
    "SELECT extract(epoch FROM least("
    " (SELECT min(next_attempt_at) FROM handoffs WHERE state = 'pending'"
    "  AND target = ANY ($1::text[])),"
    " (SELECT min(lease_until) FROM handoffs WHERE state = 'delivering'"
    "  AND target = ANY ($1::text[]))) - clock_timestamp())";

struct delivery {
    struct wb_handoff *h;
    int64_t id;
    int attempts;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct wb_buf resp;             /* the first ERROR_KEEP bytes */
    char errbuf[CURL_ERROR_SIZE];
    struct wb_ats_run *run;         /* a native kind's steps, instead of easy */
    LIST_ENTRY(delivery) link;      /* in flight, for drain and stop */
};
LIST_HEAD(deliveries, delivery);

struct wb_handoff {
    struct wb_engine e;             /* rounds: recover → claim → next wake */
    uv_loop_t *loop;
    struct wb_curl_loop *cl;
    struct wb_pg *pg;
    const struct wb_config *cfg;
    struct wb_ats_session *ats;     /* the native kind's vendor, token and pace */
    char *owner;
    bool backlog, gave_up, warned_unsigned;
    size_t claimed_this_tick;
    struct deliveries inflight;
    size_t n_inflight;
    struct wb_outcomes res;       /* delivered, pending, dead */
    struct wb_outcomes flushing;  /* the batch being written */
    struct wb_handoff_figures fig;
};

static void ho_flush(struct wb_handoff *h);

/* --- small helpers ------------------------------------------------------ */

static bool ho_res_ok(struct wb_handoff *h, PGresult *r, const char *what)
{
    return wb_engine_ok(&h->e, r, what);
}

static void ho_add_outcome(struct wb_handoff *h, int64_t id, enum wb_handoff_state to, int status,
                        char *error, double delay_s)
{
    wb_handoff_enter_state(id, WB_HO_DELIVERING, to, error);
    wb_outcomes_add(&h->res, id, wb_handoff_state_name(to), status, error, delay_s);
    if (h->res.n >= RESULT_BATCH || wb_engine_draining(&h->e))
        ho_flush(h);
    else
        wb_engine_flush_in(&h->e, FLUSH_DELAY_MS);
}

/* retry_base_s × 2^(attempts−1), "full jitter" (uniform in [0, that]) so
 * the retries of one outage spread out; Retry-After, when larger, wins. */
static double ho_retry_delay(const struct wb_handoff *h, int attempts, double retry_after)
{
    double d = (double)h->cfg->ats.retry_base_s * ldexp(1.0, attempts > 1 ? attempts - 1 : 0);
    if (d > MAX_BACKOFF_S)
        d = MAX_BACKOFF_S;
    d *= (double)random() / (double)RAND_MAX;
    if (retry_after > MAX_RETRY_AFTER_S)
        retry_after = MAX_RETRY_AFTER_S;
    return retry_after > d ? retry_after : d;
}

/* --- the body: SPEC's key order for people reading it ------------------ */

/* jsonb sorts keys by length; the ATS gets them in SPEC.md's order. When
 * Jansson cannot read the payload (an integer beyond 64 bits in attrs),
 * the stored text goes as it is: still the same bytes on every retry. */
static char *ho_make_body(const char *payload)
{
    static const char *const top[] = {"type", "id", "occurred_at", "reason", "sequence",
                                      "candidate", "engagement"};
    static const char *const cand[] = {"email", "first_name", "last_name", "title",
                                       "company", "tags", "attrs"};
    static const char *const ev[] = {"type", "step", "at"};
    json_t *in = json_loads(payload, 0, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return wb_xstrdup(payload);
    }
    json_t *out = wb_json_ordered(in, top, 7);
    json_t *c = json_object_get(in, "candidate");
    if (json_is_object(c))
        json_object_set_new(out, "candidate", wb_json_ordered(c, cand, 7));
    json_t *eng = json_object_get(in, "engagement"), *arr = json_array(), *e;
    size_t i;
    json_array_foreach(eng, i, e) {
        json_array_append_new(arr, json_is_object(e) ? wb_json_ordered(e, ev, 3) : json_incref(e));
    }
    json_object_set_new(out, "engagement", arr);
    char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    json_decref(in);
    return s ? s : wb_xstrdup(payload);
}

/* --- one POST ----------------------------------------------------------- */

static size_t ho_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct delivery *d = ud;
    size_t len = size * n;
    if (d->resp.len < ERROR_KEEP)
        wb_buf_append(&d->resp, p, len < ERROR_KEEP - d->resp.len ? len : ERROR_KEEP - d->resp.len);
    return len; /* the rest is read and dropped, so the status stands */
}

static void ho_unlink_delivery(struct wb_handoff *h, struct delivery *d)
{
    LIST_REMOVE(d, link);
    h->n_inflight--;
}

static void ho_free_delivery(struct delivery *d)
{
    if (d->run)
        wb_ats_run_cancel(d->run);
    if (d->easy)
        curl_easy_cleanup(d->easy);
    curl_slist_free_all(d->headers);
    free(d->body);
    wb_buf_free(&d->resp);
    free(d);
}

/* The delivery rules for one attempt's end: accepted; retried with
 * backoff (Retry-After when larger) until max_attempts; or dead. text is
 * the outcome's (stored as last_error). */
static void ho_apply(struct wb_handoff *h, struct delivery *d, enum wb_ats_verdict v,
                     long status, char *text, double retry_after)
{
    if (v == WB_ATS_DONE) {
        ho_add_outcome(h, d->id, WB_HO_DELIVERED, (int)status, text, 0);
        h->fig.delivered++;
        return;
    }
    if (v == WB_ATS_DEAD || d->attempts >= h->cfg->ats.max_attempts) {
        wb_warn("handoff %lld dead after %d attempt(s): %s%ld %.200s", (long long)d->id,
                d->attempts, status ? "HTTP " : "", status, text);
        ho_add_outcome(h, d->id, WB_HO_DEAD, (int)status, text, 0);
        h->fig.dead++;
        return;
    }
    double delay = ho_retry_delay(h, d->attempts, retry_after);
    wb_info("handoff %lld: attempt %d failed (%s%ld %.200s); next in %.1f s", (long long)d->id,
            d->attempts, status ? "HTTP " : "", status, text, delay);
    ho_add_outcome(h, d->id, WB_HO_PENDING, (int)status, text, delay);
    h->fig.retried++;
}

/* Decides what a finished POST means for its handoff. */
static void ho_record(struct wb_handoff *h, struct delivery *d, CURLcode rc)
{
    long status = 0;
    curl_off_t ra = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(d->easy, CURLINFO_RETRY_AFTER, &ra);
    char *text = rc == CURLE_OK || status
                     ? wb_text_clean(d->resp.data ? d->resp.data : "", d->resp.len)
                     : wb_xasprintf("%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc));
    /* Accepted, even if reading the rest of the answer failed. */
    bool ok = status >= 200 && status < 300;
    bool permanent = rc == CURLE_OK && status >= 400 && status < 500 && status != 408 &&
                     status != 429;
    ho_apply(h, d, ok ? WB_ATS_DONE : permanent ? WB_ATS_DEAD : WB_ATS_RETRY, status, text,
             (double)ra);
}

static void ho_on_posted(CURL *easy, CURLcode rc, void *ud)
{
    (void)easy;
    struct delivery *d = ud;
    struct wb_handoff *h = d->h;
    ho_unlink_delivery(h, d);
    ho_record(h, d, rc);
    ho_free_delivery(d);
    if (h->backlog && !wb_engine_in_round(&h->e))
        wb_handoff_kick(h);
    wb_engine_check(&h->e);
}

static struct curl_slist *ho_add_header(struct curl_slist *l, const char *fmt, const char *v)
{
    char *line = wb_xasprintf(fmt, v);
    struct curl_slist *n = curl_slist_append(l, line);
    free(line);
    if (!n)
        abort(); /* allocation failure, as wb_xmalloc */
    return n;
}

/* Where rows go: the ATS webhook, and task.due (tasks.h) when configured. */
static const char *ho_targets(const struct wb_config *cfg)
{
    bool ats = cfg->ats.enabled, tasks = cfg->tasks.webhook_url != NULL;
    return ats && tasks ? "{ats,tasks}" : ats ? "{ats}" : tasks ? "{tasks}" : "{}";
}

static void ho_post(struct wb_handoff *h, int64_t id, const char *key, int attempts,
                 const char *payload, const char *target)
{
    const struct wb_config *cfg = h->cfg;
    struct delivery *d = wb_xcalloc(1, sizeof *d);
    d->h = h;
    d->id = id;
    d->attempts = attempts;
    /* A task.due row: its own URL and key, the generic signed webhook. */
    bool task = !strcmp(target, "tasks");
    size_t secret_len = cfg->ats.secret_len;
    const unsigned char *secret = task ? wb_tasks_secret(cfg, &secret_len) : cfg->ats.secret;
    d->body = task ? wb_task_body(payload) : ho_make_body(payload);
    wb_buf_init(&d->resp);
    d->headers = ho_add_header(NULL, "%s", "Content-Type: application/json");
    d->headers = ho_add_header(d->headers, "Idempotency-Key: %s", key);
    /* No 100-continue round trip: the body is small. */
    d->headers = ho_add_header(d->headers, "%s", "Expect:");
    if (secret) {
        char sig[WB_SIG_HEADER_MAX];
        wb_webhook_sign(secret, secret_len, (long long)time(NULL), d->body,
                        strlen(d->body), sig);
        d->headers = ho_add_header(d->headers, "Warmbench-Signature: %s", sig);
    } else if (!h->warned_unsigned) {
        h->warned_unsigned = true;
        wb_warn("handoff: ats.secret_file is not set; webhooks go out unsigned");
    }
    CURL *e = d->easy = curl_easy_init();
    if (!e)
        abort();
    curl_easy_setopt(e, CURLOPT_URL, task ? cfg->tasks.webhook_url : cfg->ats.webhook_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "warmbench/" WB_VERSION);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)TOTAL_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ho_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
    if (wb_curl_loop_add(h->cl, e, ho_on_posted, d) < 0) {
        ho_add_outcome(h, id, WB_HO_PENDING, 0, wb_xstrdup("could not start the request"), 1.0);
        ho_free_delivery(d);
        return;
    }
    LIST_INSERT_HEAD(&h->inflight, d, link);
    h->n_inflight++;
}

/* A native kind's attempt ended (ats_run.c). */
static void ho_on_native_done(void *ud, enum wb_ats_verdict v, long status, char *error,
                              double retry_after)
{
    struct delivery *d = ud;
    struct wb_handoff *h = d->h;
    d->run = NULL; /* it has ended */
    ho_unlink_delivery(h, d);
    ho_apply(h, d, v, status, error ? error : wb_xstrdup(""), retry_after);
    ho_free_delivery(d);
    if (h->backlog && !wb_engine_in_round(&h->e))
        wb_handoff_kick(h);
    wb_engine_check(&h->e);
}

/* Row i of the claim as the vendor's steps instead of one POST. */
static void ho_native(struct wb_handoff *h, PGresult *r, int i)
{
    struct delivery *d = wb_xcalloc(1, sizeof *d);
    d->h = h;
    d->id = atoll(PQgetvalue(r, i, 0));
    d->attempts = atoi(PQgetvalue(r, i, 2));
    wb_buf_init(&d->resp);
    const struct wb_ats_run_args a = {
        .id = d->id,
        .payload = PQgetvalue(r, i, 3),
        .ats_kind = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5),
        .step = atoi(PQgetvalue(r, i, 6)),
        .state = PQgetvalue(r, i, 7),
        .ats_id = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8),
    };
    LIST_INSERT_HEAD(&h->inflight, d, link);
    h->n_inflight++;
    d->run = wb_ats_run_start(h->ats, &a, ho_on_native_done, d);
}

/* --- tick: recover → claim → next wake ---------------------------------- */

static void ho_tick_end(struct wb_handoff *h, double secs)
{
    /* Rounded up, so a retry is never claimed a millisecond early. */
    wb_engine_round_end(&h->e, (uint64_t)ceil(secs * 1000.0));
}

static void ho_on_wake(PGresult *r, void *ud)
{
    struct wb_handoff *h = ud;
    if (!ho_res_ok(h, r, "reading the next due time")) {
        ho_tick_end(h, 1.0);
        return;
    }
    double secs = PQgetisnull(r, 0, 0) ? MAX_SLEEP_S : atof(PQgetvalue(r, 0, 0));
    /* Due now yet nothing claimed: another daemon holds it; do not spin. */
    double lo = h->claimed_this_tick ? 0.0 : 0.25;
    if (secs < lo)
        secs = lo;
    if (secs > MAX_SLEEP_S)
        secs = MAX_SLEEP_S;
    if (h->backlog && h->n_inflight < MAX_INFLIGHT)
        secs = 0;
    else if (h->backlog)
        secs = MAX_SLEEP_S; /* a finished POST kicks */
    ho_tick_end(h, secs);
}

static void ho_phase_wake(struct wb_handoff *h)
{
    const char *p[] = {ho_targets(h->cfg)};
    if (wb_engine_draining(&h->e) || wb_pg_query(h->pg, wake_sql, 1, p, ho_on_wake, h) < 0)
        ho_tick_end(h, 1.0);
}

static void ho_on_claim(PGresult *r, void *ud)
{
    struct wb_handoff *h = ud;
    if (!ho_res_ok(h, r, "claiming handoffs")) {
        ho_tick_end(h, 1.0);
        return;
    }
    int n = PQntuples(r);
    /* Claimed while draining: still sent, and the drain waits for them. */
    for (int i = 0; i < n; i++) {
        /* Rows for the ATS go as the vendor's calls when a native kind is
         * configured; task.due rows always as the generic webhook. */
        if (wb_ats_session_vendor(h->ats) && !strcmp(PQgetvalue(r, i, 4), "ats"))
            ho_native(h, r, i);
        else
            ho_post(h, atoll(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1),
                    atoi(PQgetvalue(r, i, 2)), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
    }
    h->claimed_this_tick = (size_t)n;
    h->backlog = n > 0 && h->n_inflight >= MAX_INFLIGHT;
    ho_phase_wake(h);
}

static void ho_on_recover(PGresult *r, void *ud)
{
    struct wb_handoff *h = ud;
    if (!ho_res_ok(h, r, "recovering expired leases")) {
        ho_tick_end(h, 1.0);
        return;
    }
    long back = atol(PQgetvalue(r, 0, 0)), dead = atol(PQgetvalue(r, 0, 1));
    long gone = atol(PQgetvalue(r, 0, 2));
    if (back || dead)
        wb_warn("handoff: expired leases: %ld back to pending (same key), %ld dead "
                "(that was the last attempt)", back, dead);
    if (gone)
        wb_info("handoff: %ld pending handoff(s) dropped: the candidate was erased", gone);
    if (wb_engine_draining(&h->e) || h->n_inflight >= MAX_INFLIGHT) {
        h->backlog = h->n_inflight >= MAX_INFLIGHT;
        ho_phase_wake(h);
        return;
    }
    char batch[16], lease[16];
    snprintf(batch, sizeof batch, "%zu", MAX_INFLIGHT - h->n_inflight);
    snprintf(lease, sizeof lease, "%d", LEASE_S);
    const struct wb_ats_vendor *v = wb_ats_session_vendor(h->ats);
    const char *p[] = {batch, h->owner, lease, ho_targets(h->cfg), v ? v->kind : NULL};
    if (wb_pg_query(h->pg, claim_sql, 5, p, ho_on_claim, h) < 0)
        ho_tick_end(h, 1.0);
}

static void ho_round(void *ud)
{
    struct wb_handoff *h = ud;
    if (!wb_pg_ready(h->pg)) {
        wb_engine_round_idle(&h->e); /* on_connect kicks */
        return;
    }
    h->claimed_this_tick = 0;
    char max[16];
    snprintf(max, sizeof max, "%d", h->cfg->ats.max_attempts);
    const char *p[] = {max};
    if (wb_pg_query(h->pg, recover_sql, 1, p, ho_on_recover, h) < 0)
        ho_tick_end(h, 1.0);
}

/* --- outcomes ----------------------------------------------------------- */

static void ho_on_flushed(PGresult *r, void *ud)
{
    struct wb_handoff *h = ud;
    if (!ho_res_ok(h, r, "storing delivery outcomes")) {
        /* Kept and written after the reconnect (or the retry). */
        wb_outcomes_requeue(&h->res, &h->flushing);
        if (r)
            wb_engine_flush_in(&h->e, 1000);
        return;
    }
    bool retries = false;
    for (size_t i = 0; i < h->flushing.n; i++)
        retries |= wb_handoff_state_parse(h->flushing.v[i].state) == WB_HO_PENDING;
    wb_outcomes_clear(&h->flushing);
    /* A retry is due sooner than the timer may be set for: recompute it. */
    if (retries)
        wb_handoff_kick(h);
    else if (h->res.n)
        ho_flush(h);
    wb_engine_check(&h->e);
}

static void ho_flush(struct wb_handoff *h)
{
    if (h->flushing.n || !h->res.n || !wb_pg_ready(h->pg))
        return;
    wb_outcomes_move(&h->flushing, &h->res);
    char *a[5];
    wb_outcomes_params(&h->flushing, a);
    const char *p[] = {a[0], a[1], a[2], a[3], a[4], h->owner};
    if (wb_pg_query(h->pg, results_sql, 6, p, ho_on_flushed, h) < 0)
        ho_on_flushed(NULL, h);
    wb_outcomes_params_free(a);
}

static void ho_flush_due(void *ud)
{
    ho_flush(ud);
}

/* --- drain -------------------------------------------------------------- */

static bool ho_idle(void *ud)
{
    struct wb_handoff *h = ud;
    return !(h->n_inflight || h->res.n || h->flushing.n);
}

/* First expiry: cancel what still runs and put it back to pending. Second:
 * the database did not take the outcomes; their leases expire instead. */
static uint64_t ho_give_up(void *ud)
{
    struct wb_handoff *h = ud;
    if (h->gave_up) {
        wb_warn("handoff: shutdown: %zu outcome(s) not stored; those handoffs are retried "
                "(same key) when their lease expires", h->res.n + h->flushing.n);
        return 0;
    }
    h->gave_up = true;
    struct delivery *d;
    while ((d = LIST_FIRST(&h->inflight))) {
        ho_unlink_delivery(h, d);
        if (d->easy)
            wb_curl_loop_cancel(h->cl, d->easy);
        ho_add_outcome(h, d->id, WB_HO_PENDING, 0, wb_xstrdup("interrupted by shutdown"), 0);
        ho_free_delivery(d);
    }
    ho_flush(h);
    return 5000;
}

void wb_handoff_drain(struct wb_handoff *h, void (*done)(void *ud), void *ud)
{
    ho_flush(h);
    wb_engine_drain(&h->e, (TOTAL_TIMEOUT_S + 2) * 1000, done, ud);
}

/* --- lifecycle ---------------------------------------------------------- */

static const struct wb_engine_ops ho_ops = {
    .name = "handoff",
    .round = ho_round,
    .flush = ho_flush_due,
    .idle = ho_idle,
    .give_up = ho_give_up,
};

struct wb_handoff *wb_handoff_new(uv_loop_t *loop, struct wb_curl_loop *cl, struct wb_pg *pg,
                                  const struct wb_config *cfg, const char *owner)
{
    struct wb_handoff *h = wb_xcalloc(1, sizeof *h);
    h->loop = loop;
    h->cl = cl;
    h->pg = pg;
    h->cfg = cfg;
    h->owner = wb_xstrdup(owner);
    h->ats = wb_ats_session_new(loop, cl, pg, owner);
    wb_ats_session_set_config(h->ats, cfg);
    LIST_INIT(&h->inflight);
    wb_engine_init(&h->e, loop, &ho_ops, h);
    return h;
}

void wb_handoff_set_config(struct wb_handoff *h, const struct wb_config *cfg)
{
    h->cfg = cfg;
    wb_ats_session_set_config(h->ats, cfg);
}

void wb_handoff_start(struct wb_handoff *h)
{
    wb_engine_start(&h->e);
}

void wb_handoff_kick(struct wb_handoff *h)
{
    ho_flush(h);
    wb_engine_kick(&h->e);
}

struct wb_ats_session *wb_handoff_ats(struct wb_handoff *h)
{
    return h->ats;
}

void wb_handoff_figures(const struct wb_handoff *h, struct wb_handoff_figures *f)
{
    *f = h->fig;
    f->inflight = h->n_inflight;
    f->unwritten = h->res.n + h->flushing.n;
}

static void ho_closed(void *ud)
{
    struct wb_handoff *h = ud;
    wb_ats_session_free(h->ats);
    free(h->owner);
    free(h);
}

void wb_handoff_stop(struct wb_handoff *h)
{
    struct delivery *d;
    while ((d = LIST_FIRST(&h->inflight))) {
        ho_unlink_delivery(h, d);
        if (d->easy)
            wb_curl_loop_cancel(h->cl, d->easy);
        ho_free_delivery(d);
    }
    wb_outcomes_free(&h->res);
    wb_outcomes_free(&h->flushing);
    wb_engine_stop(&h->e, ho_closed, h);
}
