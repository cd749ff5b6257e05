-- Deliverability guards (SPEC "Deliverability"; sql/018_sender_guard.sql).

-- The guard, run by each daemon after every batch of outcomes it applies
-- and at every round, for the senders of its configuration (p_cfg: a JSON
-- array of {sender, max_bounce_rate, max_complaint_rate, min_sample,
-- window_days}). A sender that sent at least min_sample mails over its last
-- window_days (since its last resume) with a hard-bounce or complaint rate
-- above its limit is paused, once, with the reason. Returns every sender
-- of p_cfg: its pause reason (NULL: not paused), whether this call paused
-- it, and its first day of sending (for warm-up; NULL: never sent).
CREATE OR REPLACE FUNCTION wb_sender_guard(p_cfg jsonb)
RETURNS TABLE (sender text, paused_reason text, newly boolean, first_day date)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH cfg AS (
        SELECT * FROM jsonb_to_recordset(p_cfg) AS c(sender text, max_bounce_rate float8,
            max_complaint_rate float8, min_sample integer, window_days integer)
    ), agg AS (
        SELECT c.sender, c.max_bounce_rate, c.max_complaint_rate, c.min_sample,
            coalesce(sum(t.sent - CASE WHEN t.day = g.guard_since THEN g.base_sent ELSE 0 END), 0) AS sent,
            coalesce(sum(t.hard_bounces - CASE WHEN t.day = g.guard_since THEN g.base_bounces ELSE 0 END), 0) AS hb,
            coalesce(sum(t.complaints - CASE WHEN t.day = g.guard_since THEN g.base_complaints ELSE 0 END), 0) AS co
        FROM cfg c
        LEFT JOIN sender_guard g ON g.sender = c.sender
        LEFT JOIN sender_stats t ON t.sender = c.sender
            AND t.day > (now() AT TIME ZONE 'UTC')::date - c.window_days
            AND t.day >= coalesce(g.guard_since, '-infinity'::date)
        WHERE g.paused_reason IS NULL
        GROUP BY c.sender, c.max_bounce_rate, c.max_complaint_rate, c.min_sample
    ), over AS (
        SELECT a.sender, CASE
            WHEN a.hb::float8 / a.sent > a.max_bounce_rate THEN
                format('hard-bounce rate %s%% above %s%% (%s of %s mails)',
                       round(100.0 * a.hb / a.sent, 2), round(100 * a.max_bounce_rate::numeric, 2),
                       a.hb, a.sent)
            ELSE format('complaint rate %s%% above %s%% (%s of %s mails)',
                       round(100.0 * a.co / a.sent, 2), round(100 * a.max_complaint_rate::numeric, 3),
                       a.co, a.sent) END AS reason
        FROM agg a
        WHERE a.sent >= a.min_sample AND (a.hb::float8 / a.sent > a.max_bounce_rate
                                          OR a.co::float8 / a.sent > a.max_complaint_rate)
    ), paused AS (
        INSERT INTO sender_guard AS g (sender, paused_reason, paused_at, updated_at)
        SELECT o.sender, o.reason, now(), now() FROM over o
        ON CONFLICT (sender) DO UPDATE SET paused_reason = EXCLUDED.paused_reason,
            paused_at = now(), updated_at = now()
        WHERE g.paused_reason IS NULL
        RETURNING g.sender, g.paused_reason
    )
    SELECT c.sender, coalesce(p.paused_reason, g.paused_reason), p.sender IS NOT NULL,
        (SELECT min(t.day) FROM sender_stats t WHERE t.sender = c.sender AND t.sent > 0)
    FROM cfg c
    LEFT JOIN paused p ON p.sender = c.sender
    LEFT JOIN sender_guard g ON g.sender = c.sender;
END
$$;

-- `warmbench pause --sender S` (p_reason set) and `resume --sender S`
-- (p_reason NULL). A resume starts the guard afresh from now: today's
-- counts so far become its baseline. Returns whether the pause state
-- changed; NOTIFY wb_sender_state tells running daemons.
CREATE OR REPLACE FUNCTION wb_sender_set_paused(p_sender text, p_reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    st sender_stats;
    n integer;
BEGIN
    IF p_reason IS NULL AND NOT EXISTS (SELECT 1 FROM sender_guard g
                                        WHERE g.sender = p_sender AND g.paused_reason IS NOT NULL) THEN
        RETURN false;
    END IF;
    SELECT * INTO st FROM sender_stats WHERE sender = p_sender AND day = today;
    INSERT INTO sender_guard AS g (sender, paused_reason, paused_at, guard_since, base_sent,
                                   base_bounces, base_complaints)
    VALUES (p_sender, p_reason, CASE WHEN p_reason IS NOT NULL THEN now() END,
            CASE WHEN p_reason IS NULL THEN today END, coalesce(st.sent, 0),
            coalesce(st.hard_bounces, 0), coalesce(st.complaints, 0))
    ON CONFLICT (sender) DO UPDATE SET
        paused_reason = EXCLUDED.paused_reason, paused_at = EXCLUDED.paused_at,
        guard_since = CASE WHEN EXCLUDED.paused_reason IS NULL THEN today ELSE g.guard_since END,
        base_sent = CASE WHEN EXCLUDED.paused_reason IS NULL THEN EXCLUDED.base_sent ELSE g.base_sent END,
        base_bounces = CASE WHEN EXCLUDED.paused_reason IS NULL THEN EXCLUDED.base_bounces
                            ELSE g.base_bounces END,
        base_complaints = CASE WHEN EXCLUDED.paused_reason IS NULL THEN EXCLUDED.base_complaints
                               ELSE g.base_complaints END,
        updated_at = now()
    WHERE g.paused_reason IS DISTINCT FROM EXCLUDED.paused_reason;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_notify('wb_sender_state', p_sender);
    RETURN n > 0;
END
$$;
