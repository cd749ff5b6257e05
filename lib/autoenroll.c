/* Periodic and notified auto-enrollment, one sequence at a time on the
 * shared connection. The enroll statement is the CLI's (enroll.c), so both
 * paths apply the same rules. */
#include "warmbench/autoenroll.h"
#include "warmbench/enroll.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdlib.h>

#define PERIOD_MS 60000
#define DEBOUNCE_MS 1000

struct wb_autoenroll {
    struct wb_pg *pg;
    const struct wb_config *cfg;
    uv_timer_t timer;
    size_t next;        /* sequence index while a round runs */
    bool running, again;
    char *seq_id;       /* of the statement in flight */
};

static void run_next(struct wb_autoenroll *a);
static void on_timer(uv_timer_t *t);

static void round_end(struct wb_autoenroll *a)
{
    a->running = false;
    uv_timer_start(&a->timer, on_timer, a->again ? DEBOUNCE_MS : PERIOD_MS, 0);
}

static void on_enrolled(PGresult *r, void *ud)
{
    struct wb_autoenroll *a = ud;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
        struct wb_enroll_counts n = {0};
        for (int i = 0; i < PQntuples(r); i++)
            wb_enroll_count_row(&n, PQgetvalue(r, i, 0), atol(PQgetvalue(r, i, 1)));
        if (n.enrolled)
            wb_info("auto_enroll: %ld candidate(s) enrolled into %s", n.enrolled, a->seq_id);
    } else if (r) {
        wb_error("auto_enroll %s: %s", a->seq_id,
                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "failed");
    }
    free(a->seq_id);
    a->seq_id = NULL;
    a->next++;
    run_next(a);
}

static void run_next(struct wb_autoenroll *a)
{
    const struct wb_config *cfg = a->cfg;
    while (a->next < cfg->n_sequences && !cfg->sequences[a->next].audience.auto_enroll)
        a->next++;
    if (a->next >= cfg->n_sequences) {
        round_end(a);
        return;
    }
    const struct wb_sequence *s = &cfg->sequences[a->next];
    struct wb_enroll_query q;
    wb_enroll_query_build(s, NULL, 0, NULL, 0, "auto", &q);
    a->seq_id = wb_xstrdup(s->id);
    int rc = wb_pg_query(a->pg, q.sql, WB_ENROLL_NPARAMS, (const char *const *)q.params,
                         on_enrolled, a);
    wb_enroll_query_free(&q);
    if (rc < 0) {
        free(a->seq_id);
        a->seq_id = NULL;
        round_end(a);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct wb_autoenroll *a = t->data;
    if (a->running || !wb_pg_ready(a->pg)) {
        uv_timer_start(&a->timer, on_timer, PERIOD_MS, 0);
        return;
    }
    a->running = true;
    a->again = false;
    a->next = 0;
    run_next(a);
}

struct wb_autoenroll *wb_autoenroll_new(uv_loop_t *loop, struct wb_pg *pg,
                                        const struct wb_config *cfg)
{
    struct wb_autoenroll *a = wb_xcalloc(1, sizeof *a);
    a->pg = pg;
    a->cfg = cfg;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    return a;
}

void wb_autoenroll_set_config(struct wb_autoenroll *a, const struct wb_config *cfg)
{
    a->cfg = cfg;
    a->next = a->running ? cfg->n_sequences : 0; /* a round in flight ends early */
}

void wb_autoenroll_kick(struct wb_autoenroll *a)
{
    if (a->running) {
        a->again = true;
        return;
    }
    uv_timer_start(&a->timer, on_timer, DEBOUNCE_MS, 0);
}

static void on_close(uv_handle_t *h)
{
    struct wb_autoenroll *a = h->data;
    free(a->seq_id);
    free(a);
}

void wb_autoenroll_free(struct wb_autoenroll *a)
{
    uv_close((uv_handle_t *)&a->timer, on_close);
}
