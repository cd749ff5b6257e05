/* `warmbench handoff` and `warmbench webhooks` (see handoff_cli.h). */
#include "warmbench/handoff_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* $1 email, $2 sequence or NULL. One statement, so the handoff, its event
 * and the ended enrollments exist together or not at all. */
static const char handoff_sql[] =
    "WITH c AS (SELECT id FROM candidates WHERE lower(email) = lower(btrim($1))),"
    " e AS (SELECT en.id, en.step FROM enrollments en JOIN c ON en.candidate_id = c.id"
    "  WHERE $2::text IS NULL OR en.sequence_id = $2"
    "  ORDER BY en.state = 'active' DESC, en.updated_at DESC LIMIT 1),"
    " h AS (INSERT INTO handoffs (candidate_id, sequence_id, reason, manual)"
    "  SELECT c.id, $2, 'manual', true FROM c"
    "  RETURNING id, candidate_id, sequence_id, idempotency_key),"
    " ev AS (INSERT INTO events (candidate_id, enrollment_id, sequence_id, step, type, detail)"
    "  SELECT h.candidate_id, (SELECT id FROM e), h.sequence_id, (SELECT step FROM e),"
    "   'handoff', jsonb_build_object('reason', 'manual', 'handoff', h.id) FROM h),"
    " en AS (UPDATE enrollments SET state = 'handed_off', stop_reason = 'manual',"
    "   next_due_at = NULL, ended_at = now(), updated_at = now()"
    "  WHERE candidate_id = (SELECT candidate_id FROM h) AND state = 'active'"
    "   AND ($2::text IS NULL OR sequence_id = $2) RETURNING 1)"
    "SELECT h.id, h.idempotency_key, (SELECT count(*) FROM en) FROM h";

/* The UPDATE fires no trigger, so the daemons are told here. */
static const char retry_by_id_sql[] =
    "WITH u AS (UPDATE handoffs SET state = 'pending', attempts = 0, next_attempt_at = now(),"
    "  lease_owner = NULL, lease_until = NULL WHERE id = $1::bigint AND state = 'dead'"
    "  RETURNING id, idempotency_key)"
    "SELECT u.id, u.idempotency_key, pg_notify('wb_handoffs', u.id::text) FROM u";
static const char retry_by_key_sql[] =
    "WITH u AS (UPDATE handoffs SET state = 'pending', attempts = 0, next_attempt_at = now(),"
    "  lease_owner = NULL, lease_until = NULL WHERE idempotency_key = $1::uuid AND state = 'dead'"
    "  RETURNING id, idempotency_key)"
    "SELECT u.id, u.idempotency_key, pg_notify('wb_handoffs', u.id::text) FROM u";
static const char state_by_id_sql[] = "SELECT state FROM handoffs WHERE id = $1::bigint";
static const char state_by_key_sql[] = "SELECT state FROM handoffs WHERE idempotency_key = $1::uuid";

static const char list_sql[] =
    "SELECT h.id, coalesce(c.email, '-'), coalesce(h.sequence_id, '-'), h.reason, h.state,"
    " h.attempts, coalesce(h.last_status::text, '-'),"
    " CASE WHEN h.state = 'pending'"
    "  THEN to_char(h.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"')"
    "  ELSE '-' END,"
    " coalesce(left(regexp_replace(h.last_error, '\\s+', ' ', 'g'), 60), '-')"
    " FROM handoffs h LEFT JOIN candidates c ON c.id = h.candidate_id"
    " WHERE NOT $1::bool OR h.state = 'dead' ORDER BY h.id";

int wb_cmd_handoff(PGconn *c, const struct wb_config *cfg, const char *email,
                   const char *sequence, FILE *out)
{
    if (sequence && !wb_config_sequence(cfg, sequence)) {
        fprintf(stderr, "warmbench: handoff: no sequence \"%s\" in %s\n", sequence, cfg->path);
        return WB_EXIT_DATAERR;
    }
    const char *p[] = {email, sequence};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "handing off", handoff_sql, 2, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 0) {
        fprintf(stderr, "warmbench: handoff: no candidate with address %s\n", email);
        PQclear(r);
        return WB_EXIT_DATAERR;
    }
    fprintf(out, "handoff %s queued for %s%s%s (key %s); %s enrollment(s) ended\n",
            PQgetvalue(r, 0, 0), email, sequence ? ", sequence " : "", sequence ? sequence : "",
            PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    if (!cfg->ats.enabled)
        fprintf(out, "note: no \"ats\" in %s: it is delivered once one is configured\n",
                cfg->path);
    PQclear(r);
    return WB_EXIT_OK;
}

static bool hc_is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static int hc_retry(PGconn *c, const char *id, FILE *out)
{
    bool by_id = wb_is_row_id(id);
    if (!by_id && !hc_is_uuid(id)) {
        fprintf(stderr, "warmbench: webhooks: --retry takes a handoff id or its key, not \"%s\"\n",
                id);
        return WB_EXIT_USAGE;
    }
    const char *p[] = {id};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "retrying a handoff",
                             by_id ? retry_by_id_sql : retry_by_key_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 1) {
        fprintf(out, "handoff %s queued again (key %s)\n", PQgetvalue(r, 0, 0),
                PQgetvalue(r, 0, 1));
        PQclear(r);
        return WB_EXIT_OK;
    }
    PQclear(r);
    r = wb_db_exec(c, PGRES_TUPLES_OK, "reading a handoff",
                   by_id ? state_by_id_sql : state_by_key_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 0)
        fprintf(stderr, "warmbench: webhooks: no handoff %s\n", id);
    else
        fprintf(stderr, "warmbench: webhooks: handoff %s is %s; only dead ones can be retried\n",
                id, PQgetvalue(r, 0, 0));
    PQclear(r);
    return WB_EXIT_DATAERR;
}

static void hc_print_table(PGresult *r, FILE *out)
{
    static const char *const head[] = {"ID", "EMAIL", "SEQUENCE", "REASON", "STATE",
                                       "ATTEMPTS", "STATUS", "NEXT ATTEMPT", "LAST ERROR"};
    enum { NCOL = 9 };
    int w[NCOL];
    int n = PQntuples(r);
    for (int k = 0; k < NCOL; k++) {
        w[k] = (int)strlen(head[k]);
        for (int i = 0; i < n; i++) {
            int len = PQgetlength(r, i, k);
            if (len > w[k])
                w[k] = len;
        }
    }
    /* The last column is not padded: no trailing blanks. */
    for (int k = 0; k < NCOL - 1; k++)
        fprintf(out, "%-*s  ", w[k], head[k]);
    fprintf(out, "%s\n", head[NCOL - 1]);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < NCOL - 1; k++)
            fprintf(out, "%-*s  ", w[k], PQgetvalue(r, i, k));
        fprintf(out, "%s\n", PQgetvalue(r, i, NCOL - 1));
    }
}

int wb_cmd_webhooks(PGconn *c, bool dead_only, const char *retry_id, FILE *out)
{
    if (retry_id)
        return hc_retry(c, retry_id, out);
    const char *p[] = {dead_only ? "true" : "false"};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "listing handoffs", list_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 0)
        fprintf(out, dead_only ? "no dead handoffs\n" : "no handoffs\n");
    else
        hc_print_table(r, out);
    PQclear(r);
    return WB_EXIT_OK;
}
