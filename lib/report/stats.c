/* `warmbench stats`: PostgreSQL builds the whole report as one JSON
 * document (one round trip, set-based); C only prints it. */
#include "warmbench/abtest.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/stats.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Counts of distinct people, per step and per sequence across its steps.
 *
 * Messages: a person has at most one message per step (messages are unique
 * per enrollment and step, enrollments per candidate and sequence), so a
 * step's people are its messages. Across steps a person counts once, at
 * the first step in that state: the later steps' messages look for an
 * earlier one of their enrollment in the same state (steps number from 1,
 * so step 1 has none to look for).
 *
 * Both are grouped before anything is matched with the sequences table
 * (rows of a sequence it no longer has are left out at the end), so the
 * groups are hashed, not sorted.
 *
 * Events: the people are kept by triggers in stats_people, step 0 for the
 * sequence across its steps, and the steps that have events in
 * stats_steps (sql/functions/092_stats.sql), so a count is a count of rows
 * rather than a distinct count over every event (4 s at five million
 * events; README "Scale"). */
static const char stats_sql[] =
    "WITH seqs AS (SELECT id FROM sequences WHERE $1::text IS NULL OR id = $1),"
    " ms AS (SELECT m.sequence_id, m.step,"
    "   count(*) FILTER (WHERE m.state = 'sent') AS sent,"
    "   count(*) FILTER (WHERE m.state = 'failed') AS failed,"
    "   count(*) FILTER (WHERE m.state = 'unknown') AS unknown,"
    "   count(*) FILTER (WHERE m.state IN ('queued','claimed','sending','retry')) AS pending,"
    "   count(*) FILTER (WHERE m.state = 'sent' AND (m.step <= 1"
    "    OR NOT EXISTS (SELECT 1 FROM messages p WHERE p.enrollment_id = m.enrollment_id"
    "                   AND p.step < m.step AND p.state = m.state))) AS first_sent,"
    "   count(*) FILTER (WHERE m.state = 'failed' AND (m.step <= 1"
    "    OR NOT EXISTS (SELECT 1 FROM messages p WHERE p.enrollment_id = m.enrollment_id"
    "                   AND p.step < m.step AND p.state = m.state))) AS first_failed,"
    "   count(*) FILTER (WHERE m.state = 'unknown' AND (m.step <= 1"
    "    OR NOT EXISTS (SELECT 1 FROM messages p WHERE p.enrollment_id = m.enrollment_id"
    "                   AND p.step < m.step AND p.state = m.state))) AS first_unknown,"
    "   bool_or(m.variant IS NOT NULL) AS has_variant"
    "  FROM messages m WHERE $1::text IS NULL OR m.sequence_id = $1"
    "  GROUP BY m.sequence_id, m.step),"
    " mc AS (SELECT sequence_id, step, 0 AS g, sent, failed, unknown, pending FROM ms"
    "  UNION ALL"
    "  SELECT sequence_id, NULL, 1, sum(first_sent)::bigint, sum(first_failed)::bigint,"
    "   sum(first_unknown)::bigint, sum(pending)::bigint FROM ms GROUP BY sequence_id),"
    " pc AS (SELECT p.sequence_id, p.step, p.kind, count(*) AS n FROM stats_people p"
    "  WHERE $1::text IS NULL OR p.sequence_id = $1"
    "  GROUP BY p.sequence_id, p.step, p.kind),"
    " ec AS (SELECT t.sequence_id, nullif(t.step, 0) AS step, (t.step = 0)::integer AS g,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'opened'), 0)::bigint AS opened,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'opened_machine'), 0)::bigint AS opened_machine,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'clicked'), 0)::bigint AS clicked,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'clicked_machine'), 0)::bigint AS clicked_machine,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'replied'), 0)::bigint AS replied,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'auto_replied'), 0)::bigint AS auto_replied,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'bounced'), 0)::bigint AS bounced,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'unsubscribed'), 0)::bigint AS unsubscribed,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'complained'), 0)::bigint AS complained,"
    "   coalesce(sum(pc.n) FILTER (WHERE pc.kind = 'handed_off'), 0)::bigint AS handed_off"
    "  FROM (SELECT sequence_id, step FROM stats_steps WHERE sequence_id IN (SELECT id FROM seqs)"
    "        UNION SELECT sequence_id, 0 FROM stats_steps"
    "        WHERE sequence_id IN (SELECT id FROM seqs)) t"
    "  LEFT JOIN pc ON pc.sequence_id = t.sequence_id AND pc.step = t.step"
    "  GROUP BY t.sequence_id, t.step),"
    " lc AS (SELECT sequence_id, nullif(step, 0) AS step, (step = 0)::integer AS g,"
    "   jsonb_object_agg(substr(kind, 6), n) AS links"
    "  FROM pc WHERE kind LIKE 'link:%' GROUP BY sequence_id, step),"
    " rows AS (SELECT coalesce(mc.sequence_id, ec.sequence_id) AS sequence_id,"
    "   coalesce(mc.step, ec.step) AS step, coalesce(mc.g, ec.g) AS g,"
    "   jsonb_build_object("
    "    'sent', coalesce(mc.sent, 0), 'failed', coalesce(mc.failed, 0),"
    "    'unknown', coalesce(mc.unknown, 0), 'pending', coalesce(mc.pending, 0),"
    "    'opened', coalesce(ec.opened, 0), 'opened_machine', coalesce(ec.opened_machine, 0),"
    "    'clicked', coalesce(ec.clicked, 0), 'clicked_machine', coalesce(ec.clicked_machine, 0),"
    "    'replied', coalesce(ec.replied, 0), 'auto_replied', coalesce(ec.auto_replied, 0),"
    "    'bounced', coalesce(ec.bounced, 0), 'unsubscribed', coalesce(ec.unsubscribed, 0),"
    "    'complained', coalesce(ec.complained, 0),"
    "    'handed_off', coalesce(ec.handed_off, 0)) AS counts"
    "  FROM mc FULL JOIN ec ON ec.sequence_id = mc.sequence_id AND ec.g = mc.g"
    "   AND ec.step IS NOT DISTINCT FROM mc.step),"
    /* A/B: every variant the sequence defines (so one nobody got yet shows
     * as zeros) and every variant messages carry (the definition may have
     * changed since). Events count through their message's variant. When
     * the scan of messages above found none with a variant, the second
     * scan is not made (a one-time filter). */
    " vl AS (SELECT s.id AS sequence_id, st.n::integer AS step, v.v AS variant"
    "  FROM sequences s CROSS JOIN LATERAL jsonb_array_elements(s.definition->'steps')"
    "   WITH ORDINALITY AS st(def, n)"
    "  CROSS JOIN LATERAL generate_series(0, CASE WHEN jsonb_typeof(st.def->'variants') = 'array'"
    "   THEN jsonb_array_length(st.def->'variants') ELSE 0 END - 1) AS v(v)"
    "  WHERE s.id IN (SELECT id FROM seqs)),"
    " vc AS (SELECT m.sequence_id, m.step, m.variant,"
    "   count(DISTINCT m.candidate_id) FILTER (WHERE m.state = 'sent') AS sent,"
    "   count(DISTINCT v.candidate_id) FILTER (WHERE v.type = 'open' AND NOT v.machine) AS opened,"
    "   count(DISTINCT v.candidate_id) FILTER (WHERE v.type = 'click' AND NOT v.machine) AS clicked,"
    "   count(DISTINCT v.candidate_id) FILTER (WHERE v.type = 'reply') AS replied"
    "  FROM messages m LEFT JOIN events v ON v.message_id = m.id"
    "   AND v.type IN ('open', 'click', 'reply')"
    "  WHERE m.sequence_id IN (SELECT id FROM seqs) AND m.variant IS NOT NULL"
    "   AND (SELECT bool_or(has_variant) FROM ms)"
    "  GROUP BY m.sequence_id, m.step, m.variant),"
    " vr AS MATERIALIZED (SELECT coalesce(vl.sequence_id, vc.sequence_id) AS sequence_id,"
    "   coalesce(vl.step, vc.step) AS step, coalesce(vl.variant, vc.variant) AS variant,"
    "   jsonb_build_object('variant', coalesce(vl.variant, vc.variant),"
    "    'sent', coalesce(vc.sent, 0), 'opened', coalesce(vc.opened, 0),"
    "    'clicked', coalesce(vc.clicked, 0), 'replied', coalesce(vc.replied, 0)) AS counts"
    "  FROM vl FULL JOIN vc ON vc.sequence_id = vl.sequence_id AND vc.step = vl.step"
    "   AND vc.variant = vl.variant),"
    " en AS (SELECT sequence_id, count(*) AS enrolled,"
    "   count(*) FILTER (WHERE state = 'active') AS active"
    "  FROM enrollments WHERE sequence_id IN (SELECT id FROM seqs) GROUP BY sequence_id)"
    " SELECT jsonb_build_object('sequences', coalesce(jsonb_agg(seq ORDER BY seq->>'id'), '[]'))"
    " FROM (SELECT jsonb_build_object('id', s.id,"
    "   'enrolled', coalesce(en.enrolled, 0), 'active', coalesce(en.active, 0))"
    "   || coalesce(tot.counts, jsonb_build_object('sent',0,'failed',0,'unknown',0,'pending',0,"
    "      'opened',0,'opened_machine',0,'clicked',0,'clicked_machine',0,'replied',0,"
    "      'auto_replied',0,'bounced',0,'unsubscribed',0,'complained',0,'handed_off',0))"
    "   || jsonb_build_object('links', coalesce(tl.links, '{}'),"
    "      'steps', coalesce((SELECT jsonb_agg(jsonb_build_object('step', r.step)"
    "        || r.counts || jsonb_build_object('links', coalesce(l.links, '{}'))"
    "        || coalesce((SELECT jsonb_build_object('variants', jsonb_agg(x.counts ORDER BY x.variant))"
    "          FROM vr x WHERE x.sequence_id = r.sequence_id AND x.step = r.step"
    "          HAVING count(*) > 0), '{}') ORDER BY r.step)"
    "       FROM rows r LEFT JOIN lc l ON l.sequence_id = r.sequence_id AND l.g = 0"
    "        AND l.step = r.step"
    "       WHERE r.sequence_id = s.id AND r.g = 0), '[]')) AS seq"
    "  FROM seqs s LEFT JOIN en ON en.sequence_id = s.id"
    "  LEFT JOIN rows tot ON tot.sequence_id = s.id AND tot.g = 1"
    "  LEFT JOIN lc tl ON tl.sequence_id = s.id AND tl.g = 1) q";

static const char *const columns[] = {"sent", "failed", "unknown", "opened", "clicked",
                                      "replied", "auto_replied", "bounced", "unsubscribed",
                                      "complained", "handed_off"};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

static void stats_print_row(FILE *out, const char *label, json_t *o)
{
    fprintf(out, "  %-8s", label);
    for (size_t i = 0; i < NCOLUMNS; i++)
        fprintf(out, " %*lld", (int)strlen(columns[i]) > 7 ? (int)strlen(columns[i]) : 7,
                (long long)json_integer_value(json_object_get(o, columns[i])));
    fputc('\n', out);
}

static void stats_print_rate(FILE *out, const char *what, json_t *o, const char *num)
{
    json_int_t sent = json_integer_value(json_object_get(o, "sent"));
    json_int_t n = json_integer_value(json_object_get(o, num));
    if (sent > 0)
        fprintf(out, " %s %.1f%%", what, 100.0 * (double)n / (double)sent);
}

/* Rates per person sent to, as fractions (0 when nothing was sent). */
static void stats_add_rates(json_t *o)
{
    static const char *const of[][2] = {{"open", "opened"}, {"click", "clicked"},
                                        {"reply", "replied"}, {"bounce", "bounced"},
                                        {"unsubscribe", "unsubscribed"},
                                        {"complaint", "complained"}};
    json_int_t sent = json_integer_value(json_object_get(o, "sent"));
    json_t *rates = json_object();
    for (size_t i = 0; i < sizeof of / sizeof of[0]; i++) {
        json_int_t n = json_integer_value(json_object_get(o, of[i][1]));
        json_object_set_new(rates, of[i][0], json_real(sent ? (double)n / (double)sent : 0.0));
    }
    json_object_set_new(o, "rates", rates);
}

/* Each variant's reply rate, and the p-value of its difference from
 * variant 0 (pooled two-proportion z-test; null for variant 0 itself and
 * when either has no one sent to). */
static void stats_add_variant_stats(json_t *variants)
{
    json_t *base = json_array_get(variants, 0);
    size_t k;
    json_t *v;
    json_array_foreach(variants, k, v) {
        json_int_t sent = wb_jcount(v, "sent"), replied = wb_jcount(v, "replied");
        json_object_set_new(v, "reply_rate",
                            json_real(sent ? (double)replied / (double)sent : 0.0));
        double p = k == 0 ? WB_ZTEST_NONE
                          : wb_ztest_two_prop_p((long)replied, (long)sent,
                                                (long)wb_jcount(base, "replied"),
                                                (long)wb_jcount(base, "sent"));
        json_object_set_new(v, "p_value", p < 0 ? json_null() : json_real(p));
    }
}

static void stats_add_all_rates(json_t *doc)
{
    size_t i, j;
    json_t *seq, *st;
    json_array_foreach(json_object_get(doc, "sequences"), i, seq) {
        stats_add_rates(seq);
        json_array_foreach(json_object_get(seq, "steps"), j, st) {
            stats_add_rates(st);
            stats_add_variant_stats(json_object_get(st, "variants"));
        }
    }
}

static void stats_print_variants(FILE *out, json_t *st)
{
    json_t *variants = json_object_get(st, "variants");
    if (!json_array_size(variants))
        return;
    char label[32];
    snprintf(label, sizeof label, "step %lld A/B", (long long)wb_jcount(st, "step"));
    fprintf(out, "  %-18s %7s %7s %7s %7s %10s %9s\n", label, "sent", "opened", "clicked",
            "replied", "reply rate", "p vs 0");
    size_t k;
    json_t *v;
    json_array_foreach(variants, k, v) {
        json_t *p = json_object_get(v, "p_value");
        char pv[16] = "-";
        if (json_is_number(p))
            snprintf(pv, sizeof pv, json_number_value(p) < 1e-4 ? "<0.0001" : "%.4f",
                     json_number_value(p));
        snprintf(label, sizeof label, "variant %lld", (long long)wb_jcount(v, "variant"));
        fprintf(out, "    %-16s %7lld %7lld %7lld %7lld %9.1f%% %9s\n", label,
                (long long)wb_jcount(v, "sent"), (long long)wb_jcount(v, "opened"),
                (long long)wb_jcount(v, "clicked"), (long long)wb_jcount(v, "replied"),
                100.0 * json_number_value(json_object_get(v, "reply_rate")), pv);
    }
}

static void stats_print_text(FILE *out, json_t *doc)
{
    size_t i;
    json_t *seq;
    json_array_foreach(json_object_get(doc, "sequences"), i, seq) {
        fprintf(out, "%s: %lld enrolled, %lld active\n", json_string_value(json_object_get(seq, "id")),
                (long long)json_integer_value(json_object_get(seq, "enrolled")),
                (long long)json_integer_value(json_object_get(seq, "active")));
        fprintf(out, "  %-8s", "step");
        for (size_t k = 0; k < NCOLUMNS; k++)
            fprintf(out, " %7s", columns[k]);
        fputc('\n', out);
        size_t j;
        json_t *st;
        json_array_foreach(json_object_get(seq, "steps"), j, st) {
            char label[16];
            snprintf(label, sizeof label, "%lld", (long long)json_integer_value(json_object_get(st, "step")));
            stats_print_row(out, label, st);
        }
        stats_print_row(out, "total", seq);
        fprintf(out, "  rates:");
        stats_print_rate(out, "open", seq, "opened");
        stats_print_rate(out, "click", seq, "clicked");
        stats_print_rate(out, "reply", seq, "replied");
        stats_print_rate(out, "bounce", seq, "bounced");
        fprintf(out, " (machine opens %lld, machine clicks %lld)\n",
                (long long)json_integer_value(json_object_get(seq, "opened_machine")),
                (long long)json_integer_value(json_object_get(seq, "clicked_machine")));
        json_array_foreach(json_object_get(seq, "steps"), j, st)
            stats_print_variants(out, st);
    }
}

json_t *wb_stats_doc(PGconn *c, const char *sequence)
{
    const char *p[] = {sequence};
    json_t *doc = wb_db_json(c, "reading stats", stats_sql, 1, p);
    if (doc)
        stats_add_all_rates(doc);
    return doc;
}

int wb_stats_print(json_t *doc, const char *sequence, bool json, int precision,
                   void (*text)(FILE *, json_t *), FILE *out)
{
    if (!doc)
        return WB_EXIT_FAIL;
    if (sequence && json_array_size(json_object_get(doc, "sequences")) == 0) {
        fprintf(stderr, "warmbench: stats: unknown sequence \"%s\"\n", sequence);
        json_decref(doc);
        return WB_EXIT_USAGE;
    }
    if (json) {
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(precision));
        fputc('\n', out);
    } else {
        text(out, doc);
    }
    json_decref(doc);
    return WB_EXIT_OK;
}

int wb_stats(PGconn *c, const char *sequence, bool json, FILE *out)
{
    return wb_stats_print(wb_stats_doc(c, sequence), sequence, json, 4, stats_print_text, out);
}
