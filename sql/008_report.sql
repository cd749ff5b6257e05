-- Pool health and the HTML report (`warmbench pool`, `warmbench report`).

-- Who is in the pool and who left it: one row per candidate, per
-- suppression, or per candidate with their suppression.
--   in the pool:  candidate_id IS NOT NULL AND suppression_id IS NULL;
--   arrived at:   created_at (candidates still in the table);
--   left at:      left_at, when left_pool: a suppressed candidate, or a
--                 suppression without an address, which only erasure
--                 (forget, retention) leaves, and it deletes the row.
-- A suppression of an address that was never in the pool keeps its
-- address, matches no candidate and is not counted. Suppressions are
-- matched by their plain address, as `warmbench suppress` matches
-- candidates (lower(email), which both tables index, so the planner knows
-- the join): every suppression that has one was made from it, and
-- hashing the whole pool to compare email_hash would cost more than the
-- rest of the report.
CREATE VIEW wb_pool_ledger AS
SELECT c.id AS candidate_id, c.tags, c.created_at, c.last_engaged_at, c.score, c.score_at,
       s.id AS suppression_id, s.created_at AS left_at,
       s.id IS NOT NULL AND (c.id IS NOT NULL OR s.email IS NULL) AS left_pool
FROM candidates c
FULL JOIN suppressions s ON lower(s.email) = lower(c.email);
