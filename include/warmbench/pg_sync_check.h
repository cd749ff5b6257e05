/* The failover warning (SPEC "Scale and failover"): when `database` names
 * several hosts, each new connection asks the primary whether a
 * synchronous standby confirms its commits; without one a failover can
 * lose the last commits (and a mail could go twice). Said once per
 * connection in the log, and kept as a /metrics gauge. The question runs
 * on the loop like any statement (pg_loop.h). */
#ifndef WB_PG_SYNC_CHECK_H
#define WB_PG_SYNC_CHECK_H
#include "warmbench/buf.h"
#include "warmbench/pg_loop.h"

struct wb_sync_check;

/* Hosts conninfo names (a URL's or key=value host or hostaddr list; ""
 * or none: PGHOST's); at least 1, also for a string libpq cannot parse
 * (connecting reports that). */
int wb_db_host_count(const char *conninfo);
/* A check for this conninfo; it does nothing unless it names several hosts. */
struct wb_sync_check *wb_sync_check_new(const char *conninfo);
/* Asks on pg, which has just connected. */
void wb_sync_check_run(struct wb_sync_check *c, struct wb_pg *pg);
/* warmbench_db_sync_standby 0|1 once an answer came, for several hosts. */
void wb_sync_check_metrics(const struct wb_sync_check *c, struct wb_buf *out);
/* After the connection it asked on is closed (its callback needs c). */
void wb_sync_check_free(struct wb_sync_check *c);

#endif
