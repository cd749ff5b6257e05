/* Prometheus text for GET /metrics: figures from the database (messages by
 * state, events by type and machine flag, due enrollments, handoffs by
 * state), cached and refreshed at most every few seconds by one statement
 * at a time so scrapes can never pile queries up; an SMTP latency
 * histogram fed by the scheduler; the tracking queue's figures. */
#ifndef WB_METRICS_H
#define WB_METRICS_H
#include <stdbool.h>
#include "warmbench/buf.h"
#include "warmbench/eventq.h"
#include "warmbench/pg_loop.h"

struct wb_metrics;

/* refresh_s: least age of the cached figures before a scrape refreshes
 * them (0: 5 s). */
struct wb_metrics *wb_metrics_new(struct wb_pg *pg, unsigned refresh_s);
/* Adds the tracking queue's depth and counters to the output (q may be NULL). */
void wb_metrics_set_eventq(struct wb_metrics *m, const struct wb_eventq *q);
/* Lines another part of the daemon renders itself (the token keeper's
 * per-sender states and counters), appended to every scrape. */
typedef void (*wb_metrics_extra_fn)(void *ud, struct wb_buf *out);
void wb_metrics_set_extra(struct wb_metrics *m, wb_metrics_extra_fn fn, void *ud);
/* One open (click false) or click answered as a repeat (dedup.h); m may
 * be NULL. */
void wb_metrics_count_repeat(struct wb_metrics *m, bool click);
/* An open or click answered (pixel, redirect) whose event could not be
 * queued: the event queue was full (warmbench_tracking_lost_total). */
void wb_metrics_count_lost(struct wb_metrics *m, bool click);
/* One SMTP transaction took `seconds`; outcome is an enum wb_smtp_outcome. */
void wb_metrics_observe_smtp(struct wb_metrics *m, double seconds, int outcome);
/* Returns 0 when the figures can be rendered now (a stale cache is
 * refreshed in the background); 1 when none were ever fetched and a
 * statement is on its way: ready(ud) runs once it answers (or fails, or
 * wb_metrics_free runs). */
int wb_metrics_prepare(struct wb_metrics *m, void (*ready)(void *), void *ud);
/* Appends the exposition text to out. */
void wb_metrics_render(struct wb_metrics *m, struct wb_buf *out);
/* Waiters are called first; a statement in flight finishes harmlessly. */
void wb_metrics_free(struct wb_metrics *m);

#endif
