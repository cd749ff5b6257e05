/* The failover warning (pg_sync_check.h). One statement per connection:
 * the primary's synchronous_standby_names, the session's synchronous_commit,
 * and its standbys as pg_stat_replication shows them. */
#include "warmbench/pg_sync_check.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* names: empty means no commit waits for any standby. local/off commits
 * do not wait either. sync/quorum: a standby confirming commits now.
 * hidden: standbys whose state this role may not read (pg_read_all_stats
 * shows it): the names are then trusted. */
static const char sync_sql[] =
    "SELECT current_setting('synchronous_standby_names'), "
    "current_setting('synchronous_commit'), "
    "(SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')), "
    "(SELECT count(*) FROM pg_stat_replication WHERE sync_state IS NULL)";

struct wb_sync_check {
    bool several;  /* the conninfo names several hosts */
    bool known;    /* an answer came */
    bool sync;     /* its verdict */
};

static int sync_list_len(const char *list)
{
    if (!list || !*list)
        return 0;
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

int wb_db_host_count(const char *conninfo)
{
    int n = 0;
    char *err = NULL;
    PQconninfoOption *opts = conninfo && *conninfo ? PQconninfoParse(conninfo, &err) : NULL;
    PQfreemem(err);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr")) {
            int k = sync_list_len(o->val);
            n = k > n ? k : n;
        }
    }
    PQconninfoFree(opts);
    if (n == 0)
        n = sync_list_len(getenv("PGHOST"));
    if (n == 0)
        n = sync_list_len(getenv("PGHOSTADDR"));
    return n ? n : 1;
}

struct wb_sync_check *wb_sync_check_new(const char *conninfo)
{
    struct wb_sync_check *c = wb_xcalloc(1, sizeof *c);
    c->several = wb_db_host_count(conninfo) > 1;
    return c;
}

/* The verdict and, when it is no, why: what the operator must change. */
static const char *sync_why_not(PGresult *r)
{
    const char *names = PQgetvalue(r, 0, 0), *commit = PQgetvalue(r, 0, 1);
    long synced = atol(PQgetvalue(r, 0, 2)), hidden = atol(PQgetvalue(r, 0, 3));
    if (!*names)
        return "synchronous_standby_names is empty";
    if (!strcmp(commit, "off") || !strcmp(commit, "local"))
        return commit[0] == 'o' ? "synchronous_commit is off for warmbench's sessions"
                                : "synchronous_commit is local for warmbench's sessions";
    if (synced == 0 && hidden == 0)
        return "no synchronous standby is connected (pg_stat_replication)";
    return NULL;
}

static void sync_on_answer(PGresult *r, void *ud)
{
    struct wb_sync_check *c = ud;
    if (!r)
        return; /* lost: the next connection asks again */
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        wb_warn("database: cannot tell whether a synchronous standby confirms commits: %s",
                msg ? msg : "unexpected answer");
        return;
    }
    const char *why = sync_why_not(r);
    c->known = true;
    c->sync = !why;
    if (why)
        wb_warn("database: several hosts are configured but the primary has no synchronous "
                "standby (%s): a failover can lose the last commits, and a message could be "
                "sent twice; see README \"Failover\"", why);
}

void wb_sync_check_run(struct wb_sync_check *c, struct wb_pg *pg)
{
    if (!c || !c->several)
        return;
    if (wb_pg_query(pg, sync_sql, 0, NULL, sync_on_answer, c) < 0)
        wb_debug("database: synchronous standby check not sent (connection lost)");
}

void wb_sync_check_metrics(const struct wb_sync_check *c, struct wb_buf *out)
{
    if (!c || !c->several || !c->known)
        return;
    wb_buf_printf(out, "# HELP warmbench_db_sync_standby Whether the primary has a synchronous "
                       "standby confirming this daemon's commits (several database hosts only).\n"
                       "# TYPE warmbench_db_sync_standby gauge\n"
                       "warmbench_db_sync_standby %d\n", c->sync ? 1 : 0);
}

void wb_sync_check_free(struct wb_sync_check *c)
{
    free(c);
}
