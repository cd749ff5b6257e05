/* The retention engine: a round is a daily claim in wb_settings, then
 * batches of wb_retention_erase until one comes back short. */
#include "warmbench/retention.h"
#include "warmbench/engine.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>

#define FIRST_MS 60000
#define CHECK_MS 3600000

const char *const wb_retention_erase_sql = "SELECT wb_retention_erase($1::integer, $2::integer)";
const char *const wb_retention_claim_sql = "SELECT wb_retention_claim()";

struct wb_retention {
    struct wb_engine e;
    struct wb_pg *pg;
    const struct wb_config *cfg;
    bool busy;          /* a statement is in flight */
    bool stopping, closed;
    int days;           /* of the run under way */
    long run_erased, total_erased;
    unsigned runs;
};

/* The memory goes once the timers are closed and no statement is out. */
static void ret_maybe_release(struct wb_retention *r)
{
    if (r->stopping && r->closed && !r->busy)
        free(r);
}

static void ret_run_end(struct wb_retention *r)
{
    r->busy = false;
    r->runs++;
    if (r->stopping) {
        ret_maybe_release(r);
        return;
    }
    wb_engine_round_end(&r->e, CHECK_MS);
}

static bool ret_failed(struct wb_retention *r, PGresult *res, const char *what)
{
    if (wb_engine_ok(&r->e, res, what))
        return false;
    if (!res)
        wb_warn("retention: %s: connection lost; next check in an hour", what);
    return true;
}

static void ret_next_batch(struct wb_retention *r);

static void ret_on_batch(PGresult *res, void *ud)
{
    struct wb_retention *r = ud;
    if (ret_failed(r, res, "erasing")) {
        ret_run_end(r);
        return;
    }
    long n = atol(PQgetvalue(res, 0, 0));
    r->run_erased += n;
    r->total_erased += n;
    if (n >= WB_RETENTION_BATCH && !r->stopping) {
        ret_next_batch(r);
        return;
    }
    wb_info("retention: erased %ld candidate(s) with no activity in %d day(s)", r->run_erased,
            r->days);
    ret_run_end(r);
}

static void ret_next_batch(struct wb_retention *r)
{
    char days[16], batch[16];
    snprintf(days, sizeof days, "%d", r->days);
    snprintf(batch, sizeof batch, "%d", WB_RETENTION_BATCH);
    const char *p[] = {days, batch};
    if (wb_pg_query(r->pg, wb_retention_erase_sql, 2, p, ret_on_batch, r) < 0)
        ret_run_end(r);
}

static void ret_on_claim(PGresult *res, void *ud)
{
    struct wb_retention *r = ud;
    if (ret_failed(r, res, "claiming today's run")) {
        ret_run_end(r);
        return;
    }
    if (r->stopping || PQgetvalue(res, 0, 0)[0] != 't') {
        ret_run_end(r); /* another daemon ran it within the day */
        return;
    }
    r->run_erased = 0;
    ret_next_batch(r);
}

static void ret_round(void *ud)
{
    struct wb_retention *r = ud;
    if (r->cfg->retention_days <= 0 || !wb_pg_ready(r->pg)) {
        /* Off: look again in an hour (a reload may turn it on); no
         * database yet: in a minute. */
        wb_engine_round_end(&r->e, r->cfg->retention_days <= 0 ? CHECK_MS : FIRST_MS);
        return;
    }
    r->busy = true;
    r->days = r->cfg->retention_days;
    if (wb_pg_query(r->pg, wb_retention_claim_sql, 0, NULL, ret_on_claim, r) < 0)
        ret_run_end(r);
}

static bool ret_idle(void *ud)
{
    return !((struct wb_retention *)ud)->busy;
}

static const struct wb_engine_ops ret_ops = {
    .name = "retention",
    .round = ret_round,
    .idle = ret_idle,
};

struct wb_retention *wb_retention_new(uv_loop_t *loop, struct wb_pg *pg,
                                      const struct wb_config *cfg)
{
    struct wb_retention *r = wb_xcalloc(1, sizeof *r);
    r->pg = pg;
    r->cfg = cfg;
    wb_engine_init(&r->e, loop, &ret_ops, r);
    return r;
}

void wb_retention_set_config(struct wb_retention *r, const struct wb_config *cfg)
{
    r->cfg = cfg;
}

void wb_retention_start(struct wb_retention *r)
{
    wb_engine_start_in(&r->e, FIRST_MS);
}

void wb_retention_kick(struct wb_retention *r)
{
    wb_engine_kick(&r->e);
}

long wb_retention_erased(const struct wb_retention *r)
{
    return r->total_erased;
}

bool wb_retention_running(const struct wb_retention *r)
{
    return r->busy;
}

unsigned wb_retention_runs(const struct wb_retention *r)
{
    return r->runs;
}

static void ret_closed(void *ud)
{
    struct wb_retention *r = ud;
    r->closed = true;
    ret_maybe_release(r);
}

void wb_retention_stop(struct wb_retention *r)
{
    r->stopping = true;
    wb_engine_stop(&r->e, ret_closed, r);
}
