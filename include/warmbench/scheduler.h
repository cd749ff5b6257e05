/* The sending engine: claims due work from PostgreSQL in batches, renders
 * it, marks it `sending` just before handing it to the SMTP workers, stages
 * each outcome at once and applies them in batches. All on the daemon's
 * one loop; only smtp.c's workers run elsewhere. */
#ifndef WB_SCHEDULER_H
#define WB_SCHEDULER_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"
#include "warmbench/oauth.h"
#include "warmbench/smtp.h"

struct wb_sched;

struct wb_sched_figures {
    size_t ready;          /* claimed and rendered, waiting for a connection */
    size_t inflight;       /* handed to SMTP */
    size_t unwritten;      /* outcomes not yet stored */
    uint64_t sent, retried, failed, bounced, unknown;
};

/* Called once per SMTP transaction, for the latency histogram. */
typedef void (*wb_sched_observe_fn)(const struct wb_smtp_result *r, void *ud);

/* pg runs ticks, claims and the batched apply of outcomes; pg_mark (a
 * second connection) holds the liveness lock and runs the `sending` marks
 * and the staging of outcomes, so the window of marked messages never
 * waits behind a claim or an apply. The scheduler starts the SMTP pools
 * (send_pools.h) and stops them in wb_sched_stop. oauth (NULL without
 * OAuth senders) gives the tokens; when a sender's token comes back, kick.
 * NULL with *err (malloc'd) when a pool cannot be started. */
struct wb_sched *wb_sched_new(uv_loop_t *loop, struct wb_pg *pg, struct wb_pg *pg_mark,
                              const struct wb_config *cfg, const char *owner,
                              struct wb_oauth *oauth, char **err);
void wb_sched_observe(struct wb_sched *s, wb_sched_observe_fn fn, void *ud);
/* The config in use; the old one may be freed once this returns. */
void wb_sched_set_config(struct wb_sched *s, const struct wb_config *cfg);
/* Starts ticking (after the database is reachable and the schema current). */
void wb_sched_start(struct wb_sched *s);
/* Something changed (NOTIFY, reconnect): run a tick soon. */
void wb_sched_kick(struct wb_sched *s);
/* Stop claiming, release what was claimed and not started, let the SMTP
 * transactions in flight finish (bounded by the SMTP timeout), stage and
 * apply their outcomes, then call done. */
void wb_sched_drain(struct wb_sched *s, void (*done)(void *ud), void *ud);
void wb_sched_figures(const struct wb_sched *s, struct wb_sched_figures *f);
/* Frees everything (once the loop has closed its timers); only after
 * drain's done (or with nothing in flight). */
void wb_sched_stop(struct wb_sched *s);

#endif
