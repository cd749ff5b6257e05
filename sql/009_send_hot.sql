-- Sending throughput (issue 3): a message's trip claimed -> sending -> sent
-- rewrites its row in place.
--
-- PostgreSQL writes an updated row as a new version. When no indexed column
-- changes and the page has room, the new version is a heap-only tuple
-- (HOT): no index gets an entry. Before this migration every step of the
-- trip changed an indexed column (state in the predicates of the due and
-- lease indexes, message_id, lease_until), so each message cost three full
-- rounds of index entries, about 40 WAL records in all. Now:
--  * the Message-ID is made by the claim, with the row, and never changes;
--  * the retry queue's index covers the rows with a next_attempt_at, which
--    only queued and retry rows have (NULL otherwise);
--  * the lease index is gone: the rows that may be in flight are found
--    through send_claims, one row per claim listing its messages;
--  * messages leave half of each page free for the row's next versions.
-- Measured with the daemon's statement mix in one session (20,000 messages,
-- tests/bench/bench_send.sh for the real path): PostgreSQL CPU per message
-- 207 -> 122 us, WAL records 40 -> 31.

ALTER TABLE messages ALTER COLUMN next_attempt_at DROP NOT NULL,
                     ALTER COLUMN next_attempt_at DROP DEFAULT;

-- Rows in flight keep theirs: a daemon older than this migration may still
-- give them back to the queue (its release leaves next_attempt_at as it
-- is), and the claim finds queued rows by it. Claiming clears it.
UPDATE messages SET next_attempt_at = NULL
WHERE state NOT IN ('queued', 'retry', 'claimed', 'sending') AND next_attempt_at IS NOT NULL;

DROP INDEX messages_due_idx;

DROP INDEX messages_lease_idx;

CREATE INDEX messages_due_idx ON messages (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

ALTER TABLE messages SET (fillfactor = 50);

-- Statistics taken while next_attempt_at was NOT NULL say every row has
-- one: until they are taken again, the retry queue's queries would scan
-- the whole table rather than its index.
ANALYZE messages;

-- One row per claim: the messages it took, looked at by lease recovery once
-- check_at passes (the claim's lease end, later the latest lease among its
-- messages still in flight) and deleted when none of them is.
CREATE TABLE send_claims (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    check_at    timestamptz NOT NULL,
    ids         bigint[] NOT NULL
);

CREATE INDEX send_claims_check_idx ON send_claims (check_at);

-- Rows in flight when this migration runs (a daemon stopped by a crash)
-- are looked at by the first recovery.
INSERT INTO send_claims (owner, check_at, ids)
SELECT 'migration 009', now(), array_agg(id) FROM messages
WHERE state IN ('claimed', 'sending') HAVING count(*) > 0;

-- wb_claim gained a parameter (the sender's domain, for the Message-ID):
-- CREATE OR REPLACE in sql/functions/ cannot change a signature, so the
-- old one goes here. IF EXISTS: a database made after the functions moved
-- out of the migrations never had it.
DROP FUNCTION IF EXISTS wb_claim(text, integer, integer, integer, text, integer);
