/* The engine frame (see engine.h): three timers (rounds, flushes, the
 * drain's bound) and the start/kick/drain/stop verbs. */
#include "warmbench/engine.h"
#include "warmbench/log.h"
#include <stdlib.h>
#include <unistd.h>

static void engine_on_round_timer(uv_timer_t *t);

/* Retry jitter (random()) must differ between daemons started together. */
static void engine_seed(void)
{
    static bool seeded;
    if (!seeded) {
        seeded = true;
        srandom((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
    }
}

void wb_engine_init(struct wb_engine *e, uv_loop_t *loop, const struct wb_engine_ops *ops,
                    void *ud)
{
    *e = (struct wb_engine){.loop = loop, .ops = ops, .ud = ud};
    uv_timer_t *timers[] = {&e->round_timer, &e->flush_timer, &e->drain_timer};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = e;
    }
    engine_seed();
}

static void engine_arm(struct wb_engine *e, uint64_t ms)
{
    uv_timer_stop(&e->round_timer);
    uv_timer_start(&e->round_timer, engine_on_round_timer, ms, 0);
}

void wb_engine_start(struct wb_engine *e)
{
    e->started = true;
    wb_engine_kick(e);
}

void wb_engine_start_in(struct wb_engine *e, uint64_t ms)
{
    e->started = true;
    if (!e->draining)
        engine_arm(e, ms);
}

void wb_engine_kick(struct wb_engine *e)
{
    if (!e->started || e->draining)
        return;
    if (e->in_round)
        e->again = true;
    else if (!uv_is_active((uv_handle_t *)&e->round_timer) ||
             uv_timer_get_due_in(&e->round_timer) > e->ops->kick_ms)
        engine_arm(e, e->ops->kick_ms);
}

static void engine_on_round_timer(uv_timer_t *t)
{
    struct wb_engine *e = t->data;
    if (!e->started || e->draining)
        return;
    if (e->in_round) {
        e->again = true;
        return;
    }
    e->in_round = true;
    e->wake_at = 0; /* this round's next-wake query sees everything written so far */
    e->ops->round(e->ud);
}

/* UINT64_MAX: no timer of its own, only a kick or a wake. */
static void engine_end(struct wb_engine *e, uint64_t next_ms)
{
    e->in_round = false;
    if (e->draining) {
        wb_engine_check(e);
        return;
    }
    if (e->again) {
        e->again = false;
        next_ms = e->ops->kick_ms;
    }
    if (e->wake_at) {
        uint64_t now = uv_now(e->loop);
        uint64_t hint = e->wake_at > now ? e->wake_at - now : 0;
        if (hint < next_ms)
            next_ms = hint;
    }
    if (next_ms != UINT64_MAX)
        engine_arm(e, next_ms);
}

void wb_engine_round_end(struct wb_engine *e, uint64_t next_ms)
{
    engine_end(e, next_ms == UINT64_MAX ? next_ms - 1 : next_ms);
}

void wb_engine_round_idle(struct wb_engine *e)
{
    engine_end(e, UINT64_MAX);
}

void wb_engine_wake_within(struct wb_engine *e, double secs)
{
    uint64_t ms = secs <= 0 ? 0 : (uint64_t)(secs * 1000.0) + 1;
    uint64_t at = uv_now(e->loop) + ms;
    if (!e->wake_at || at < e->wake_at)
        e->wake_at = at;
    if (e->in_round || e->draining || !e->started)
        return; /* the round's end honours wake_at */
    if (!uv_is_active((uv_handle_t *)&e->round_timer) ||
        uv_timer_get_due_in(&e->round_timer) > ms)
        engine_arm(e, ms);
}

static void engine_on_flush_timer(uv_timer_t *t)
{
    struct wb_engine *e = t->data;
    e->ops->flush(e->ud);
}

void wb_engine_flush_in(struct wb_engine *e, uint64_t ms)
{
    if (!e->ops->flush)
        return;
    if (uv_is_active((uv_handle_t *)&e->flush_timer) && uv_timer_get_due_in(&e->flush_timer) <= ms)
        return;
    uv_timer_stop(&e->flush_timer);
    uv_timer_start(&e->flush_timer, engine_on_flush_timer, ms, 0);
}

static void engine_finish_drain(struct wb_engine *e)
{
    void (*done)(void *) = e->drained;
    e->drained = NULL;
    uv_timer_stop(&e->drain_timer);
    if (done)
        done(e->drained_ud);
}

void wb_engine_check(struct wb_engine *e)
{
    if (e->draining && e->drained && !e->in_round && e->ops->idle(e->ud))
        engine_finish_drain(e);
}

static void engine_on_drain_timer(uv_timer_t *t)
{
    struct wb_engine *e = t->data;
    uint64_t more = e->ops->give_up ? e->ops->give_up(e->ud) : 0;
    if (!more) {
        engine_finish_drain(e);
        return;
    }
    uv_timer_start(&e->drain_timer, engine_on_drain_timer, more, 0);
    wb_engine_check(e);
}

void wb_engine_drain(struct wb_engine *e, uint64_t timeout_ms, void (*done)(void *), void *ud)
{
    e->draining = true;
    e->drained = done;
    e->drained_ud = ud;
    uv_timer_stop(&e->round_timer);
    uv_timer_start(&e->drain_timer, engine_on_drain_timer, timeout_ms, 0);
    wb_engine_check(e);
}

static void engine_on_closed(uv_handle_t *h)
{
    struct wb_engine *e = h->data;
    if (--e->open_handles == 0 && e->closed)
        e->closed(e->closed_ud);
}

void wb_engine_stop(struct wb_engine *e, void (*closed)(void *), void *ud)
{
    e->closed = closed;
    e->closed_ud = ud;
    e->drained = NULL;
    uv_timer_t *timers[] = {&e->round_timer, &e->flush_timer, &e->drain_timer};
    e->open_handles = 3;
    for (size_t i = 0; i < 3; i++)
        uv_close((uv_handle_t *)timers[i], engine_on_closed);
}

bool wb_engine_started(const struct wb_engine *e)
{
    return e->started;
}

bool wb_engine_draining(const struct wb_engine *e)
{
    return e->draining;
}

bool wb_engine_in_round(const struct wb_engine *e)
{
    return e->in_round;
}

bool wb_engine_ok(const struct wb_engine *e, PGresult *r, const char *what)
{
    if (!r)
        return false; /* connection lost: pg_loop reconnects, and its return kicks */
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return true;
    wb_error("%s: %s: %s %s", e->ops->name, what, PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "?",
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: PQresultErrorMessage(r));
    return false;
}
