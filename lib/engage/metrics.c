/* Metrics: one cached snapshot of the database figures, a fixed-bucket
 * SMTP histogram, and the tracking queue's counters, rendered as
 * Prometheus text format 0.0.4. */
#include "warmbench/metrics.h"
#include "warmbench/http_loop.h"
#include "warmbench/smtp.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <uv.h>

static const char figures_sql[] =
    "SELECT 'messages', state, '', count(*) FROM messages GROUP BY state "
    "UNION ALL SELECT 'events', type, machine::text, count(*) FROM events GROUP BY type, machine "
    "UNION ALL SELECT 'due', '', '', count(*) FROM enrollments "
    "WHERE state = 'active' AND next_due_at <= now() "
    "UNION ALL SELECT 'handoffs', state, '', count(*) FROM handoffs GROUP BY state "
    "UNION ALL SELECT 'sender_sent', sender, '', sent FROM sender_usage "
    "WHERE day = (now() AT TIME ZONE 'UTC')::date "
    "UNION ALL SELECT 'sender_paused', sender, paused_reason, 1 FROM sender_guard "
    "WHERE paused_reason IS NOT NULL";

/* SMTP transactions take milliseconds on a local relay and up to the
 * timeout on a sick one. */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NB (sizeof buckets / sizeof buckets[0])
static const char *const outcomes[] = {"sent", "tempfail", "permfail", "hardbounce"};
#define NO (sizeof outcomes / sizeof outcomes[0])

struct hist {
    unsigned long long le[NB];
    unsigned long long count;
    double sum;
};

struct waiter {
    void (*ready)(void *);
    void *ud;
    STAILQ_ENTRY(waiter) link;
};
STAILQ_HEAD(waiters, waiter);

struct flight {
    struct wb_metrics *m;
};

struct wb_metrics {
    struct wb_pg *pg;
    const struct wb_eventq *q;
    wb_metrics_extra_fn extra;
    void *extra_ud;
    uint64_t refresh_ms;
    struct wb_buf figures;    /* rendered lines from the last good snapshot */
    bool have, db_up;
    uint64_t fetched_at, tried_at;  /* uv_hrtime ms */
    struct flight *flight;
    struct waiters waiters;     /* scrapes waiting for the met_snapshot, in order */
    struct hist smtp[NO];
    unsigned long long repeats[2];  /* opens, clicks */
    unsigned long long lost[2];     /* opens, clicks answered but not recorded */
};

static uint64_t met_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

struct wb_metrics *wb_metrics_new(struct wb_pg *pg, unsigned refresh_s)
{
    struct wb_metrics *m = wb_xcalloc(1, sizeof *m);
    m->pg = pg;
    m->refresh_ms = (uint64_t)(refresh_s ? refresh_s : 5) * 1000;
    wb_buf_init(&m->figures);
    STAILQ_INIT(&m->waiters);
    return m;
}

void wb_metrics_set_eventq(struct wb_metrics *m, const struct wb_eventq *q)
{
    m->q = q;
}

void wb_metrics_set_extra(struct wb_metrics *m, wb_metrics_extra_fn fn, void *ud)
{
    m->extra = fn;
    m->extra_ud = ud;
}

void wb_metrics_observe_smtp(struct wb_metrics *m, double seconds, int outcome)
{
    if (!m || outcome < 0 || (size_t)outcome >= NO || !(seconds >= 0))
        return;
    struct hist *h = &m->smtp[outcome];
    for (size_t i = 0; i < NB; i++)
        if (seconds <= buckets[i])
            h->le[i]++;
    h->count++;
    h->sum += seconds;
}

void wb_metrics_count_repeat(struct wb_metrics *m, bool click)
{
    if (m)
        m->repeats[click]++;
}

void wb_metrics_count_lost(struct wb_metrics *m, bool click)
{
    if (m)
        m->lost[click]++;
}

static void met_wake(struct wb_metrics *m)
{
    struct waiters all = STAILQ_HEAD_INITIALIZER(all);
    STAILQ_CONCAT(&all, &m->waiters);
    struct waiter *w;
    while ((w = STAILQ_FIRST(&all))) {
        STAILQ_REMOVE_HEAD(&all, link);
        w->ready(w->ud);
        free(w);
    }
}

/* Label values come from our own CHECK-constrained columns, but event
 * types are free text: escape what the format requires. */
static void met_put_label(struct wb_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            wb_buf_putc(b, '\\');
        if (*s == '\n')
            wb_buf_puts(b, "\\n");
        else
            wb_buf_putc(b, *s);
    }
}

static void met_snapshot(struct wb_metrics *m, PGresult *res)
{
    struct wb_buf *b = &m->figures;
    wb_buf_reset(b);
    /* label2: a second label from the third column; without one that
     * column is the events' machine flag. */
    static const struct { const char *kind, *name, *help, *label, *label2; } fams[] = {
        {"messages", "warmbench_messages", "Messages by state.", "state", NULL},
        {"events", "warmbench_events", "Stored events by type; machine=true for proxies and scanners.", "type", NULL},
        {"due", "warmbench_due_enrollments", "Active enrollments whose next step is due now.", NULL, NULL},
        {"handoffs", "warmbench_handoffs", "ATS handoffs by delivery state.", "state", NULL},
        {"sender_sent", "warmbench_sender_sent_today",
         "SMTP transactions each sender started today (UTC), as its daily_limit counts them.",
         "sender", NULL},
        {"sender_paused", "warmbench_sender_paused",
         "Senders paused (by their guard or an operator) until warmbench resume --sender.",
         "sender", "reason"},
    };
    int rows = PQntuples(res);
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        wb_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", fams[f].name, fams[f].help, fams[f].name);
        bool any = false;
        for (int r = 0; r < rows; r++) {
            if (strcmp(PQgetvalue(res, r, 0), fams[f].kind))
                continue;
            any = true;
            wb_buf_puts(b, fams[f].name);
            if (fams[f].label) {
                wb_buf_printf(b, "{%s=\"", fams[f].label);
                met_put_label(b, PQgetvalue(res, r, 1));
                wb_buf_putc(b, '"');
                if (fams[f].label2) {
                    wb_buf_printf(b, ",%s=\"", fams[f].label2);
                    met_put_label(b, PQgetvalue(res, r, 2));
                    wb_buf_putc(b, '"');
                } else if (*PQgetvalue(res, r, 2)) {
                    wb_buf_printf(b, ",machine=\"%s\"",
                                  !strcmp(PQgetvalue(res, r, 2), "true") ? "true" : "false");
                }
                wb_buf_putc(b, '}');
            }
            wb_buf_printf(b, " %s\n", PQgetvalue(res, r, 3));
        }
        if (!any && !fams[f].label)
            wb_buf_printf(b, "%s 0\n", fams[f].name);
    }
}

static void met_on_figures(PGresult *res, void *ud)
{
    struct flight *f = ud;
    struct wb_metrics *m = f->m;
    free(f);
    if (!m)
        return;
    m->flight = NULL;
    m->db_up = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (m->db_up) {
        met_snapshot(m, res);
        m->have = true;
        m->fetched_at = met_now_ms();
    }
    met_wake(m);
}

static void met_refresh(struct wb_metrics *m)
{
    if (m->flight)
        return;
    m->tried_at = met_now_ms();
    struct flight *f = wb_xcalloc(1, sizeof *f);
    f->m = m;
    if (wb_pg_query(m->pg, figures_sql, 0, NULL, met_on_figures, f) < 0) {
        free(f);
        m->db_up = false;
        return;
    }
    m->flight = f;
}

int wb_metrics_prepare(struct wb_metrics *m, void (*ready)(void *), void *ud)
{
    /* Tries are spaced by refresh_ms too, so a dead or slow database
     * costs at most one statement per interval whatever the scrape rate. */
    if (!m->flight && met_now_ms() - m->tried_at >= m->refresh_ms)
        met_refresh(m);
    if (m->have || !m->flight)
        return 0;
    struct waiter *w = wb_xcalloc(1, sizeof *w);
    w->ready = ready;
    w->ud = ud;
    STAILQ_INSERT_TAIL(&m->waiters, w, link);
    return 1;
}

static void met_render_hist(struct wb_metrics *m, struct wb_buf *b)
{
    const char *n = "warmbench_smtp_duration_seconds";
    wb_buf_printf(b, "# HELP %s One SMTP transaction, by outcome.\n# TYPE %s histogram\n", n, n);
    for (size_t o = 0; o < NO; o++) {
        const struct hist *h = &m->smtp[o];
        for (size_t i = 0; i < NB; i++)
            wb_buf_printf(b, "%s_bucket{outcome=\"%s\",le=\"%g\"} %llu\n", n, outcomes[o],
                          buckets[i], h->le[i]);
        wb_buf_printf(b, "%s_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n", n, outcomes[o], h->count);
        wb_buf_printf(b, "%s_sum{outcome=\"%s\"} %.6f\n", n, outcomes[o], h->sum);
        wb_buf_printf(b, "%s_count{outcome=\"%s\"} %llu\n", n, outcomes[o], h->count);
    }
}

static void met_render_eventq(const struct wb_eventq *q, struct wb_buf *b)
{
    struct wb_eventq_stats s;
    wb_eventq_stats(q, &s);
    wb_buf_printf(b,
                  "# HELP warmbench_tracking_queue_depth Tracking events waiting to be stored.\n"
                  "# TYPE warmbench_tracking_queue_depth gauge\n"
                  "warmbench_tracking_queue_depth %zu\n"
                  "# HELP warmbench_tracking_events_stored_total Tracking events stored.\n"
                  "# TYPE warmbench_tracking_events_stored_total counter\n"
                  "warmbench_tracking_events_stored_total %llu\n"
                  "# HELP warmbench_tracking_events_refused_total Requests answered 503 because the queue was full.\n"
                  "# TYPE warmbench_tracking_events_refused_total counter\n"
                  "warmbench_tracking_events_refused_total %llu\n"
                  "# HELP warmbench_tracking_events_dropped_total Events a non-retryable database error discarded.\n"
                  "# TYPE warmbench_tracking_events_dropped_total counter\n"
                  "warmbench_tracking_events_dropped_total %llu\n",
                  s.queued, s.stored, s.refused, s.dropped);
}

void wb_metrics_render(struct wb_metrics *m, struct wb_buf *b)
{
    wb_buf_puts(b, "# HELP warmbench_build_info Version of the running warmbenchd.\n"
                   "# TYPE warmbench_build_info gauge\n"
                   "warmbench_build_info{version=\"" WB_VERSION "\"} 1\n");
    wb_buf_printf(b, "# HELP warmbench_database_up Whether the last figures query succeeded.\n"
                     "# TYPE warmbench_database_up gauge\nwarmbench_database_up %d\n",
                  m->db_up ? 1 : 0);
    if (m->pg)
        wb_buf_printf(b, "# HELP warmbench_database_queue_depth Statements queued or in flight "
                         "on the main connection (bounded: pg_loop refuses beyond its cap).\n"
                         "# TYPE warmbench_database_queue_depth gauge\n"
                         "warmbench_database_queue_depth %zu\n", wb_pg_pending(m->pg));
    if (m->have) {
        wb_buf_printf(b, "# HELP warmbench_figures_age_seconds Age of the database figures below.\n"
                         "# TYPE warmbench_figures_age_seconds gauge\n"
                         "warmbench_figures_age_seconds %.3f\n",
                      (double)(met_now_ms() - m->fetched_at) / 1000.0);
        wb_buf_append(b, m->figures.data, m->figures.len);
    }
    if (m->q)
        met_render_eventq(m->q, b);
    wb_buf_printf(b, "# HELP warmbench_tracking_repeats_total Opens and clicks answered without "
                     "an event: recorded already this minute.\n"
                     "# TYPE warmbench_tracking_repeats_total counter\n"
                     "warmbench_tracking_repeats_total{type=\"open\"} %llu\n"
                     "warmbench_tracking_repeats_total{type=\"click\"} %llu\n",
                  m->repeats[0], m->repeats[1]);
    wb_buf_printf(b, "# HELP warmbench_tracking_lost_total Opens and clicks answered (pixel, "
                     "redirect) but not recorded: the event queue was full.\n"
                     "# TYPE warmbench_tracking_lost_total counter\n"
                     "warmbench_tracking_lost_total{type=\"open\"} %llu\n"
                     "warmbench_tracking_lost_total{type=\"click\"} %llu\n",
                  m->lost[0], m->lost[1]);
    met_render_hist(m, b);
    wb_http_metrics(b);
    if (m->extra)
        m->extra(m->extra_ud, b);
}

void wb_metrics_free(struct wb_metrics *m)
{
    if (!m)
        return;
    if (m->flight)
        m->flight->m = NULL;
    met_wake(m);
    wb_buf_free(&m->figures);
    free(m);
}
