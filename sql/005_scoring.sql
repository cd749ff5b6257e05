-- Engagement score (SPEC "Talent intelligence"). A candidate's score at
-- time t is the sum over their scored events of w * 2^(-(t - at) / half_life):
-- human events only, weighted by type (lib/engage/scoring.c documents the keys).
-- It is kept as (score, score_at): the value at time score_at, which is the
-- time of the latest scored event. Decaying to any later time is one
-- multiplication, so readers call wb_score_now() and nothing needs a
-- periodic sweep.

-- The weights and half-life in force, synced from warmbench.json by
-- wb_scoring_sync (lib/engage/scoring.c). The defaults here are the documented
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

-- Scores of events stored before this migration. A migration runs before
-- sql/functions/ is applied (README "Schema: migrations and functions"),
-- so this is wb_rescore's computation written out as it stood here: the
-- weights above, the default half-life of 30 days, and wb_score_decay's
-- clamps (no growth for a time in the future, 0 past 64 half-lives), with
-- last_engaged_at the latest human open, click or reply. Candidates
-- without events keep their 0 and NULLs.
WITH ev AS (
    SELECT e.candidate_id, e.at, e.type, coalesce(q.weight, t.weight, 0) AS w
    FROM events e
    LEFT JOIN score_weights q ON q.key = e.type || ':' || CASE e.type
        WHEN 'reply' THEN e.detail->>'intent' WHEN 'bounce' THEN e.detail->>'kind'
        WHEN 'click' THEN e.detail->>'link' END
    LEFT JOIN score_weights t ON t.key = e.type
    WHERE NOT e.machine AND e.candidate_id IS NOT NULL
), latest AS (
    SELECT ev.*, max(at) FILTER (WHERE w <> 0) OVER (PARTITION BY candidate_id) AS m
    FROM ev
), aged AS (
    SELECT latest.*, extract(epoch FROM m - at)::float8 / 86400 / 30 AS halves FROM latest
), fresh AS (
    SELECT candidate_id, m,
           coalesce(sum(CASE WHEN halves <= 0 THEN w WHEN halves >= 64 THEN 0
                             ELSE w * power(2::float8, -halves) END) FILTER (WHERE w <> 0), 0) AS s,
           max(at) FILTER (WHERE type IN ('open', 'click', 'reply')) AS engaged
    FROM aged GROUP BY candidate_id, m
)
UPDATE candidates c SET score = f.s, score_at = f.m, last_engaged_at = f.engaged
FROM fresh f WHERE c.id = f.candidate_id;
