/* `warmbench report --html`: gathers each section as one JSON document
 * built by PostgreSQL (set-based, in one read-only snapshot so the
 * sections agree), lays it out as one self-contained HTML page and writes
 * it atomically. Every string from the database is HTML-escaped. */
#include "warmbench/abtest.h"
#include "warmbench/buf.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/pool.h"
#include "warmbench/report_html.h"
#include "warmbench/svg.h"
#include "warmbench/template.h"
#include "warmbench/util.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* $1: the --since date or NULL; it is midnight UTC. */
#define SINCE_CTE                                                                            \
    "p AS (SELECT CASE WHEN $1::text IS NULL THEN '-infinity'::timestamptz"                  \
    " ELSE $1::date::timestamp AT TIME ZONE 'UTC' END AS since)"

/* Counts of people per sequence and step, as `warmbench stats` counts them
 * (so the two agree), limited to what happened since $1. Events are
 * reduced to distinct (sequence, step, type, person) first, by hashing,
 * which is cheaper than a sorted count(DISTINCT) per column. */
static const char funnel_sql[] =
    "WITH " SINCE_CTE ","
    " mc AS (SELECT m.sequence_id, m.step, grouping(m.step) AS g,"
    "   count(DISTINCT m.candidate_id) FILTER (WHERE m.state = 'sent') AS sent"
    "  FROM messages m, p WHERE coalesce(m.sent_at, m.created_at) >= p.since"
    "  GROUP BY GROUPING SETS ((m.sequence_id, m.step), (m.sequence_id))),"
    " d AS MATERIALIZED (SELECT DISTINCT e.sequence_id, e.step, e.type, e.candidate_id"
    "  FROM events e, p WHERE e.at >= p.since AND e.sequence_id IS NOT NULL AND e.step IS NOT NULL"
    "   AND e.type IN ('open', 'click', 'reply', 'bounce', 'unsubscribe', 'handoff')"
    "   AND NOT (e.machine AND e.type IN ('open', 'click'))),"
    " dn AS (SELECT sequence_id, step, 0 AS g, type, count(*) AS n FROM d GROUP BY 1, 2, 4"
    "  UNION ALL SELECT sequence_id, NULL, 1, type, count(*)"
    "  FROM (SELECT DISTINCT sequence_id, type, candidate_id FROM d) x GROUP BY 1, 4),"
    " ec AS (SELECT sequence_id, step, g,"
    "   coalesce(sum(n) FILTER (WHERE type = 'open'), 0) AS opened,"
    "   coalesce(sum(n) FILTER (WHERE type = 'click'), 0) AS clicked,"
    "   coalesce(sum(n) FILTER (WHERE type = 'reply'), 0) AS replied,"
    "   coalesce(sum(n) FILTER (WHERE type = 'bounce'), 0) AS bounced,"
    "   coalesce(sum(n) FILTER (WHERE type = 'unsubscribe'), 0) AS unsubscribed,"
    "   coalesce(sum(n) FILTER (WHERE type = 'handoff'), 0) AS handed_off"
    "  FROM dn GROUP BY sequence_id, step, g),"
    " en AS (SELECT e.sequence_id, count(*) AS enrolled FROM enrollments e, p"
    "  WHERE e.created_at >= p.since GROUP BY e.sequence_id),"
    " r AS (SELECT coalesce(mc.sequence_id, ec.sequence_id) AS sequence_id,"
    "   coalesce(mc.step, ec.step) AS step, coalesce(mc.g, ec.g) AS g,"
    "   jsonb_build_object('sent', coalesce(mc.sent, 0), 'opened', coalesce(ec.opened, 0),"
    "    'clicked', coalesce(ec.clicked, 0), 'replied', coalesce(ec.replied, 0),"
    "    'bounced', coalesce(ec.bounced, 0), 'unsubscribed', coalesce(ec.unsubscribed, 0),"
    "    'handed_off', coalesce(ec.handed_off, 0)) AS counts"
    "  FROM mc FULL JOIN ec ON ec.sequence_id = mc.sequence_id AND ec.g = mc.g"
    "   AND coalesce(ec.step, 0) = coalesce(mc.step, 0))"
    " SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'enrolled', coalesce(en.enrolled, 0))"
    "   || coalesce(tot.counts, '{\"sent\":0,\"opened\":0,\"clicked\":0,\"replied\":0,"
    "\"bounced\":0,\"unsubscribed\":0,\"handed_off\":0}')"
    "   || jsonb_build_object('steps', coalesce((SELECT jsonb_agg(jsonb_build_object('step', x.step)"
    "      || x.counts ORDER BY x.step) FROM r x WHERE x.sequence_id = s.id AND x.g = 0), '[]'))"
    "   ORDER BY s.id), '[]')"
    " FROM sequences s LEFT JOIN en ON en.sequence_id = s.id"
    " LEFT JOIN r tot ON tot.sequence_id = s.id AND tot.g = 1";

/* One (enrollment, step) is one message, so messages count people. */
static const char variants_sql[] =
    "WITH " SINCE_CTE ","
    " m AS MATERIALIZED (SELECT m.id, m.sequence_id, m.step, m.variant FROM messages m, p"
    "  WHERE m.variant IS NOT NULL AND m.state = 'sent'"
    "   AND coalesce(m.sent_at, m.created_at) >= p.since),"
    " ev AS (SELECT e.message_id, bool_or(e.type = 'open' AND NOT e.machine) AS o,"
    "   bool_or(e.type = 'click' AND NOT e.machine) AS k, bool_or(e.type = 'reply') AS r"
    "  FROM events e JOIN m ON m.id = e.message_id, p"
    "  WHERE e.at >= p.since AND e.type IN ('open', 'click', 'reply') GROUP BY e.message_id)"
    " SELECT coalesce(jsonb_agg(jsonb_build_object('sequence', sequence_id, 'step', step,"
    "   'variant', variant, 'sent', n, 'opened', o, 'clicked', k, 'replied', r)"
    "   ORDER BY sequence_id, step, variant), '[]')"
    " FROM (SELECT m.sequence_id, m.step, m.variant, count(*) AS n,"
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
 * candidate's zone; a zone PostgreSQL does not know counts as UTC. */
static const char heatmap_sql[] =
    "WITH " SINCE_CTE ","
    " z AS (SELECT name FROM pg_timezone_names)"
    " SELECT coalesce(jsonb_agg(jsonb_build_array(d, h, n)), '[]') FROM ("
    "  SELECT extract(isodow FROM lt)::int AS d, extract(hour FROM lt)::int AS h, count(*) AS n"
    "  FROM (SELECT e.at AT TIME ZONE coalesce(z.name, 'UTC') AS lt"
    "   FROM events e JOIN candidates c ON c.id = e.candidate_id"
    "   LEFT JOIN z ON z.name = c.timezone, p"
    "   WHERE e.type IN ('open', 'click', 'reply') AND NOT e.machine AND e.at >= p.since) x"
    "  GROUP BY 1, 2) y";

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>warmbench report</title>\n<style>\n"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d2530;background:#fff;margin:0}\n"
    "main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}\n"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;"
    "border-bottom:2px solid #d7e1ec;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}\n"
    ".meta,.note{color:#5b6775}.note{font-size:13px;max-width:760px}\n"
    ".tiles{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}\n"
    ".tile{border:1px solid #d7e1ec;border-radius:6px;padding:10px 14px;min-width:130px}\n"
    ".tile b{display:block;font-size:22px}.tile span{color:#5b6775;font-size:12px}\n"
    "table{border-collapse:collapse;margin:8px 0 4px}th,td{padding:4px 10px;text-align:right;"
    "border-bottom:1px solid #e6ebf1;white-space:nowrap}th{background:#f3f6f9;font-weight:600}\n"
    "td.l,th.l{text-align:left}td.sig{color:#0a6b2e;font-weight:600}\n"
    "svg.chart{display:block;margin:6px 0;max-width:100%;height:auto}\n"
    "svg.rate{vertical-align:middle;margin-right:6px}\n"
    "svg text{font-size:12px;fill:#1d2530}svg text.val{fill:#3c4856}\n"
    "svg .bar{fill:#2f6db3}svg .track{fill:#e6ebf1}svg .axis{stroke:#9aa7b5;stroke-width:1}\n"
    "svg .line{fill:none;stroke:#2f6db3;stroke-width:2}\n"
    "</style>\n</head>\n<body>\n<main>\n";

static json_t *fetch(PGconn *c, const char *what, const char *sql, const char *since)
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

static long long iv(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *sv(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double ratio(long long n, long long d)
{
    return d > 0 ? (double)n / (double)d : 0.0;
}

static void esc(struct wb_buf *b, const char *s)
{
    wb_html_escape(b, s);
}

static void tile(struct wb_buf *b, const char *value, const char *label)
{
    wb_buf_puts(b, "<div class=\"tile\"><b>");
    esc(b, value);
    wb_buf_puts(b, "</b><span>");
    esc(b, label);
    wb_buf_puts(b, "</span></div>");
}

static void tile_num(struct wb_buf *b, const char *fmt, double v, const char *label)
{
    char s[64];
    snprintf(s, sizeof s, fmt, v);
    tile(b, s, label);
}

static void pool_tags(struct wb_buf *b, json_t *by_tag)
{
    size_t i;
    json_t *t;
    if (json_array_size(by_tag) == 0)
        return;
    wb_buf_puts(b, "<table><tr><th class=\"l\">tag</th><th>in the pool</th><th>ready now</th></tr>\n");
    json_array_foreach(by_tag, i, t) {
        if (i == 15)
            break;
        wb_buf_puts(b, "<tr><td class=\"l\">");
        esc(b, sv(t, "tag"));
        wb_buf_printf(b, "</td><td>%lld</td><td>%lld</td></tr>\n", iv(t, "size"), iv(t, "ready"));
    }
    wb_buf_puts(b, "</table>\n");
    if (json_array_size(by_tag) > 15)
        wb_buf_printf(b, "<p class=\"note\">%zu more tags: see <code>warmbench pool --json</code>.</p>\n",
                      json_array_size(by_tag) - 15);
}

static void section_pool(struct wb_buf *b, json_t *pool)
{
    json_t *g = json_object_get(pool, "growth"), *ready = json_object_get(pool, "ready");
    wb_buf_puts(b, "<h2>Pool health (today)</h2>\n<div class=\"tiles\">");
    tile_num(b, "%.0f", (double)iv(pool, "size"), "can be mailed");
    tile_num(b, "%+.0f", (double)iv(json_object_get(g, "30d"), "net"), "net growth, 30 days");
    tile_num(b, "%+.0f", (double)iv(json_object_get(g, "90d"), "net"), "net growth, 90 days");
    tile_num(b, "%.1f%%", 100 * json_number_value(json_object_get(json_object_get(pool, "engaged_90d"), "share")),
             "engaged in 90 days");
    tile_num(b, "%.1f%%", 100 * json_number_value(json_object_get(json_object_get(pool, "dormant"), "share")),
             "dormant (90 days)");
    tile_num(b, "%.0f", (double)iv(ready, "total"), "ready now");
    wb_buf_printf(b, "</div>\n<p class=\"note\">Ready now: score at or above %g and engaged within "
                     "%lld days. Leaving the pool: any suppression (unsubscribe, complaint, hard "
                     "bounce, manual, erasure).</p>\n",
                  json_number_value(json_object_get(ready, "threshold")), iv(ready, "engaged_days"));
    pool_tags(b, json_object_get(ready, "by_tag"));
}

static const char *const funnel_keys[] = {"enrolled", "sent", "opened", "clicked", "replied",
                                          "handed_off", "bounced", "unsubscribed"};
#define FUNNEL_BARS 6 /* the first six are the funnel; the rest are its leaks */

static void funnel_table(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<table><tr><th class=\"l\">sequence</th>");
    for (size_t k = 0; k < sizeof funnel_keys / sizeof *funnel_keys; k++)
        wb_buf_printf(b, "<th>%s</th>", funnel_keys[k]);
    wb_buf_puts(b, "</tr>\n");
    json_array_foreach(seqs, i, s) {
        wb_buf_puts(b, "<tr><td class=\"l\">");
        esc(b, sv(s, "id"));
        wb_buf_puts(b, "</td>");
        for (size_t k = 0; k < sizeof funnel_keys / sizeof *funnel_keys; k++)
            wb_buf_printf(b, "<td>%lld</td>", iv(s, funnel_keys[k]));
        wb_buf_puts(b, "</tr>\n");
    }
    wb_buf_puts(b, "</table>\n");
}

static void section_funnel(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<h2>Funnel per sequence</h2>\n<p class=\"note\">People, each counted once per "
                   "sequence; opens and clicks by machines (privacy proxies, link scanners) are "
                   "left out.</p>\n");
    if (json_array_size(seqs) == 0) {
        wb_buf_puts(b, "<p>No sequence yet.</p>\n");
        return;
    }
    funnel_table(b, seqs);
    json_array_foreach(seqs, i, s) {
        struct wb_svg_bar bars[FUNNEL_BARS];
        for (size_t k = 0; k < FUNNEL_BARS; k++)
            bars[k] = (struct wb_svg_bar){funnel_keys[k], iv(s, funnel_keys[k])};
        char *aria = wb_xasprintf("funnel of sequence %s", sv(s, "id"));
        wb_buf_puts(b, "<h3>");
        esc(b, sv(s, "id"));
        wb_buf_puts(b, "</h3>\n");
        wb_svg_hbars(b, bars, FUNNEL_BARS, aria);
        free(aria);
    }
}

static void rate_cell(struct wb_buf *b, long long n, long long sent)
{
    double r = ratio(n, sent);
    wb_buf_puts(b, "<td>");
    wb_svg_rate(b, r);
    wb_buf_printf(b, "%.1f%%</td>", 100 * r);
}

static const char *const rate_keys[] = {"opened", "clicked", "replied", "bounced", "unsubscribed"};
#define NRATES (sizeof rate_keys / sizeof *rate_keys)

static void steps_table(struct wb_buf *b, json_t *seq)
{
    size_t i;
    json_t *st;
    wb_buf_puts(b, "<table><tr><th>step</th><th>sent</th>");
    for (size_t k = 0; k < NRATES; k++)
        wb_buf_printf(b, "<th class=\"l\">%s</th>", rate_keys[k]);
    wb_buf_puts(b, "</tr>\n");
    json_array_foreach(json_object_get(seq, "steps"), i, st) {
        wb_buf_printf(b, "<tr><td>%lld</td><td>%lld</td>", iv(st, "step"), iv(st, "sent"));
        for (size_t k = 0; k < NRATES; k++)
            rate_cell(b, iv(st, rate_keys[k]), iv(st, "sent"));
        wb_buf_puts(b, "</tr>\n");
    }
    wb_buf_puts(b, "</table>\n");
}

static void section_steps(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<h2>Per-step rates</h2>\n<p class=\"note\">Share of the people a step was "
                   "sent to who then opened, clicked, replied, bounced or unsubscribed.</p>\n");
    json_array_foreach(seqs, i, s) {
        wb_buf_puts(b, "<h3>");
        esc(b, sv(s, "id"));
        wb_buf_puts(b, "</h3>\n");
        if (json_array_size(json_object_get(s, "steps")) == 0)
            wb_buf_puts(b, "<p>Nothing sent in this period.</p>\n");
        else
            steps_table(b, s);
    }
}

/* A..Z, then numbers: variants are stored 0-based. */
static void variant_label(struct wb_buf *b, long long v)
{
    if (v >= 0 && v < 26)
        wb_buf_putc(b, (char)('A' + v));
    else
        wb_buf_printf(b, "%lld", v + 1);
}

static void p_cell(struct wb_buf *b, json_t *v, json_t *base, const char *key)
{
    if (!base) {
        wb_buf_puts(b, "<td>&mdash;</td>");
        return;
    }
    double p = wb_ztest_two_prop_p((long)iv(v, key), (long)iv(v, "sent"), (long)iv(base, key),
                                   (long)iv(base, "sent"));
    if (p < 0)
        wb_buf_puts(b, "<td>n/a</td>");
    else if (p < 0.001)
        wb_buf_puts(b, "<td class=\"sig\">&lt;0.001</td>");
    else
        wb_buf_printf(b, "<td%s>%.3f</td>", p < 0.05 ? " class=\"sig\"" : "", p);
}

static bool same_step(json_t *a, json_t *b)
{
    return a && b && !strcmp(sv(a, "sequence"), sv(b, "sequence")) && iv(a, "step") == iv(b, "step");
}

static void variant_row(struct wb_buf *b, json_t *v, json_t *base)
{
    wb_buf_puts(b, "<tr><td class=\"l\">");
    esc(b, sv(v, "sequence"));
    wb_buf_printf(b, "</td><td>%lld</td><td>", iv(v, "step"));
    variant_label(b, iv(v, "variant"));
    wb_buf_printf(b, "</td><td>%lld</td>", iv(v, "sent"));
    rate_cell(b, iv(v, "opened"), iv(v, "sent"));
    rate_cell(b, iv(v, "clicked"), iv(v, "sent"));
    rate_cell(b, iv(v, "replied"), iv(v, "sent"));
    p_cell(b, v, base, "opened");
    p_cell(b, v, base, "clicked");
    p_cell(b, v, base, "replied");
    wb_buf_puts(b, "</tr>\n");
}

static void section_variants(struct wb_buf *b, json_t *rows)
{
    wb_buf_puts(b, "<h2>Variant comparison (A/B)</h2>\n<p class=\"note\">Each variant against the "
                   "first one of its step; p is the two-sided p-value of a pooled two-proportion "
                   "z-test (below 0.05 in green). Small groups make large p-values.</p>\n");
    if (json_array_size(rows) == 0) {
        wb_buf_puts(b, "<p>No step with variants was sent in this period.</p>\n");
        return;
    }
    wb_buf_puts(b, "<table><tr><th class=\"l\">sequence</th><th>step</th><th>variant</th>"
                   "<th>sent</th><th class=\"l\">opened</th><th class=\"l\">clicked</th>"
                   "<th class=\"l\">replied</th><th>p open</th><th>p click</th><th>p reply</th></tr>\n");
    size_t i;
    json_t *v, *base = NULL;
    json_array_foreach(rows, i, v) {
        bool first = !same_step(v, base);
        if (first)
            base = v;
        variant_row(b, v, first ? NULL : base);
    }
    wb_buf_puts(b, "</table>\n");
}

static void growth_table(struct wb_buf *b, json_t *weeks)
{
    size_t n = json_array_size(weeks), from = n > 8 ? n - 8 : 0;
    wb_buf_puts(b, "<table><tr><th class=\"l\">week of</th><th>new</th><th>left</th>"
                   "<th>size at its end</th></tr>\n");
    for (size_t i = from; i < n; i++) {
        json_t *w = json_array_get(weeks, i);
        wb_buf_puts(b, "<tr><td class=\"l\">");
        esc(b, sv(w, "week"));
        wb_buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>%lld</td></tr>\n", iv(w, "new"),
                      iv(w, "left"), iv(w, "size"));
    }
    wb_buf_puts(b, "</table>\n");
}

static void section_growth(struct wb_buf *b, json_t *weeks)
{
    size_t n = json_array_size(weeks);
    wb_buf_puts(b, "<h2>Pool growth</h2>\n<p class=\"note\">Candidates who can be mailed at the end "
                   "of each week (weeks start on Monday, UTC); the last point is today.</p>\n");
    if (n == 0) {
        wb_buf_puts(b, "<p>No candidate yet.</p>\n");
        return;
    }
    double *y = wb_xcalloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (double)iv(json_array_get(weeks, i), "size");
    wb_svg_line(b, y, n, sv(json_array_get(weeks, 0), "week"),
                sv(json_array_get(weeks, n - 1), "week"), "pool size per week");
    free(y);
    growth_table(b, weeks);
}

static void section_heatmap(struct wb_buf *b, json_t *cells)
{
    long long grid[7][24] = {{0}}, total = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c) {
        json_int_t d = json_integer_value(json_array_get(c, 0));
        json_int_t h = json_integer_value(json_array_get(c, 1));
        if (d >= 1 && d <= 7 && h >= 0 && h < 24) {
            grid[d - 1][h] = json_integer_value(json_array_get(c, 2));
            total += grid[d - 1][h];
        }
    }
    wb_buf_printf(b, "<h2>When people engage</h2>\n<p class=\"note\">%lld human opens, clicks and "
                     "replies by weekday and hour in each candidate's own time zone (UTC when it is "
                     "unknown). Hover a cell for its count.</p>\n", total);
    wb_svg_heatmap(b, (const long long (*)[24])grid, "engagement by weekday and local hour");
}

static void page_top(struct wb_buf *b, const char *since)
{
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", gmtime_r(&t, &tm));
    wb_buf_puts(b, page_head);
    wb_buf_printf(b, "<h1>warmbench report</h1>\n<p class=\"meta\">Made %s; ", now);
    if (since) {
        wb_buf_puts(b, "enrollments, messages and events since ");
        esc(b, since);
        wb_buf_puts(b, " 00:00 UTC.</p>\n");
    } else {
        wb_buf_puts(b, "all enrollments, messages and events.</p>\n");
    }
}

struct docs {
    json_t *pool, *funnel, *variants, *growth, *heatmap;
};

static void docs_free(struct docs *d)
{
    json_decref(d->pool);
    json_decref(d->funnel);
    json_decref(d->variants);
    json_decref(d->growth);
    json_decref(d->heatmap);
}

/* All sections from one snapshot, so their figures agree. */
static int gather(PGconn *c, const struct wb_config *cfg, const char *since, struct docs *d)
{
    if (wb_db_cmd(c, "starting the report's snapshot",
                  "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) < 0)
        return -1;
    d->pool = wb_pool_query(c, cfg);
    d->funnel = d->pool ? fetch(c, "reading the funnel", funnel_sql, since) : NULL;
    d->variants = d->funnel ? fetch(c, "reading variants", variants_sql, since) : NULL;
    d->growth = d->variants ? fetch(c, "reading pool growth", growth_sql, since) : NULL;
    d->heatmap = d->growth ? fetch(c, "reading the heat map", heatmap_sql, since) : NULL;
    bool ok = d->heatmap != NULL;
    if (wb_db_cmd(c, "ending the report's snapshot", ok ? "COMMIT" : "ROLLBACK", 0, NULL) < 0)
        return -1;
    return ok ? 0 : -1;
}

static void render(struct wb_buf *b, const struct docs *d, const char *since)
{
    page_top(b, since);
    section_pool(b, d->pool);
    section_funnel(b, d->funnel);
    section_steps(b, d->funnel);
    section_variants(b, d->variants);
    section_growth(b, d->growth);
    section_heatmap(b, d->heatmap);
    wb_buf_puts(b, "</main>\n</body>\n</html>\n");
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A reader sees the old file or the whole new one, never half of it. */
static int write_atomic(const char *path, const char *data, size_t len)
{
    char *tmp = wb_xasprintf("%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "warmbench: report: cannot create a file beside %s: %s\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0 ? -1 : 0;
    int err = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        err = errno;
    }
    if (rc < 0) {
        fprintf(stderr, "warmbench: report: cannot write %s: %s\n", path, strerror(err));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool wb_report_date_valid(const char *s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && leap(y));
}

int wb_report_html(PGconn *c, const struct wb_config *cfg, const char *path, const char *since)
{
    if (since && !wb_report_date_valid(since)) {
        fprintf(stderr, "warmbench: report: --since \"%s\" is not a date (YYYY-MM-DD)\n", since);
        return WB_EXIT_USAGE;
    }
    struct docs d = {0};
    if (gather(c, cfg, since, &d) < 0) {
        docs_free(&d);
        return WB_EXIT_FAIL;
    }
    struct wb_buf b;
    wb_buf_init(&b);
    render(&b, &d, since);
    docs_free(&d);
    int rc = write_atomic(path, b.data, b.len) < 0 ? WB_EXIT_FAIL : WB_EXIT_OK;
    wb_buf_free(&b);
    return rc;
}
