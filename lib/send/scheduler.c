/* The sending engine. A tick (recover leases → claim per sender, which
 * turns due enrollment steps into claimed messages → compute the next
 * wake) runs as a chain of pg_loop callbacks; claimed messages wait in a
 * ready queue; sched_pump() renders a few and marks them `sending` just before
 * SMTP gets them; outcomes are written back as soon as the last write is
 * done. Only the mark makes a message sendable, which is what keeps "at
 * most once" across crashes and several daemons; the window of marked
 * messages whose outcome is not stored bounds what a crash leaves
 * `unknown`. The marking connection holds this daemon's liveness lock
 * (wb_owner_lock, sql/functions/060_send.sql): nothing is claimed or
 * marked without it. */
#include "warmbench/scheduler.h"
#include "warmbench/buf.h"
#include "warmbench/engine.h"
#include "warmbench/guard.h"
#include "warmbench/log.h"
#include "warmbench/outcomes.h"
#include "warmbench/pgtext.h"
#include "warmbench/queries.h"
#include "warmbench/render.h"
#include "warmbench/send_pools.h"
#include "warmbench/states.h"
#include "warmbench/tasks.h"
#include "warmbench/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define FLUSH_RETRY_MS 1000
#define APPLY_BATCH 256
#define APPLY_MAX 1000              /* ids named by one apply statement */
#define APPLY_DELAY_MS 50
#define WAKE_MAX_MS 30000           /* lease recovery runs at least this often */
#define RECOVER_EVERY_MS 5000
#define MAX_ATTEMPTS 8
#define AUTH_RETRY_S 10.0           /* a message refused with an old token */
#define MAX_RETRY_S (6 * 3600)
#define REPLAN_FIRST 1024

/* A claimed message: rendered only when it is about to be marked, so a
 * claim of hundreds does not hold the loop (and every SMTP reply waiting
 * on it) for the milliseconds rendering them all at once takes. */
struct sched_lane;
struct item {
    struct sched_lane *lane;        /* the pool it leaves through */
    struct wb_claimed c;
    struct wb_rendered r;
    bool rendered;
    STAILQ_ENTRY(item) link;
};
STAILQ_HEAD(items, item);

/* The window statement in flight: the messages it marks, in order. */
struct batch {
    struct item **v;
    size_t n;
    STAILQ_ENTRY(batch) link;
};
STAILQ_HEAD(batches, batch);

/* Message ids, oldest first. */
struct sched_ids {
    int64_t *v;
    size_t n, cap;
};

struct sendctx {
    struct wb_sched *s;
    struct sched_lane *lane;
    int64_t id;
    int attempts;
};

/* One SMTP pool's share of the work: its claimed messages and its window
 * of marked ones (two per connection), so a slow or held pool never holds
 * up another's. */
struct sched_lane {
    struct wb_send_pool *pool;
    struct items ready;             /* claimed, waiting for a mark */
    size_t n_ready;
    size_t inflight;                /* handed to its SMTP workers */
};

struct wb_sched {
    struct wb_engine e;             /* rounds: recover → claim per sender → next wake */
    uv_loop_t *loop;
    struct wb_pg *pg;               /* ticks and claims */
    struct wb_pg *pg_mark;          /* the lock, marks and outcomes: the window never
                                       waits behind a claim */
    struct wb_send_pools pools;
    struct sched_lane *lanes;       /* one per pool, in the same order */
    struct wb_oauth *oauth;         /* NULL without OAuth senders */
    int timeout_s;                  /* the longest SMTP timeout of the pools */
    struct sched_lane *claim_lane;  /* the lane of the claim in flight */
    char *claim_sender;             /* and its sender (a reload may change cfg meanwhile) */
    struct wb_guard_state guard;    /* paused senders, days of sending (warm-up) */
    struct wb_tasks *tasks;         /* manual steps: due as mail is, on the same connection */
    char *guard_params;             /* the senders' guards as wb_sender_guard takes them,
                                       made once per config (it runs after every apply) */
    bool guarding;                  /* a guard query is on its way */
    bool guard_then_claim;          /* the round's claims wait for its answer */
    const struct wb_config *cfg;
    char *owner;
    bool locked, locking;           /* liveness lock held on pg_mark, or asked for */
    unsigned lock_gen;              /* pg_mark's reconnect count when it was taken */
    bool claim_full;                /* a claim came back full: more is due */
    bool full_this_tick;
    size_t claims_this_tick;
    size_t sender_i, claimed_this_tick;
    uint64_t recovered_at;          /* uv_now of the last lease recovery */
    uint64_t claimed_total, replan_at; /* messages claimed since start; see sched_replan() */
    size_t n_ready;                 /* in every lane */
    struct batches marks;           /* marks in flight, oldest first: answers come in order */
    size_t n_marks, n_marking;      /* marks in flight, messages in them */
    size_t inflight;
    int releasing;                  /* release queries in flight */
    struct wb_outcomes res;          /* sent, retry, failed, bounce, unknown */
    struct wb_outcomes flushing;     /* the batch being staged */
    struct sched_ids staged;        /* messages whose outcome we staged, not yet applied */
    size_t applying_n;              /* the first of them, named by the apply in flight */
    bool applying;
    unsigned apply_gen;             /* pg's reconnect count at the last apply sent */
    bool pumping;                   /* sched_pump is gathering a batch */
    wb_sched_observe_fn observe;
    void *observe_ud;
    struct wb_sched_figures fig;
};

static void sched_pump(struct wb_sched *s);
static void sched_apply_soon(struct wb_sched *s);
static void sched_apply(struct wb_sched *s);
static void sched_release_ready(struct wb_sched *s);

/* --- small helpers ------------------------------------------------------ */

static int sched_claim_batch(const struct sched_lane *l)
{
    int n = l->pool->connections * 32;
    return n < 64 ? 64 : n > 512 ? 512 : n;
}

/* Messages of a pool marked `sending` whose outcome is not stored yet: one
 * on each connection's wire and one waiting behind it, so a connection
 * never waits for a mark, and a kill -9 leaves at most 2 x connections
 * `unknown` in all. */
static size_t sched_lane_window(const struct sched_lane *l)
{
    return (size_t)l->pool->connections * 2;
}

/* A `sending` lease covers the wait behind the message before it on its
 * connection plus its own transaction. */
static int sched_sending_lease_s(const struct wb_sched *s)
{
    return s->timeout_s * 3 + 10;
}

static int sched_claim_lease_s(const struct wb_sched *s)
{
    return 60 + s->timeout_s * 2;
}

/* The access token to send with now ("" for password auth), or NULL: the
 * lane is held (its sender needs a login, or a token is on its way). */
static const char *sched_lane_bearer(const struct wb_sched *s, const struct sched_lane *l)
{
    return wb_send_pool_bearer(l->pool, s->oauth);
}

static struct sched_lane *sched_lane_for(struct wb_sched *s, const char *sender)
{
    struct wb_send_pool *p = wb_send_pools_for(&s->pools, s->cfg, sender);
    return p ? &s->lanes[p - s->pools.v] : NULL;
}

/* A lane that may send and has fewer than 1/div of a claim batch ready. */
static bool sched_short(const struct wb_sched *s, size_t div)
{
    for (size_t i = 0; i < s->pools.n; i++) {
        const struct sched_lane *l = &s->lanes[i];
        if (l->n_ready < (size_t)sched_claim_batch(l) / div && sched_lane_bearer(s, l))
            return true;
    }
    return false;
}

static bool sched_res_ok(struct wb_sched *s, PGresult *r, const char *what)
{
    return wb_engine_ok(&s->e, r, what);
}

static char *sched_col(PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? NULL : wb_xstrdup(PQgetvalue(r, row, c));
}

static void sched_push_ready(struct wb_sched *s, struct item *it)
{
    STAILQ_INSERT_TAIL(&it->lane->ready, it, link);
    it->lane->n_ready++;
    s->n_ready++;
}

static struct item *sched_pop_ready(struct wb_sched *s, struct sched_lane *l)
{
    struct item *it = STAILQ_FIRST(&l->ready);
    if (!it)
        return NULL;
    STAILQ_REMOVE_HEAD(&l->ready, link);
    l->n_ready--;
    s->n_ready--;
    return it;
}

static void sched_free_item(struct item *it)
{
    wb_claimed_free(&it->c);
    wb_rendered_free(&it->r);
    free(it);
}

static void sched_ids_push(struct sched_ids *a, int64_t id)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = wb_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = id;
}

static void sched_ids_drop(struct sched_ids *a, size_t k)
{
    k = k < a->n ? k : a->n;
    if (!k) /* also an empty list, whose v may be NULL */
        return;
    memmove(a->v, a->v + k, (a->n - k) * sizeof *a->v);
    a->n -= k;
}

/* An outcome waits for the next window statement, which its caller
 * starts (sched_pump) once every outcome at hand is added: one statement
 * stages them all. */
static void sched_add_result(struct wb_sched *s, int64_t id, enum wb_msg_state from,
                       enum wb_send_outcome to, int code, const char *reply, double retry_s)
{
    wb_msg_enter_state(id, from, to, reply);
    wb_outcomes_add(&s->res, id, wb_send_outcome_name(to), code,
                    wb_xstrdup(reply ? reply : ""), retry_s);
}

/* --- liveness lock ------------------------------------------------------ */

/* Held while pg_mark's session is the one that took it: a reconnect is a
 * new session, which must take it again. */
static bool sched_alive(const struct wb_sched *s)
{
    return s->locked && s->lock_gen == wb_pg_reconnects(s->pg_mark);
}

static void sched_on_locked(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    s->locking = false;
    if (!r)
        return; /* connection lost: its return kicks */
    if (!sched_res_ok(s, r, "taking the liveness lock")) {
        wb_engine_wake_within(&s->e, 1.0);
        return;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t")) {
        /* An earlier session of ours the server has not yet seen die. */
        wb_warn("liveness lock of %s held by another session; retrying", s->owner);
        wb_engine_wake_within(&s->e, 1.0);
        return;
    }
    s->locked = true;
    wb_sched_kick(s);
}

/* true when alive; else asks for the lock (on_locked kicks when it comes). */
static bool sched_ensure_alive(struct wb_sched *s)
{
    if (sched_alive(s))
        return true;
    if (s->locking || !wb_pg_ready(s->pg_mark))
        return false;
    s->locked = false;
    s->lock_gen = wb_pg_reconnects(s->pg_mark);
    const char *p[] = {s->owner};
    if (wb_pg_query(s->pg_mark, wb_q_owner_lock, 1, p, sched_on_locked, s) == 0)
        s->locking = true;
    return false;
}

/* --- a round: recover → claim per sender → next wake -------------------- */

static void sched_tick_end(struct wb_sched *s, uint64_t delay_ms)
{
    wb_engine_round_end(&s->e, delay_ms);
}

static void sched_on_wake(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    if (!sched_res_ok(s, r, "reading the next due time")) {
        sched_tick_end(s, 1000);
        return;
    }
    double secs = PQgetisnull(r, 0, 0) ? WAKE_MAX_MS / 1000.0 : atof(PQgetvalue(r, 0, 0));
    double lo = s->claimed_this_tick ? 0.0 : 1.0; /* nothing claimable: do not spin */
    if (secs < lo)
        secs = lo;
    if (secs > WAKE_MAX_MS / 1000.0)
        secs = WAKE_MAX_MS / 1000.0;
    if (s->claim_full && sched_short(s, 1))
        secs = 0;
    sched_tick_end(s, (uint64_t)(secs * 1000.0));
}

static void sched_phase_wake(struct wb_sched *s)
{
    /* A tick that claimed nothing (ready queue full) learns nothing new. */
    if (s->claims_this_tick)
        s->claim_full = s->full_this_tick;
    if (wb_pg_query_prepared(s->pg, "wb_next_wake", wb_q_next_wake, 0, NULL, sched_on_wake, s) < 0)
        sched_tick_end(s, 1000);
}

static void sched_claim_next(struct wb_sched *s);

static void sched_take_claimed_row(struct wb_sched *s, PGresult *r, int i)
{
    struct wb_claimed c = {0};
    c.id = atoll(PQgetvalue(r, i, WB_CLAIM_ID));
    c.step = atoi(PQgetvalue(r, i, WB_CLAIM_STEP));
    c.sequence = sched_col(r, i, WB_CLAIM_SEQUENCE);
    c.attempts = atoi(PQgetvalue(r, i, WB_CLAIM_ATTEMPTS));
    c.message_id = sched_col(r, i, WB_CLAIM_MESSAGE_ID);
    c.candidate_id = atoll(PQgetvalue(r, i, WB_CLAIM_CANDIDATE_ID));
    c.email = sched_col(r, i, WB_CLAIM_EMAIL);
    c.first_name = sched_col(r, i, WB_CLAIM_FIRST_NAME);
    c.last_name = sched_col(r, i, WB_CLAIM_LAST_NAME);
    c.title = sched_col(r, i, WB_CLAIM_TITLE);
    c.company = sched_col(r, i, WB_CLAIM_COMPANY);
    c.location = sched_col(r, i, WB_CLAIM_LOCATION);
    c.attrs = json_loads(PQgetvalue(r, i, WB_CLAIM_ATTRS), 0, NULL);
    if (!json_is_object(c.attrs)) {
        json_decref(c.attrs);
        c.attrs = json_object();
    }
    c.thread_id = sched_col(r, i, WB_CLAIM_THREAD_ID);
    c.consent = sched_col(r, i, WB_CLAIM_CONSENT);
    c.source = sched_col(r, i, WB_CLAIM_SOURCE);
    c.sender = wb_xstrdup(s->claim_sender); /* whom the claim was for */
    struct item *it = wb_xcalloc(1, sizeof *it);
    it->c = c;
    it->lane = s->claim_lane;
    sched_push_ready(s, it);
}

/* The next ready message, rendered; one that cannot be rendered fails. */
static struct item *sched_pop_rendered(struct wb_sched *s, struct sched_lane *l)
{
    struct item *it;
    while ((it = sched_pop_ready(s, l)) && !it->rendered) {
        char err[256];
        if (wb_render(s->cfg, &it->c, &it->r, err, sizeof err) == 0) {
            it->rendered = true;
            break;
        }
        wb_warn("message %lld not sent: %s", (long long)it->c.id, err);
        sched_add_result(s, it->c.id, WB_MSG_CLAIMED, WB_OUT_FAILED, 0, err, 0);
        sched_free_item(it);
    }
    return it;
}

/* Renders the messages the next window statement will mark while this
 * one is on its way, so that statement leaves as soon as outcomes come
 * back. A message that cannot be rendered is left for sched_pop_rendered
 * to fail. */
static void sched_render_ahead(struct wb_sched *s)
{
    for (size_t i = 0; i < s->pools.n; i++) {
        struct sched_lane *l = &s->lanes[i];
        size_t n = 0, want = sched_lane_window(l);
        struct item *it;
        STAILQ_FOREACH(it, &l->ready, link) {
            if (n++ >= want)
                break;
            char err[256];
            if (!it->rendered && wb_render(s->cfg, &it->c, &it->r, err, sizeof err) == 0)
                it->rendered = true;
        }
    }
}

/* A cached generic plan is made for the table sizes of its moment: made
 * while messages was small (a new database), it scans the whole table for
 * every batch once the table has grown (sql/006_send.sql). Plans are made
 * afresh as this daemon's claims pass 1k, 4k, 16k, ... messages; later,
 * autovacuum's ANALYZE renews them as the table grows by a tenth. */
static void sched_replan(struct wb_sched *s, size_t claimed)
{
    s->claimed_total += claimed;
    if (s->claimed_total < s->replan_at)
        return;
    s->replan_at *= 4;
    wb_pg_query(s->pg, "DISCARD PLANS", 0, NULL, NULL, NULL);
    wb_pg_query(s->pg_mark, "DISCARD PLANS", 0, NULL, NULL, NULL);
}

static void sched_on_claim(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    if (!sched_res_ok(s, r, "claiming messages")) {
        sched_tick_end(s, 1000);
        return;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        sched_take_claimed_row(s, r, i);
    s->claimed_this_tick += (size_t)n;
    sched_replan(s, (size_t)n);
    if (n >= sched_claim_batch(s->claim_lane))
        s->full_this_tick = true;
    s->claims_this_tick++;
    if (wb_engine_draining(&s->e)) {
        /* SIGTERM came while this claim was on its way: give it back. */
        sched_release_ready(s);
        sched_tick_end(s, 0);
        return;
    }
    sched_pump(s);
    s->sender_i++;
    sched_claim_next(s);
}

/* Whether a sender's mail may be claimed now: it has a pool, the pool can
 * log in (a sender that needs a login is not claimed for: its mail waits
 * in the queue, nothing fails), and the pool's queue is not full. */
static struct sched_lane *sched_claimable(struct wb_sched *s, const struct wb_sender *snd)
{
    struct sched_lane *l = sched_lane_for(s, snd->id);
    if (!l || !sched_lane_bearer(s, l) || l->n_ready >= (size_t)sched_claim_batch(l) ||
        wb_guard_paused(&s->guard, snd->id))
        return NULL;
    return l;
}

static void sched_claim_next(struct wb_sched *s)
{
    const struct wb_config *cfg = s->cfg;
    while (s->sender_i < cfg->n_senders &&
           !(s->claim_lane = sched_claimable(s, &cfg->senders[s->sender_i])))
        s->sender_i++;
    if (s->sender_i >= cfg->n_senders) {
        sched_phase_wake(s);
        return;
    }
    const struct wb_sender *snd = &cfg->senders[s->sender_i];
    char batch[16], daily[16], gap[16], lease[16];
    snprintf(batch, sizeof batch, "%d", sched_claim_batch(s->claim_lane));
    snprintf(daily, sizeof daily, "%d", wb_guard_day_limit(&s->guard, snd));
    snprintf(gap, sizeof gap, "%d", snd->min_interval_s);
    snprintf(lease, sizeof lease, "%d", sched_claim_lease_s(s));
    /* The claim makes each Message-ID, in the From address's domain. */
    const char *at = strchr(snd->from_email, '@');
    const char *p[] = {snd->id, batch, daily, gap, s->owner, lease, at ? at + 1 : "localhost"};
    free(s->claim_sender);
    s->claim_sender = wb_xstrdup(snd->id);
    if (wb_pg_query_prepared(s->pg, "wb_claim", wb_q_claim, 7, p, sched_on_claim, s) < 0)
        sched_tick_end(s, 1000);
}

static void sched_release_lane(struct wb_sched *s, struct sched_lane *l);
static void sched_release_sender(struct wb_sched *s, const char *sender);

static void sched_phase_claim(struct wb_sched *s)
{
    /* What a held lane claimed before its token went goes back to the
     * queue, for whichever daemon can send it first. */
    for (size_t i = 0; i < s->pools.n; i++)
        if (s->lanes[i].n_ready && !sched_lane_bearer(s, &s->lanes[i]))
            sched_release_lane(s, &s->lanes[i]);
    s->sender_i = 0;
    sched_claim_next(s);
}

/* The guard paused a sender: said loudly, and what was claimed for it
 * goes back to the queue. */
static void sched_on_paused(void *ud, const char *sender, const char *reason)
{
    struct wb_sched *s = ud;
    wb_error("sender %s paused by its guard: %s; nothing more is claimed for it until "
             "'warmbench resume --sender %s'", sender, reason, sender);
    sched_release_sender(s, sender);
}

static void sched_on_guard(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    s->guarding = false;
    if (r && wb_guard_read(&s->guard, r, sched_on_paused, s) < 0)
        wb_warn("sender guard: %s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                        ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                        : "unexpected answer");
    if (s->guard_then_claim) {
        s->guard_then_claim = false;
        if (wb_engine_draining(&s->e))
            sched_tick_end(s, 0);
        else
            sched_phase_claim(s);
    }
    wb_engine_check(&s->e);
}

/* The guard, after a batch of outcomes and before every round's claims:
 * one set-based statement over a few rows per sender. */
static void sched_guard(struct wb_sched *s, bool then_claim)
{
    s->guard_then_claim |= then_claim;
    if (s->guarding)
        return;
    const char *p[] = {s->guard_params};
    if (wb_pg_query_prepared(s->pg, "wb_guard", wb_q_sender_guard, 1, p, sched_on_guard, s) == 0)
        s->guarding = true;
    if (!s->guarding && s->guard_then_claim) {
        s->guard_then_claim = false;
        sched_phase_claim(s);
    }
}

static void sched_on_recover(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    if (!sched_res_ok(s, r, "recovering expired leases") || wb_engine_draining(&s->e)) {
        sched_tick_end(s, 1000);
        return;
    }
    long back = atol(PQgetvalue(r, 0, 0)), lost = atol(PQgetvalue(r, 0, 1));
    long cancelled = atol(PQgetvalue(r, 0, 2));
    if (back || lost)
        wb_warn("expired leases: %ld claimed message(s) back to the queue, %ld in-flight "
                "message(s) now unknown (not resent)", back, lost);
    if (cancelled)
        wb_info("%ld queued message(s) cancelled: their enrollment ended", cancelled);
    sched_guard(s, true);
}

static void sched_round(void *ud)
{
    struct wb_sched *s = ud;
    if (!wb_pg_ready(s->pg) || !sched_ensure_alive(s)) {
        wb_engine_round_idle(&s->e); /* on_connect and on_locked kick */
        return;
    }
    s->full_this_tick = false;
    s->claims_this_tick = 0;
    s->claimed_this_tick = 0;
    /* Leases last a minute or more: recovering every few seconds is plenty. */
    if (s->recovered_at && uv_now(s->loop) - s->recovered_at < RECOVER_EVERY_MS) {
        sched_guard(s, true);
        return;
    }
    s->recovered_at = uv_now(s->loop);
    const char *p[] = {s->owner};
    if (wb_pg_query_prepared(s->pg, "wb_recover", wb_q_recover, 1, p, sched_on_recover, s) < 0)
        sched_tick_end(s, 1000);
}

/* --- pump: mark `sending`, then hand to SMTP ---------------------------- */

static double sched_retry_delay(const struct wb_sched *s, int attempts)
{
    double d = (double)s->cfg->smtp.retry_base_s * ldexp(1.0, attempts > 1 ? attempts - 1 : 0);
    if (d > MAX_RETRY_S)
        d = MAX_RETRY_S;
    /* "Equal jitter": half fixed, half random, so retries of one outage spread. */
    return d / 2 + (d / 2) * ((double)random() / (double)RAND_MAX);
}

static void sched_on_sent(const struct wb_smtp_result *r, void *ud)
{
    struct sendctx *x = ud;
    struct wb_sched *s = x->s;
    s->inflight--;
    x->lane->inflight--;
    if (s->observe)
        s->observe(r, s->observe_ud);
    if (r->auth_refused && x->lane->pool->auth != WB_AUTH_PASSWORD) {
        /* The token, not the message: renewed once, and the message waits
         * for it without spending an attempt. */
        wb_oauth_auth_failed(s->oauth, x->lane->pool->sender, x->lane->pool->provider, r->bearer);
        sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_RETRY, r->code, r->reply,
                         AUTH_RETRY_S);
        s->fig.retried++;
        goto done;
    }
    switch (r->outcome) {
    case WB_SMTP_SENT:
        sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_SENT, r->code, r->reply, 0);
        s->fig.sent++;
        break;
    case WB_SMTP_TEMPFAIL:
        if (r->uncertain) {
            /* The server may have taken it: a retry could send it twice. */
            sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_UNKNOWN, r->code, r->reply, 0);
            s->fig.unknown++;
        } else if (x->attempts >= MAX_ATTEMPTS) {
            char why[WB_SMTP_REPLY_MAX + 64];
            snprintf(why, sizeof why, "gave up after %d attempts: %s", x->attempts, r->reply);
            sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_FAILED, r->code, why, 0);
            s->fig.failed++;
        } else {
            sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_RETRY, r->code, r->reply,
                       sched_retry_delay(s, x->attempts));
            s->fig.retried++;
        }
        break;
    case WB_SMTP_PERMFAIL:
        sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_FAILED, r->code, r->reply, 0);
        s->fig.failed++;
        break;
    case WB_SMTP_HARDBOUNCE:
        sched_add_result(s, x->id, WB_MSG_SENDING, WB_OUT_BOUNCE, r->code, r->reply, 0);
        s->fig.bounced++;
        break;
    }
done:
    free(x);
    if (!r->more)
        sched_pump(s);
    if (!wb_engine_in_round(&s->e) && s->claim_full && sched_short(s, 2))
        wb_sched_kick(s);
    wb_engine_check(&s->e);
}

/* A marked message counts as at SMTP from its mark's answer on
 * (sched_keep_marked), before it reaches a worker. */
static void sched_unreserve(struct wb_sched *s, struct sched_lane *l)
{
    s->inflight--;
    l->inflight--;
}

static void sched_send_item(struct wb_sched *s, struct item *it)
{
    struct wb_mail m;
    wb_rendered_mail(&it->r, &m);
    const char *bearer = sched_lane_bearer(s, it->lane);
    if (!bearer) {
        sched_unreserve(s, it->lane);
        /* The token went between the mark and now: nothing left, so a
         * plain retry once the sender can log in again. */
        sched_add_result(s, it->r.id, WB_MSG_SENDING, WB_OUT_RETRY, 0,
                         "no OAuth access token for the sender yet", AUTH_RETRY_S);
        s->fig.retried++;
        sched_free_item(it);
        return;
    }
    struct sendctx *x = wb_xmalloc(sizeof *x);
    *x = (struct sendctx){s, it->lane, it->r.id, it->r.attempts};
    if (wb_smtp_send(it->lane->pool->smtp, it->r.envelope_from, it->r.rcpt, &m, bearer,
                     sched_on_sent, x) != 0) {
        sched_unreserve(s, it->lane);
        free(x);
        sched_add_result(s, it->r.id, WB_MSG_SENDING, WB_OUT_FAILED, 0,
                   "message could not be built (bad address or id)", 0);
        s->fig.failed++;
    }
    sched_free_item(it);
}

static void sched_push_batch(struct wb_sched *s, struct batch *b)
{
    STAILQ_INSERT_TAIL(&s->marks, b, link);
    s->n_marks++;
    s->n_marking += b->n;
}

static struct batch *sched_pop_batch(struct wb_sched *s)
{
    struct batch *b = STAILQ_FIRST(&s->marks);
    STAILQ_REMOVE_HEAD(&s->marks, link);
    s->n_marks--;
    s->n_marking -= b->n;
    return b;
}

static void sched_free_batch(struct batch *b, bool items)
{
    for (size_t i = 0; items && i < b->n; i++)
        sched_free_item(b->v[i]);
    free(b->v);
    free(b);
}

/* Puts a batch back at the head of the ready queue. */
static void sched_unmark(struct wb_sched *s, struct batch *b)
{
    for (size_t i = b->n; i-- > 0;) {
        STAILQ_INSERT_HEAD(&b->v[i]->lane->ready, b->v[i], link);
        b->v[i]->lane->n_ready++;
        s->n_ready++;
    }
    sched_free_batch(b, false);
}

static void sched_on_released(PGresult *r, void *ud);

/* Keeps in the batch what the window statement marked, each id once even
 * were it twice, and counts them at SMTP already, so that the next window
 * statement can leave before they are handed over. What it did not mark
 * (the enrollment ended or was paused, its sequence or sender paused, the
 * claim lost) goes back to the queue at once with its count off the day's
 * limit, rather than waiting out its claim lease; a lost claim is not ours
 * and stays as it is. */
static void sched_keep_marked(struct wb_sched *s, struct batch *b, PGresult *r)
{
    int n = PQntuples(r);
    bool *used = wb_xcalloc((size_t)n + 1, sizeof *used);
    struct wb_buf back;
    wb_buf_init(&back);
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = b->v[i];
        int k = 0;
        while (k < n && (used[k] || atoll(PQgetvalue(r, k, 0)) != it->c.id))
            k++;
        if (k < n) {
            used[k] = true;
            b->v[kept++] = it;
            s->inflight++;
            it->lane->inflight++;
        } else {
            wb_buf_printf(&back, "%s%lld", back.len ? "," : "{", (long long)it->c.id);
            sched_free_item(it);
        }
    }
    free(used);
    b->n = kept;
    if (back.len) {
        wb_buf_putc(&back, '}');
        const char *p[] = {back.data, s->owner};
        if (wb_pg_query_prepared(s->pg, "wb_release", wb_q_release, 2, p, sched_on_released,
                                 s) == 0)
            s->releasing++;
    }
    wb_buf_free(&back);
}

static void sched_on_window(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    struct batch *b = sched_pop_batch(s);
    if (!sched_res_ok(s, r, "marking messages sending and staging outcomes")) {
        /* Outcomes are kept and staged after the reconnect (or the retry).
         * A lost answer leaves the mark in doubt, but it is repeatable;
         * a refused one sends nothing (the claim lease brings them back). */
        wb_outcomes_requeue(&s->res, &s->flushing);
        if (!r) {
            sched_unmark(s, b);
            return;
        }
        sched_free_batch(b, true);
        wb_engine_flush_in(&s->e, FLUSH_RETRY_MS);
        wb_engine_check(&s->e);
        return;
    }
    for (size_t i = 0; i < s->flushing.n; i++)
        sched_ids_push(&s->staged, s->flushing.v[i].id);
    wb_outcomes_clear(&s->flushing);
    sched_keep_marked(s, b, r);
    /* The next statement leaves first: handing messages over wakes
     * workers, which may take the CPU from the loop for a while. */
    sched_pump(s);
    for (size_t i = 0; i < b->n; i++)
        sched_send_item(s, b->v[i]);
    sched_free_batch(b, false);
    sched_apply_soon(s);
    sched_pump(s);
    wb_engine_check(&s->e);
}

/* The batch's mark parameters, $1-$5 of wb_q_send_window. */
static void sched_mark_params(struct batch *b, char *a[5])
{
    struct wb_buf ids, vars;
    wb_buf_init(&ids);
    wb_buf_init(&vars);
    size_t k = b->n;
    char **mids = wb_xcalloc(k, sizeof *mids), **rcpts = wb_xcalloc(k, sizeof *rcpts);
    char **subjs = wb_xcalloc(k, sizeof *subjs);
    wb_buf_putc(&ids, '{');
    wb_buf_putc(&vars, '{');
    for (size_t i = 0; i < k; i++) {
        struct item *it = b->v[i];
        wb_buf_printf(&ids, "%s%lld", i ? "," : "", (long long)it->c.id);
        if (it->r.variant >= 0)
            wb_buf_printf(&vars, "%s%d", i ? "," : "", it->r.variant);
        else
            wb_buf_printf(&vars, "%sNULL", i ? "," : "");
        mids[i] = it->r.message_id;
        rcpts[i] = it->r.rcpt;
        subjs[i] = it->r.subject ? it->r.subject : "";
    }
    wb_buf_putc(&ids, '}');
    wb_buf_putc(&vars, '}');
    a[0] = wb_buf_steal(&ids);
    a[1] = wb_pg_array_str(mids, k, 0);
    a[2] = wb_pg_array_str(rcpts, k, 0);
    a[3] = wb_pg_array_str(subjs, k, 0);
    a[4] = wb_buf_steal(&vars);
    free(mids);
    free(rcpts);
    free(subjs);
}

/* Messages the next statement may mark: the window less those at SMTP.
 * Outcomes that came back are staged by the same commit, so they leave
 * the window as the new marks enter it. */
static size_t sched_free_slots(struct wb_sched *s, const struct sched_lane *l)
{
    size_t cap = sched_lane_window(l);
    if (l->inflight >= cap || !sched_lane_bearer(s, l))
        return 0;
    return cap - l->inflight;
}

/* Up to a window's worth of each lane's ready messages, rendered. */
static struct batch *sched_gather(struct wb_sched *s)
{
    size_t room = 0;
    bool alive = sched_ensure_alive(s);
    for (size_t i = 0; alive && i < s->pools.n; i++)
        room += sched_free_slots(s, &s->lanes[i]);
    struct batch *b = wb_xcalloc(1, sizeof *b);
    b->v = wb_xcalloc(room + 1, sizeof *b->v);
    s->pumping = true; /* a message that fails to render adds an outcome */
    for (size_t i = 0; alive && i < s->pools.n; i++) {
        struct sched_lane *l = &s->lanes[i];
        size_t k = sched_free_slots(s, l);
        struct item *it;
        while (k-- > 0 && (it = sched_pop_rendered(s, l)))
            b->v[b->n++] = it;
    }
    s->pumping = false;
    return b;
}

/* One statement at a time on the marking connection: it stages every
 * outcome that came back and marks as many ready messages as the window
 * takes. While it is on its way, outcomes gather for the next one. */
static void sched_pump(struct wb_sched *s)
{
    if (s->n_marks || s->pumping || !wb_pg_ready(s->pg_mark))
        return;
    struct batch *b = sched_gather(s);
    if (!b->n && !s->res.n) {
        sched_free_batch(b, false);
        return;
    }
    wb_outcomes_move(&s->flushing, &s->res);
    char *m[5], *o[5], lease[16];
    sched_mark_params(b, m);
    wb_outcomes_params(&s->flushing, o);
    snprintf(lease, sizeof lease, "%d", sched_sending_lease_s(s));
    const char *p[] = {m[0], m[1], m[2], m[3], m[4], s->owner, lease,
                       o[0], o[1], o[2], o[3], o[4]};
    sched_push_batch(s, b);
    int rc = wb_pg_query_prepared(s->pg_mark, "wb_window", wb_q_send_window, 12, p,
                                  sched_on_window, s);
    wb_outcomes_params_free(m);
    wb_outcomes_params_free(o);
    if (rc < 0)
        sched_on_window(NULL, s);
    else
        sched_render_ahead(s);
}

/* --- results: staged at once (the window), applied in batches ---------- */

/* The engine's flush: stage what came back, apply what is staged (also
 * the retry after a failed write). */
static void sched_flush(void *ud)
{
    struct wb_sched *s = ud;
    sched_pump(s);
    sched_apply(s);
}

static void sched_apply_soon(struct wb_sched *s)
{
    if (s->staged.n >= APPLY_BATCH || (s->staged.n && wb_engine_draining(&s->e)))
        sched_apply(s);
    else if (s->staged.n)
        wb_engine_flush_in(&s->e, APPLY_DELAY_MS);
}

static void sched_on_applied(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    s->applying = false;
    if (!sched_res_ok(s, r, "applying send outcomes")) {
        /* Still staged: applied after the reconnect (or by recovery). */
        if (r)
            wb_engine_flush_in(&s->e, FLUSH_RETRY_MS);
        return;
    }
    /* Every row named is applied now, or was not ours to apply (another
     * daemon's recovery has it, or it was never staged). */
    size_t taken = (size_t)atoll(PQgetvalue(r, 0, 0));
    sched_ids_drop(&s->staged, s->applying_n);
    if (taken)
        sched_guard(s, false);
    if (!PQgetisnull(r, 0, 1))
        wb_engine_wake_within(&s->e, atof(PQgetvalue(r, 0, 1)));
    sched_apply_soon(s);
    wb_engine_check(&s->e);
}

/* Events, the next step's time, suppressions: on the claims connection, so
 * the marks and the window never wait for them. */
static void sched_apply(struct wb_sched *s)
{
    /* An apply whose answer was lost keeps its ids: it is repeatable, and
     * they go only when an answer says they are done. An apply commits
     * without waiting for the standby, so one answered just before a
     * failover can be lost with the old primary: after a reconnect, one
     * apply takes every row this daemon has staged (through its claims). */
    bool reconnected = s->apply_gen != wb_pg_reconnects(s->pg);
    if (s->applying || (!s->staged.n && !reconnected))
        return;
    if (!wb_pg_ready(s->pg)) {
        /* Asked again until the connection is back: the reconnect's kick
         * can come before it takes queries, and once the last outcomes of
         * a burst are staged nothing else asks (test_failover). */
        wb_engine_flush_in(&s->e, FLUSH_RETRY_MS);
        return;
    }
    s->apply_gen = wb_pg_reconnects(s->pg);
    if (reconnected) {
        const char *p[] = {s->owner, "1000000", NULL};
        if (wb_pg_query_prepared(s->pg, "wb_apply", wb_q_apply_outcomes, 3, p, sched_on_applied,
                                 s) == 0) {
            s->applying = true;
            s->applying_n = s->staged.n;
        }
        return;
    }
    size_t n = s->staged.n < APPLY_MAX ? s->staged.n : APPLY_MAX;
    struct wb_buf ids;
    wb_buf_init(&ids);
    for (size_t i = 0; i < n; i++)
        wb_buf_printf(&ids, "%c%lld", i ? ',' : '{', (long long)s->staged.v[i]);
    wb_buf_putc(&ids, '}');
    char limit[24];
    snprintf(limit, sizeof limit, "%zu", n);
    const char *p[] = {s->owner, limit, ids.data};
    if (wb_pg_query_prepared(s->pg, "wb_apply", wb_q_apply_outcomes, 3, p, sched_on_applied, s) == 0) {
        s->applying = true;
        s->applying_n = n;
    }
    wb_buf_free(&ids);
}

/* --- drain -------------------------------------------------------------- */

static bool sched_idle(void *ud)
{
    struct wb_sched *s = ud;
    return !(s->n_marking || s->inflight || s->res.n || s->flushing.n || s->staged.n ||
             s->applying || s->releasing || s->guarding);
}

static uint64_t sched_give_up(void *ud)
{
    struct wb_sched *s = ud;
    wb_warn("shutdown: gave up waiting; %zu transaction(s) in flight and %zu outcome(s) not "
            "stored will show as unknown (never resent)", s->inflight, s->res.n + s->flushing.n);
    if (s->staged.n)
        wb_warn("shutdown: %zu staged outcome(s) not applied yet; the next recovery applies them",
                s->staged.n);
    return 0;
}

static void sched_on_released(PGresult *r, void *ud)
{
    struct wb_sched *s = ud;
    (void)r;
    s->releasing--;
    wb_engine_check(&s->e);
}

/* Gives claimed but unstarted messages (those of one sender, or all when
 * sender is NULL) of a lane back to the queue. If this fails the claim
 * lease expires and they are requeued anyway. */
static void sched_release_some(struct wb_sched *s, struct sched_lane *l, const char *sender)
{
    struct items keep = STAILQ_HEAD_INITIALIZER(keep);
    struct wb_buf ids;
    wb_buf_init(&ids);
    struct item *it;
    size_t i = 0, kept = 0;
    while ((it = sched_pop_ready(s, l))) {
        if (sender && (!it->c.sender || strcmp(it->c.sender, sender))) {
            STAILQ_INSERT_TAIL(&keep, it, link);
            kept++;
            continue;
        }
        wb_buf_printf(&ids, "%s%lld", i++ ? "," : "{", (long long)it->c.id);
        sched_free_item(it);
    }
    STAILQ_CONCAT(&l->ready, &keep);
    l->n_ready += kept;
    s->n_ready += kept;
    if (!i) {
        wb_buf_free(&ids);
        return;
    }
    wb_buf_putc(&ids, '}');
    const char *p[] = {ids.data, s->owner};
    if (wb_pg_query_prepared(s->pg, "wb_release", wb_q_release, 2, p, sched_on_released, s) == 0)
        s->releasing++;
    wb_buf_free(&ids);
}

static void sched_release_lane(struct wb_sched *s, struct sched_lane *l)
{
    sched_release_some(s, l, NULL);
}

static void sched_release_sender(struct wb_sched *s, const char *sender)
{
    for (size_t i = 0; i < s->pools.n; i++)
        sched_release_some(s, &s->lanes[i], sender);
}

static void sched_release_ready(struct wb_sched *s)
{
    for (size_t i = 0; i < s->pools.n; i++)
        sched_release_lane(s, &s->lanes[i]);
}

void wb_sched_drain(struct wb_sched *s, void (*done)(void *ud), void *ud)
{
    sched_release_ready(s); /* a round in flight releases what it still claims */
    sched_pump(s);
    sched_apply(s);
    wb_engine_drain(&s->e, (uint64_t)(s->timeout_s + 5) * 1000, done, ud);
}

/* --- lifecycle ---------------------------------------------------------- */

static const struct wb_engine_ops sched_ops = {
    .name = "scheduler",
    .round = sched_round,
    .flush = sched_flush,
    .idle = sched_idle,
    .give_up = sched_give_up,
};

/* The longest SMTP timeout of the pools the config names. */
static int sched_timeout_s(const struct wb_config *cfg)
{
    int t = cfg->smtp.timeout_s;
    for (size_t i = 0; i < cfg->n_senders; i++)
        if (cfg->senders[i].smtp.timeout_s > t)
            t = cfg->senders[i].smtp.timeout_s;
    return t;
}

struct wb_sched *wb_sched_new(uv_loop_t *loop, struct wb_pg *pg, struct wb_pg *pg_mark,
                              const struct wb_config *cfg, const char *owner,
                              struct wb_oauth *oauth, char **err)
{
    struct wb_sched *s = wb_xcalloc(1, sizeof *s);
    if (wb_send_pools_init(&s->pools, loop, cfg, err) < 0) {
        free(s);
        return NULL;
    }
    s->lanes = wb_xcalloc(s->pools.n, sizeof *s->lanes);
    for (size_t i = 0; i < s->pools.n; i++) {
        s->lanes[i].pool = &s->pools.v[i];
        STAILQ_INIT(&s->lanes[i].ready);
    }
    s->loop = loop;
    s->pg = pg;
    s->pg_mark = pg_mark;
    s->oauth = oauth;
    s->cfg = cfg;
    s->guard_params = wb_guard_params(cfg);
    s->timeout_s = sched_timeout_s(cfg);
    s->owner = wb_xstrdup(owner);
    s->replan_at = REPLAN_FIRST;
    STAILQ_INIT(&s->marks);
    wb_engine_init(&s->e, loop, &sched_ops, s);
    s->tasks = wb_tasks_new(loop, pg, cfg, owner);
    return s;
}

void wb_sched_observe(struct wb_sched *s, wb_sched_observe_fn fn, void *ud)
{
    s->observe = fn;
    s->observe_ud = ud;
}

void wb_sched_set_config(struct wb_sched *s, const struct wb_config *cfg)
{
    s->cfg = cfg;
    free(s->guard_params);
    s->guard_params = wb_guard_params(cfg);
    wb_tasks_set_config(s->tasks, cfg);
}

void wb_sched_start(struct wb_sched *s)
{
    wb_engine_start(&s->e);
    wb_tasks_start(s->tasks);
}

void wb_sched_kick(struct wb_sched *s)
{
    if (!wb_engine_started(&s->e) || wb_engine_draining(&s->e))
        return;
    wb_engine_kick(&s->e);
    wb_tasks_kick(s->tasks);
    sched_pump(s);
    sched_apply(s);
}

void wb_sched_figures(const struct wb_sched *s, struct wb_sched_figures *f)
{
    *f = s->fig;
    f->ready = s->n_ready;
    f->inflight = s->inflight;
    f->unwritten = s->res.n + s->flushing.n + s->staged.n;
}

static void sched_closed(void *ud)
{
    struct wb_sched *s = ud;
    free(s->lanes);
    free(s->claim_sender);
    free(s->guard_params);
    wb_guard_state_free(&s->guard);
    free(s->owner);
    free(s);
}

void wb_sched_stop(struct wb_sched *s)
{
    for (size_t i = 0; i < s->pools.n; i++) {
        struct item *it;
        while ((it = sched_pop_ready(s, &s->lanes[i])))
            sched_free_item(it);
    }
    /* Joins the workers; no done callback runs after this. */
    wb_send_pools_free(&s->pools);
    while (!STAILQ_EMPTY(&s->marks))
        sched_free_batch(sched_pop_batch(s), true);
    wb_outcomes_free(&s->res);
    wb_outcomes_free(&s->flushing);
    free(s->staged.v);
    wb_tasks_stop(s->tasks);
    wb_engine_stop(&s->e, sched_closed, s);
}
