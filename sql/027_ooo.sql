-- Out-of-office pauses and "paused": true in a sequence file (issue 15,
-- SPEC "The sourcer's controls").
-- enrollments.ooo_until: an automatic reply that named a return date holds
-- the enrollment until then (the day after the date, at the window's
-- opening, at most ooo_max_days after the reply): its next step is never
-- due before it (sql/functions/051_ooo.sql).
-- sequences.paused_by_cli: a sequence is paused while `warmbench pause`
-- or its file says so; paused_at stays the one flag the claim and the
-- mark read, and this column remembers the command's part
-- (sql/functions/068_pause.sql).
ALTER TABLE enrollments ADD COLUMN ooo_until timestamptz;
ALTER TABLE sequences ADD COLUMN paused_by_cli boolean NOT NULL DEFAULT false;
UPDATE sequences SET paused_by_cli = true WHERE paused_at IS NOT NULL;
