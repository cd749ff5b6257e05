/* The daemon's SQL statements. */
#include "warmbench/queries.h"

const char *const wb_q_schema_version =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";

const char *const wb_q_claim =
    "SELECT * FROM wb_claim($1, $2::integer, $3::integer, $4::integer, $5, $6::integer)";

const char *const wb_q_mark_sending =
    "UPDATE messages m SET state = 'sending', message_id = v.mid, rcpt = v.rcpt,"
    " subject = v.subj, variant = v.variant, sending_at = now(),"
    " lease_until = now() + make_interval(secs => $7::integer), updated_at = now()"
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[])"
    "   AS v(id, mid, rcpt, subj, variant), enrollments e"
    " WHERE m.id = v.id AND m.lease_owner = $6"
    "   AND (m.state = 'claimed' OR (m.state = 'sending' AND m.message_id = v.mid))"
    "   AND e.id = m.enrollment_id AND e.state = 'active'"
    " RETURNING m.id";

/* "m is sending, or claimed by owner", written as a CASE so that the planner
 * cannot match it to the partial index on claimed and sending rows: with
 * that index a generic plan scans every claimed and sending row version
 * (dead ones included, until vacuum) for each batch instead of looking up
 * the batch's ids by primary key, and each batch gets slower as the run goes
 * on. */
#define WB_OURS_IN_FLIGHT(m, owner) \
    "CASE " m ".state WHEN 'sending' THEN true WHEN 'claimed' THEN " m ".lease_owner = " owner \
    " ELSE false END"

/* One statement writes a whole batch: messages, their events, the next step
 * of each enrollment (inside its window), and for hard bounces the
 * suppression and the end of the person's other enrollments. */
const char *const wb_q_results =
    "WITH r AS ("
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::float8[])"
    "   AS r(id, outcome, code, reply, retry_s)"
    "), m AS ("
    " UPDATE messages m SET"
    "  state = CASE WHEN r.outcome IN ('sent', 'retry', 'unknown') THEN r.outcome ELSE 'failed' END,"
    "  last_reply = r.reply,"
    "  sent_at = CASE WHEN r.outcome = 'sent' THEN now() END,"
    "  next_attempt_at = CASE WHEN r.outcome = 'retry' THEN wb_seq_next_due("
    "    now() + make_interval(secs => r.retry_s), s.definition, c.timezone)"
    "    ELSE m.next_attempt_at END,"
    "  lease_owner = NULL, lease_until = NULL, updated_at = now()"
    " FROM r, sequences s, candidates c"
    " WHERE m.id = r.id AND s.id = m.sequence_id"
    "   AND " WB_OURS_IN_FLIGHT("m", "$6")
    "   AND c.id = m.candidate_id"
    " RETURNING m.id, m.enrollment_id, m.candidate_id, m.sequence_id, m.step, m.rcpt,"
    "   r.outcome, r.code, r.reply, s.definition, c.timezone, m.next_attempt_at"
    "), ev AS ("
    " INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, detail)"
    " SELECT candidate_id, id, enrollment_id, sequence_id, step,"
    "  CASE WHEN outcome IN ('sent', 'bounce', 'unknown') THEN outcome ELSE 'failed' END,"
    "  CASE outcome WHEN 'sent' THEN '{}'::jsonb"
    "   WHEN 'bounce' THEN jsonb_build_object('kind', 'hard', 'smtp_code', code, 'reply', reply)"
    "   ELSE jsonb_build_object('smtp_code', code, 'reply', reply) END"
    " FROM m WHERE outcome <> 'retry'"
    "), en AS ("
    " UPDATE enrollments e SET"
    "  next_due_at = CASE WHEN m.outcome IN ('sent', 'unknown')"
    "    AND e.step < jsonb_array_length(m.definition->'steps')"
    "   THEN wb_seq_next_due(now() + wb_duration(m.definition->'steps'->e.step->>'after'),"
    "        m.definition, m.timezone) END,"
    "  state = CASE WHEN m.outcome NOT IN ('sent', 'unknown') THEN 'stopped'"
    "   WHEN e.step < jsonb_array_length(m.definition->'steps') THEN 'active'"
    "   ELSE 'finished' END,"
    "  stop_reason = CASE m.outcome WHEN 'failed' THEN 'failed' WHEN 'bounce' THEN 'bounce'"
    "   ELSE e.stop_reason END,"
    "  ended_at = CASE WHEN m.outcome NOT IN ('sent', 'unknown')"
    "    OR e.step >= jsonb_array_length(m.definition->'steps') THEN now() END,"
    "  updated_at = now()"
    " FROM m WHERE e.id = m.enrollment_id AND m.outcome <> 'retry' AND e.state = 'active'"
    " RETURNING e.next_due_at"
    "), sup AS ("
    " INSERT INTO suppressions (email, email_hash, reason)"
    " SELECT lower(rcpt), wb_email_hash(rcpt), 'bounce' FROM m"
    " WHERE outcome = 'bounce' AND rcpt IS NOT NULL"
    " ON CONFLICT (email_hash) DO NOTHING"
    "), stop_all AS ("
    " UPDATE enrollments e SET state = 'stopped', stop_reason = 'bounce', next_due_at = NULL,"
    "  ended_at = now(), updated_at = now()"
    " FROM m WHERE m.outcome = 'bounce' AND e.candidate_id = m.candidate_id"
    "   AND e.id <> m.enrollment_id AND e.state = 'active'"
    ")"
    " SELECT (SELECT count(*) FROM m),"
    "  extract(epoch FROM least((SELECT min(next_due_at) FROM en),"
    "   (SELECT min(next_attempt_at) FROM m WHERE outcome = 'retry')) - now())";

/* A claim counted against its sender's daily_limit (wb_claim); a claim that
 * goes back unsent gives its count back, to the day it was taken (a claimed
 * row's updated_at is its claim time). */
#define WB_GIVE_BACK_USAGE(rows)                                                      \
    " UPDATE sender_usage u SET sent = greatest(u.sent - g.n, 0)"                     \
    " FROM (SELECT sender, (claimed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n" \
    "       FROM " rows " GROUP BY 1, 2) g"                                           \
    " WHERE u.sender = g.sender AND u.day = g.day"

const char *const wb_q_release =
    "WITH claimed AS MATERIALIZED ("
    " SELECT id, sender, updated_at AS claimed_at FROM messages"
    " WHERE id = ANY ($1::bigint[]) AND state = 'claimed' AND lease_owner = $2 FOR UPDATE"
    "), rel AS ("
    " UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL,"
    "  attempts = greatest(m.attempts - 1, 0), updated_at = now()"
    " FROM claimed WHERE m.id = claimed.id"
    " RETURNING m.id, m.sender, claimed.claimed_at"
    "), usage AS ("
    WB_GIVE_BACK_USAGE("rel")
    ")"
    " SELECT count(*) FROM rel";

/* An expired claim never reached SMTP: back to the queue. An expired
 * `sending` row may have been delivered: `unknown`, never resent, and the
 * sequence goes on as if it had been sent. */
const char *const wb_q_recover =
    "WITH expired AS MATERIALIZED ("
    " SELECT id, sender, updated_at AS claimed_at FROM messages"
    " WHERE state = 'claimed' AND lease_until < now() FOR UPDATE SKIP LOCKED"
    "), back AS ("
    " UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL,"
    "  updated_at = now()"
    " FROM expired WHERE m.id = expired.id RETURNING m.id, m.sender, expired.claimed_at"
    "), usage AS ("
    WB_GIVE_BACK_USAGE("back")
    "), lost AS ("
    " UPDATE messages SET state = 'unknown', lease_owner = NULL, lease_until = NULL,"
    "  updated_at = now()"
    " WHERE state = 'sending' AND lease_until < now()"
    " RETURNING id, enrollment_id, candidate_id, sequence_id, step, sending_at"
    "), ev AS ("
    " INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, detail)"
    " SELECT candidate_id, id, enrollment_id, sequence_id, step, 'unknown',"
    "  jsonb_build_object('reason', 'lease expired while sending') FROM lost"
    "), en AS ("
    " UPDATE enrollments e SET"
    "  next_due_at = CASE WHEN e.step < jsonb_array_length(s.definition->'steps')"
    "   THEN wb_seq_next_due(lost.sending_at + wb_duration(s.definition->'steps'->e.step->>'after'),"
    "        s.definition, c.timezone) END,"
    "  state = CASE WHEN e.step < jsonb_array_length(s.definition->'steps') THEN 'active'"
    "   ELSE 'finished' END,"
    "  updated_at = now()"
    " FROM lost, sequences s, candidates c"
    " WHERE e.id = lost.enrollment_id AND s.id = e.sequence_id AND c.id = e.candidate_id"
    "   AND e.state = 'active'"
    "), fin AS ("
    " UPDATE enrollments e SET state = 'finished', next_due_at = NULL, ended_at = now(),"
    "  updated_at = now()"
    " FROM sequences s"
    " WHERE s.id = e.sequence_id AND e.state = 'active' AND e.next_due_at <= now()"
    "   AND e.step >= jsonb_array_length(s.definition->'steps')"
    "), cancel AS ("
    " UPDATE messages m SET state = 'cancelled', lease_owner = NULL, lease_until = NULL,"
    "  updated_at = now()"
    " FROM enrollments e"
    " WHERE m.state IN ('queued', 'retry') AND e.id = m.enrollment_id AND e.state <> 'active'"
    " RETURNING m.id"
    ")"
    " SELECT (SELECT count(*) FROM back), (SELECT count(*) FROM lost),"
    "  (SELECT count(*) FROM cancel)";

const char *const wb_q_next_wake =
    "SELECT extract(epoch FROM least("
    " (SELECT min(next_due_at) FROM enrollments WHERE state = 'active' AND next_due_at IS NOT NULL),"
    " (SELECT min(next_attempt_at) FROM messages WHERE state IN ('queued', 'retry'))) - now())";

const char *const wb_q_queue_figures =
    "SELECT (SELECT count(*) FROM enrollments WHERE state = 'active' AND next_due_at <= now()),"
    " (SELECT count(*) FROM messages WHERE state IN ('queued', 'retry')),"
    " (SELECT count(*) FROM messages WHERE state IN ('claimed', 'sending'))";
