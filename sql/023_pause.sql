-- The sourcer's pause and resume (SPEC "The sourcer's controls"), for a
-- sequence and for one person (a sender's pause is sender_guard, 018).
-- A paused sequence's steps are not claimed or marked; a paused
-- enrollment is not due at all: its next step's time waits in
-- paused_due_at, and resume re-times it into the window, never earlier
-- than it was planned.
ALTER TABLE sequences ADD COLUMN paused_at timestamptz;
ALTER TABLE enrollments ADD COLUMN paused_at timestamptz,
                        ADD COLUMN paused_due_at timestamptz;
