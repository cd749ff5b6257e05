/* `warmbench forget` and `warmbench export`. Erasure is one SQL function
 * (wb_forget in sql/functions/080_privacy.sql, shared with retention), so it is one transaction;
 * the export is one JSON document built by PostgreSQL. */
#include "warmbench/privacy.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static const char forget_sql[] =
    "SELECT candidates, enrollments, messages, events, handoffs, suppressions_blanked,"
    " hash_added FROM wb_forget($1)";

int wb_cmd_forget(PGconn *c, const char *email, FILE *out)
{
    if (!email || !strchr(email, '@') || strpbrk(email, "\r\n")) {
        fprintf(stderr, "warmbench: forget: \"%s\" is not an email address\n",
                email ? email : "");
        return WB_EXIT_USAGE;
    }
    const char *p[] = {email};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "forgetting", forget_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    bool known = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    if (known)
        fprintf(out, "forgot %s: erased %s candidate, %s enrollment(s), %s message(s), "
                     "%s event(s); scrubbed %s handoff(s), %s suppression address(es)\n",
                email, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
                PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5));
    else
        fprintf(out, "no candidate with address %s; scrubbed %s handoff(s), %s event(s), "
                     "%s suppression address(es)\n",
                email, PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 5));
    fprintf(out, "%s\n", !strcmp(PQgetvalue(r, 0, 6), "t")
                             ? "the address's one-way hash is now suppressed: it cannot be "
                               "imported or mailed again"
                             : "the address's one-way hash was already suppressed");
    PQclear(r);
    return WB_EXIT_OK;
}

static const char export_sql[] =
    "SELECT jsonb_build_object("
    " 'exported_at', now(),"
    " 'candidate', to_jsonb(c),"
    " 'suppression', (SELECT jsonb_build_object('reason', s.reason, 'since', s.created_at)"
    "   FROM suppressions s WHERE s.email_hash = wb_email_hash(c.email)"
    "      OR lower(s.email) = lower(c.email) ORDER BY s.created_at LIMIT 1),"
    " 'enrollments', coalesce((SELECT jsonb_agg(to_jsonb(e) - 'candidate_id' ORDER BY e.id)"
    "   FROM enrollments e WHERE e.candidate_id = c.id), '[]'),"
    " 'messages', coalesce((SELECT jsonb_agg(jsonb_build_object('sequence', m.sequence_id,"
    "    'step', m.step, 'variant', m.variant, 'sender', m.sender, 'state', m.state,"
    "    'rcpt', m.rcpt, 'subject', m.subject, 'message_id', m.message_id,"
    "    'attempts', m.attempts, 'last_reply', m.last_reply, 'created_at', m.created_at,"
    "    'sending_at', m.sending_at, 'sent_at', m.sent_at) ORDER BY m.id)"
    "   FROM messages m WHERE m.candidate_id = c.id), '[]'),"
    " 'events', coalesce((SELECT jsonb_agg(jsonb_build_object('at', v.at, 'type', v.type,"
    "    'sequence', v.sequence_id, 'step', v.step, 'machine', v.machine,"
    "    'source', v.source, 'detail', v.detail) ORDER BY v.at, v.id)"
    "   FROM events v WHERE v.candidate_id = c.id), '[]'),"
    " 'handoffs', coalesce((SELECT jsonb_agg(jsonb_build_object('id', h.idempotency_key,"
    "    'sequence', h.sequence_id, 'reason', h.reason, 'state', h.state,"
    "    'attempts', h.attempts, 'payload', h.payload, 'created_at', h.created_at,"
    "    'delivered_at', h.delivered_at) ORDER BY h.id)"
    "   FROM handoffs h WHERE h.candidate_id = c.id), '[]'),"
    /* The person's own id in each native ATS (candidate_ats, 025). */
    " 'ats', coalesce((SELECT jsonb_object_agg(a.kind, a.ats_id) FROM candidate_ats a"
    "   WHERE a.candidate_id = c.id), '{}'))"
    " FROM candidates c WHERE lower(c.email) = lower(btrim($1))";

int wb_cmd_export(PGconn *c, const char *email, FILE *out)
{
    const char *p[] = {email};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "exporting", export_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 0) {
        PQclear(r);
        fprintf(stderr, "warmbench: export: no candidate with address %s\n", email);
        return WB_EXIT_DATAERR;
    }
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!doc)
        return WB_EXIT_FAIL;
    json_dumpf(doc, out, JSON_INDENT(2) | JSON_SORT_KEYS);
    fputc('\n', out);
    json_decref(doc);
    return WB_EXIT_OK;
}
