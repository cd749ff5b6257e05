-- Engagement: recording events and applying the sequences' rules in the
-- same transaction (SPEC "stop_on / handoff_on"), so a stop is in force
-- the moment its event is stored.

-- Ends every active enrollment of a candidate and suppresses the address
-- (unsubscribe, hard bounce, an "unsubscribe" reply, a complaint).
CREATE OR REPLACE FUNCTION wb_suppress_candidate(p_candidate bigint, p_reason text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO suppressions (email, email_hash, reason)
    SELECT lower(email), wb_email_hash(email), p_reason FROM candidates WHERE id = p_candidate
    ON CONFLICT (email_hash) DO NOTHING;
    UPDATE enrollments SET state = 'stopped', stop_reason = p_reason, next_due_at = NULL,
        ended_at = now(), updated_at = now()
    WHERE candidate_id = p_candidate AND state = 'active';
END
$$;

-- wb_record_events (sql/002) with the same signature and behaviour, made
-- set-based: the whole batch is stored by one INSERT (so the score trigger
-- fires once per batch, not once per event), then only the human events
-- that can have a consequence (suppression, a stop_on or handoff_on key of
-- their sequence) are walked, in time order, to apply it. Most tracking
-- events (opens) have none, so the loop is usually empty.
CREATE OR REPLACE FUNCTION wb_record_events(p_message bigint[], p_type text[], p_machine boolean[],
                                                       p_detail jsonb[], p_at timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ev record;
    key text;
    keys text[];
    n integer;
    todo bigint[];
    hid bigint;
BEGIN
    WITH ins AS (
        INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type,
                            machine, detail, at)
        SELECT m.candidate_id, m.id, m.enrollment_id, m.sequence_id, m.step, r.type,
               coalesce(r.machine, false), coalesce(r.detail, '{}'::jsonb), coalesce(r.at, now())
        FROM unnest(p_message, p_type, p_machine, p_detail, p_at) WITH ORDINALITY
             AS r(message_id, type, machine, detail, at, i)
        JOIN messages m ON m.id = r.message_id
        ORDER BY coalesce(r.at, now()), r.i
        RETURNING id, message_id, sequence_id, type, machine, detail, at
    ), stats AS (
        -- Hard bounces and complaints per sender and day, for the guard
        -- (sql/018_sender_guard.sql).
        INSERT INTO sender_stats AS t (sender, day, hard_bounces, complaints)
        SELECT m.sender, (now() AT TIME ZONE 'UTC')::date,
            count(*) FILTER (WHERE i.type = 'bounce'), count(*) FILTER (WHERE i.type = 'complaint')
        FROM ins i JOIN messages m ON m.id = i.message_id
        WHERE NOT i.machine AND (i.type = 'complaint' OR (i.type = 'bounce' AND i.detail->>'kind' = 'hard'))
        GROUP BY m.sender
        ON CONFLICT (sender, day) DO UPDATE SET hard_bounces = t.hard_bounces + EXCLUDED.hard_bounces,
            complaints = t.complaints + EXCLUDED.complaints
    )
    SELECT count(*), array_agg(i.id ORDER BY i.at, i.id) FILTER (WHERE NOT i.machine AND (
               i.type IN ('unsubscribe', 'complaint')
            OR (i.type = 'reply' AND i.detail->>'intent' = 'unsubscribe')
            OR (i.type = 'bounce' AND i.detail->>'kind' = 'hard')
            OR (NOT (i.type = 'bounce' AND i.detail->>'kind' IS DISTINCT FROM 'hard')
                AND ((s.definition->'handoff_on') ?| wb_rule_keys(i.type, i.detail)
                     OR (s.definition->'stop_on') ?| wb_rule_keys(i.type, i.detail)))))
    INTO n, todo
    FROM ins i LEFT JOIN sequences s ON s.id = i.sequence_id;

    FOR ev IN
        SELECT e.candidate_id, e.enrollment_id, e.sequence_id, e.step, e.type, e.detail, e.at,
               s.definition AS def
        FROM events e LEFT JOIN sequences s ON s.id = e.sequence_id
        WHERE e.id = ANY (todo)
        ORDER BY e.at, e.id
    LOOP
        IF ev.type IN ('unsubscribe', 'complaint')
           OR (ev.type = 'reply' AND ev.detail->>'intent' = 'unsubscribe')
           OR (ev.type = 'bounce' AND ev.detail->>'kind' = 'hard') THEN
            PERFORM wb_suppress_candidate(ev.candidate_id,
                CASE ev.type WHEN 'bounce' THEN 'bounce' WHEN 'complaint' THEN 'complaint'
                     ELSE 'unsubscribe' END);
        END IF;
        -- A soft bounce is temporary: it matches no rule.
        CONTINUE WHEN ev.type = 'bounce' AND ev.detail->>'kind' IS DISTINCT FROM 'hard';
        CONTINUE WHEN ev.def IS NULL;
        keys := wb_rule_keys(ev.type, ev.detail);

        -- Handoff first: an enrollment that both hands off and stops on the
        -- same event ends as handed_off, the more telling of the two.
        FOREACH key IN ARRAY keys LOOP
            CONTINUE WHEN NOT (ev.def->'handoff_on' ? key);
            INSERT INTO handoffs (candidate_id, sequence_id, reason)
            VALUES (ev.candidate_id, ev.sequence_id, key)
            ON CONFLICT (candidate_id, sequence_id) WHERE NOT manual AND target = 'ats' DO NOTHING
            RETURNING id INTO hid;
            CONTINUE WHEN hid IS NULL;
            INSERT INTO events (candidate_id, enrollment_id, sequence_id, step, type, detail, at)
            VALUES (ev.candidate_id, ev.enrollment_id, ev.sequence_id, ev.step, 'handoff',
                    jsonb_build_object('reason', key, 'handoff', hid), ev.at);
            UPDATE enrollments SET state = 'handed_off', stop_reason = key,
                next_due_at = NULL, ended_at = now(), updated_at = now()
            WHERE id = ev.enrollment_id AND state = 'active';
        END LOOP;
        FOREACH key IN ARRAY keys LOOP
            CONTINUE WHEN NOT (ev.def->'stop_on' ? key);
            UPDATE enrollments SET state = 'stopped', stop_reason = key, next_due_at = NULL,
                ended_at = now(), updated_at = now()
            WHERE id = ev.enrollment_id AND state = 'active';
        END LOOP;
    END LOOP;
    RETURN n;
END
$$;
