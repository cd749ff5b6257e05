/* The daemon's SQL statements. */
#include "warmbench/queries.h"

const char *const wb_q_schema_version =
    "SELECT count(*) FROM schema_migrations WHERE version = ANY ($1::integer[])";

const char *const wb_q_claim =
    "SELECT * FROM wb_claim($1, $2::integer, $3::integer, $4::integer, $5, $6::integer)";

/* Like the claim, the mark and the outcomes are functions in
 * sql/006_send.sql, written so that each batch is fetched by key (the
 * reasons are there). */
const char *const wb_q_mark_sending =
    "SELECT * FROM wb_mark_sending($1::bigint[], $2::text[], $3::text[], $4::text[],"
    " $5::integer[], $6, $7::integer)";

const char *const wb_q_results =
    "SELECT * FROM wb_store_outcomes($1::bigint[], $2::text[], $3::integer[], $4::text[],"
    " $5::float8[], $6)";

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
