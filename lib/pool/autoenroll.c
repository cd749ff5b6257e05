/* Periodic and notified auto-enrollment, one sequence at a time on the
 * shared connection. The enroll statement is the CLI's (enroll.c), so both
 * paths apply the same rules. A round goes over every auto_enroll
 * sequence; kicks are debounced, since an import notifies once per batch. */
#include "warmbench/autoenroll.h"
#include "warmbench/engine.h"
#include "warmbench/enroll.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdlib.h>

#define PERIOD_MS 60000
#define DEBOUNCE_MS 1000

struct wb_autoenroll {
    struct wb_engine e;
    struct wb_pg *pg;
    const struct wb_config *cfg;
    size_t next;        /* sequence index while a round runs */
    char *seq_id;       /* of the statement in flight */
};

static void ae_run_next(struct wb_autoenroll *a);

static void ae_on_enrolled(PGresult *r, void *ud)
{
    struct wb_autoenroll *a = ud;
    if (wb_engine_ok(&a->e, r, a->seq_id)) {
        struct wb_enroll_counts n = {0};
        for (int i = 0; i < PQntuples(r); i++)
            wb_enroll_count_row(&n, PQgetvalue(r, i, 0), atol(PQgetvalue(r, i, 1)));
        if (n.enrolled)
            wb_info("auto_enroll: %ld candidate(s) enrolled into %s", n.enrolled, a->seq_id);
    }
    free(a->seq_id);
    a->seq_id = NULL;
    a->next++;
    ae_run_next(a);
}

static void ae_run_next(struct wb_autoenroll *a)
{
    const struct wb_config *cfg = a->cfg;
    while (a->next < cfg->n_sequences && !cfg->sequences[a->next].audience.auto_enroll)
        a->next++;
    if (a->next >= cfg->n_sequences) {
        wb_engine_round_end(&a->e, PERIOD_MS);
        return;
    }
    const struct wb_sequence *s = &cfg->sequences[a->next];
    struct wb_enroll_query q;
    wb_enroll_query_build(s, NULL, 0, NULL, 0, "auto", &q);
    a->seq_id = wb_xstrdup(s->id);
    int rc = wb_pg_query(a->pg, q.sql, WB_ENROLL_NPARAMS, (const char *const *)q.params,
                         ae_on_enrolled, a);
    wb_enroll_query_free(&q);
    if (rc < 0) {
        free(a->seq_id);
        a->seq_id = NULL;
        wb_engine_round_end(&a->e, PERIOD_MS);
    }
}

static void ae_round(void *ud)
{
    struct wb_autoenroll *a = ud;
    if (!wb_pg_ready(a->pg)) {
        wb_engine_round_end(&a->e, PERIOD_MS); /* on_connect kicks sooner */
        return;
    }
    a->next = 0;
    ae_run_next(a);
}

static bool ae_idle(void *ud)
{
    return !((struct wb_autoenroll *)ud)->seq_id;
}

static const struct wb_engine_ops ae_ops = {
    .name = "auto_enroll",
    .round = ae_round,
    .idle = ae_idle,
    .kick_ms = DEBOUNCE_MS,
};

struct wb_autoenroll *wb_autoenroll_new(uv_loop_t *loop, struct wb_pg *pg,
                                        const struct wb_config *cfg)
{
    struct wb_autoenroll *a = wb_xcalloc(1, sizeof *a);
    a->pg = pg;
    a->cfg = cfg;
    wb_engine_init(&a->e, loop, &ae_ops, a);
    return a;
}

void wb_autoenroll_set_config(struct wb_autoenroll *a, const struct wb_config *cfg)
{
    a->cfg = cfg;
    a->next = wb_engine_in_round(&a->e) ? cfg->n_sequences : 0; /* a round in flight ends early */
}

void wb_autoenroll_start(struct wb_autoenroll *a)
{
    wb_engine_start_in(&a->e, DEBOUNCE_MS);
}

void wb_autoenroll_kick(struct wb_autoenroll *a)
{
    wb_engine_kick(&a->e);
}

static void ae_closed(void *ud)
{
    struct wb_autoenroll *a = ud;
    free(a->seq_id);
    free(a);
}

void wb_autoenroll_stop(struct wb_autoenroll *a)
{
    wb_engine_stop(&a->e, ae_closed, a);
}
