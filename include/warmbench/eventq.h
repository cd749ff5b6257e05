/* Tracking events (open, click, unsubscribe) queued in memory and written
 * in batches: one `SELECT wb_record_events(...)` per batch, which also
 * applies stop_on/handoff_on and suppression in the batch's transaction.
 * The queue is bounded, so a full queue is refused (the caller answers
 * 503) rather than growing without limit or dropping silently. A batch the
 * connection lost stays queued and is written again once the database is
 * back (at least once: an event lost with its reply may be stored twice). */
#ifndef WB_EVENTQ_H
#define WB_EVENTQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "warmbench/pg_loop.h"

struct wb_eventq;

struct wb_eventq_opts {
    size_t max_events;   /* queue bound (default 100000) */
    size_t batch;        /* events per statement (default 500) */
    unsigned delay_ms;   /* longest wait before a partial batch goes (default 50) */
};

struct wb_eventq_stats {
    size_t queued;            /* waiting or in flight */
    unsigned long long stored;   /* events the database accepted */
    unsigned long long refused;  /* pushes refused because the queue was full */
    unsigned long long dropped;  /* events a non-retryable SQL error discarded */
};

/* Per-event completion: stored is true once the batch holding it
 * committed; false when it was discarded (a non-retryable SQL error, or
 * the queue freed first). */
typedef void (*wb_eventq_done_fn)(bool stored, void *ud);

/* opts NULL (or zero fields) take the defaults. */
struct wb_eventq *wb_eventq_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_eventq_opts *opts);
/* Queues one event. type: "open", "click", "unsubscribe", ...; detail: a
 * JSON object text or NULL for {}; at: Unix time in seconds. done may be
 * NULL. 0, or -1 when the queue is full (done is then not called). */
int wb_eventq_push(struct wb_eventq *q, int64_t message_id, const char *type, bool machine,
                   const char *detail, double at, wb_eventq_done_fn done, void *ud);
/* The event queued with (done, ud) stays queued but will not call back:
 * for an owner that stops waiting for it. True when one was found. */
bool wb_eventq_forget(struct wb_eventq *q, wb_eventq_done_fn done, void *ud);
/* True when a push would be refused. */
bool wb_eventq_full(const struct wb_eventq *q);
/* Tries the queued batch now (call it from pg's on_connect to skip the
 * retry delay after a reconnect). */
void wb_eventq_kick(struct wb_eventq *q);
void wb_eventq_stats(const struct wb_eventq *q, struct wb_eventq_stats *out);
/* Writes everything queued without waiting for the batch delay; done(ud)
 * runs once the queue is empty (at once when it already is). Events pushed
 * meanwhile are written too. The caller bounds the wait (the database may
 * be away). A second flush replaces the first's callback. */
void wb_eventq_flush(struct wb_eventq *q, void (*done)(void *), void *ud);
/* Frees the queue: events still queued get done(false, ud) before this
 * returns; the timer closes asynchronously (keep the loop running). A
 * statement in flight finishes harmlessly. */
void wb_eventq_free(struct wb_eventq *q);

#endif
