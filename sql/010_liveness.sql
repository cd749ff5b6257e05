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

-- SMTP outcomes, staged the moment they are known (a cheap insert, no
-- trigger), then applied to messages, events and enrollments in batches
-- by wb_apply_outcomes. A daemon keeps at most 2 x connections messages
-- marked `sending` whose outcome is not staged yet, which bounds what a
-- kill -9 leaves `unknown`; the apply (about a millisecond of fixed cost
-- per statement: the event triggers, the enrollment updates) stays
-- batched. A staged outcome is never lost to recovery: wb_recover applies
-- it before it turns anything `unknown`.
CREATE TABLE send_outcomes (
    message_id  bigint PRIMARY KEY,
    owner       text NOT NULL,
    outcome     text NOT NULL,
    code        integer NOT NULL,
    reply       text NOT NULL,
    retry_s     double precision NOT NULL
);
CREATE INDEX send_outcomes_owner_idx ON send_outcomes (owner);

-- Stages a batch. Committed without waiting for the WAL flush, as 006's
-- outcomes were: lost in a crash of PostgreSQL itself, these messages stay
-- `sending` and become `unknown`, never resent.
CREATE FUNCTION wb_stage_outcomes(p_ids bigint[], p_outcomes text[], p_codes integer[],
                                  p_replies text[], p_delays double precision[], p_owner text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO send_outcomes (message_id, owner, outcome, code, reply, retry_s)
    SELECT r.id, p_owner, r.outcome, r.code, r.reply, r.retry_s
    FROM unnest(p_ids, p_outcomes, p_codes, p_replies, p_delays) AS r(id, outcome, code, reply, retry_s)
    ON CONFLICT (message_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Applies staged outcomes (006's wb_store_outcomes) and removes them, in
-- one transaction: p_ids NULL takes up to p_limit of p_owner's, else those
-- of the messages named (recovery). Returns how many staged rows were taken
-- and the seconds until the earliest next step or retry (NULL when none).
CREATE FUNCTION wb_apply_outcomes(p_owner text, p_limit integer, p_ids bigint[] DEFAULT NULL,
                                  OUT taken bigint, OUT wake_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[]; outs text[]; codes integer[]; replies text[]; delays double precision[];
BEGIN
    WITH pick AS (
        SELECT o.message_id FROM send_outcomes o
        WHERE CASE WHEN p_ids IS NULL THEN o.owner = p_owner ELSE o.message_id = ANY (p_ids) END
        ORDER BY o.message_id LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM send_outcomes o USING pick WHERE o.message_id = pick.message_id
        RETURNING o.*
    )
    SELECT array_agg(g.message_id), array_agg(g.outcome), array_agg(g.code),
           array_agg(g.reply), array_agg(g.retry_s), count(*)
    INTO ids, outs, codes, replies, delays, taken FROM gone g;
    IF taken = 0 THEN
        RETURN;
    END IF;
    SELECT w.wake_s INTO wake_s FROM wb_store_outcomes(ids, outs, codes, replies, delays, p_owner) w;
END
$$;

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
    staged bigint[];
BEGIN
    SELECT array_agg(c.id) INTO claims FROM (
        SELECT c.id FROM send_claims c WHERE c.check_at < now() OR c.owner = ANY (dead)
        ORDER BY c.check_at LIMIT 1000 FOR UPDATE SKIP LOCKED) c;
    -- What the stopped daemon had learnt and staged is applied first: only
    -- what it never heard back about becomes unknown.
    SELECT array_agg(o.message_id) INTO staged
    FROM send_claims c, unnest(c.ids) x(mid), send_outcomes o
    WHERE c.id = ANY (claims) AND o.message_id = x.mid;
    IF staged IS NOT NULL THEN
        PERFORM wb_apply_outcomes(NULL, cardinality(staged), staged);
    END IF;
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
