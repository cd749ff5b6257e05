-- Immediate recovery after a crash (issue 12).
--
-- A daemon holds a session-level advisory lock, keyed by its owner name,
-- on its marking connection for as long as it lives. PostgreSQL releases
-- the lock when that session ends, including when the daemon is killed
-- (the kernel closes its socket). Lease recovery treats the claims of an
-- owner whose lock is gone as expired at once, whoever runs it; leases stay
-- the fallback for a hung daemon whose session is alive. A daemon never
-- treats its own claims so (a connection it lost and regained may not hold
-- the lock for a moment while its messages are still on the wire).
--
-- The key is (7426352, hashtext(owner)). Owners carry a random part, so two
-- live daemons collide with odds of one in four billion; a collision only
-- makes recovery wait for the leases, as before this migration.

-- SMTP outcomes, staged the moment they are known (a cheap insert, no
-- trigger), then applied to messages, events and enrollments in batches
-- by wb_apply_outcomes. A daemon keeps at most 2 x connections messages
-- marked `sending` whose outcome is not staged yet, which bounds what a
-- kill -9 leaves `unknown`; the apply (about a millisecond of fixed cost
-- per statement: the event triggers, the enrollment updates) stays
-- batched. A staged outcome is never lost to recovery: wb_recover applies
-- it before it turns anything `unknown`.
CREATE TABLE send_outcomes (
    message_id  bigint PRIMARY KEY,
    owner       text NOT NULL,
    outcome     text NOT NULL,
    code        integer NOT NULL,
    reply       text NOT NULL,
    retry_s     double precision NOT NULL
);

CREATE INDEX send_outcomes_owner_idx ON send_outcomes (owner);

-- wb_recover gained a parameter (the caller's owner name, whose claims are
-- never taken as dead): the old signature goes, as in 009.
DROP FUNCTION IF EXISTS wb_recover();
