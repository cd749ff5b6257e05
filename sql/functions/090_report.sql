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
-- candidates: every suppression that has one was made from it, and
-- hashing the whole pool to compare email_hash would cost more than the
-- rest of the report. A FULL JOIN would hash lower(email) of every
-- candidate; here the few suppressions find their candidate through
-- candidates' unique index on lower(email), candidates join that by id,
-- and the suppressions whose address no candidate has follow. (A
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
