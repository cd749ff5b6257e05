-- Sending throughput (issue 3): the scheduler's three hot statements (claim,
-- mark, outcomes) as functions whose plans fetch each batch by key, so that
-- a batch costs in proportion to its rows, not to a whole table.
--
-- What made batches cost in proportion to tables:
--  * A condition on messages.state that the planner can match to the
--    partial index of claimed and sending rows let it walk that index,
--    every in-flight row version (dead ones included, until vacuum), and
--    join each to its enrollment, rather than fetch the batch's ids. Such
--    conditions are written as CASE expressions, which it cannot match.
--  * The default random_page_cost (4.0, for spinning disks) priced a few
--    hundred primary-key probes above a hash join over a sequential scan of
--    every enrollment and every candidate, for each claim. These rows sit in
--    shared buffers; 1.1, the usual figure for that, is set on the
--    functions.
--  * A generic plan is cached for the table sizes of its moment; made while
--    messages was small it kept scanning the whole table as it grew. The
--    daemon has its plans made again as its claims grow (scheduler.c).
-- Only the mark waits for its commit to reach disk before it answers: the
-- claim and the outcomes are made durable by the marks that follow them
-- (each function says why that is enough).

-- wb_claim as in 001; the enrollments to move and the rows to return are
-- fetched by primary key.
CREATE OR REPLACE FUNCTION wb_claim(p_sender text, p_batch integer, p_daily_limit integer,
                                    p_min_interval_s integer, p_owner text, p_lease_s integer)
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
    -- Committed without waiting for the WAL flush: nothing is sent before
    -- the mark, and the mark's own durable commit flushes this claim's WAL
    -- with it. A claim lost in a crash of PostgreSQL itself had sent
    -- nothing: its enrollments are due again, its count off the day's limit.
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
        WHERE m.sender = p_sender AND m.state IN ('queued', 'retry')
          AND m.next_attempt_at <= now()
        ORDER BY m.next_attempt_at, m.id
        LIMIT n
        FOR UPDATE OF m SKIP LOCKED
    ), upd AS (
        UPDATE messages m SET state = 'claimed', lease_owner = p_owner,
            lease_until = now() + make_interval(secs => p_lease_s),
            attempts = m.attempts + 1, updated_at = now()
        WHERE m.id = ANY (ARRAY(SELECT id FROM pick))
        RETURNING m.id
    )
    SELECT array_agg(id) INTO ids FROM upd;
    -- Then due steps, made into claimed messages in one write: the
    -- enrollment moves on a step (step = steps started) as its message is
    -- born, so no other claimer can make it twice (unique enrollment+step).
    -- "id = ANY (ARRAY(...))" looks each row up by primary key.
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
        ), made AS (
            INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state,
                                  lease_owner, lease_until, attempts)
            SELECT id, candidate_id, sequence_id, step, p_sender, 'claimed', p_owner,
                   now() + make_interval(secs => p_lease_s), 1
            FROM moved
            ON CONFLICT (enrollment_id, step) DO NOTHING
            RETURNING id
        )
        SELECT coalesce(ids, '{}') || coalesce(array_agg(id), '{}') INTO ids FROM made;
    END IF;
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    UPDATE sender_usage SET sent = sent + cardinality(ids), last_send_at = now()
    WHERE sender = p_sender AND day = u.day;
    -- What rendering needs, read here: the messages made above are not
    -- visible to the statement that called this function. Consent decides
    -- whether step 1 carries the Article 14 notice (render.c). The candidate
    -- is a LATERAL subquery that cannot be flattened (OFFSET 0), so it is
    -- read by primary key per message; only later steps look for the
    -- Message-ID of step 1 to thread on.
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

-- claimed -> sending for the rows still claimed by p_owner whose enrollment
-- is active; repeating it for rows already marked with the same Message-ID
-- is harmless (a mark whose answer was lost with the connection is sent
-- again). Returns the ids that may be sent now.
CREATE FUNCTION wb_mark_sending(p_ids bigint[], p_mids text[], p_rcpts text[],
                                p_subjects text[], p_variants integer[], p_owner text,
                                p_lease_s integer)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH marked AS (
        UPDATE messages m SET state = 'sending', message_id = v.mid, rcpt = v.rcpt,
            subject = v.subj, variant = v.variant, sending_at = now(),
            lease_until = now() + make_interval(secs => p_lease_s), updated_at = now()
        FROM unnest(p_ids, p_mids, p_rcpts, p_subjects, p_variants)
            AS v(id, mid, rcpt, subj, variant), enrollments e
        WHERE m.id = v.id
          AND CASE m.state WHEN 'claimed' THEN m.lease_owner = p_owner
              WHEN 'sending' THEN m.lease_owner = p_owner AND m.message_id = v.mid
              ELSE false END
          AND e.id = m.enrollment_id AND e.state = 'active'
        RETURNING m.id
    )
    SELECT marked.id FROM marked;
END
$$;

-- SMTP outcomes of a batch in one transaction: the messages, their events,
-- the next step of each enrollment (inside its window), and for hard
-- bounces the suppression and the end of the person's other enrollments.
-- p_outcomes: sent, retry, failed, bounce, unknown (the connection broke
-- after the data: the sequence goes on as if sent). A claimed row of
-- p_owner may fail before SMTP (it could not be rendered). Returns how many
-- rows were applied and the seconds until the earliest next step or retry
-- this scheduled (NULL when none). The candidate's time zone is read, by
-- key, only where a window needs it.
CREATE FUNCTION wb_store_outcomes(p_ids bigint[], p_outcomes text[], p_codes integer[],
                                  p_replies text[], p_delays double precision[], p_owner text)
RETURNS TABLE (applied bigint, wake_s double precision)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
BEGIN
    -- Committed without waiting for the WAL flush: the next mark's flush
    -- (a few milliseconds later) makes this durable too. Lost in a crash of
    -- PostgreSQL itself, these rows stay `sending` and become `unknown` when
    -- their lease runs out, as outcomes a crashed daemon had not stored do:
    -- never resent.
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    WITH r AS (
        SELECT * FROM unnest(p_ids, p_outcomes, p_codes, p_replies, p_delays)
            AS r(id, outcome, code, reply, retry_s)
    ), m AS (
        UPDATE messages m SET
            state = CASE WHEN r.outcome IN ('sent', 'retry', 'unknown') THEN r.outcome
                    ELSE 'failed' END,
            last_reply = r.reply,
            sent_at = CASE WHEN r.outcome = 'sent' THEN now() END,
            next_attempt_at = CASE WHEN r.outcome = 'retry' THEN wb_seq_next_due(
                now() + make_interval(secs => r.retry_s), s.definition,
                (SELECT c.timezone FROM candidates c WHERE c.id = m.candidate_id))
                ELSE m.next_attempt_at END,
            lease_owner = NULL, lease_until = NULL, updated_at = now()
        FROM r, sequences s
        WHERE m.id = r.id AND s.id = m.sequence_id
          AND CASE m.state WHEN 'sending' THEN true WHEN 'claimed' THEN m.lease_owner = p_owner
              ELSE false END
        RETURNING m.id, m.enrollment_id, m.candidate_id, m.sequence_id, m.step, m.rcpt,
            r.outcome, r.code, r.reply, s.definition, m.next_attempt_at
    ), ev AS (
        INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type,
                            detail)
        SELECT m.candidate_id, m.id, m.enrollment_id, m.sequence_id, m.step,
            CASE WHEN m.outcome IN ('sent', 'bounce', 'unknown') THEN m.outcome ELSE 'failed' END,
            CASE m.outcome WHEN 'sent' THEN '{}'::jsonb
                WHEN 'bounce' THEN jsonb_build_object('kind', 'hard', 'smtp_code', m.code,
                                                      'reply', m.reply)
                ELSE jsonb_build_object('smtp_code', m.code, 'reply', m.reply) END
        FROM m WHERE m.outcome <> 'retry'
    ), en AS (
        UPDATE enrollments e SET
            next_due_at = CASE WHEN m.outcome IN ('sent', 'unknown')
                    AND e.step < jsonb_array_length(m.definition->'steps')
                THEN wb_seq_next_due(now() + wb_duration(m.definition->'steps'->e.step->>'after'),
                    m.definition, (SELECT c.timezone FROM candidates c WHERE c.id = m.candidate_id))
                END,
            state = CASE WHEN m.outcome NOT IN ('sent', 'unknown') THEN 'stopped'
                WHEN e.step < jsonb_array_length(m.definition->'steps') THEN 'active'
                ELSE 'finished' END,
            stop_reason = CASE m.outcome WHEN 'failed' THEN 'failed' WHEN 'bounce' THEN 'bounce'
                ELSE e.stop_reason END,
            ended_at = CASE WHEN m.outcome NOT IN ('sent', 'unknown')
                OR e.step >= jsonb_array_length(m.definition->'steps') THEN now() END,
            updated_at = now()
        FROM m WHERE e.id = m.enrollment_id AND m.outcome <> 'retry' AND e.state = 'active'
        RETURNING e.next_due_at
    ), sup AS (
        INSERT INTO suppressions (email, email_hash, reason)
        SELECT lower(m.rcpt), wb_email_hash(m.rcpt), 'bounce' FROM m
        WHERE m.outcome = 'bounce' AND m.rcpt IS NOT NULL
        ON CONFLICT (email_hash) DO NOTHING
    ), stop_all AS (
        UPDATE enrollments e SET state = 'stopped', stop_reason = 'bounce', next_due_at = NULL,
            ended_at = now(), updated_at = now()
        FROM m WHERE m.outcome = 'bounce' AND e.candidate_id = m.candidate_id
          AND e.id <> m.enrollment_id AND e.state = 'active'
    )
    SELECT (SELECT count(*) FROM m),
        extract(epoch FROM least((SELECT min(en.next_due_at) FROM en),
            (SELECT min(m.next_attempt_at) FROM m WHERE m.outcome = 'retry')) - now())::float8;
END
$$;

-- The scheduler updates each enrollment twice per message, and the
-- statement trigger of 001 copied every updated row into a transition table
-- to look for due ones among them. A row trigger whose condition is checked
-- as the row is written fires only for a row that is due now; PostgreSQL
-- sends one notification per transaction however many rows fire it.
CREATE FUNCTION wb_notify_enrollment_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_enrollments', '');
    RETURN NULL;
END
$$;
DROP TRIGGER enrollments_notify_update ON enrollments;
CREATE TRIGGER enrollments_notify_update AFTER UPDATE ON enrollments
    FOR EACH ROW WHEN (NEW.state = 'active' AND NEW.next_due_at <= now())
    EXECUTE FUNCTION wb_notify_enrollment_due();
