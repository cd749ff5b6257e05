/* `warmbench pool`: the health of the talent pool. PostgreSQL builds the
 * whole document in one set-based statement (one pass over candidates and
 * suppressions); C only prints it.
 *
 * The pool is the candidates who can be mailed: in the table and not
 * suppressed. A person leaves it when their suppression is made, whatever
 * the reason (unsubscribe, complaint, hard bounce, manual, forget,
 * retention). An erased person's row is gone, so a suppression without an
 * address counts as one person leaving. */
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/pool.h"
#include "warmbench/scoring.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* $1: the ready threshold, $2 the half-life (read first, so that
 * wb_score_decay, given a plain value, is inlined: called per row, as with
 * a sub-select argument, it cost 2 us a candidate). Everything but the
 * deciles is one scan of wb_pool_ledger (sql/functions/090_report.sql:
 * each candidate with their suppression, and the suppressions of erased
 * people) grouped by tag array (g: a pool has far fewer tag combinations
 * than people): the scalar figures are sums of the groups' counts, and a
 * tag's size and ready count sums over the arrays that hold it (each
 * array's distinct tags, so a tag repeated in one candidate's array counts
 * once). That aggregate has only counts, so PostgreSQL can split the scan
 * among parallel workers; the deciles (d), an ordered-set aggregate, read
 * the ledger once more. The dates are sub-selects, computed once, not a
 * CTE, which would keep the workers out. Before, a materialized CTE fed
 * both passes in one process (README "Scale"). The current score is
 * wb_score_now's (sql/functions/040_scoring.sql: a score without score_at
 * is not decayed), taken apart as said. */
#define POOL_ROWS \
    "(SELECT l.tags, l.candidate_id, l.suppression_id, l.created_at, l.left_at," \
    "   l.left_pool, l.last_engaged_at," \
    "   l.candidate_id IS NOT NULL AND l.suppression_id IS NULL AS in_pool," \
    "   CASE WHEN l.score_at IS NULL THEN l.score" \
    "    ELSE wb_score_decay(l.score, wb_days_between(l.score_at, now()), $2::float8)" \
    "   END AS score" \
    "  FROM wb_pool_ledger l) j"
static const char pool_sql[] =
    "WITH g AS (SELECT j.tags,"
    "   count(j.candidate_id) AS candidates,"
    "   count(*) FILTER (WHERE j.candidate_id IS NOT NULL AND j.suppression_id IS NOT NULL)"
    "    AS suppressed,"
    "   count(*) FILTER (WHERE j.candidate_id IS NOT NULL"
    "    AND j.created_at >= (SELECT now() - interval '30 days')) AS new30,"
    "   count(*) FILTER (WHERE j.candidate_id IS NOT NULL"
    "    AND j.created_at >= (SELECT now() - interval '90 days')) AS new90,"
    "   count(*) FILTER (WHERE j.left_pool AND j.left_at >= (SELECT now() - interval '30 days'))"
    "    AS left30,"
    "   count(*) FILTER (WHERE j.left_pool AND j.left_at >= (SELECT now() - interval '90 days'))"
    "    AS left90,"
    "   count(*) FILTER (WHERE j.in_pool) AS size,"
    "   count(*) FILTER (WHERE j.in_pool"
    "    AND j.last_engaged_at >= (SELECT now() - interval '90 days')) AS engaged,"
    "   count(*) FILTER (WHERE j.in_pool AND coalesce(j.last_engaged_at, j.created_at)"
    "    < (SELECT now() - interval '90 days')) AS dormant,"
    "   count(*) FILTER (WHERE j.in_pool AND j.score >= $1::float8"
    "    AND j.last_engaged_at >= (SELECT now() - interval '30 days')) AS ready"
    "  FROM " POOL_ROWS
    "  GROUP BY j.tags),"
    " d AS (SELECT percentile_cont(ARRAY[0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1])"
    "   WITHIN GROUP (ORDER BY j.score) AS deciles"
    "  FROM " POOL_ROWS " WHERE j.in_pool),"
    " a AS (SELECT coalesce(sum(candidates), 0)::bigint AS candidates,"
    "   coalesce(sum(suppressed), 0)::bigint AS suppressed,"
    "   coalesce(sum(new30), 0)::bigint AS new30, coalesce(sum(new90), 0)::bigint AS new90,"
    "   coalesce(sum(left30), 0)::bigint AS left30, coalesce(sum(left90), 0)::bigint AS left90,"
    "   coalesce(sum(size), 0)::bigint AS size, coalesce(sum(engaged), 0)::bigint AS engaged,"
    "   coalesce(sum(dormant), 0)::bigint AS dormant, coalesce(sum(ready), 0)::bigint AS ready,"
    "   (SELECT deciles FROM d) AS deciles"
    "  FROM g),"
    " tg AS (SELECT u.tag, sum(g.size)::bigint AS size, sum(g.ready)::bigint AS ready"
    "  FROM g CROSS JOIN LATERAL (SELECT DISTINCT x AS tag FROM unnest(g.tags) x) u"
    "  WHERE g.size > 0"
    "  GROUP BY u.tag)"
    " SELECT jsonb_build_object("
    "  'size', a.size, 'candidates', a.candidates, 'suppressed', a.suppressed,"
    "  'growth', jsonb_build_object("
    "   '30d', jsonb_build_object('new', a.new30, 'left', a.left30, 'net', a.new30 - a.left30),"
    "   '90d', jsonb_build_object('new', a.new90, 'left', a.left90, 'net', a.new90 - a.left90)),"
    "  'engaged_90d', jsonb_build_object('count', a.engaged,"
    "   'share', CASE WHEN a.size = 0 THEN 0 ELSE a.engaged::float8 / a.size END),"
    "  'dormant', jsonb_build_object('days', 90, 'count', a.dormant,"
    "   'share', CASE WHEN a.size = 0 THEN 0 ELSE a.dormant::float8 / a.size END),"
    "  'score_deciles', coalesce(to_jsonb(a.deciles), '[]'),"
    "  'ready', jsonb_build_object('threshold', $1::float8, 'engaged_days', 30,"
    "   'total', a.ready,"
    "   'by_tag', coalesce((SELECT jsonb_agg(jsonb_build_object('tag', tag, 'size', size,"
    "      'ready', ready) ORDER BY ready DESC, size DESC, tag) FROM tg), '[]')))"
    " FROM a";

/* Tags are data: control characters never reach the terminal. */
static void pool_put_safe(FILE *out, const char *s)
{
    for (; s && *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static long long pool_int_at(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static double pool_num_at(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void pool_print_growth(FILE *out, json_t *g, const char *key, const char *label)
{
    json_t *w = json_object_get(g, key);
    fprintf(out, "  %s: %lld new, %lld left, net %+lld\n", label, pool_int_at(w, "new"),
            pool_int_at(w, "left"), pool_int_at(w, "net"));
}

static void pool_print_deciles(FILE *out, json_t *d)
{
    size_t i;
    json_t *v;
    fprintf(out, "score deciles (min, 10%% .. 90%%, max):");
    if (json_array_size(d) == 0)
        fprintf(out, " none (empty pool)");
    json_array_foreach(d, i, v)
        fprintf(out, " %.2f", json_number_value(v));
    fputc('\n', out);
}

/* At most this many tags in the terminal; --json has them all. */
#define TAGS_SHOWN 20

static void pool_print_ready(FILE *out, json_t *r)
{
    fprintf(out, "ready now (score >= %g, engaged within %lld days): %lld\n",
            pool_num_at(r, "threshold"), pool_int_at(r, "engaged_days"), pool_int_at(r, "total"));
    json_t *tags = json_object_get(r, "by_tag");
    if (json_array_size(tags) == 0)
        return;
    fprintf(out, "  %-24s %9s %9s\n", "tag", "pool", "ready");
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (i == TAGS_SHOWN) {
            fprintf(out, "  ... and %zu more tag(s) (see --json)\n", json_array_size(tags) - i);
            break;
        }
        fputs("  ", out);
        const char *name = json_string_value(json_object_get(t, "tag"));
        pool_put_safe(out, name);
        fprintf(out, "%*s %9lld %9lld\n", name && strlen(name) < 24 ? 24 - (int)strlen(name) : 0, "",
                pool_int_at(t, "size"), pool_int_at(t, "ready"));
    }
}

static void pool_print_text(FILE *out, json_t *doc)
{
    json_t *e = json_object_get(doc, "engaged_90d"), *d = json_object_get(doc, "dormant");
    fprintf(out, "pool: %lld candidate(s) can be mailed (%lld in the database, %lld suppressed)\n",
            pool_int_at(doc, "size"), pool_int_at(doc, "candidates"), pool_int_at(doc, "suppressed"));
    fprintf(out, "growth (new minus left: suppressed or erased):\n");
    pool_print_growth(out, json_object_get(doc, "growth"), "30d", "30 days");
    pool_print_growth(out, json_object_get(doc, "growth"), "90d", "90 days");
    fprintf(out, "engaged in the last 90 days: %lld (%.1f%%)\n", pool_int_at(e, "count"),
            100.0 * pool_num_at(e, "share"));
    fprintf(out, "dormant (no engagement in %lld days): %lld (%.1f%%)\n", pool_int_at(d, "days"),
            pool_int_at(d, "count"), 100.0 * pool_num_at(d, "share"));
    pool_print_deciles(out, json_object_get(doc, "score_deciles"));
    pool_print_ready(out, json_object_get(doc, "ready"));
}

/* The half-life as stored (wb_score_half_life), as text, or NULL after
 * reporting. */
static char *pool_half_life(PGconn *c)
{
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading pool health",
                             "SELECT wb_score_half_life()::text", 0, NULL);
    if (!r)
        return NULL;
    char *v = wb_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

json_t *wb_pool_query(PGconn *c, const struct wb_config *cfg)
{
    struct wb_scoring s;
    wb_scoring_from_config(cfg, &s);
    char *threshold = wb_xasprintf("%.17g", s.ready_threshold);
    wb_scoring_free(&s);
    char *half_life = pool_half_life(c);
    json_t *doc = NULL;
    if (half_life) {
        const char *p[] = {threshold, half_life};
        doc = wb_db_json(c, "reading pool health", pool_sql, 2, p);
    }
    free(half_life);
    free(threshold);
    return doc;
}

int wb_pool(PGconn *c, const struct wb_config *cfg, bool json, FILE *out)
{
    json_t *doc = wb_pool_query(c, cfg);
    if (!doc)
        return WB_EXIT_FAIL;
    if (json) {
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        fputc('\n', out);
    } else {
        pool_print_text(out, doc);
    }
    json_decref(doc);
    return WB_EXIT_OK;
}
