/* One statement enrolls a whole audience: classification, insert and the
 * `enrolled` events happen together, so concurrent enrollers (the CLI and
 * several daemons) cannot enroll a candidate twice (unique key + ON
 * CONFLICT). */
#include "warmbench/enroll.h"
#include "warmbench/pgtext.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const wb_sequence_sync_sql =
    "INSERT INTO sequences (id, content_hash, definition) VALUES ($1, $2, $3::jsonb) "
    "ON CONFLICT (id) DO UPDATE SET content_hash = excluded.content_hash, "
    "definition = excluded.definition, loaded_at = now() "
    "WHERE sequences.content_hash <> excluded.content_hash";

/* The checks are joins, not EXISTS tests inside the CASE (which run once
 * per candidate as index probes): the planner then hashes the sequence's
 * enrollments when the audience is large and probes the index when it is
 * one address (ATS in). The address hash takes the salt once
 * (sql/functions/010_hash.sql: wb_email_hash per row cost 7 us a candidate). The
 * first step's due time depends only on the zone and the country (its
 * holidays; the start time is the statement's), so wb_step_due, PL/pgSQL,
 * runs once per distinct pair instead of once per candidate. What is left at a million is mostly
 * PostgreSQL's own per-row work: the two inserts, their indexes and five
 * foreign-key checks per candidate (README "Scale"). */
#define ENR_TARGET \
    " SELECT c.id, coalesce($11::text, c.timezone, $12::text, 'UTC') AS zone," \
    "  upper(btrim(c.attrs->>'country')) AS country," \
    "  CASE" \
    "   WHEN s.reason = 'unsubscribe' THEN 'unsubscribed'" \
    "   WHEN s.id IS NOT NULL THEN 'suppressed'" \
    "   WHEN c.consent IS NULL THEN 'no_consent'" \
    "   WHEN a.id IS NOT NULL THEN 'already'" \
    "   WHEN b.candidate_id IS NOT NULL THEN 'busy'" \
    "   ELSE 'enrolled' END AS verdict" \
    " FROM candidates c" \
    " LEFT JOIN suppressions s" \
    "  ON s.email_hash = wb_email_hash_salted(c.email, (SELECT wb_hash_salt()))" \
    " LEFT JOIN enrollments a ON a.candidate_id = c.id AND a.sequence_id = $1" \
    " LEFT JOIN (SELECT DISTINCT e.candidate_id FROM enrollments e" \
    "            WHERE $2::boolean AND e.state = 'active' AND e.sequence_id <> $1) b" \
    "  ON b.candidate_id = c.id" \
    " WHERE ($3::text[] IS NULL OR c.tags && $3::text[])" \
    "   AND ($4::text[] IS NULL OR lower(c.email) = ANY ($4::text[]))" \
    "   AND ($5::text[] IS NULL OR c.skills && $5::text[])" \
    "   AND ($6::text[] IS NULL OR lower(c.location) = ANY ($6::text[]))" \
    "   AND ($7::text[] IS NULL OR lower(c.source) = ANY ($7::text[]))" \
    "   AND ($8::float8 IS NULL OR wb_score_now(c.score, c.score_at) >= $8::float8)" \
    "   AND ($9::float8 IS NULL OR wb_score_now(c.score, c.score_at) <= $9::float8)" \
    "   AND ($10::integer IS NULL OR coalesce(c.last_engaged_at, c.created_at)" \
    "        < now() - make_interval(days => $10::integer))"

static const char enroll_sql[] =
    "WITH target AS MATERIALIZED (" ENR_TARGET
    "), zones AS MATERIALIZED ("
    " SELECT z.zone, z.country, wb_step_due(now(), (SELECT definition FROM sequences"
    "        WHERE id = $1), 0, z.zone, z.country) AS due"
    " FROM (SELECT DISTINCT zone, country FROM target WHERE verdict = 'enrolled') z"
    "), ins AS ("
    " INSERT INTO enrollments (candidate_id, sequence_id, step, next_due_at, source)"
    " SELECT t.id, $1, 0, z.due, $13"
    " FROM target t JOIN zones z ON z.zone = t.zone"
    "  AND z.country IS NOT DISTINCT FROM t.country WHERE t.verdict = 'enrolled'"
    " ON CONFLICT (candidate_id, sequence_id) DO NOTHING"
    " RETURNING id, candidate_id"
    "), ev AS ("
    " INSERT INTO events (candidate_id, enrollment_id, sequence_id, type, detail)"
    " SELECT candidate_id, id, $1, 'enrolled', jsonb_build_object('source', $13::text) FROM ins"
    ")"
    " SELECT 'enrolled', count(*) FROM ins"
    " UNION ALL"
    " SELECT verdict, count(*) FROM target WHERE verdict <> 'enrolled' GROUP BY verdict";

/* `plan` reads the same classification without enrolling (ENR_TARGET
 * is the one copy of who would be enrolled or skipped and why). */
const char *const wb_enroll_target_cte = "WITH target AS MATERIALIZED (" ENR_TARGET ")";

static char *enr_array_or_null(char *const *v, size_t n, int lower)
{
    return n ? wb_pg_array_str(v, n, lower) : NULL;
}

void wb_enroll_query_build(const struct wb_sequence *s, char *const *tags, size_t ntags,
                           char *const *emails, size_t nemails, const char *source,
                           struct wb_enroll_query *q)
{
    const struct wb_audience *a = &s->audience;
    bool explicit = ntags || nemails;
    memset(q, 0, sizeof *q);
    q->sql = enroll_sql;
    char **p = q->params;
    p[0] = wb_xstrdup(s->id);
    p[1] = wb_xstrdup(a->exclusive ? "true" : "false");
    if (explicit) {
        p[2] = enr_array_or_null(tags, ntags, 0);
        p[3] = enr_array_or_null(emails, nemails, 1);
    } else {
        p[2] = enr_array_or_null(a->tags_any, a->n_tags_any, 0);
        p[4] = enr_array_or_null(a->skills_any, a->n_skills_any, 0);
        p[5] = enr_array_or_null(a->locations_any, a->n_locations_any, 1);
        p[6] = enr_array_or_null(a->sources_any, a->n_sources_any, 1);
        p[7] = a->has_score_min ? wb_xasprintf("%.17g", a->score_min) : NULL;
        p[8] = a->has_score_max ? wb_xasprintf("%.17g", a->score_max) : NULL;
        p[9] = a->dormant_days > 0 ? wb_xasprintf("%d", a->dormant_days) : NULL;
    }
    p[10] = s->window.timezone ? wb_xstrdup(s->window.timezone) : NULL;
    p[11] = s->window.fallback_timezone ? wb_xstrdup(s->window.fallback_timezone) : NULL;
    p[12] = wb_xstrdup(source);
}

void wb_enroll_query_free(struct wb_enroll_query *q)
{
    for (int i = 0; i < WB_ENROLL_NPARAMS; i++)
        free(q->params[i]);
    memset(q, 0, sizeof *q);
}

void wb_enroll_count_row(struct wb_enroll_counts *c, const char *verdict, long n)
{
    if (!strcmp(verdict, "enrolled"))
        c->enrolled += n;
    else if (!strcmp(verdict, "suppressed"))
        c->suppressed += n;
    else if (!strcmp(verdict, "unsubscribed"))
        c->unsubscribed += n;
    else if (!strcmp(verdict, "no_consent"))
        c->no_consent += n;
    else if (!strcmp(verdict, "already"))
        c->already += n;
    else if (!strcmp(verdict, "busy"))
        c->busy += n;
}
