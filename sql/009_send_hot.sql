-- Sending throughput (issue 3): a message's trip claimed -> sending -> sent
-- rewrites its row in place.
--
-- PostgreSQL writes an updated row as a new version. When no indexed column
-- changes and the page has room, the new version is a heap-only tuple
-- (HOT): no index gets an entry. Before this migration every step of the
-- trip changed an indexed column (state in the predicates of the due and
-- lease indexes, message_id, lease_until), so each message cost three full
-- rounds of index entries, about 40 WAL records in all. Now:
--  * the Message-ID is made by the claim, with the row, and never changes;
--  * the retry queue's index covers the rows with a next_attempt_at, which
--    only queued and retry rows have (NULL otherwise);
--  * the lease index is gone: the rows that may be in flight are found
--    through send_claims, one row per claim listing its messages;
--  * messages leave half of each page free for the row's next versions.
-- Measured with the daemon's statement mix in one session (20,000 messages,
-- tests/bench/bench_send.sh for the real path): PostgreSQL CPU per message
-- 207 -> 122 us, WAL records 40 -> 31.

ALTER TABLE messages ALTER COLUMN next_attempt_at DROP NOT NULL,
                     ALTER COLUMN next_attempt_at DROP DEFAULT;
-- Rows in flight keep theirs: a daemon older than this migration may still
-- give them back to the queue (its release leaves next_attempt_at as it
-- is), and the claim finds queued rows by it. Claiming clears it.
UPDATE messages SET next_attempt_at = NULL
WHERE state NOT IN ('queued', 'retry', 'claimed', 'sending') AND next_attempt_at IS NOT NULL;
DROP INDEX messages_due_idx;
DROP INDEX messages_lease_idx;
CREATE INDEX messages_due_idx ON messages (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
ALTER TABLE messages SET (fillfactor = 50);
-- Statistics taken while next_attempt_at was NOT NULL say every row has
-- one: until they are taken again, the retry queue's queries would scan
-- the whole table rather than its index.
ANALYZE messages;

-- One row per claim: the messages it took, looked at by lease recovery once
-- check_at passes (the claim's lease end, later the latest lease among its
-- messages still in flight) and deleted when none of them is.
CREATE TABLE send_claims (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    check_at    timestamptz NOT NULL,
    ids         bigint[] NOT NULL
);
CREATE INDEX send_claims_check_idx ON send_claims (check_at);
-- Rows in flight when this migration runs (a daemon stopped by a crash)
-- are looked at by the first recovery.
INSERT INTO send_claims (owner, check_at, ids)
SELECT 'migration 009', now(), array_agg(id) FROM messages
WHERE state IN ('claimed', 'sending') HAVING count(*) > 0;

-- wb_claim as in 006, with the sender's domain for the Message-ID
-- ("wb.ID.RANDOM@DOMAIN", as render.c made it before), the recipient taken
-- at birth, and the claim listed in send_claims. The 64 random bits keep
-- Message-IDs of different databases apart; they guard nothing (tokens are
-- signed), so random() serves: the strong generator cost 8% of the claim.
DROP FUNCTION wb_claim(text, integer, integer, integer, text, integer);
CREATE FUNCTION wb_claim(p_sender text, p_batch integer, p_daily_limit integer,
                         p_min_interval_s integer, p_owner text, p_lease_s integer,
                         p_domain text)
RETURNS TABLE (id bigint, step integer, sequence_id text, attempts integer, message_id text,
               candidate_id bigint, email text, first_name text, last_name text, title text,
               company text, location text, attrs text, thread_id text, consent text)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
DECLARE
    u sender_usage;
    n integer := p_batch;
    ids bigint[];
BEGIN
    -- Not waiting for the WAL flush: see 006.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO sender_usage (sender, day) VALUES (p_sender, (now() AT TIME ZONE 'UTC')::date)
    ON CONFLICT (sender, day) DO NOTHING;
    SELECT * INTO u FROM sender_usage
    WHERE sender = p_sender AND day = (now() AT TIME ZONE 'UTC')::date FOR UPDATE;
    IF p_daily_limit > 0 THEN
        n := least(n, greatest(p_daily_limit - u.sent, 0));
    END IF;
    IF p_min_interval_s > 0 THEN
        IF u.last_send_at IS NOT NULL
           AND u.last_send_at > now() - make_interval(secs => p_min_interval_s) THEN
            n := 0;
        ELSE
            n := least(n, 1);
        END IF;
    END IF;
    IF n <= 0 THEN
        RETURN;
    END IF;
    -- Retries and recovered claims first, in due order.
    WITH pick AS MATERIALIZED (
        SELECT m.id FROM messages m
        JOIN enrollments e ON e.id = m.enrollment_id AND e.state = 'active'
        WHERE m.sender = p_sender AND m.next_attempt_at <= now()
          AND m.state IN ('queued', 'retry')
        ORDER BY m.next_attempt_at, m.id
        LIMIT n
        FOR UPDATE OF m SKIP LOCKED
    ), upd AS (
        -- A row queued by a daemon older than this migration (released
        -- at SIGTERM, or recovered) has no Message-ID yet: it gets one as
        -- new rows do below.
        UPDATE messages m SET state = 'claimed', lease_owner = p_owner,
            lease_until = now() + make_interval(secs => p_lease_s), next_attempt_at = NULL,
            attempts = m.attempts + 1, updated_at = now(),
            message_id = coalesce(m.message_id, 'wb.' || m.id || '.'
                || lpad(to_hex((random() * 4294967296)::bigint), 8, '0')
                || lpad(to_hex((random() * 4294967296)::bigint), 8, '0') || '@' || p_domain)
        WHERE m.id = ANY (ARRAY(SELECT id FROM pick))
        RETURNING m.id
    )
    SELECT array_agg(id) INTO ids FROM upd;
    -- Then due steps, made into claimed messages in one write (see 006).
    IF coalesce(cardinality(ids), 0) < n THEN
        WITH due AS MATERIALIZED (
            SELECT e.id FROM enrollments e
            JOIN sequences s ON s.id = e.sequence_id
            WHERE e.state = 'active' AND e.next_due_at <= now()
              AND s.definition->>'sender' = p_sender
              AND e.step < jsonb_array_length(s.definition->'steps')
            ORDER BY e.next_due_at
            LIMIT n - coalesce(cardinality(ids), 0)
            FOR UPDATE OF e SKIP LOCKED
        ), moved AS (
            UPDATE enrollments e SET step = e.step + 1, next_due_at = NULL, updated_at = now()
            WHERE e.id = ANY (ARRAY(SELECT id FROM due))
            RETURNING e.id, e.candidate_id, e.sequence_id, e.step
        ), born AS (
            SELECT nextval('messages_id_seq') AS mid, mv.* FROM moved mv
        ), made AS (
            INSERT INTO messages (id, enrollment_id, candidate_id, sequence_id, step, sender, state,
                                  lease_owner, lease_until, attempts, message_id, rcpt,
                                  next_attempt_at)
            SELECT b.mid, b.id, b.candidate_id, b.sequence_id, b.step, p_sender, 'claimed',
                   p_owner, now() + make_interval(secs => p_lease_s), 1,
                   'wb.' || b.mid || '.' || lpad(to_hex((random() * 4294967296)::bigint), 8, '0')
                       || lpad(to_hex((random() * 4294967296)::bigint), 8, '0') || '@' || p_domain,
                   (SELECT c.email FROM candidates c WHERE c.id = b.candidate_id), NULL
            FROM born b
            ON CONFLICT (enrollment_id, step) DO NOTHING
            RETURNING id
        )
        SELECT coalesce(ids, '{}') || coalesce(array_agg(id), '{}') INTO ids FROM made;
    END IF;
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO send_claims (owner, check_at, ids)
    VALUES (p_owner, now() + make_interval(secs => p_lease_s), ids);
    UPDATE sender_usage SET sent = sent + cardinality(ids), last_send_at = now()
    WHERE sender = p_sender AND day = u.day;
    -- What rendering needs (see 006).
    RETURN QUERY
    SELECT m.id, m.step, m.sequence_id, m.attempts, m.message_id, c.id, c.email,
           c.first_name, c.last_name, c.title, c.company, c.location, c.attrs::text,
           CASE WHEN m.step > 1 THEN (SELECT m1.message_id FROM messages m1
                WHERE m1.enrollment_id = m.enrollment_id AND m1.step = 1) END,
           c.consent
    FROM messages m
    CROSS JOIN LATERAL (SELECT * FROM candidates c1 WHERE c1.id = m.candidate_id OFFSET 0) c
    WHERE m.id = ANY (ids)
    ORDER BY m.id;
END
$$;

-- claimed -> sending as in 006, but the Message-ID is the one the claim
-- made: a row whose Message-ID differs is not marked. A row claimed before
-- this migration has none yet and takes the daemon's, as in 006.
CREATE OR REPLACE FUNCTION wb_mark_sending(p_ids bigint[], p_mids text[], p_rcpts text[],
                                           p_subjects text[], p_variants integer[], p_owner text,
                                           p_lease_s integer)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH marked AS (
        UPDATE messages m SET state = 'sending', rcpt = v.rcpt, subject = v.subj,
            variant = v.variant, sending_at = now(), message_id = v.mid,
            lease_until = now() + make_interval(secs => p_lease_s), updated_at = now()
        FROM unnest(p_ids, p_mids, p_rcpts, p_subjects, p_variants)
            AS v(id, mid, rcpt, subj, variant), enrollments e
        WHERE m.id = v.id AND coalesce(m.message_id, v.mid) = v.mid
          AND CASE m.state WHEN 'claimed' THEN m.lease_owner = p_owner
              WHEN 'sending' THEN m.lease_owner = p_owner
              ELSE false END
          AND e.id = m.enrollment_id AND e.state = 'active'
        RETURNING m.id
    )
    SELECT marked.id FROM marked;
END
$$;

-- Lease recovery: the claims whose check_at has passed, their messages
-- still claimed or sending. An expired claim never reached SMTP: back to
-- the queue, its count given back to the day it was taken. An expired
-- `sending` row may have been delivered: `unknown`, never resent, and the
-- sequence goes on as if it had been sent. A claim with a message still in
-- flight is looked at again when that lease ends; one with none goes.
-- Also cancels queued and retry rows whose enrollment has ended, and ends
-- enrollments due with no step left. Returns the three counts.
CREATE FUNCTION wb_recover(OUT requeued bigint, OUT lost bigint, OUT cancelled bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
DECLARE
    claims bigint[];
BEGIN
    SELECT array_agg(c.id) INTO claims FROM (
        SELECT c.id FROM send_claims c WHERE c.check_at < now()
        ORDER BY c.check_at LIMIT 1000 FOR UPDATE SKIP LOCKED) c;
    WITH inflight AS MATERIALIZED (
        SELECT m.id, m.state, m.sender, m.updated_at AS claimed_at
        FROM messages m
        WHERE m.id = ANY (ARRAY(SELECT unnest(c.ids) FROM send_claims c
                                WHERE c.id = ANY (claims)))
          AND CASE m.state WHEN 'claimed' THEN m.lease_until < now()
              WHEN 'sending' THEN m.lease_until < now() ELSE false END
        FOR UPDATE SKIP LOCKED
    ), back AS (
        UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL,
            next_attempt_at = now(), updated_at = now()
        FROM inflight i WHERE m.id = i.id AND i.state = 'claimed'
        RETURNING m.id, m.sender, i.claimed_at
    ), usage AS (
        UPDATE sender_usage u SET sent = greatest(u.sent - g.n, 0)
        FROM (SELECT b.sender, (b.claimed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
              FROM back b GROUP BY 1, 2) g
        WHERE u.sender = g.sender AND u.day = g.day
    ), gone AS (
        UPDATE messages m SET state = 'unknown', lease_owner = NULL, lease_until = NULL,
            updated_at = now()
        FROM inflight i WHERE m.id = i.id AND i.state = 'sending'
        RETURNING m.id, m.enrollment_id, m.candidate_id, m.sequence_id, m.step, m.sending_at
    ), ev AS (
        INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type,
                            detail)
        SELECT g.candidate_id, g.id, g.enrollment_id, g.sequence_id, g.step, 'unknown',
               jsonb_build_object('reason', 'lease expired while sending')
        FROM gone g
    ), en AS (
        UPDATE enrollments e SET
            next_due_at = CASE WHEN e.step < jsonb_array_length(s.definition->'steps')
                THEN wb_seq_next_due(g.sending_at
                         + wb_duration(s.definition->'steps'->e.step->>'after'),
                         s.definition, c.timezone) END,
            state = CASE WHEN e.step < jsonb_array_length(s.definition->'steps') THEN 'active'
                ELSE 'finished' END,
            updated_at = now()
        FROM gone g, sequences s, candidates c
        WHERE e.id = g.enrollment_id AND s.id = e.sequence_id AND c.id = e.candidate_id
          AND e.state = 'active'
    )
    SELECT (SELECT count(*) FROM back), (SELECT count(*) FROM gone) INTO requeued, lost;
    -- Claims with a message still in flight wait for its lease; the rest go.
    WITH still AS (
        SELECT c.id, max(m.lease_until) AS until
        FROM send_claims c, unnest(c.ids) x(mid), messages m
        WHERE c.id = ANY (claims) AND m.id = x.mid AND m.state IN ('claimed', 'sending')
        GROUP BY c.id
    ), later AS (
        UPDATE send_claims c SET check_at = greatest(s.until, now() + interval '1 second')
        FROM still s WHERE c.id = s.id
    )
    DELETE FROM send_claims c WHERE c.id = ANY (claims) AND c.id NOT IN (SELECT id FROM still);
    -- Enrollments due with no step left end here.
    UPDATE enrollments e SET state = 'finished', next_due_at = NULL, ended_at = now(),
        updated_at = now()
    FROM sequences s
    WHERE s.id = e.sequence_id AND e.state = 'active' AND e.next_due_at <= now()
      AND e.step >= jsonb_array_length(s.definition->'steps');
    WITH c AS (
        UPDATE messages m SET state = 'cancelled', lease_owner = NULL, lease_until = NULL,
            next_attempt_at = NULL, updated_at = now()
        FROM enrollments e
        WHERE m.next_attempt_at IS NOT NULL AND m.state IN ('queued', 'retry')
          AND e.id = m.enrollment_id AND e.state <> 'active'
        RETURNING m.id
    )
    SELECT count(*) INTO cancelled FROM c;
END
$$;
