/* Suppression of an address, as one statement so that a crash cannot leave
 * the suppression without the stopped enrollments or the other way round. */
#include "warmbench/suppress.h"

const char *const wb_suppress_sql =
    "WITH sup AS ("
    " INSERT INTO suppressions (email, email_hash, reason)"
    " VALUES (lower(btrim($1)), wb_email_hash($1), $2)"
    " ON CONFLICT (email_hash) DO NOTHING RETURNING id"
    "), cand AS ("
    " SELECT id FROM candidates WHERE lower(email) = lower(btrim($1))"
    "), stopped AS ("
    " UPDATE enrollments SET state = 'stopped', stop_reason = $2, next_due_at = NULL,"
    "  ended_at = now(), updated_at = now()"
    " WHERE candidate_id IN (SELECT id FROM cand) AND state = 'active'"
    " RETURNING id, candidate_id, sequence_id"
    "), ev AS ("
    " INSERT INTO events (candidate_id, type, detail)"
    " SELECT id, 'suppressed', jsonb_build_object('reason', $2::text) FROM cand"
    " WHERE EXISTS (SELECT 1 FROM sup)"
    ")"
    " SELECT (SELECT count(*) FROM stopped), NOT EXISTS (SELECT 1 FROM sup)";
