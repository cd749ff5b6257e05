/* The HTML report's figures: each section one JSON document built by
 * PostgreSQL, set-based, all in one read-only snapshot so that the
 * sections agree. */
#include "warmbench/db.h"
#include "warmbench/pool.h"
#include "warmbench/report_data.h"
#include <stdbool.h>
#include <stdio.h>

/* $1: the --since date or NULL; it is midnight UTC. */
#define SINCE_CTE                                                                            \
    "p AS (SELECT CASE WHEN $1::text IS NULL THEN '-infinity'::timestamptz"                  \
    " ELSE $1::date::timestamp AT TIME ZONE 'UTC' END AS since)"

/* Counts of people per sequence and step, as `warmbench stats` counts them
 * (so the two agree), limited to what happened since $1. Messages as stats
 * counts them: a step's people are its messages, and across steps a person
 * counts at their first step sent in the window. Events: without --since,
 * the people stats_people keeps (sql/functions/092_stats.sql), a count of
 * rows; with it, events are reduced to distinct (sequence, step, type,
 * person) first, by hashing, which is cheaper than a sorted
 * count(DISTINCT) per column. The branch that does not apply is not run
 * (its condition is a one-time filter on $1). */
static const char funnel_sql[] =
    "WITH " SINCE_CTE ","
    " ms AS (SELECT m.sequence_id, m.step, count(*) FILTER (WHERE m.state = 'sent') AS sent,"
    "   count(*) FILTER (WHERE m.state = 'sent' AND (m.step <= 1"
    "    OR NOT EXISTS (SELECT 1 FROM messages q"
    "     WHERE q.enrollment_id = m.enrollment_id AND q.step < m.step AND q.state = 'sent'"
    "      AND coalesce(q.sent_at, q.created_at) >= p.since))) AS first_sent"
    "  FROM messages m, p WHERE coalesce(m.sent_at, m.created_at) >= p.since"
    "  GROUP BY m.sequence_id, m.step),"
    " mc AS (SELECT sequence_id, step, 0 AS g, sent FROM ms"
    "  UNION ALL SELECT sequence_id, NULL, 1, sum(first_sent)::bigint FROM ms"
    "  GROUP BY sequence_id),"
    " d AS MATERIALIZED (SELECT DISTINCT e.sequence_id, e.step, e.type, e.candidate_id"
    "  FROM events e, p WHERE $1::text IS NOT NULL"
    "   AND e.at >= p.since AND e.sequence_id IS NOT NULL AND e.step IS NOT NULL"
    "   AND e.type IN ('open', 'click', 'reply', 'bounce', 'unsubscribe', 'complaint', 'handoff')"
    "   AND NOT (e.machine AND e.type IN ('open', 'click'))),"
    " dn AS (SELECT sequence_id, step, 0 AS g, type, count(*) AS n FROM d GROUP BY 1, 2, 4"
    "  UNION ALL SELECT sequence_id, NULL, 1, type, count(*)"
    "  FROM (SELECT DISTINCT sequence_id, type, candidate_id FROM d) x GROUP BY 1, 4"
    "  UNION ALL SELECT sequence_id, nullif(step, 0), (step = 0)::integer,"
    "   CASE kind WHEN 'opened' THEN 'open' WHEN 'clicked' THEN 'click'"
    "    WHEN 'replied' THEN 'reply' WHEN 'bounced' THEN 'bounce'"
    "    WHEN 'unsubscribed' THEN 'unsubscribe' WHEN 'complained' THEN 'complaint'"
    "    ELSE 'handoff' END, count(*)"
    "  FROM stats_people WHERE $1::text IS NULL"
    "   AND kind IN ('opened', 'clicked', 'replied', 'bounced', 'unsubscribed', 'complained',"
    "                'handed_off')"
    "  GROUP BY sequence_id, step, kind),"
    " ec AS (SELECT sequence_id, step, g,"
    "   coalesce(sum(n) FILTER (WHERE type = 'open'), 0) AS opened,"
    "   coalesce(sum(n) FILTER (WHERE type = 'click'), 0) AS clicked,"
    "   coalesce(sum(n) FILTER (WHERE type = 'reply'), 0) AS replied,"
    "   coalesce(sum(n) FILTER (WHERE type = 'bounce'), 0) AS bounced,"
    "   coalesce(sum(n) FILTER (WHERE type = 'unsubscribe'), 0) AS unsubscribed,"
    "   coalesce(sum(n) FILTER (WHERE type = 'complaint'), 0) AS complained,"
    "   coalesce(sum(n) FILTER (WHERE type = 'handoff'), 0) AS handed_off"
    "  FROM dn GROUP BY sequence_id, step, g),"
    " en AS (SELECT e.sequence_id, count(*) AS enrolled FROM enrollments e, p"
    "  WHERE e.created_at >= p.since GROUP BY e.sequence_id),"
    " r AS (SELECT coalesce(mc.sequence_id, ec.sequence_id) AS sequence_id,"
    "   coalesce(mc.step, ec.step) AS step, coalesce(mc.g, ec.g) AS g,"
    "   jsonb_build_object('sent', coalesce(mc.sent, 0), 'opened', coalesce(ec.opened, 0),"
    "    'clicked', coalesce(ec.clicked, 0), 'replied', coalesce(ec.replied, 0),"
    "    'bounced', coalesce(ec.bounced, 0), 'unsubscribed', coalesce(ec.unsubscribed, 0),"
    "    'complained', coalesce(ec.complained, 0),"
    "    'handed_off', coalesce(ec.handed_off, 0)) AS counts"
    "  FROM mc FULL JOIN ec ON ec.sequence_id = mc.sequence_id AND ec.g = mc.g"
    "   AND coalesce(ec.step, 0) = coalesce(mc.step, 0))"
    " SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'enrolled', coalesce(en.enrolled, 0))"
    "   || coalesce(tot.counts, '{\"sent\":0,\"opened\":0,\"clicked\":0,\"replied\":0,"
    "\"bounced\":0,\"unsubscribed\":0,\"complained\":0,\"handed_off\":0}')"
    "   || jsonb_build_object('steps', coalesce((SELECT jsonb_agg(jsonb_build_object('step', x.step)"
    "      || x.counts ORDER BY x.step) FROM r x WHERE x.sequence_id = s.id AND x.g = 0), '[]'))"
    "   ORDER BY s.id), '[]')"
    " FROM sequences s LEFT JOIN en ON en.sequence_id = s.id"
    " LEFT JOIN r tot ON tot.sequence_id = s.id AND tot.g = 1";

/* As `warmbench stats` counts variants (so the two agree): people sent to,
 * and people who opened, clicked or replied to a message of that variant.
 * One (enrollment, step) is one message, so messages count people. */
static const char variants_sql[] =
    "WITH " SINCE_CTE ","
    " m AS MATERIALIZED (SELECT m.id, m.sequence_id, m.step, m.variant, m.state"
    "  FROM messages m, p WHERE m.variant IS NOT NULL"
    "   AND coalesce(m.sent_at, m.created_at) >= p.since),"
    " ev AS (SELECT e.message_id, bool_or(e.type = 'open' AND NOT e.machine) AS o,"
    "   bool_or(e.type = 'click' AND NOT e.machine) AS k, bool_or(e.type = 'reply') AS r"
    "  FROM events e JOIN m ON m.id = e.message_id, p"
    "  WHERE e.at >= p.since AND e.type IN ('open', 'click', 'reply') GROUP BY e.message_id)"
    " SELECT coalesce(jsonb_agg(jsonb_build_object('sequence', sequence_id, 'step', step,"
    "   'variant', variant, 'sent', n, 'opened', o, 'clicked', k, 'replied', r)"
    "   ORDER BY sequence_id, step, variant), '[]')"
    " FROM (SELECT m.sequence_id, m.step, m.variant, count(*) FILTER (WHERE m.state = 'sent') AS n,"
    "   count(*) FILTER (WHERE ev.o) AS o, count(*) FILTER (WHERE ev.k) AS k,"
    "   count(*) FILTER (WHERE ev.r) AS r"
    "  FROM m LEFT JOIN ev ON ev.message_id = m.id GROUP BY 1, 2, 3) x";

/* Pool size at the end of each week (Monday-based, UTC), counted back from
 * today's size: size(w) = size now - (arrivals - departures after w), with
 * arrivals and departures as `warmbench pool` counts them
 * (wb_pool_ledger); at most 520 weeks. */
static const char growth_sql[] =
    "WITH " SINCE_CTE ","
    " j AS MATERIALIZED (SELECT candidate_id, suppression_id, created_at, left_at, left_pool"
    "  FROM wb_pool_ledger),"
    " wk AS (SELECT w, sum(n) AS new, sum(l) AS lft FROM ("
    "   SELECT date_trunc('week', created_at AT TIME ZONE 'UTC') AS w, 1 AS n, 0 AS l"
    "    FROM j WHERE candidate_id IS NOT NULL"
    "   UNION ALL SELECT date_trunc('week', left_at AT TIME ZONE 'UTC'), 0, 1"
    "    FROM j WHERE left_pool) x GROUP BY w),"
    " span AS (SELECT greatest(date_trunc('week', p.since AT TIME ZONE 'UTC'), (SELECT min(w) FROM wk),"
    "   date_trunc('week', now() AT TIME ZONE 'UTC') - interval '519 weeks') AS first,"
    "   date_trunc('week', now() AT TIME ZONE 'UTC') AS last FROM p),"
    " weeks AS (SELECT generate_series(first, last, interval '1 week') AS w FROM span"
    "  WHERE first IS NOT NULL AND first <= last),"
    " size AS (SELECT count(*) AS n FROM j WHERE candidate_id IS NOT NULL AND suppression_id IS NULL)"
    " SELECT coalesce(jsonb_agg(jsonb_build_object('week', to_char(weeks.w, 'YYYY-MM-DD'),"
    "   'new', coalesce(wk.new, 0), 'left', coalesce(wk.lft, 0),"
    "   'size', size.n - coalesce((SELECT sum(a.new - a.lft) FROM wk a WHERE a.w > weeks.w), 0))"
    "   ORDER BY weeks.w), '[]')"
    " FROM weeks LEFT JOIN wk ON wk.w = weeks.w, size";

/* Human opens, clicks and replies by weekday (1 = Monday) and hour in the
 * candidate's zone; a zone PostgreSQL does not know counts as UTC. Events
 * are counted per (zone, minute) first and each of those converted once:
 * converting every event's time (and extract's numeric results) was most
 * of this statement at five million events. Exact: zone offsets and their
 * changes fall on whole minutes (tzdata has offsets with seconds only
 * before 1973). */
static const char heatmap_sql[] =
    "WITH " SINCE_CTE ","
    " z AS (SELECT name FROM pg_timezone_names)"
    " SELECT coalesce(jsonb_agg(jsonb_build_array(d, h, n)), '[]') FROM ("
    "  SELECT date_part('isodow', lt)::int AS d, date_part('hour', lt)::int AS h,"
    "   sum(n)::bigint AS n"
    "  FROM (SELECT x.mt AT TIME ZONE coalesce(z.name, 'UTC') AS lt, x.n"
    "   FROM (SELECT c.timezone, date_trunc('minute', e.at) AS mt, count(*) AS n"
    "    FROM events e JOIN candidates c ON c.id = e.candidate_id, p"
    "    WHERE e.type IN ('open', 'click', 'reply') AND NOT e.machine AND e.at >= p.since"
    "    GROUP BY 1, 2) x"
    "   LEFT JOIN z ON z.name = x.timezone) y"
    "  GROUP BY 1, 2) w";

static json_t *rd_fetch(PGconn *c, const char *what, const char *sql, const char *since)
{
    const char *p[] = {since};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, what, sql, 1, p);
    if (!r)
        return NULL;
    json_error_t err;
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), JSON_DECODE_ANY, &err);
    PQclear(r);
    if (!doc)
        fprintf(stderr, "warmbench: report: %s: bad JSON from the database: %s\n", what, err.text);
    return doc;
}

void wb_report_data_free(struct wb_report_data *d)
{
    json_decref(d->pool);
    json_decref(d->funnel);
    json_decref(d->variants);
    json_decref(d->growth);
    json_decref(d->heatmap);
    *d = (struct wb_report_data){0};
}

int wb_report_gather(PGconn *c, const struct wb_config *cfg, const char *since,
                     struct wb_report_data *d)
{
    if (wb_db_cmd(c, "starting the report's snapshot",
                  "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) < 0)
        return -1;
    /* The funnel's distinct (sequence, step, type, person) and the heat
     * map's join hold a million rows in hash tables: in memory, not spilled
     * to disk in batches (a third of their time at five million events).
     * This transaction only. */
    if (wb_db_cmd(c, "report settings", "SET LOCAL work_mem = '256MB'", 0, NULL) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    d->pool = wb_pool_query(c, cfg);
    d->funnel = d->pool ? rd_fetch(c, "reading the funnel", funnel_sql, since) : NULL;
    d->variants = d->funnel ? rd_fetch(c, "reading variants", variants_sql, since) : NULL;
    d->growth = d->variants ? rd_fetch(c, "reading pool growth", growth_sql, since) : NULL;
    d->heatmap = d->growth ? rd_fetch(c, "reading the heat map", heatmap_sql, since) : NULL;
    bool ok = d->heatmap != NULL;
    if (wb_db_cmd(c, "ending the report's snapshot", ok ? "COMMIT" : "ROLLBACK", 0, NULL) < 0)
        return -1;
    return ok ? 0 : -1;
}
