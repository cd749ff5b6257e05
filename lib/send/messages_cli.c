/* `warmbench messages --unknown` (see messages_cli.h). */
#include "warmbench/messages_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

static const char list_sql[] =
    "SELECT m.id, coalesce(m.rcpt, '-'), m.sequence_id, m.step, m.sender,"
    " coalesce(to_char(m.sending_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'), '-'),"
    " coalesce((SELECT left(regexp_replace(coalesce(e.detail->>'reason', e.detail->>'reply', ''),"
    "   '\\s+', ' ', 'g'), 60) FROM events e"
    "   WHERE e.message_id = m.id AND e.type = 'unknown' ORDER BY e.id DESC LIMIT 1), '-')"
    " FROM messages m WHERE m.state = 'unknown' ORDER BY m.sending_at NULLS FIRST, m.id";

static const char requeue_sql[] =
    "SELECT id, requeued, coalesce(reason, '') FROM wb_requeue_unknown($1::bigint[])";

static const char all_ids_sql[] =
    "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM messages WHERE state = 'unknown'";

static int msg_list(PGconn *c, FILE *out)
{
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "listing unknown messages", list_sql, 0, NULL);
    if (!r)
        return WB_EXIT_FAIL;
    int n = PQntuples(r);
    if (n)
        fprintf(out, "%-8s %-32s %-24s %4s %-10s %-20s %s\n", "ID", "RECIPIENT", "SEQUENCE",
                "STEP", "SENDER", "SENDING SINCE", "REASON");
    for (int i = 0; i < n; i++)
        fprintf(out, "%-8s %-32s %-24s %4s %-10s %-20s %s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
    fprintf(out, "%d message(s) with an unknown outcome: the daemon stopped between starting "
                 "the SMTP transaction and storing its answer, so each may or may not have been "
                 "delivered; none is ever resent on its own\n", n);
    PQclear(r);
    return WB_EXIT_OK;
}

static int msg_requeue(PGconn *c, const char *ids, FILE *out)
{
    const char *p[] = {ids};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "requeueing", requeue_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    int done = 0, n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        if (!strcmp(PQgetvalue(r, i, 1), "t"))
            done++;
        else
            fprintf(out, "message %s not requeued: %s\n", PQgetvalue(r, i, 0),
                    PQgetvalue(r, i, 2));
    }
    PQclear(r);
    fprintf(out, "requeued %d message(s). WARNING: each may already have been delivered, so "
                 "its recipient may get it twice (it keeps its Message-ID)\n", done);
    return done || !n ? WB_EXIT_OK : WB_EXIT_DATAERR;
}

int wb_cmd_messages(PGconn *c, const char *requeue_id, bool all, FILE *out)
{
    if (!requeue_id && !all)
        return msg_list(c, out);
    if (requeue_id) {
        if (!wb_is_row_id(requeue_id)) {
            fprintf(stderr, "warmbench: messages: --requeue takes a message id, not \"%s\"\n",
                    requeue_id);
            return WB_EXIT_USAGE;
        }
        char ids[32];
        snprintf(ids, sizeof ids, "{%s}", requeue_id);
        return msg_requeue(c, ids, out);
    }
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "listing unknown messages", all_ids_sql, 0, NULL);
    if (!r)
        return WB_EXIT_FAIL;
    int rc = msg_requeue(c, PQgetvalue(r, 0, 0), out);
    PQclear(r);
    return rc;
}
