-- Scale (issue 12): what `warmbench enroll`, `import`, `stats`, `pool` and
-- `report` need at a million candidates and five million events
-- (tests/bench/bench_scale.sh measures them; README "Scale").

-- The address hash with the salt as an argument. A SQL function whose body
-- holds a sub-select is never inlined, so wb_email_hash ran as a function
-- call per row: 7 us a candidate, most of `enroll`'s audience scan at a
-- million. This one is a plain expression: set-based statements pass the
-- salt once (wb_hash_salt(), evaluated once per statement) and the planner
-- inlines the rest. wb_email_hash keeps its signature and result, and
-- is now defined through it, so the two cannot drift apart.
CREATE FUNCTION wb_hash_salt() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT value FROM wb_settings WHERE key = 'hash_salt'
$$;

CREATE FUNCTION wb_email_hash_salted(addr text, salt text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(salt || lower(btrim(addr)), 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION wb_email_hash(addr text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT wb_email_hash_salted(addr, (SELECT value FROM wb_settings WHERE key = 'hash_salt'))
$$;

-- The score trigger of 005 with one more filter: events that can change
-- neither a score (weight 0) nor last_engaged_at (not an open, click or
-- reply) are dropped before the window and the grouping rather than after.
-- They contributed nothing (every sum and max over them is filtered), so
-- the result is the same; `enroll` writes one `enrolled` event per
-- candidate, and at a million they cost two seconds of sorting for no
-- update.
CREATE OR REPLACE FUNCTION wb_events_score() RETURNS trigger
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

-- The pool ledger of 008, the same rows: its FULL JOIN matched every
-- candidate to the suppressions by hashing lower(email) of the million
-- candidates. Here the few suppressions find their candidate through
-- candidates' unique index on lower(email), and candidates join that by
-- id; the suppressions whose address no candidate has follow. (A
-- candidate has at most one suppression of their address: both tables are
-- unique on it.)
CREATE OR REPLACE VIEW wb_pool_ledger AS
WITH m AS (
    SELECT c.id AS candidate_id, s.id AS suppression_id, s.created_at
    FROM suppressions s JOIN candidates c ON lower(c.email) = lower(s.email)
)
SELECT c.id AS candidate_id, c.tags, c.created_at, c.last_engaged_at, c.score, c.score_at,
       m.suppression_id, m.created_at AS left_at, m.suppression_id IS NOT NULL AS left_pool
FROM candidates c LEFT JOIN m ON m.candidate_id = c.id
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, s.id, s.created_at, s.email IS NULL
FROM suppressions s
WHERE NOT EXISTS (SELECT 1 FROM candidates c WHERE lower(c.email) = lower(s.email));
