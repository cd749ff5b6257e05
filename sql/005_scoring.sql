-- Engagement score (SPEC "Talent intelligence"). A candidate's score at
-- time t is the sum over their scored events of w * 2^(-(t - at) / half_life):
-- human events only, weighted by type (lib/scoring.c documents the keys).
-- It is kept as (score, score_at): the value at time score_at, which is the
-- time of the latest scored event. Decaying to any later time is one
-- multiplication, so readers call wb_score_now() and nothing needs a
-- periodic sweep.

-- The weights and half-life in force, synced from warmbench.json by
-- wb_scoring_sync (lib/scoring.c). The defaults here are the documented
-- ones, so scores are right even before the first sync.
CREATE TABLE score_weights (
    key    text PRIMARY KEY,          -- "open", "click", "click:apply", "reply:interested", ...
    weight double precision NOT NULL
);
INSERT INTO score_weights (key, weight) VALUES
    ('open', 1), ('click', 3), ('reply', 10), ('reply:interested', 20),
    ('reply:neutral', 10), ('reply:not_interested', -5), ('reply:unsubscribe', -10),
    ('auto_reply', 0), ('bounce', -5), ('bounce:soft', 0), ('unsubscribe', -10);
INSERT INTO wb_settings (key, value) VALUES ('score_half_life_days', '30');

-- score decayed by age_days. Clamped so PostgreSQL's float underflow checks
-- never fire: past 64 half-lives (or for a negligible score) the value is 0,
-- and a negative age (a time in the future) does not grow it.
-- lib/scoring.c's wb_score_decay is the same function in C.
CREATE FUNCTION wb_score_decay(p_score float8, p_age_days float8, p_half_life float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_score = 0 OR p_age_days <= 0 THEN p_score
        WHEN p_age_days / p_half_life >= 64 OR abs(p_score) < 1e-200 THEN 0
        ELSE p_score * power(2::float8, -p_age_days / p_half_life)
    END
$$;

CREATE FUNCTION wb_score_half_life() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT value::float8 FROM wb_settings WHERE key = 'score_half_life_days'), 30)
$$;

-- Days from a to b, as a float.
CREATE FUNCTION wb_days_between(a timestamptz, b timestamptz) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT extract(epoch FROM b - a)::float8 / 86400
$$;

-- A stored (score, score_at) decayed to now(): what every reader uses.
CREATE FUNCTION wb_score_now(p_score float8, p_score_at timestamptz) RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_score_at IS NULL THEN coalesce(p_score, 0)
                ELSE wb_score_decay(p_score, wb_days_between(p_score_at, now()),
                                    wb_score_half_life()) END
$$;

-- What qualifies an event's type in a weight key: a reply's intent, a
-- bounce's kind (hard, soft), a click's link; NULL for other types.
CREATE FUNCTION wb_score_qualifier(p_type text, p_detail jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_type WHEN 'reply' THEN p_detail->>'intent'
                       WHEN 'bounce' THEN p_detail->>'kind'
                       WHEN 'click' THEN p_detail->>'link' END
$$;

-- Incremental maintenance: every statement that inserts events (tracking,
-- IMAP, ATS, enroll, outcomes, handoffs) updates the candidates concerned
-- in one set-based UPDATE. A batch's scored events are summed as of their
-- latest time m, then old score and batch sum are both decayed to
-- ref = greatest(score_at, m) and added. The result does not depend on the
-- order events arrive in, so it equals wb_rescore's. Every value read from
-- the candidate row is read in the UPDATE itself, so a concurrent update
-- of the same row (re-checked under READ COMMITTED) is decayed correctly.
-- Each candidate's latest time is found by a window rather than a
-- self-join: a transition table has no statistics, and a misjudged join
-- turns into a nested loop over large batches.
-- last_engaged_at follows human opens, clicks and replies. A score
-- without score_at (written by hand) is a value without a time: it is
-- carried over undecayed, as wb_score_now reads it.
CREATE FUNCTION wb_events_score() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl float8 := wb_score_half_life();
BEGIN
    WITH ev AS (
        SELECT n.candidate_id, n.at, n.type, coalesce(q.weight, t.weight, 0) AS w
        FROM new n
        LEFT JOIN score_weights q ON q.key = n.type || ':' || wb_score_qualifier(n.type, n.detail)
        LEFT JOIN score_weights t ON t.key = n.type
        WHERE NOT n.machine AND n.candidate_id IS NOT NULL
    ), latest AS (
        SELECT ev.*, max(at) FILTER (WHERE w <> 0) OVER (PARTITION BY candidate_id) AS m
        FROM ev
    ), batch AS (
        SELECT candidate_id, m,
               max(at) FILTER (WHERE type IN ('open', 'click', 'reply')) AS engaged,
               coalesce(sum(wb_score_decay(w, wb_days_between(at, m), hl))
                        FILTER (WHERE w <> 0), 0) AS s
        FROM latest
        GROUP BY candidate_id, m
    )
    UPDATE candidates c SET
        score = CASE WHEN b.m IS NULL THEN c.score ELSE
                    CASE WHEN c.score_at IS NULL THEN c.score
                         ELSE wb_score_decay(c.score, wb_days_between(c.score_at, greatest(c.score_at, b.m)), hl) END
                  + wb_score_decay(b.s, wb_days_between(b.m, greatest(c.score_at, b.m)), hl) END,
        score_at = greatest(c.score_at, b.m),
        last_engaged_at = greatest(c.last_engaged_at, b.engaged)
    FROM batch b
    WHERE c.id = b.candidate_id AND (b.m IS NOT NULL OR b.engaged IS NOT NULL);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_score AFTER INSERT ON events
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_score();

-- Scores computed from scratch from the events, for the candidates in
-- p_ids (all when NULL) that have any: the sum of the scored events
-- decayed to the latest of them (score_at), and the latest human open,
-- click or reply. A SQL function, so it is inlined and the NULL folds away.
CREATE FUNCTION wb_score_fresh(p_ids bigint[])
RETURNS TABLE (candidate_id bigint, score float8, score_at timestamptz,
               last_engaged_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH ev AS (
        SELECT e.candidate_id, e.at, e.type, coalesce(q.weight, t.weight, 0) AS w
        FROM events e
        LEFT JOIN score_weights q ON q.key = e.type || ':' || wb_score_qualifier(e.type, e.detail)
        LEFT JOIN score_weights t ON t.key = e.type
        WHERE NOT e.machine AND e.candidate_id IS NOT NULL
          AND (p_ids IS NULL OR e.candidate_id = ANY (p_ids))
    ), latest AS (
        SELECT ev.*, max(at) FILTER (WHERE w <> 0) OVER (PARTITION BY candidate_id) AS m
        FROM ev
    )
    SELECT candidate_id,
           coalesce(sum(wb_score_decay(w, wb_days_between(at, m), (SELECT wb_score_half_life())))
                    FILTER (WHERE w <> 0), 0),
           m, max(at) FILTER (WHERE type IN ('open', 'click', 'reply'))
    FROM latest
    GROUP BY candidate_id, m
$$;

-- Recomputes every score (and last_engaged_at) from the events in one
-- statement; candidates without scored events get 0 and NULL. Takes a
-- SHARE lock on events so that no insert runs (or is in flight, unseen)
-- meanwhile: its trigger's update would be overwritten. Only rows whose
-- values change are written; a score that differs only by rounding (sums
-- taken in another order, relative 1e-9) is left alone. Returns the number
-- of candidates, of those rewritten, and the largest change of a score as
-- of now.
CREATE FUNCTION wb_rescore(OUT n_candidates bigint, OUT n_changed bigint, OUT max_change float8)
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE events IN SHARE MODE;
    WITH target AS (
        SELECT c.id, coalesce(f.score, 0) AS s, f.score_at AS m, f.last_engaged_at AS engaged,
               (abs(c.score - coalesce(f.score, 0)) > 1e-9 * greatest(1, abs(f.score))
                OR c.score_at IS DISTINCT FROM f.score_at
                OR c.last_engaged_at IS DISTINCT FROM f.last_engaged_at) AS differs,
               abs(wb_score_now(c.score, c.score_at)
                   - wb_score_now(coalesce(f.score, 0), f.score_at)) AS delta
        FROM candidates c LEFT JOIN wb_score_fresh(NULL) f ON f.candidate_id = c.id
    ), upd AS (
        UPDATE candidates c SET score = t.s, score_at = t.m, last_engaged_at = t.engaged
        FROM target t
        WHERE c.id = t.id AND t.differs
        RETURNING c.id
    )
    SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM upd),
           coalesce((SELECT max(delta) FROM target), 0)
    INTO n_candidates, n_changed, max_change;
END
$$;

-- Events deleted or rewritten (forget and retention delete them with their
-- candidate; an operator may fix times or types by hand): the candidates
-- concerned are recomputed from what is left, so scores and
-- last_engaged_at never keep a trace of events that are gone.
CREATE FUNCTION wb_events_rescore() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.candidate_id) INTO ids FROM old o
        WHERE o.candidate_id IS NOT NULL;
    ELSE
        -- Only rows whose scored columns changed (not, say, message_id
        -- set NULL when a message is deleted).
        SELECT array_agg(DISTINCT x.id) INTO ids FROM old o JOIN new n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES (o.candidate_id), (n.candidate_id)) AS x(id)
        WHERE x.id IS NOT NULL
          AND (o.candidate_id IS DISTINCT FROM n.candidate_id OR o.type <> n.type
               OR o.machine <> n.machine OR o.detail <> n.detail OR o.at <> n.at);
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE candidates c SET score = coalesce(f.score, 0), score_at = f.score_at,
        last_engaged_at = f.last_engaged_at
    FROM unnest(ids) AS i(id) LEFT JOIN wb_score_fresh(ids) f ON f.candidate_id = i.id
    WHERE c.id = i.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_rescore_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_rescore();
CREATE TRIGGER events_rescore_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_rescore();

-- With every event gone, so is every score.
CREATE FUNCTION wb_events_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE candidates SET score = 0, score_at = NULL, last_engaged_at = NULL
    WHERE score <> 0 OR score_at IS NOT NULL OR last_engaged_at IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_rescore_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_truncated();

-- Stores the weights and half-life from warmbench.json (lib/scoring.c,
-- by the CLI and each daemon at start and on reload). Syncs are serialised
-- by the lock on score_weights. When anything changed, every score is
-- recomputed in the same transaction: scores summed with other weights or
-- another half-life cannot be adjusted incrementally. Returns whether it
-- recomputed.
CREATE FUNCTION wb_scoring_sync(p_half_life float8, p_weights jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_half_life IS NULL OR NOT p_half_life > 0 OR p_half_life = 'Infinity' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('scoring: half_life_days must be a number above 0, not %s', p_half_life);
    END IF;
    IF jsonb_typeof(p_weights) IS DISTINCT FROM 'object' OR EXISTS (
           SELECT 1 FROM jsonb_each(p_weights) w WHERE jsonb_typeof(w.value) <> 'number') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'scoring: weights must be an object of numbers';
    END IF;
    LOCK TABLE score_weights IN SHARE ROW EXCLUSIVE MODE;
    IF wb_score_half_life() = p_half_life
       AND (SELECT coalesce(jsonb_object_agg(key, weight), '{}') FROM score_weights)
           = (SELECT coalesce(jsonb_object_agg(key, value::float8), '{}')
              FROM jsonb_each_text(p_weights)) THEN
        RETURN false;
    END IF;
    -- Wait for inserts in flight (they scored with the old weights) and
    -- hold new ones until the recomputed scores commit.
    LOCK TABLE events IN SHARE MODE;
    DELETE FROM score_weights;
    INSERT INTO score_weights (key, weight)
    SELECT key, value::float8 FROM jsonb_each_text(p_weights);
    INSERT INTO wb_settings AS s (key, value) VALUES ('score_half_life_days', p_half_life::text)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    PERFORM wb_rescore();
    RETURN true;
END
$$;

-- The keys an event matches in stop_on / handoff_on: its type, and
-- "click:<link>" or "reply:<intent>" when it has one.
CREATE FUNCTION wb_rule_keys(p_type text, p_detail jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_remove(ARRAY[p_type,
        CASE p_type WHEN 'click' THEN 'click:' || (p_detail->>'link')
                    WHEN 'reply' THEN 'reply:' || (p_detail->>'intent') END], NULL)
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
        RETURNING id, sequence_id, type, machine, detail, at
    )
    SELECT count(*), array_agg(i.id ORDER BY i.at, i.id) FILTER (WHERE NOT i.machine AND (
               i.type = 'unsubscribe'
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
        IF ev.type = 'unsubscribe'
           OR (ev.type = 'reply' AND ev.detail->>'intent' = 'unsubscribe')
           OR (ev.type = 'bounce' AND ev.detail->>'kind' = 'hard') THEN
            PERFORM wb_suppress_candidate(ev.candidate_id,
                CASE ev.type WHEN 'bounce' THEN 'bounce' ELSE 'unsubscribe' END);
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
            CONTINUE WHEN NOT (ev.def->'stop_on' ? key);
            UPDATE enrollments SET state = 'stopped', stop_reason = key, next_due_at = NULL,
                ended_at = now(), updated_at = now()
            WHERE id = ev.enrollment_id AND state = 'active';
        END LOOP;
    END LOOP;
    RETURN n;
END
$$;

-- Scores of events stored before this migration.
SELECT * FROM wb_rescore();
