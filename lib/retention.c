/* The retention engine: a timer, a daily claim in wb_settings, then batches
 * of sql wb_retention_erase until one comes back short. */
#include "warmbench/retention.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>

#define FIRST_MS 60000
#define CHECK_MS 3600000

const char *const wb_retention_erase_sql = "SELECT wb_retention_erase($1::integer, $2::integer)";
const char *const wb_retention_claim_sql = "SELECT wb_retention_claim()";

struct wb_retention {
    struct wb_pg *pg;
    const struct wb_config *cfg;
    uv_timer_t timer;
    bool busy;          /* a statement is in flight */
    bool closing, timer_closed;
    int days;           /* of the run under way */
    long run_erased, total_erased;
    unsigned runs;
};

static void on_timer(uv_timer_t *t);

static void maybe_release(struct wb_retention *r)
{
    if (r->closing && r->timer_closed && !r->busy)
        free(r);
}

static void run_end(struct wb_retention *r)
{
    r->busy = false;
    r->runs++;
    if (r->closing) {
        maybe_release(r);
        return;
    }
    uv_timer_start(&r->timer, on_timer, CHECK_MS, 0);
}

static bool failed(PGresult *res, const char *what)
{
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        return false;
    if (res)
        wb_error("retention: %s: %s %s", what, PQresultErrorField(res, PG_DIAG_SQLSTATE) ?: "",
                 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?: "failed");
    else
        wb_warn("retention: %s: connection lost; next check in an hour", what);
    return true;
}

static void next_batch(struct wb_retention *r);

static void on_batch(PGresult *res, void *ud)
{
    struct wb_retention *r = ud;
    if (failed(res, "erasing")) {
        run_end(r);
        return;
    }
    long n = atol(PQgetvalue(res, 0, 0));
    r->run_erased += n;
    r->total_erased += n;
    if (n >= WB_RETENTION_BATCH && !r->closing) {
        next_batch(r);
        return;
    }
    wb_info("retention: erased %ld candidate(s) with no activity in %d day(s)", r->run_erased,
            r->days);
    run_end(r);
}

static void next_batch(struct wb_retention *r)
{
    char days[16], batch[16];
    snprintf(days, sizeof days, "%d", r->days);
    snprintf(batch, sizeof batch, "%d", WB_RETENTION_BATCH);
    const char *p[] = {days, batch};
    if (wb_pg_query(r->pg, wb_retention_erase_sql, 2, p, on_batch, r) < 0)
        run_end(r);
}

static void on_claim(PGresult *res, void *ud)
{
    struct wb_retention *r = ud;
    if (failed(res, "claiming today's run")) {
        run_end(r);
        return;
    }
    if (r->closing || PQgetvalue(res, 0, 0)[0] != 't') {
        run_end(r); /* another daemon ran it within the day */
        return;
    }
    r->run_erased = 0;
    next_batch(r);
}

static void on_timer(uv_timer_t *t)
{
    struct wb_retention *r = t->data;
    if (r->busy || r->closing)
        return;
    if (r->cfg->retention_days <= 0 || !wb_pg_ready(r->pg)) {
        /* Off: look again in an hour (a reload may turn it on); no
         * database yet: in a minute. */
        uv_timer_start(&r->timer, on_timer, r->cfg->retention_days <= 0 ? CHECK_MS : FIRST_MS, 0);
        return;
    }
    r->busy = true;
    r->days = r->cfg->retention_days;
    if (wb_pg_query(r->pg, wb_retention_claim_sql, 0, NULL, on_claim, r) < 0)
        run_end(r);
}

struct wb_retention *wb_retention_new(uv_loop_t *loop, struct wb_pg *pg,
                                      const struct wb_config *cfg)
{
    struct wb_retention *r = wb_xcalloc(1, sizeof *r);
    r->pg = pg;
    r->cfg = cfg;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, FIRST_MS, 0);
    return r;
}

void wb_retention_set_config(struct wb_retention *r, const struct wb_config *cfg)
{
    r->cfg = cfg;
}

void wb_retention_kick(struct wb_retention *r)
{
    if (!r->busy && !r->closing)
        uv_timer_start(&r->timer, on_timer, 0, 0);
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

static void on_close(uv_handle_t *h)
{
    struct wb_retention *r = h->data;
    r->timer_closed = true;
    maybe_release(r);
}

void wb_retention_free(struct wb_retention *r)
{
    r->closing = true;
    uv_close((uv_handle_t *)&r->timer, on_close);
}
