-- Immediate recovery after a crash (issue 12).
--
-- A daemon holds a session-level advisory lock, keyed by its owner name,
-- on its marking connection for as long as it lives. PostgreSQL releases
-- the lock when that session ends, including when the daemon is killed
-- (the kernel closes its socket). Lease recovery treats the claims of an
-- owner whose lock is gone as expired at once, whoever runs it; leases stay
-- the fallback for a hung daemon whose session is alive. A daemon never
-- treats its own claims so (a connection it lost and regained may not hold
-- the lock for a moment while its messages are still on the wire).
--
-- The key is (7426352, hashtext(owner)). Owners carry a random part, so two
-- live daemons collide with odds of one in four billion; a collision only
-- makes recovery wait for the leases, as before this migration.

-- Takes the owner's lock for this session; false when another session has it.
CREATE FUNCTION wb_owner_lock(p_owner text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT pg_try_advisory_lock(7426352, hashtext(p_owner))
$$;

-- The owners listed in send_claims whose lock no session holds, p_owner
-- excepted.
CREATE FUNCTION wb_dead_owners(p_owner text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT c.owner), '{}') FROM send_claims c
    WHERE c.owner IS DISTINCT FROM p_owner
      AND hashtext(c.owner)::oid NOT IN (
          SELECT l.objid FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.classid = 7426352 AND l.objsubid = 2
            AND l.granted)
$$;

-- wb_recover of 009, with the claims of dead owners taken at once. Returns
-- the three counts as before.
DROP FUNCTION wb_recover();
CREATE FUNCTION wb_recover(p_owner text, OUT requeued bigint, OUT lost bigint,
                           OUT cancelled bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
DECLARE
    claims bigint[];
    dead text[] := wb_dead_owners(p_owner);
BEGIN
    SELECT array_agg(c.id) INTO claims FROM (
        SELECT c.id FROM send_claims c WHERE c.check_at < now() OR c.owner = ANY (dead)
        ORDER BY c.check_at LIMIT 1000 FOR UPDATE SKIP LOCKED) c;
    WITH inflight AS MATERIALIZED (
        SELECT m.id, m.state, m.sender, m.updated_at AS claimed_at
        FROM messages m
        WHERE m.id = ANY (ARRAY(SELECT unnest(c.ids) FROM send_claims c
                                WHERE c.id = ANY (claims)))
          AND m.state IN ('claimed', 'sending')
          AND (m.lease_until < now() OR m.lease_owner = ANY (dead))
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
               jsonb_build_object('reason', 'the daemon sending it stopped mid-transaction')
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

-- `warmbench messages --unknown --requeue`: an operator sends again what a
-- crash left unknown, knowing it may arrive twice (it keeps its Message-ID,
-- so a mail client may fold the two). Only a message whose enrollment went
-- on as if it had been sent (active or finished), with no later step sent
-- and the person not suppressed. A finished enrollment is active again
-- until the outcome ends it. Returns each asked id with what happened.
CREATE FUNCTION wb_requeue_unknown(p_ids bigint[])
RETURNS TABLE (id bigint, requeued boolean, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH asked AS (
        SELECT m.id, m.enrollment_id, e.state AS e_state,
            CASE WHEN m.state <> 'unknown' THEN 'not unknown (' || m.state || ')'
                WHEN e.state NOT IN ('active', 'finished') THEN 'enrollment ' || e.state
                WHEN EXISTS (SELECT 1 FROM suppressions s
                             WHERE s.email_hash = wb_email_hash(c.email)) THEN 'address suppressed'
                WHEN EXISTS (SELECT 1 FROM messages l WHERE l.enrollment_id = m.enrollment_id
                             AND l.step > m.step AND l.state NOT IN ('cancelled'))
                    THEN 'a later step exists'
            END AS why
        FROM messages m
        JOIN enrollments e ON e.id = m.enrollment_id
        JOIN candidates c ON c.id = m.candidate_id
        WHERE m.id = ANY (p_ids)
        FOR UPDATE OF m, e
    ), en AS (
        UPDATE enrollments e SET state = 'active', ended_at = NULL, updated_at = now()
        FROM asked a WHERE e.id = a.enrollment_id AND a.why IS NULL AND a.e_state = 'finished'
    ), q AS (
        UPDATE messages m SET state = 'queued', next_attempt_at = now(), lease_owner = NULL,
            lease_until = NULL, last_reply = 'requeued by an operator after an unknown outcome',
            updated_at = now()
        FROM asked a WHERE m.id = a.id AND a.why IS NULL
        RETURNING m.id
    )
    SELECT x.i, x.i IN (SELECT q.id FROM q),
        coalesce(a.why, CASE WHEN a.id IS NULL THEN 'no such message' END)
    FROM unnest(p_ids) x(i) LEFT JOIN asked a ON a.id = x.i
    ORDER BY x.i;
    -- Requeued rows fire no trigger: the daemons are told here.
    PERFORM pg_notify('wb_enrollments', '');
END
$$;
