/* The daemon's SQL statements. */
#include "warmbench/queries.h"

const char *const wb_q_claim =
    "SELECT * FROM wb_claim($1, $2::integer, $3::integer, $4::integer, $5, $6::integer, $7)";

/* Like the claim, the mark, the outcomes and lease recovery are functions
 * in sql/functions/060_send.sql, written so that each batch is fetched by
 * key and a message's row is rewritten in place (the reasons are there). */


const char *const wb_q_send_window =
    "SELECT * FROM wb_send_window($1::bigint[], $2::text[], $3::text[], $4::text[],"
    " $5::integer[], $6, $7::integer, $8::bigint[], $9::text[], $10::integer[], $11::text[],"
    " $12::float8[])";

const char *const wb_q_apply_outcomes =
    "SELECT * FROM wb_apply_outcomes($1, $2::integer, $3::bigint[])";

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
    "  next_attempt_at = now(), attempts = greatest(m.attempts - 1, 0), out_outcome = NULL,"
    "  out_code = NULL, out_retry_s = NULL, updated_at = now()"
    " FROM claimed WHERE m.id = claimed.id"
    " RETURNING m.id, m.sender, claimed.claimed_at"
    "), usage AS ("
    WB_GIVE_BACK_USAGE("rel")
    ")"
    " SELECT count(*) FROM rel";

const char *const wb_q_recover = "SELECT requeued, lost, cancelled FROM wb_recover($1)";

/* sql/010_liveness.sql: held by the marking connection while it lives. */
const char *const wb_q_owner_lock = "SELECT wb_owner_lock($1)";

const char *const wb_q_next_wake =
    "SELECT extract(epoch FROM least("
    " (SELECT min(next_due_at) FROM enrollments WHERE state = 'active' AND next_due_at IS NOT NULL),"
    " (SELECT min(next_attempt_at) FROM messages"
    "  WHERE next_attempt_at IS NOT NULL AND state IN ('queued', 'retry'))) - now())";
