/* `warmbench stats --attribution`: PostgreSQL builds the funnel (enrolled →
 * replied → handed off → applied → hired) per sequence, per candidate
 * source and in total as one JSON document, in one set-based statement;
 * C adds the rates and prints it. */
#include "warmbench/attribution.h"
#include "warmbench/db.h"
#include "warmbench/stats.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Credit: an applied/hired event names the enrollments it converted
 * (detail.converted, written by wb_ats_applied and wb_ats_hired); when it converted none (the
 * enrollment had already ended, e.g. handed off), the candidate's latest
 * enrollment started before the event gets it (last touch). Enrollments
 * made by the event itself (created in its transaction) are not before it.
 * Counts are distinct people; "applied" includes the hired (nobody is hired
 * without applying). Time to engage: per enrollment, its first sent message
 * to the first human reply in that sequence at or after it. */
static const char attribution_sql[] =
    "WITH seqs AS (SELECT id FROM sequences WHERE $1::text IS NULL OR id = $1),"
    " outc AS (SELECT v.candidate_id, v.type, v.at,"
    "   CASE WHEN jsonb_typeof(v.detail->'converted') = 'array'"
    "    THEN v.detail->'converted' ELSE '[]' END AS conv"
    "  FROM events v WHERE v.type IN ('applied', 'hired') AND v.candidate_id IS NOT NULL),"
    " credit AS (SELECT o.candidate_id, o.type, coalesce(cv.ids, lt.ids) AS ids FROM outc o"
    "  LEFT JOIN LATERAL (SELECT array_agg(e.id) AS ids FROM enrollments e"
    "   WHERE e.candidate_id = o.candidate_id"
    "    AND e.id::text IN (SELECT jsonb_array_elements_text(o.conv))) cv ON true"
    "  LEFT JOIN LATERAL (SELECT ARRAY[e.id] AS ids FROM enrollments e"
    "   WHERE e.candidate_id = o.candidate_id AND e.created_at < o.at"
    "   ORDER BY e.created_at DESC, e.id DESC LIMIT 1) lt ON true),"
    " cr AS (SELECT x.enrollment_id, bool_or(c.type = 'hired') AS hired"
    "  FROM credit c CROSS JOIN LATERAL unnest(c.ids) AS x(enrollment_id) GROUP BY 1),"
    " fs AS (SELECT enrollment_id, min(sent_at) AS first_sent FROM messages"
    "  WHERE sequence_id IN (SELECT id FROM seqs) AND state = 'sent' AND sent_at IS NOT NULL"
    "  GROUP BY enrollment_id),"
    " ev AS (SELECT candidate_id, sequence_id, bool_or(type = 'reply') AS replied,"
    "   bool_or(type = 'handoff') AS handed_off"
    "  FROM events WHERE sequence_id IN (SELECT id FROM seqs)"
    "   AND type IN ('reply', 'handoff') AND NOT machine"
    "  GROUP BY candidate_id, sequence_id),"
    " tte AS (SELECT e.id AS enrollment_id, min(v.at) - fs.first_sent AS tte"
    "  FROM enrollments e JOIN fs ON fs.enrollment_id = e.id"
    "  JOIN events v ON v.candidate_id = e.candidate_id AND v.sequence_id = e.sequence_id"
    "   AND v.type = 'reply' AND NOT v.machine AND v.at >= fs.first_sent"
    "  GROUP BY e.id, fs.first_sent),"
    " rows AS (SELECT e.candidate_id, e.sequence_id, c.source,"
    "   coalesce(ev.replied, false) AS replied, coalesce(ev.handed_off, false) AS handed_off,"
    "   cr.enrollment_id IS NOT NULL AS applied, coalesce(cr.hired, false) AS hired, t.tte"
    "  FROM enrollments e JOIN candidates c ON c.id = e.candidate_id"
    "  LEFT JOIN ev ON ev.candidate_id = e.candidate_id AND ev.sequence_id = e.sequence_id"
    "  LEFT JOIN cr ON cr.enrollment_id = e.id"
    "  LEFT JOIN tte t ON t.enrollment_id = e.id"
    "  WHERE e.sequence_id IN (SELECT id FROM seqs)),"
    " agg AS (SELECT sequence_id, source, grouping(sequence_id) AS gq, grouping(source) AS gs,"
    "   jsonb_build_object('enrolled', count(DISTINCT candidate_id),"
    "    'replied', count(DISTINCT candidate_id) FILTER (WHERE replied),"
    "    'handed_off', count(DISTINCT candidate_id) FILTER (WHERE handed_off),"
    "    'applied', count(DISTINCT candidate_id) FILTER (WHERE applied),"
    "    'hired', count(DISTINCT candidate_id) FILTER (WHERE hired),"
    "    'engaged', count(tte),"
    "    'median_time_to_engage_s',"
    "     round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM tte)::float8))"
    "      ::bigint) AS f"
    "  FROM rows GROUP BY GROUPING SETS ((sequence_id, source), (sequence_id), (source), ())),"
    " zero AS (SELECT jsonb_build_object('enrolled', 0, 'replied', 0, 'handed_off', 0,"
    "   'applied', 0, 'hired', 0, 'engaged', 0, 'median_time_to_engage_s', NULL) AS f)"
    " SELECT jsonb_build_object("
    "  'sequences', coalesce((SELECT jsonb_agg(jsonb_build_object('id', s.id)"
    "    || coalesce(a.f, (SELECT f FROM zero))"
    "    || jsonb_build_object('sources', coalesce((SELECT jsonb_agg(jsonb_build_object("
    "       'source', b.source) || b.f ORDER BY b.source) FROM agg b"
    "       WHERE b.gq = 0 AND b.gs = 0 AND b.sequence_id = s.id), '[]')) ORDER BY s.id)"
    "   FROM seqs s LEFT JOIN agg a ON a.sequence_id = s.id AND a.gq = 0 AND a.gs = 1), '[]'),"
    "  'sources', coalesce((SELECT jsonb_agg(jsonb_build_object('source', b.source) || b.f"
    "    ORDER BY b.source) FROM agg b WHERE b.gq = 1 AND b.gs = 0), '[]'),"
    "  'total', coalesce((SELECT f FROM agg WHERE gq = 1 AND gs = 1), (SELECT f FROM zero)),"
    "  'unattributed', (SELECT jsonb_build_object('applied', count(DISTINCT candidate_id),"
    "    'hired', count(DISTINCT candidate_id) FILTER (WHERE type = 'hired'))"
    "   FROM credit WHERE ids IS NULL))";

static const char *const stages[] = {"enrolled", "replied", "handed_off", "applied", "hired"};
#define NSTAGES (sizeof stages / sizeof stages[0])

static json_t *attr_fraction(json_int_t n, json_int_t of)
{
    return of > 0 ? json_real((double)n / (double)of) : json_null();
}

/* rates: each stage as a fraction of enrolled; step_rates: of the stage
 * before it. Null when the denominator is 0. The stages are not nested
 * (a click can hand off without a reply), so a step rate can exceed 1;
 * only hired is a subset of applied. */
static void attr_add_rates(json_t *o)
{
    json_t *rates = json_object(), *steps = json_object();
    for (size_t i = 1; i < NSTAGES; i++) {
        json_int_t n = wb_jcount(o, stages[i]);
        json_object_set_new(rates, stages[i], attr_fraction(n, wb_jcount(o, "enrolled")));
        json_object_set_new(steps, stages[i], attr_fraction(n, wb_jcount(o, stages[i - 1])));
    }
    json_object_set_new(o, "rates", rates);
    json_object_set_new(o, "step_rates", steps);
}

static void attr_add_list_rates(json_t *list)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) {
        attr_add_rates(o);
        attr_add_list_rates(json_object_get(o, "sources"));
    }
}

void wb_duration_text(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, size, "-");
        return;
    }
    static const struct { const char *unit; double secs; } u[] = {
        {"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
    double t = floor(s);
    for (size_t i = 0; i < 3; i++)
        if (t >= u[i].secs) {
            double big = floor(t / u[i].secs), small = floor((t - big * u[i].secs) / u[i + 1].secs);
            snprintf(buf, size, "%.0f%s %.0f%s", big, u[i].unit, small, u[i + 1].unit);
            return;
        }
    snprintf(buf, size, "%.0fs", t);
}

/* One line: label, each stage as "n (rate of enrolled)", the median time
 * to engage and how many enrollments it is over; columns right-aligned
 * under print_header's. */
static void attr_print_funnel(FILE *out, int indent, const char *label, json_t *o)
{
    fprintf(out, "%*s%-*s", indent, "", 20 - indent, label);
    json_int_t of = wb_jcount(o, "enrolled");
    for (size_t i = 0; i < NSTAGES; i++) {
        char cell[48];
        json_int_t n = wb_jcount(o, stages[i]);
        if (i == 0 || of == 0)
            snprintf(cell, sizeof cell, "%lld", (long long)n);
        else
            snprintf(cell, sizeof cell, "%lld (%.1f%%)", (long long)n, 100.0 * (double)n / (double)of);
        fprintf(out, " %15s", cell);
    }
    json_t *m = json_object_get(o, "median_time_to_engage_s");
    char d[32] = "-", cell[64];
    if (json_is_number(m))
        wb_duration_text(json_number_value(m), d, sizeof d);
    snprintf(cell, sizeof cell, "%s (%lld)", d, (long long)wb_jcount(o, "engaged"));
    fprintf(out, " %15s\n", cell);
}

static const char *attr_source_label(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "source"));
    return s && *s ? s : "(no source)";
}

static void attr_print_header(FILE *out, const char *what)
{
    fprintf(out, "%-20s", what);
    for (size_t i = 0; i < NSTAGES; i++)
        fprintf(out, " %15s", stages[i]);
    fprintf(out, " %15s\n", "median engage");
}

static void attr_print_text(FILE *out, json_t *doc)
{
    size_t i, j;
    json_t *seq, *src;
    attr_print_header(out, "sequence");
    json_array_foreach(json_object_get(doc, "sequences"), i, seq) {
        attr_print_funnel(out, 0, json_string_value(json_object_get(seq, "id")), seq);
        json_array_foreach(json_object_get(seq, "sources"), j, src)
            attr_print_funnel(out, 2, attr_source_label(src), src);
    }
    fputc('\n', out);
    attr_print_header(out, "source");
    json_array_foreach(json_object_get(doc, "sources"), i, src)
        attr_print_funnel(out, 0, attr_source_label(src), src);
    attr_print_funnel(out, 0, "total", json_object_get(doc, "total"));
    json_t *un = json_object_get(doc, "unattributed");
    fprintf(out, "\nrates are of enrolled; median engage: first send to first human reply"
                 " (over the number in brackets)\n"
                 "credited to no sequence (no enrollment before the event): applied %lld, hired %lld\n",
            (long long)wb_jcount(un, "applied"), (long long)wb_jcount(un, "hired"));
}

json_t *wb_attribution_doc(PGconn *c, const char *sequence)
{
    const char *p[] = {sequence};
    json_t *doc = wb_db_json(c, "reading attribution", attribution_sql, 1, p);
    if (!doc)
        return NULL;
    attr_add_list_rates(json_object_get(doc, "sequences"));
    attr_add_list_rates(json_object_get(doc, "sources"));
    attr_add_rates(json_object_get(doc, "total"));
    return doc;
}

int wb_attribution(PGconn *c, const char *sequence, bool json, FILE *out)
{
    return wb_stats_print(wb_attribution_doc(c, sequence), sequence, json, 10, attr_print_text, out);
}
