-- Sending throughput (issues 3 and 12): the scheduler's hot statements
-- (claim, mark, outcomes, recovery) as functions whose plans fetch each
-- batch by key, so that a batch costs in proportion to its rows, not to a
-- whole table, and a message's trip claimed -> sending -> sent rewrites
-- its row in place (heap-only tuples: sql/009_send_hot.sql says why).
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

-- Claims up to batch due messages of one sender for one daemon (owner):
-- retries and requeued messages first, then due enrollment steps, which
-- become claimed messages directly, honouring the sender's daily_limit
-- (0 = none; counted per UTC day, as SMTP transactions started) and
-- min_interval_s (least gap between two sends); a due step picked outside
-- its sequence's window, or held by the contact policy, is re-timed to the
-- window's next opening instead (retries are not). The sender_usage row lock
-- serialises concurrent claimers of one sender, so the limits hold across
-- several daemons; SKIP LOCKED keeps them from waiting on each other's
-- messages. Each message is born with its Message-ID
-- ("wb.ID.RANDOM@DOMAIN", p_domain being the sender's) and its recipient,
-- and the claim is listed in send_claims. The 64 random bits keep
-- Message-IDs of different databases apart; they guard nothing (tokens are
-- signed), so random() serves: the strong generator cost 8% of the claim.
CREATE OR REPLACE FUNCTION wb_claim(p_sender text, p_batch integer, p_daily_limit integer,
                                    p_min_interval_s integer, p_owner text, p_lease_s integer,
                                    p_domain text)
RETURNS TABLE (id bigint, step integer, sequence_id text, attempts integer, message_id text,
               candidate_id bigint, email text, first_name text, last_name text, title text,
               company text, location text, attrs text, thread_id text, consent text,
               source text)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
#variable_conflict use_column
DECLARE
    u sender_usage;
    n integer := p_batch;
    ids bigint[];
    due bigint[];
    due_cand bigint[];
    due_seq text[];
    later bigint[];
    later_at timestamptz[];
    pol send_policy;
    policy boolean;
    sort_was text;
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
             AND e.paused_at IS NULL
        JOIN sequences sq ON sq.id = m.sequence_id AND sq.paused_at IS NULL
        WHERE m.sender = p_sender AND m.next_attempt_at <= now()
          AND m.state IN ('queued', 'retry')
        ORDER BY m.next_attempt_at, m.id
        LIMIT n
        FOR UPDATE OF m SKIP LOCKED
    ), upd AS (
        -- A queued row (released, or recovered from a claim: never marked,
        -- so never sent) gets a new Message-ID, and so does one queued by a
        -- daemon older than migration 009, which has none. The mark takes
        -- only the Message-ID of the latest claim, so a daemon that still
        -- holds the row from before it was recovered (another daemon took
        -- it for dead during a failover) cannot mark and send that stale
        -- copy beside the new one. A retry keeps its Message-ID.
        UPDATE messages m SET state = 'claimed', lease_owner = p_owner,
            lease_until = now() + make_interval(secs => p_lease_s), next_attempt_at = NULL,
            attempts = m.attempts + 1, updated_at = now(),
            message_id = CASE WHEN m.state = 'retry' AND m.message_id IS NOT NULL
                THEN m.message_id ELSE 'wb.' || m.id || '.'
                || lpad(to_hex((random() * 4294967296)::bigint), 8, '0')
                || lpad(to_hex((random() * 4294967296)::bigint), 8, '0') || '@' || p_domain END
        WHERE m.id = ANY (ARRAY(SELECT id FROM pick))
        RETURNING m.id
    )
    SELECT array_agg(id) INTO ids FROM upd;
    -- Then due steps, made into claimed messages in one write: the
    -- enrollment moves on a step (step = steps started) as its message is
    -- born, so no other claimer can make it twice (unique enrollment+step).
    -- "id = ANY (ARRAY(...))" looks each row up by primary key.
    IF coalesce(cardinality(ids), 0) < n THEN
        -- The step's sender claims it (wb_step_sender: the step's, the
        -- sequence's, or the candidate's owner). With a contact policy, each
        -- person is also held by a transaction-level advisory lock (another
        -- daemon skips them), so the count below, made by a later statement
        -- and so seeing every claim committed before it, cannot race.
        SELECT * INTO pol FROM send_policy;
        policy := coalesce(pol.cooldown_days, 0) > 0 OR coalesce(pol.max_per_30_days, 0) > 0;
        -- The due index, read in order until the batch is full, and never
        -- a sort of every due row: the planner cannot estimate the
        -- sequence conditions below (expressions over the definition, a
        -- CASE it prices as one row in two hundred), took a batch for most
        -- of the due rows, and read them all and sorted them for each claim
        -- (bench-send: 7-9 ms per claim of 256 against under 1 ms, and with
        -- a contact policy an advisory lock on every due person). Only for
        -- this statement.
        sort_was := current_setting('enable_sort');
        PERFORM set_config('enable_sort', 'off', true);
        SELECT array_agg(d.id), array_agg(d.candidate_id), array_agg(d.sequence_id)
        INTO due, due_cand, due_seq FROM (
            SELECT e.id, e.candidate_id, e.sequence_id FROM enrollments e
            JOIN sequences s ON s.id = e.sequence_id
            WHERE e.state = 'active' AND e.next_due_at <= now() AND s.paused_at IS NULL
              AND e.step < jsonb_array_length(s.definition->'steps')
              -- A manual step is no mail: wb_task_claim (062_tasks.sql) takes it.
              AND (NOT s.task_steps OR NOT (s.definition->'steps'->e.step ? 'task'))
              AND CASE WHEN NOT s.mixed_senders THEN s.definition->>'sender' = p_sender
                       ELSE wb_step_sender(s.definition, e.step, e.candidate_id) = p_sender END
              AND (NOT policy OR pg_try_advisory_xact_lock(7426353, hashint8(e.candidate_id)))
            ORDER BY e.next_due_at
            LIMIT n - coalesce(cardinality(ids), 0)
            FOR UPDATE OF e SKIP LOCKED) d;
        PERFORM set_config('enable_sort', sort_was, true);
        IF due IS NOT NULL THEN
            -- Outside its window now (a day's limit left it over, a daemon
            -- was down): due again at the window's next opening (SPEC: "A
            -- step that falls due outside the window is sent at the
            -- window's next opening"), not claimed now. Only the rows picked
            -- above are looked at, and the window is worked out once per
            -- sequence, zone and country among them. A window that never
            -- opens (NULL) leaves the step never due, as wb_step_due does.
            WITH pk AS MATERIALIZED (
                SELECT u.id, u.seq, c.timezone AS tz, c.attrs->>'country' AS country
                FROM unnest(due, due_cand, due_seq) AS u(id, cand, seq)
                JOIN candidates c ON c.id = u.cand
            ), win AS MATERIALIZED (
                SELECT k.seq, k.tz, k.country,
                       wb_seq_next_due(now(), s.definition, k.tz, k.country) AS open_at
                FROM (SELECT DISTINCT seq, tz, country FROM pk) k
                JOIN sequences s ON s.id = k.seq AND s.definition ? 'window'
            )
            SELECT array_agg(pk.id), array_agg(w.open_at) INTO later, later_at
            FROM pk JOIN win w ON w.seq = pk.seq AND w.tz IS NOT DISTINCT FROM pk.tz
                AND w.country IS NOT DISTINCT FROM pk.country
            WHERE w.open_at IS NULL OR w.open_at > now();
            -- Usually none is outside: then nothing is written.
            IF later IS NOT NULL THEN
                UPDATE enrollments e SET next_due_at = l.at, updated_at = now()
                FROM unnest(later, later_at) AS l(id, at) WHERE e.id = l.id;
                -- More of such a backlog may wait behind this batch: wake
                -- the claimers at once (at commit) rather than at their
                -- next idle tick, which moved it one batch a second.
                PERFORM pg_notify('wb_enrollments', '');
                due := ARRAY(SELECT x FROM unnest(due) AS x WHERE x NOT IN (SELECT unnest(later)));
                IF cardinality(due) = 0 THEN
                    due := NULL;
                END IF;
            END IF;
        END IF;
        IF policy AND due IS NOT NULL THEN
            -- Held by the policy: due again at the window's first opening
            -- once it lets them, not claimed now.
            WITH held AS (
                SELECT e.id, e.sequence_id, e.candidate_id,
                       wb_contact_ok_at(e.candidate_id, e.sequence_id, e.step,
                                        pol.cooldown_days, pol.max_per_30_days) AS ok_at
                FROM enrollments e WHERE e.id = ANY (due)
            ), deferred AS (
                UPDATE enrollments e SET updated_at = now(),
                    next_due_at = (SELECT wb_seq_next_due(h.ok_at, s.definition, c.timezone,
                                                          c.attrs->>'country')
                                   FROM sequences s, candidates c
                                   WHERE s.id = h.sequence_id AND c.id = h.candidate_id)
                FROM held h WHERE e.id = h.id AND h.ok_at > now()
                RETURNING e.id
            )
            SELECT array_agg(x) INTO due FROM unnest(due) AS x
            WHERE x NOT IN (SELECT id FROM deferred);
        END IF;
        WITH moved AS (
            UPDATE enrollments e SET step = e.step + 1, next_due_at = NULL, updated_at = now()
            WHERE e.id = ANY (coalesce(due, '{}'))
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
    -- What rendering needs, read here: the messages made above are not
    -- visible to the statement that called this function. Consent decides
    -- whether step 1 carries the Article 14 notice (render.c), which names the
    -- source. The candidate
    -- is a LATERAL subquery that cannot be flattened (OFFSET 0), so it is
    -- read by primary key per message; only later steps look for the
    -- Message-ID of step 1 to thread on.
    RETURN QUERY
    SELECT m.id, m.step, m.sequence_id, m.attempts, m.message_id, c.id, c.email,
           c.first_name, c.last_name, c.title, c.company, c.location, c.attrs::text,
           CASE WHEN m.step > 1 THEN (SELECT m1.message_id FROM messages m1
                WHERE m1.enrollment_id = m.enrollment_id AND m1.step = 1) END,
           c.consent, c.source
    FROM messages m
    CROSS JOIN LATERAL (SELECT * FROM candidates c1 WHERE c1.id = m.candidate_id OFFSET 0) c
    WHERE m.id = ANY (ids)
    ORDER BY m.id;
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
CREATE OR REPLACE FUNCTION wb_store_outcomes(p_ids bigint[], p_outcomes text[], p_codes integer[],
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
            next_attempt_at = CASE WHEN r.outcome = 'retry' THEN (SELECT wb_seq_next_due(
                now() + make_interval(secs => r.retry_s), s.definition, c.timezone,
                c.attrs->>'country') FROM candidates c WHERE c.id = m.candidate_id)
                ELSE m.next_attempt_at END,
            out_outcome = NULL, out_code = NULL, out_retry_s = NULL,
            lease_owner = NULL, lease_until = NULL, updated_at = now()
        FROM r, sequences s
        WHERE m.id = r.id AND s.id = m.sequence_id
          AND CASE m.state WHEN 'sending' THEN true WHEN 'claimed' THEN m.lease_owner = p_owner
              ELSE false END
        RETURNING m.id, m.enrollment_id, m.candidate_id, m.sequence_id, m.step, m.rcpt,
            r.outcome, r.code, r.reply, s.definition, m.next_attempt_at, m.sender
    ), stats AS (
        -- What reached a server, per sender and day, for the guard and
        -- warm-up (sql/018_sender_guard.sql).
        INSERT INTO sender_stats AS t (sender, day, sent, hard_bounces)
        SELECT m.sender, (now() AT TIME ZONE 'UTC')::date,
            count(*) FILTER (WHERE m.outcome IN ('sent', 'unknown', 'bounce')),
            count(*) FILTER (WHERE m.outcome = 'bounce')
        FROM m WHERE m.outcome IN ('sent', 'unknown', 'bounce')
        GROUP BY m.sender
        ON CONFLICT (sender, day) DO UPDATE SET sent = t.sent + EXCLUDED.sent,
            hard_bounces = t.hard_bounces + EXCLUDED.hard_bounces
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
        -- A person paused while this message was on its way keeps the next
        -- step's time in paused_due_at until resumed.
        UPDATE enrollments e SET
            next_due_at = CASE WHEN m.outcome IN ('sent', 'unknown') AND e.paused_at IS NULL
                    AND e.step < jsonb_array_length(m.definition->'steps')
                THEN (SELECT wb_step_due(now(), m.definition, e.step, c.timezone,
                                         c.attrs->>'country')
                      FROM candidates c WHERE c.id = m.candidate_id)
                END,
            paused_due_at = CASE WHEN m.outcome IN ('sent', 'unknown') AND e.paused_at IS NOT NULL
                    AND e.step < jsonb_array_length(m.definition->'steps')
                THEN (SELECT wb_step_due(now(), m.definition, e.step, c.timezone,
                                         c.attrs->>'country')
                      FROM candidates c WHERE c.id = m.candidate_id)
                ELSE e.paused_due_at END,
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

-- The send window's one round trip, one statement: stages the outcomes
-- that came back (o_*) and marks the next messages `sending` (p_*), in one
-- transaction. Its commit waits for the WAL flush, and for the synchronous
-- standby where there is one: the mark must survive a crash of PostgreSQL
-- (at most once), and so must the outcomes, or a failover right after a
-- burst's last ones (staged by a statement that marks nothing) left them
-- `sending` until their claim's lease ran out, a minute or more, and then
-- `unknown` (test_failover). Staging and marking together keep what a
-- kill -9 can leave unknown (marked, not staged) within the window at
-- every commit.
--
-- Staging writes the outcome into the row (migration 032): only a row of
-- p_owner's own claim or mark, not staged yet. The mark is claimed ->
-- sending for the rows still claimed by p_owner whose enrollment is
-- active, with the Message-ID the claim made: a row whose Message-ID
-- differs is not marked (one claimed before migration 009 has none yet and
-- takes the daemon's). Repeating it for rows already marked with the same
-- Message-ID is harmless (a mark whose answer was lost with the connection
-- is sent again). A pause (the sequence's, the person's, the sender's)
-- holds what was claimed before it: not marked, so not sent. Both are
-- in-place rewrites of rows the claim made (no indexed column changes).
-- Returns the ids that may be sent now. Its plan is the generic one: with
-- a custom plan per call (which PL/pgSQL kept choosing once a statement
-- had come with an empty array, as a window that only stages or only
-- marks does) each call planned the statement again, 0.8 ms against
-- 0.1 ms for the whole call (pgbench, a window of 8 and 8: 0.14 -> 0.11
-- ms). Each array is looked up row by row through the primary key, which
-- is the generic plan whatever their size.
CREATE OR REPLACE FUNCTION wb_send_window(p_ids bigint[], p_mids text[], p_rcpts text[],
                                          p_subjects text[], p_variants integer[], p_owner text,
                                          p_lease_s integer, o_ids bigint[], o_outcomes text[],
                                          o_codes integer[], o_replies text[],
                                          o_delays double precision[])
RETURNS TABLE (id bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- One UPDATE for both (a statement's set-up opens the table and its
    -- indexes once): the marks (mark true) and the outcomes, each row by
    -- its primary key; the mark's checks only for the marks.
    WITH upd AS (
        UPDATE messages m SET
            state = CASE WHEN v.mark THEN 'sending' ELSE m.state END,
            rcpt = CASE WHEN v.mark THEN v.rcpt ELSE m.rcpt END,
            subject = CASE WHEN v.mark THEN v.subj ELSE m.subject END,
            variant = CASE WHEN v.mark THEN v.variant ELSE m.variant END,
            message_id = CASE WHEN v.mark THEN v.mid ELSE m.message_id END,
            sending_at = CASE WHEN v.mark THEN now() ELSE m.sending_at END,
            lease_until = CASE WHEN v.mark THEN now() + make_interval(secs => p_lease_s)
                ELSE m.lease_until END,
            updated_at = CASE WHEN v.mark THEN now() ELSE m.updated_at END,
            out_outcome = CASE WHEN v.mark THEN m.out_outcome
                WHEN v.outcome IN ('sent', 'retry', 'bounce', 'unknown') THEN v.outcome
                ELSE 'failed' END,
            out_code = CASE WHEN v.mark THEN m.out_code ELSE v.code END,
            out_retry_s = CASE WHEN v.mark THEN m.out_retry_s ELSE v.retry_s END,
            last_reply = CASE WHEN v.mark THEN m.last_reply ELSE v.reply END
        FROM (SELECT u.id, true AS mark, u.mid, u.rcpt, u.subj, u.variant, NULL::text AS outcome,
                     NULL::integer AS code, NULL::text AS reply, NULL::float8 AS retry_s
              FROM unnest(p_ids, p_mids, p_rcpts, p_subjects, p_variants)
                  AS u(id, mid, rcpt, subj, variant)
              UNION ALL
              SELECT r.id, false, NULL, NULL, NULL, NULL, r.outcome, r.code, r.reply, r.retry_s
              FROM unnest(o_ids, o_outcomes, o_codes, o_replies, o_delays)
                  AS r(id, outcome, code, reply, retry_s)) v
        WHERE m.id = v.id AND m.lease_owner = p_owner AND m.state IN ('claimed', 'sending')
          AND m.out_outcome IS NULL
          AND (NOT v.mark OR (coalesce(m.message_id, v.mid) = v.mid
               AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = m.enrollment_id
                           AND e.state = 'active' AND e.paused_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM sequences sq
                               WHERE sq.id = m.sequence_id AND sq.paused_at IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM sender_guard g
                               WHERE g.sender = m.sender AND g.paused_reason IS NOT NULL)))
        RETURNING m.id, v.mark
    )
    SELECT upd.id FROM upd WHERE upd.mark;
END
$$;

-- claimed -> sending for the rows still claimed by p_owner: the window
-- statement without outcomes (wb_send_window says what it checks).
CREATE OR REPLACE FUNCTION wb_mark_sending(p_ids bigint[], p_mids text[], p_rcpts text[],
                                           p_subjects text[], p_variants integer[], p_owner text,
                                           p_lease_s integer)
RETURNS TABLE (id bigint)
LANGUAGE sql AS $$
    SELECT w.id FROM wb_send_window(p_ids, p_mids, p_rcpts, p_subjects, p_variants, p_owner,
                                    p_lease_s, '{}', '{}', '{}', '{}', '{}') w
$$;

-- Applies staged outcomes (wb_store_outcomes) and clears them, in one
-- transaction: those of the messages named in p_ids (the daemon passes
-- what it staged; recovery what a stopped daemon had), at most p_limit.
-- p_ids NULL takes every row p_owner staged, through its claims: a
-- daemon after a reconnect (an apply it had an answer for can be lost with
-- a failed primary), or one older than migration 032. Returns how many staged rows were taken
-- and the seconds until the earliest next step or retry (NULL when none).
CREATE OR REPLACE FUNCTION wb_apply_outcomes(p_owner text, p_limit integer, p_ids bigint[] DEFAULT NULL,
                                             OUT taken bigint, OUT wake_s double precision)
LANGUAGE plpgsql
SET random_page_cost = 1.1 AS $$
DECLARE
    ids bigint[]; outs text[]; codes integer[]; replies text[]; delays double precision[];
BEGIN
    IF p_ids IS NULL THEN
        p_ids := ARRAY(SELECT x FROM send_claims c, unnest(c.ids) x WHERE c.owner = p_owner);
    END IF;
    SELECT array_agg(s.id), array_agg(s.out_outcome), array_agg(s.out_code),
           array_agg(coalesce(s.last_reply, '')), array_agg(coalesce(s.out_retry_s, 0)), count(*)
    INTO ids, outs, codes, replies, delays, taken
    FROM (SELECT m.id, m.out_outcome, m.out_code, m.last_reply, m.out_retry_s
          FROM messages m
          WHERE m.id = ANY (p_ids) AND m.out_outcome IS NOT NULL
            AND m.state IN ('claimed', 'sending')
          ORDER BY m.id LIMIT p_limit FOR UPDATE SKIP LOCKED) s;
    IF taken = 0 THEN
        RETURN;
    END IF;
    SELECT w.wake_s INTO wake_s FROM wb_store_outcomes(ids, outs, codes, replies, delays, p_owner) w;
END
$$;

-- Takes the owner's lock for this session; false when another session has it.
CREATE OR REPLACE FUNCTION wb_owner_lock(p_owner text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT pg_try_advisory_lock(7426352, hashtext(p_owner))
$$;

-- The owners listed in send_claims whose lock no session holds, p_owner
-- excepted.
CREATE OR REPLACE FUNCTION wb_dead_owners(p_owner text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT c.owner), '{}') FROM send_claims c
    WHERE c.owner IS DISTINCT FROM p_owner
      AND hashtext(c.owner)::oid NOT IN (
          SELECT l.objid FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.classid = 7426352 AND l.objsubid = 2
            AND l.granted)
$$;

-- Lease recovery: the claims whose check_at has passed, or whose owner's
-- lock no session holds (a daemon that stopped: wb_dead_owners), their
-- messages still claimed or sending. What that daemon had staged is
-- applied first. An expired claim never reached SMTP: back to the queue,
-- its count given back to the day it was taken. An expired `sending` row
-- may have been delivered: `unknown`, never resent, and the sequence goes
-- on as if it had been sent. A claim with a message still in flight is
-- looked at again when that lease ends; one with none goes. Also cancels
-- queued and retry rows whose enrollment has ended, and ends enrollments
-- due with no step left. Returns the three counts.
CREATE OR REPLACE FUNCTION wb_recover(p_owner text, OUT requeued bigint, OUT lost bigint,
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
    SELECT array_agg(m.id) INTO staged FROM messages m
    WHERE m.id = ANY (ARRAY(SELECT unnest(c.ids) FROM send_claims c WHERE c.id = ANY (claims)))
      AND m.out_outcome IS NOT NULL;
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
          -- A staged `sending` row was applied above (or is being applied
          -- by another daemon's recovery): its outcome is known.
          AND (m.state = 'claimed' OR m.out_outcome IS NULL)
        FOR UPDATE SKIP LOCKED
    ), back AS (
        UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL,
            next_attempt_at = now(), out_outcome = NULL, out_code = NULL, out_retry_s = NULL,
            updated_at = now()
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
                THEN wb_step_due(g.sending_at, s.definition, e.step, c.timezone,
                                 c.attrs->>'country') END,
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
CREATE OR REPLACE FUNCTION wb_requeue_unknown(p_ids bigint[])
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
