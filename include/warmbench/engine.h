/* The frame every engine of the daemon runs in: the scheduler, handoff
 * delivery, mailbox polls, retention and auto-enroll (and the token keeper,
 * sender guards and task delivery to come), in the way OpenSMTPD keeps one
 * queue frame with backends under it. An engine is a set of callbacks; the
 * frame owns the timers and the verbs, the same for every engine:
 *
 *   start  rounds begin (once the database is reachable and current)
 *   kick   something changed (a NOTIFY, a reconnect): a round soon, after
 *          the one running if any
 *   drain  no new round; `done` runs once the engine says it is idle, or
 *          when the engine gives up waiting
 *   stop   closes the timers; `closed` runs when the loop has let go of
 *          them, and only then may the engine's memory go
 *
 * A round is one pass of the engine's work (for the scheduler: recover,
 * claim per sender, next wake), usually a chain of pg_loop callbacks. The
 * engine ends it with wb_engine_round_end (next round in so many ms, sooner
 * when kicked or woken) or wb_engine_round_idle (no timer: the next kick
 * starts one). Nothing here blocks; everything runs on the loop. */
#ifndef WB_ENGINE_H
#define WB_ENGINE_H
#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

struct wb_engine;

struct wb_engine_ops {
    const char *name;               /* in log lines: "handoff", "scheduler", ... */
    void (*round)(void *ud);        /* begins a round; it ends with round_end or round_idle */
    void (*flush)(void *ud);        /* optional: writes buffered results (flush timer) */
    bool (*idle)(void *ud);         /* nothing left for a drain to wait for */
    /* optional: the drain timed out. Returns ms to wait longer (the engine
     * cancelled what it could), or 0: the drain ends now. */
    uint64_t (*give_up)(void *ud);
    uint64_t kick_ms;               /* a kick's round waits this long (debounce); 0: at once */
};

struct wb_engine {
    uv_loop_t *loop;
    const struct wb_engine_ops *ops;
    void *ud;
    uv_timer_t round_timer, flush_timer, drain_timer;
    bool started, in_round, again, draining;
    uint64_t wake_at;               /* uv_now by which a round must run, 0 = none */
    void (*drained)(void *);
    void *drained_ud;
    int open_handles;
    void (*closed)(void *);
    void *closed_ud;
};

/* Sets up the timers (no memory of its own: e lives in the engine). */
void wb_engine_init(struct wb_engine *e, uv_loop_t *loop, const struct wb_engine_ops *ops,
                    void *ud);
void wb_engine_start(struct wb_engine *e);
/* Starts with the first round in ms rather than at once. */
void wb_engine_start_in(struct wb_engine *e, uint64_t ms);
void wb_engine_kick(struct wb_engine *e);
void wb_engine_drain(struct wb_engine *e, uint64_t timeout_ms, void (*done)(void *), void *ud);
void wb_engine_stop(struct wb_engine *e, void (*closed)(void *), void *ud);

void wb_engine_round_end(struct wb_engine *e, uint64_t next_ms);
void wb_engine_round_idle(struct wb_engine *e);
/* A write just scheduled work `secs` from now (a next step, a retry): a
 * round runs by then, since no NOTIFY announces future due times. */
void wb_engine_wake_within(struct wb_engine *e, double secs);
/* The flush callback runs in ms (unless already due sooner). */
void wb_engine_flush_in(struct wb_engine *e, uint64_t ms);
/* Something finished: a drain whose engine is now idle ends. */
void wb_engine_check(struct wb_engine *e);

bool wb_engine_started(const struct wb_engine *e);
bool wb_engine_draining(const struct wb_engine *e);
bool wb_engine_in_round(const struct wb_engine *e);

/* true for a result that succeeded; else logs "NAME: WHAT: SQLSTATE
 * message" (NULL, a lost connection, logs nothing: its return kicks). */
bool wb_engine_ok(const struct wb_engine *e, PGresult *r, const char *what);

#endif
