/* Retention (`retention_days` in warmbench.json, 0 = off): candidates with
 * nothing of theirs in that many days — no human open, click or reply, no
 * enrollment made, active or changed, no message, not (re-)imported — are
 * erased as `forget` erases them (the address's one-way hash stays in the
 * suppression list). Runs on the daemon's loop: first check a minute after
 * start, then hourly; a run happens at most once per day per database,
 * whichever daemon claims it first (a timestamp row in wb_settings), in
 * batches of WB_RETENTION_BATCH candidates, one transaction each. */
#ifndef WB_RETENTION_H
#define WB_RETENTION_H
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"

#define WB_RETENTION_BATCH 500

/* One batch: $1 retention_days, $2 batch size; returns the number erased. */
extern const char *const wb_retention_erase_sql;
/* Claims today's run; returns true when this caller should run it. */
extern const char *const wb_retention_claim_sql;

struct wb_retention;

struct wb_retention *wb_retention_new(uv_loop_t *loop, struct wb_pg *pg,
                                      const struct wb_config *cfg);
/* After a reload; a run under way keeps the days it started with. */
void wb_retention_set_config(struct wb_retention *r, const struct wb_config *cfg);
/* Rounds begin: the first check a minute from now, then hourly. */
void wb_retention_start(struct wb_retention *r);
/* Checks now (claim, then batches) instead of at the next timer tick. */
void wb_retention_kick(struct wb_retention *r);
/* Candidates erased since start (for logs and tests). */
long wb_retention_erased(const struct wb_retention *r);
/* A run (claim or batch) is under way. */
bool wb_retention_running(const struct wb_retention *r);
/* Runs ended since start (claimed or not, failed or not). */
unsigned wb_retention_runs(const struct wb_retention *r);
/* Frees it. Safe with a statement in flight: the memory goes when its
 * result (or pg_loop's close) arrives and the loop has closed the timers. */
void wb_retention_stop(struct wb_retention *r);

#endif
