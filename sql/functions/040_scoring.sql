-- Engagement score (SPEC "Talent intelligence"). A candidate's score at
-- time t is the sum over their scored events of w * 2^(-(t - at) / half_life):
-- human events only, weighted by type (lib/engage/scoring.c documents the keys).
-- It is kept as (score, score_at): the value at time score_at, which is the
-- time of the latest scored event. Decaying to any later time is one
-- multiplication, so readers call wb_score_now() and nothing needs a
-- periodic sweep.

-- score decayed by age_days. Clamped so PostgreSQL's float underflow checks
-- never fire: past 64 half-lives (or for a negligible score) the value is 0,
-- and a negative age (a time in the future) does not grow it.
-- lib/engage/scoring.c's wb_score_decay is the same function in C.
CREATE OR REPLACE FUNCTION wb_score_decay(p_score float8, p_age_days float8, p_half_life float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_score = 0 OR p_age_days <= 0 THEN p_score
        WHEN p_age_days / p_half_life >= 64 OR abs(p_score) < 1e-200 THEN 0
        ELSE p_score * power(2::float8, -p_age_days / p_half_life)
    END
$$;

CREATE OR REPLACE FUNCTION wb_score_half_life() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT value::float8 FROM wb_settings WHERE key = 'score_half_life_days'), 30)
$$;

-- Days from a to b, as a float.
CREATE OR REPLACE FUNCTION wb_days_between(a timestamptz, b timestamptz) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT extract(epoch FROM b - a)::float8 / 86400
$$;

-- A stored (score, score_at) decayed to now(): what every reader uses.
CREATE OR REPLACE FUNCTION wb_score_now(p_score float8, p_score_at timestamptz) RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_score_at IS NULL THEN coalesce(p_score, 0)
                ELSE wb_score_decay(p_score, wb_days_between(p_score_at, now()),
                                    wb_score_half_life()) END
$$;

-- What qualifies an event's type in a weight key: a reply's intent, a
-- bounce's kind (hard, soft), a click's link; NULL for other types.
CREATE OR REPLACE FUNCTION wb_score_qualifier(p_type text, p_detail jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_type WHEN 'reply' THEN p_detail->>'intent'
                       WHEN 'bounce' THEN p_detail->>'kind'
                       WHEN 'click' THEN p_detail->>'link' END
$$;

-- The score trigger. Events that can change neither a score (weight 0)
-- nor last_engaged_at (not an open, click or reply) are dropped before the window and the grouping rather than after.
-- They contributed nothing (every sum and max over them is filtered), so
-- the result is the same; `enroll` writes one `enrolled` event per
-- candidate, and at a million they cost two seconds of sorting for no
-- update.
-- A batch with no such event (every `sent` the daemon stores) returns at
-- once: a query over a transition table is planned again at every call,
-- and planning the one below cost 0.6 ms per batch of sends, which
-- update nothing.
CREATE OR REPLACE FUNCTION wb_events_score() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl float8;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM (SELECT DISTINCT n.type FROM new n
                       WHERE NOT n.machine AND n.candidate_id IS NOT NULL) t
        WHERE t.type IN ('open', 'click', 'reply')
           OR EXISTS (SELECT 1 FROM score_weights w
                      WHERE w.weight <> 0 AND split_part(w.key, ':', 1) = t.type)) THEN
        RETURN NULL;
    END IF;
    hl := wb_score_half_life();
    WITH ev AS (
        SELECT n.candidate_id, n.at, n.type, coalesce(q.weight, t.weight, 0) AS w
        FROM new n
        LEFT JOIN score_weights q ON q.key = n.type || ':' || wb_score_qualifier(n.type, n.detail)
        LEFT JOIN score_weights t ON t.key = n.type
        WHERE NOT n.machine AND n.candidate_id IS NOT NULL
          AND (coalesce(q.weight, t.weight, 0) <> 0 OR n.type IN ('open', 'click', 'reply'))
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

DROP TRIGGER IF EXISTS events_score ON events;
CREATE TRIGGER events_score AFTER INSERT ON events
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_score();

-- Scores computed from scratch from the events, for the candidates in
-- p_ids (all when NULL) that have any: the sum of the scored events
-- decayed to the latest of them (score_at), and the latest human open,
-- click or reply. A SQL function, so it is inlined and the NULL folds away.
CREATE OR REPLACE FUNCTION wb_score_fresh(p_ids bigint[])
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
CREATE OR REPLACE FUNCTION wb_rescore(OUT n_candidates bigint, OUT n_changed bigint, OUT max_change float8)
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
CREATE OR REPLACE FUNCTION wb_events_rescore() RETURNS trigger
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

DROP TRIGGER IF EXISTS events_rescore_delete ON events;
CREATE TRIGGER events_rescore_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_rescore();

DROP TRIGGER IF EXISTS events_rescore_update ON events;
CREATE TRIGGER events_rescore_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_rescore();

-- With every event gone, so is every score.
CREATE OR REPLACE FUNCTION wb_events_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE candidates SET score = 0, score_at = NULL, last_engaged_at = NULL
    WHERE score <> 0 OR score_at IS NOT NULL OR last_engaged_at IS NOT NULL;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS events_rescore_truncate ON events;
CREATE TRIGGER events_rescore_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_truncated();

-- Stores the weights and half-life from warmbench.json (lib/engage/scoring.c,
-- by the CLI and each daemon at start and on reload). Syncs are serialised
-- by the lock on score_weights. When anything changed, every score is
-- recomputed in the same transaction: scores summed with other weights or
-- another half-life cannot be adjusted incrementally. Returns whether it
-- recomputed.
CREATE OR REPLACE FUNCTION wb_scoring_sync(p_half_life float8, p_weights jsonb) RETURNS boolean
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
CREATE OR REPLACE FUNCTION wb_rule_keys(p_type text, p_detail jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_remove(ARRAY[p_type,
        CASE p_type WHEN 'click' THEN 'click:' || (p_detail->>'link')
                    WHEN 'reply' THEN 'reply:' || (p_detail->>'intent') END], NULL)
$$;
