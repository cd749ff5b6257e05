-- Scale, third round (issue 12, bench-send; README "Scale").
--
-- The foreign keys of messages go, as 014 did for enrollments and events:
-- each checked every message the claim makes with a query of its own
-- (enrollment and candidate, locked FOR KEY SHARE: two queries and a WAL
-- record per message, a good part of PostgreSQL's CPU per message sent).
-- The statement-level triggers of sql/functions/035_refs.sql keep the same
-- rules (the reference exists, the referenced row is locked until commit,
-- CASCADE on delete) with one join per statement; in the claim, whose
-- enrollments it has just updated, that join is all they cost.
-- mail_seen's foreign key to messages stays (it is checked once per mail
-- read, and cascades when a message goes).
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_enrollment_id_fkey,
                     DROP CONSTRAINT IF EXISTS messages_candidate_id_fkey;
