-- Engagement: recording events and applying the sequences' rules in the
-- same transaction (SPEC "stop_on / handoff_on"), so a stop is in force
-- the moment its event is stored.

-- Handoffs happen once per candidate and sequence, unless an operator asks
-- again (manual handoffs are not limited).
ALTER TABLE handoffs ADD COLUMN manual boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX handoffs_once_key ON handoffs (candidate_id, sequence_id) WHERE NOT manual;

-- Ends every active enrollment of a candidate and suppresses the address
-- (unsubscribe, hard bounce, an "unsubscribe" reply).
CREATE FUNCTION wb_suppress_candidate(p_candidate bigint, p_reason text) RETURNS void
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

-- Records events about messages and applies their consequences. Arrays
-- run in parallel: the message each event is about, its type (open, click,
-- unsubscribe, reply, auto_reply, bounce), whether a machine caused it
-- (privacy proxy, link scanner: recorded, but never a rule's trigger),
-- its detail (click: link; reply: intent; bounce: kind hard|soft, status)
-- and its time. Events about unknown messages are skipped. Returns the
-- number of events stored.
CREATE FUNCTION wb_record_events(p_message bigint[], p_type text[], p_machine boolean[],
                                 p_detail jsonb[], p_at timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ev record;
    key text;
    keys text[];
    def jsonb;
    n integer := 0;
    hid bigint;
BEGIN
    FOR ev IN
        SELECT m.id AS message_id, m.candidate_id, m.enrollment_id, m.sequence_id, m.step,
               r.type, coalesce(r.machine, false) AS machine,
               coalesce(r.detail, '{}'::jsonb) AS detail, coalesce(r.at, now()) AS at
        FROM unnest(p_message, p_type, p_machine, p_detail, p_at)
             AS r(message_id, type, machine, detail, at)
        JOIN messages m ON m.id = r.message_id
        ORDER BY r.at
    LOOP
        INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type,
                            machine, detail, at)
        VALUES (ev.candidate_id, ev.message_id, ev.enrollment_id, ev.sequence_id, ev.step,
                ev.type, ev.machine, ev.detail, ev.at);
        n := n + 1;
        CONTINUE WHEN ev.machine;

        IF ev.type IN ('open', 'click', 'reply') THEN
            UPDATE candidates SET last_engaged_at = greatest(last_engaged_at, ev.at)
            WHERE id = ev.candidate_id;
        END IF;
        IF ev.type = 'unsubscribe'
           OR (ev.type = 'reply' AND ev.detail->>'intent' = 'unsubscribe')
           OR (ev.type = 'bounce' AND ev.detail->>'kind' = 'hard') THEN
            PERFORM wb_suppress_candidate(ev.candidate_id,
                CASE ev.type WHEN 'bounce' THEN 'bounce' ELSE 'unsubscribe' END);
        END IF;
        -- A soft bounce is temporary: it matches no rule.
        CONTINUE WHEN ev.type = 'bounce' AND ev.detail->>'kind' IS DISTINCT FROM 'hard';

        keys := ARRAY[ev.type];
        IF ev.type = 'click' AND ev.detail ? 'link' THEN
            keys := keys || ('click:' || (ev.detail->>'link'));
        ELSIF ev.type = 'reply' AND ev.detail ? 'intent' THEN
            keys := keys || ('reply:' || (ev.detail->>'intent'));
        END IF;
        SELECT definition INTO def FROM sequences WHERE id = ev.sequence_id;
        CONTINUE WHEN def IS NULL;

        -- Handoff first: an enrollment that both hands off and stops on the
        -- same event ends as handed_off, the more telling of the two.
        FOREACH key IN ARRAY keys LOOP
            CONTINUE WHEN NOT (def->'handoff_on' ? key);
            INSERT INTO handoffs (candidate_id, sequence_id, reason)
            VALUES (ev.candidate_id, ev.sequence_id, key)
            ON CONFLICT (candidate_id, sequence_id) WHERE NOT manual DO NOTHING
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
            CONTINUE WHEN NOT (def->'stop_on' ? key);
            UPDATE enrollments SET state = 'stopped', stop_reason = key, next_due_at = NULL,
                ended_at = now(), updated_at = now()
            WHERE id = ev.enrollment_id AND state = 'active';
        END LOOP;
    END LOOP;
    RETURN n;
END
$$;
