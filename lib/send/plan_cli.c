/* `warmbench plan`: reads what the claim would see, in one READ ONLY
 * transaction, runs the simulation (plan_sim.c) and prints its figures
 * (plan_out.c). See plan.h. */
#include "warmbench/plan.h"
#include "warmbench/buf.h"
#include "warmbench/db.h"
#include "warmbench/enroll.h"
#include "warmbench/exitcodes.h"
#include "warmbench/pgtext.h"
#include "warmbench/sequence.h"
#include "warmbench/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per configured sender: today's claims and last send (sender_usage, what
 * the claim holds daily_limit and min_interval_s against), its first UTC
 * day of sending (warm-up, as wb_sender_guard reads it) and a pause. */
static const char senders_sql[] =
    "SELECT coalesce(u.sent, 0), coalesce(extract(epoch FROM u.last_send_at)::float8, 0),"
    " (SELECT min(t.day) - '1970-01-01'::date FROM sender_stats t"
    "  WHERE t.sender = s.name AND t.sent > 0), g.paused_reason"
    " FROM unnest($1::text[]) WITH ORDINALITY AS s(name, ord)"
    " LEFT JOIN sender_usage u ON u.sender = s.name AND u.day = (now() AT TIME ZONE 'UTC')::date"
    " LEFT JOIN sender_guard g ON g.sender = s.name"
    " ORDER BY s.ord";

/* The other sequences with active enrollments, as the daemon stored them;
 * and whether the planned one is paused in the database. */
static const char seqs_sql[] =
    "SELECT s.id, s.definition::text, s.paused_at IS NOT NULL FROM sequences s"
    " WHERE s.id <> $1 AND EXISTS (SELECT 1 FROM enrollments e"
    "  WHERE e.sequence_id = s.id AND e.state = 'active') ORDER BY s.id";
static const char paused_sql[] =
    "SELECT extract(epoch FROM now())::float8,"
    " coalesce((SELECT paused_at IS NOT NULL FROM sequences WHERE id = $1), false)";

/* Every active enrollment with a step left: its next step's due time and
 * sender; a retry waiting (queued or retry message) goes at its
 * next_attempt_at; a step on the wire is taken as sent now (its next step
 * timed from now); an open task holds its enrollment until it is closed;
 * the window's zone and calendar country (pc_read_windows). The planned
 * sequence's steps are the file's ($2). */
static const char enr_sql[] =
    "SELECT e.candidate_id, e.sequence_id, e.step, e.paused_at IS NOT NULL,"
    "  extract(epoch FROM coalesce(e.next_due_at, r.at,"
    "   wb_step_due(now(), d.def, e.step, c.timezone, c.attrs->>'country')))::float8,"
    "  r.at IS NOT NULL, coalesce(r.sender, wb_step_sender(d.def, e.step, e.candidate_id)),"
    "  c.email, e.next_due_at IS NULL AND r.at IS NULL,"
    "  coalesce(extract(epoch FROM e.ooo_until)::float8, 0),"
    "  EXISTS (SELECT 1 FROM tasks t WHERE t.enrollment_id = e.id AND t.state = 'open'),"
    "  CASE WHEN d.def ? 'window' THEN wb_window_zone(d.def, c.timezone) END,"
    "  wb_plan_window_country(d.def, c.attrs->>'country')"
    " FROM enrollments e JOIN sequences s ON s.id = e.sequence_id"
    " JOIN candidates c ON c.id = e.candidate_id"
    " CROSS JOIN LATERAL (SELECT CASE WHEN e.sequence_id = $1 THEN $2::jsonb"
    "   ELSE s.definition END AS def) d"
    " LEFT JOIN LATERAL (SELECT m.next_attempt_at AS at, m.sender FROM messages m"
    "   WHERE m.enrollment_id = e.id AND m.state IN ('queued', 'retry')"
    "   ORDER BY m.step DESC LIMIT 1) r ON true"
    " WHERE e.state = 'active'"
    "  AND (e.step < jsonb_array_length(d.def->'steps') OR r.at IS NOT NULL)";

/* The messages the contact policy counts (as wb_contact_ok_at does). */
static const char history_sql[] =
    "SELECT m.candidate_id, m.sequence_id,"
    " extract(epoch FROM coalesce(m.sent_at, m.created_at))::float8 FROM messages m"
    " WHERE m.state NOT IN ('cancelled', 'failed')"
    "  AND coalesce(m.sent_at, m.created_at) > now() - make_interval(days => $1::integer)";

/* The open spans of each (sequence, zone, country) group's window. */
static const char windows_sql[] =
    "SELECT grp, open_at, close_at FROM wb_plan_windows($1::jsonb, $2::integer[], $3::text[],"
    " $4::text[], $5::float8, $6::float8) ORDER BY grp, open_at";

static const char next_sql[] =
    "SELECT ord, due, sender FROM wb_plan_next($1::jsonb, $2::float8[], $3::integer[],"
    " $4::integer[], $5::bigint[])";

struct pc {
    PGconn *c;
    const struct wb_config *cfg;
    const struct wb_sequence *s;
    struct wb_plan p;
    struct wb_plan_facts f;
    char **seq_ids;              /* [n_seqs] */
    const char **zone, **country; /* [n_items]: its window's, in the results read (or NULL) */
    size_t cap_zone;
    char *defs;                  /* JSON array of the definitions, by index */
    long long *cands;            /* sorted candidate ids, index = person */
    size_t n_cands, cap_cands;
};

static int pc_sender(const struct pc *x, const char *id)
{
    for (size_t i = 0; id && i < x->cfg->n_senders; i++)
        if (!strcmp(x->cfg->senders[i].id, id))
            return (int)i;
    return -1;
}

static int pc_seq(const struct pc *x, const char *id)
{
    for (size_t i = 0; i < x->p.n_seqs; i++)
        if (!strcmp(x->seq_ids[i], id))
            return (int)i;
    return -1;
}

/* A sequence's step count and least delays, from its definition. */
static void pc_add_seq(struct pc *x, const char *id, json_t *def, bool paused)
{
    struct wb_plan *p = &x->p;
    p->seqs = wb_xrealloc(p->seqs, (p->n_seqs + 1) * sizeof *p->seqs);
    x->seq_ids = wb_xrealloc(x->seq_ids, (p->n_seqs + 1) * sizeof *x->seq_ids);
    json_t *steps = json_object_get(def, "steps");
    struct wb_plan_seq *q = &p->seqs[p->n_seqs];
    q->n_steps = json_array_size(steps);
    q->min_after = wb_xcalloc(q->n_steps + 1, sizeof *q->min_after);
    q->task = wb_xcalloc(q->n_steps + 1, sizeof *q->task);
    for (size_t i = 0; i < q->n_steps; i++) {
        json_t *st = json_array_get(steps, i);
        long d = wb_duration_parse(json_string_value(json_object_get(st, "after")) ?: "");
        q->min_after[i] = d > 0 ? (double)d : 0;
        q->task[i] = json_object_get(st, "task") != NULL;
    }
    q->paused = paused || json_is_true(json_object_get(def, "paused"));
    x->seq_ids[p->n_seqs++] = wb_xstrdup(id);
}

static void pc_note_cand(struct pc *x, long long id)
{
    if (x->n_cands == x->cap_cands) {
        x->cap_cands = x->cap_cands ? 2 * x->cap_cands : 256;
        x->cands = wb_xrealloc(x->cands, x->cap_cands * sizeof *x->cands);
    }
    x->cands[x->n_cands++] = id;
}

static int pc_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long pc_person(const struct pc *x, long long id)
{
    const long long *f = bsearch(&id, x->cands, x->n_cands, sizeof id, pc_cmp_ll);
    return f ? f - x->cands : -1;
}

/* ---- reading ---- */

static int pc_read_senders(struct pc *x)
{
    const struct wb_config *cfg = x->cfg;
    char **names = wb_xcalloc(cfg->n_senders + 1, sizeof *names);
    for (size_t i = 0; i < cfg->n_senders; i++)
        names[i] = cfg->senders[i].id;
    char *arr = wb_pg_array_str(names, cfg->n_senders, 0);
    free(names);
    const char *prm[] = {arr};
    PGresult *r = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the senders' usage", senders_sql,
                             1, prm);
    free(arr);
    if (!r)
        return -1;
    x->p.n_senders = cfg->n_senders;
    x->p.senders = wb_xcalloc(cfg->n_senders + 1, sizeof *x->p.senders);
    x->f.sender_paused = wb_xcalloc(cfg->n_senders + 1, sizeof *x->f.sender_paused);
    for (int i = 0; i < PQntuples(r) && (size_t)i < cfg->n_senders; i++) {
        struct wb_plan_sender *s = &x->p.senders[i];
        s->cfg = &cfg->senders[i];
        s->used_today = atol(PQgetvalue(r, i, 0));
        s->last_send = atof(PQgetvalue(r, i, 1));
        s->first_day = PQgetisnull(r, i, 2) ? -1 : atol(PQgetvalue(r, i, 2));
        s->paused = !PQgetisnull(r, i, 3);
        if (s->paused)
            x->f.sender_paused[i] = wb_xstrdup(PQgetvalue(r, i, 3));
    }
    PQclear(r);
    return 0;
}

static int pc_read_seqs(struct pc *x)
{
    const char *prm[] = {x->s->id};
    PGresult *r = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the sequence", paused_sql, 1, prm);
    if (!r)
        return -1;
    x->p.now = atof(PQgetvalue(r, 0, 0));
    x->f.seq_paused = !strcmp(PQgetvalue(r, 0, 1), "t") ||
                      json_is_true(json_object_get(x->s->definition, "paused"));
    PQclear(r);
    pc_add_seq(x, x->s->id, x->s->definition, x->f.seq_paused);
    json_t *defs = json_array();
    json_array_append(defs, x->s->definition);
    if (!(r = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the other sequences", seqs_sql, 1, prm))) {
        json_decref(defs);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *def = json_loads(PQgetvalue(r, i, 1), 0, NULL);
        if (!def)
            def = json_object();
        pc_add_seq(x, PQgetvalue(r, i, 0), def, !strcmp(PQgetvalue(r, i, 2), "t"));
        json_array_append_new(defs, def);
    }
    PQclear(r);
    x->defs = json_dumps(defs, JSON_COMPACT);
    json_decref(defs);
    return 0;
}

/* Who the audience would enroll now and who it skips, with enroll's own
 * classification (wb_enroll_target_cte); the first step timed as enroll
 * times it (per zone and country, from now). */
static int pc_read_audience(struct pc *x, PGresult **out)
{
    struct wb_enroll_query q;
    wb_enroll_query_build(x->s, NULL, 0, NULL, 0, "plan", &q);
    char *sql = wb_xasprintf(
        "%s, zones AS MATERIALIZED (SELECT z.zone, z.country,"
        " extract(epoch FROM wb_step_due(now(), $14::jsonb, 0, z.zone, z.country))::float8 AS due"
        " FROM (SELECT DISTINCT zone, country FROM target WHERE verdict = 'enrolled') z)"
        " SELECT t.verdict, t.id, c.email, z.due,"
        "  CASE WHEN t.verdict = 'enrolled' THEN coalesce($15::text,"
        "   wb_step_sender($14::jsonb, 0, t.id)) END, $13::text,"
        "  CASE WHEN $14::jsonb ? 'window' THEN wb_window_zone($14::jsonb, c.timezone) END,"
        "  wb_plan_window_country($14::jsonb, c.attrs->>'country')"
        " FROM target t JOIN candidates c ON c.id = t.id"
        " LEFT JOIN zones z ON z.zone = t.zone AND z.country IS NOT DISTINCT FROM t.country"
        " ORDER BY CASE WHEN t.verdict <> 'enrolled' THEN t.verdict || ' ' || lower(c.email) END",
        wb_enroll_target_cte);
    char *def = json_dumps(x->s->definition, JSON_COMPACT);
    /* Step 1's sender when it is no owner's: the same for everyone
     * (wb_step_sender then only reads the definition). */
    const char *prm[WB_ENROLL_NPARAMS + 2];
    for (int i = 0; i < WB_ENROLL_NPARAMS; i++)
        prm[i] = q.params[i];
    prm[WB_ENROLL_NPARAMS] = def;
    prm[WB_ENROLL_NPARAMS + 1] = x->s->n_steps ? wb_step_sender(x->s, 0, NULL) : NULL;
    *out = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the audience", sql, WB_ENROLL_NPARAMS + 2,
                      prm);
    free(sql);
    free(def);
    wb_enroll_query_free(&q);
    return *out ? 0 : -1;
}

/* A pending send; zone and country (its window's, or NULL) are row r's
 * columns zc and zc + 1. */
static void pc_item(struct pc *x, long long cand, int seq, int step, double due,
                    const char *sender, double hold, bool retry, const PGresult *r, int row,
                    int zc)
{
    struct wb_plan_item it = {due, seq, step, pc_sender(x, sender), (size_t)pc_person(x, cand),
                              hold, NULL, retry};
    if (seq == 0 && it.sender < 0)
        x->f.no_sender++;
    wb_plan_add_item(&x->p, &it);
    size_t n = x->p.n_items;
    if (n > x->cap_zone) {
        x->cap_zone = x->cap_zone ? 2 * x->cap_zone : 256;
        x->zone = wb_xrealloc(x->zone, x->cap_zone * sizeof *x->zone);
        x->country = wb_xrealloc(x->country, x->cap_zone * sizeof *x->country);
    }
    x->zone[n - 1] = PQgetisnull(r, row, zc) ? NULL : PQgetvalue(r, row, zc);
    x->country[n - 1] = PQgetvalue(r, row, zc + 1);
}

/* Persons (sorted ids), then the pending sends of both results. */
static void pc_build(struct pc *x, PGresult *aud, PGresult *enr)
{
    for (int i = 0; i < PQntuples(aud); i++)
        if (!strcmp(PQgetvalue(aud, i, 0), "enrolled"))
            pc_note_cand(x, atoll(PQgetvalue(aud, i, 1)));
    for (int i = 0; i < PQntuples(enr); i++)
        pc_note_cand(x, atoll(PQgetvalue(enr, i, 0)));
    qsort(x->cands, x->n_cands, sizeof *x->cands, pc_cmp_ll);
    size_t n = 0;
    for (size_t i = 0; i < x->n_cands; i++)
        if (!n || x->cands[n - 1] != x->cands[i])
            x->cands[n++] = x->cands[i];
    x->n_cands = n;
    x->p.n_persons = n;
    x->p.persons = wb_xcalloc(n + 1, sizeof *x->p.persons);
    x->f.emails = wb_xcalloc(n + 1, sizeof *x->f.emails);
    for (size_t i = 0; i < n; i++)
        x->p.persons[i].cand = x->cands[i];
    for (int i = 0; i < PQntuples(aud); i++) {
        const char *v = PQgetvalue(aud, i, 0);
        wb_plan_facts_skip(&x->f, v, PQgetvalue(aud, i, 2));
        if (strcmp(v, "enrolled"))
            continue;
        long long cand = atoll(PQgetvalue(aud, i, 1));
        x->f.emails[pc_person(x, cand)] = wb_xstrdup(PQgetvalue(aud, i, 2));
        pc_item(x, cand, 0, 0, PQgetisnull(aud, i, 3) ? NAN : atof(PQgetvalue(aud, i, 3)),
                PQgetisnull(aud, i, 4) ? NULL : PQgetvalue(aud, i, 4), 0, false, aud, i, 6);
    }
    for (int i = 0; i < PQntuples(enr); i++) {
        long long cand = atoll(PQgetvalue(enr, i, 0));
        int seq = pc_seq(x, PQgetvalue(enr, i, 1));
        long pi = pc_person(x, cand);
        if (seq == 0 && !x->f.emails[pi])
            x->f.emails[pi] = wb_xstrdup(PQgetvalue(enr, i, 7));
        if (seq == 0)
            x->f.active++;
        if (!strcmp(PQgetvalue(enr, i, 3), "t")) {
            x->f.persons_paused += seq == 0;
            continue;
        }
        if (seq < 0)
            continue;
        if (!strcmp(PQgetvalue(enr, i, 10), "t")) {
            x->p.after_task += seq == 0;
            continue;
        }
        int step = atoi(PQgetvalue(enr, i, 2));
        /* A retry resends the step already started (step counts steps started). */
        bool retry = !strcmp(PQgetvalue(enr, i, 5), "t");
        if (retry)
            step--;
        x->f.in_flight += seq == 0 && !strcmp(PQgetvalue(enr, i, 8), "t");
        pc_item(x, cand, seq, step, PQgetisnull(enr, i, 4) ? NAN : atof(PQgetvalue(enr, i, 4)),
                PQgetisnull(enr, i, 6) ? NULL : PQgetvalue(enr, i, 6),
                atof(PQgetvalue(enr, i, 9)), retry, enr, i, 11);
    }
}

static int pc_read_history(struct pc *x)
{
    const struct wb_plan *p = &x->p;
    if (p->cooldown_days <= 0 && p->max_per_30_days <= 0)
        return 0;
    char days[16];
    snprintf(days, sizeof days, "%d", p->cooldown_days > 30 ? p->cooldown_days : 30);
    const char *prm[] = {days};
    PGresult *r = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading recent messages", history_sql, 1,
                             prm);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        long pi = pc_person(x, atoll(PQgetvalue(r, i, 0)));
        if (pi >= 0)
            wb_plan_person_add(&x->p.persons[pi], atof(PQgetvalue(r, i, 2)),
                               pc_seq(x, PQgetvalue(r, i, 1)));
    }
    PQclear(r);
    return 0;
}

/* ---- the windows: where a step picked outside its window goes ---- */

struct pc_key {
    int seq;
    const char *zone, *country;
    size_t item;
};

static int pc_key_cmp(const void *a, const void *b)
{
    const struct pc_key *x = a, *y = b;
    int c = (x->seq > y->seq) - (x->seq < y->seq);
    if (!c)
        c = strcmp(x->zone, y->zone);
    return c ? c : strcmp(x->country, y->country);
}

/* Sorts the windowed items by (sequence, zone, country); groups[] gets
 * each group's first key. Returns the number of groups. */
static size_t pc_window_groups(struct pc *x, struct pc_key *k, size_t *nk, size_t **groups)
{
    size_t n = 0, ng = 0;
    for (size_t i = 0; i < x->p.n_items; i++)
        if (x->zone[i])
            k[n++] = (struct pc_key){x->p.items[i].seq, x->zone[i], x->country[i], i};
    qsort(k, n, sizeof *k, pc_key_cmp);
    *groups = wb_xcalloc(n + 1, sizeof **groups);
    for (size_t i = 0; i < n; i++)
        if (!i || pc_key_cmp(&k[i - 1], &k[i]))
            (*groups)[ng++] = i;
    *nk = n;
    return ng;
}

/* wb_plan_windows's rows (group, open, close; in order) into ng windows. */
static struct wb_plan_window *pc_window_spans(const PGresult *r, size_t ng)
{
    struct wb_plan_window *v = wb_xcalloc(ng + 1, sizeof *v);
    for (int i = 0; r && i < PQntuples(r); i++) {
        long gi = atol(PQgetvalue(r, i, 0)) - 1;
        if (gi < 0 || (size_t)gi >= ng)
            continue;
        struct wb_plan_window *w = &v[gi];
        w->open = wb_xrealloc(w->open, (w->n + 1) * sizeof *w->open);
        w->close = wb_xrealloc(w->close, (w->n + 1) * sizeof *w->close);
        w->open[w->n] = atof(PQgetvalue(r, i, 1));
        w->close[w->n++] = atof(PQgetvalue(r, i, 2));
    }
    return v;
}

/* The spans of each group's window (wb_plan_windows) from now to the
 * plan's last day's end, into p.windows; each item points at its own. */
static int pc_read_windows(struct pc *x)
{
    struct wb_plan *p = &x->p;
    struct pc_key *k = wb_xcalloc(p->n_items + 1, sizeof *k);
    size_t nk, *g;
    size_t ng = pc_window_groups(x, k, &nk, &g);
    char **zones = wb_xcalloc(ng + 1, sizeof *zones), **countries = wb_xcalloc(ng + 1,
                                                                              sizeof *countries);
    struct wb_buf seqs;
    wb_buf_init(&seqs);
    wb_buf_putc(&seqs, '{');
    for (size_t i = 0; i < ng; i++) {
        wb_buf_printf(&seqs, "%s%d", i ? "," : "", k[g[i]].seq);
        zones[i] = (char *)k[g[i]].zone;
        countries[i] = (char *)k[g[i]].country;
    }
    wb_buf_putc(&seqs, '}');
    char *za = wb_pg_array_str(zones, ng, 0), *ca = wb_pg_array_str(countries, ng, 0);
    char from[32], to[32];
    snprintf(from, sizeof from, "%.6f", p->now);
    snprintf(to, sizeof to, "%.0f", (floor(p->now / 86400.0) + p->days) * 86400.0);
    const char *prm[] = {x->defs, seqs.data, za, ca, from, to};
    PGresult *r = ng ? wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the windows", windows_sql, 6,
                                  prm) : NULL;
    int rc = ng && !r ? -1 : 0;
    p->windows = pc_window_spans(r, ng);
    p->n_windows = ng;
    /* Every item of a group is in it; a group without spans never opens. */
    for (size_t i = 0, gi = 0; i < nk; i++) {
        if (gi + 1 < ng && g[gi + 1] == i)
            gi++;
        p->items[k[i].item].win = &p->windows[gi];
    }
    PQclear(r);
    free(za);
    free(ca);
    free(zones);
    free(countries);
    wb_buf_free(&seqs);
    free(g);
    free(k);
    return rc;
}

/* ---- the daemon's timing, asked in batches (wb_plan_next) ---- */

static int pc_next(void *ud, struct wb_plan_item *v, size_t n)
{
    struct pc *x = ud;
    struct wb_buf b[4];
    for (int k = 0; k < 4; k++) {
        wb_buf_init(&b[k]);
        wb_buf_putc(&b[k], '{');
    }
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        wb_buf_printf(&b[0], "%s%.6f", sep, v[i].due);
        wb_buf_printf(&b[1], "%s%d", sep, v[i].seq);
        wb_buf_printf(&b[2], "%s%d", sep, v[i].step);
        wb_buf_printf(&b[3], "%s%lld", sep, x->p.persons[v[i].person].cand);
        v[i].due = NAN;
        v[i].sender = -1;
    }
    for (int k = 0; k < 4; k++)
        wb_buf_putc(&b[k], '}');
    const char *prm[] = {x->defs, b[0].data, b[1].data, b[2].data, b[3].data};
    PGresult *r = wb_db_exec(x->c, PGRES_TUPLES_OK, "timing the next steps", next_sql, 5, prm);
    for (int k = 0; k < 4; k++)
        wb_buf_free(&b[k]);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        long o = atol(PQgetvalue(r, i, 0)) - 1;
        if (o < 0 || (size_t)o >= n)
            continue;
        v[o].due = PQgetisnull(r, i, 1) ? NAN : atof(PQgetvalue(r, i, 1));
        v[o].sender = pc_sender(x, PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2));
    }
    PQclear(r);
    return 0;
}

static int pc_run(struct pc *x)
{
    PGresult *aud = NULL, *enr = NULL;
    const char *prm[2] = {x->s->id, NULL};
    char *def = json_dumps(x->s->definition, JSON_COMPACT);
    prm[1] = def;
    int rc = pc_read_senders(x) < 0 || pc_read_seqs(x) < 0 || pc_read_audience(x, &aud) < 0 ||
                     !(enr = wb_db_exec(x->c, PGRES_TUPLES_OK, "reading the enrollments", enr_sql,
                                        2, prm))
                 ? -1 : 0;
    free(def);
    if (!rc) {
        pc_build(x, aud, enr);
        rc = pc_read_windows(x) < 0 || pc_read_history(x) < 0 ? -1 : 0;
    }
    PQclear(aud);
    PQclear(enr);
    return rc < 0 ? -1 : wb_plan_run(&x->p);
}

static void pc_free(struct pc *x)
{
    for (size_t i = 0; i < x->p.n_seqs; i++)
        free(x->seq_ids[i]);
    free(x->seq_ids);
    free(x->defs);
    free(x->cands);
    free(x->zone);
    free(x->country);
    wb_plan_facts_free(&x->f, x->p.n_persons, x->p.n_senders);
    wb_plan_free(&x->p);
}

int wb_cmd_plan(PGconn *c, const struct wb_config *cfg, const char *sequence, int days,
                bool json, FILE *out, FILE *err)
{
    const struct wb_sequence *s = wb_config_sequence(cfg, sequence);
    if (!s) {
        fprintf(err, "warmbench: no sequence \"%s\" in %s\n", sequence, cfg->sequences_dir);
        return WB_EXIT_USAGE;
    }
    /* One snapshot, and PostgreSQL itself refuses any write. */
    if (wb_db_cmd(c, "starting a read-only transaction",
                  "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL) < 0)
        return WB_EXIT_UNAVAILABLE;
    struct pc x = {.c = c, .cfg = cfg, .s = s};
    x.p.days = days;
    x.p.cooldown_days = cfg->contact_policy.cooldown_days;
    x.p.max_per_30_days = cfg->contact_policy.max_per_30_days;
    x.p.next = pc_next;
    x.p.next_ud = &x;
    int rc = pc_run(&x);
    PQclear(PQexec(c, "ROLLBACK"));
    if (!rc)
        wb_plan_print(cfg, s, &x.p, &x.f, json, out);
    pc_free(&x);
    return rc < 0 ? WB_EXIT_UNAVAILABLE : WB_EXIT_OK;
}
