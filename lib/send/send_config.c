/* Senders and contact policy for the claim; who the policy holds. */
#include "warmbench/send_config.h"
#include "warmbench/db.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <stdlib.h>

const char *const wb_q_sync_send_config = "SELECT wb_sync_send_config($1::jsonb)";

char *wb_send_config_json(const struct wb_config *cfg)
{
    json_t *senders = json_object();
    for (size_t i = 0; i < cfg->n_senders; i++)
        json_object_set_new(senders, cfg->senders[i].id, json_string(cfg->senders[i].from_email));
    json_t *doc = json_pack("{s:o, s:{s:i, s:i}}", "senders", senders, "contact_policy",
                            "cooldown_days", cfg->contact_policy.cooldown_days,
                            "max_per_30_days", cfg->contact_policy.max_per_30_days);
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return out ? out : wb_xstrdup("{}");
}

/* First steps of the sequence not yet sent whose person the policy holds
 * now (the claim has deferred them to then, or will). */
static const char report_sql[] =
    "WITH pol AS (SELECT * FROM send_policy WHERE cooldown_days > 0 OR max_per_30_days > 0),"
    " w AS (SELECT c.email, wb_contact_ok_at(e.candidate_id, e.sequence_id, e.step,"
    "   pol.cooldown_days, pol.max_per_30_days) AS ok_at"
    "   FROM pol, enrollments e JOIN candidates c ON c.id = e.candidate_id"
    "   WHERE e.sequence_id = $1 AND e.state = 'active' AND e.step = 0)"
    " SELECT email, to_char(ok_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'),"
    "   count(*) OVER () FROM w WHERE ok_at > now()"
    " ORDER BY ok_at, email LIMIT 10";

int wb_contact_report(PGconn *c, const char *sequence, FILE *out)
{
    const char *p[] = {sequence};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading the contact policy's waits",
                             report_sql, 1, p);
    if (!r)
        return -1;
    int n = PQntuples(r);
    if (n)
        fprintf(out, "%s wait for the contact policy:\n", PQgetvalue(r, 0, 2));
    for (int i = 0; i < n; i++)
        fprintf(out, "  %s until %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    if (n && atol(PQgetvalue(r, 0, 2)) > n)
        fprintf(out, "  ... and %ld more\n", atol(PQgetvalue(r, 0, 2)) - n);
    PQclear(r);
    return 0;
}
