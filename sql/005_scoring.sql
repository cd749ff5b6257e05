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
