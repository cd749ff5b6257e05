-- Notifications that wake the daemons, and the triggers that send them.

-- Wakes the daemons when an enrollment becomes due now (warmbench enroll,
-- ATS in, a step sent with a zero delay). Only due rows notify: the
-- scheduler's own writes move next_due_at into the future or to NULL, and
-- must not wake it again.
CREATE OR REPLACE FUNCTION wb_notify_enrollments() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 'active' AND next_due_at <= now()) THEN
        PERFORM pg_notify('wb_enrollments', '');
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrollments_notify_insert ON enrollments;
CREATE TRIGGER enrollments_notify_insert AFTER INSERT ON enrollments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_enrollments();

-- The scheduler updates each enrollment twice per message, and the
-- statement trigger it had first copied every updated row into a transition table
-- to look for due ones among them. A row trigger whose condition is checked
-- as the row is written fires only for a row that is due now; PostgreSQL
-- sends one notification per transaction however many rows fire it.
CREATE OR REPLACE FUNCTION wb_notify_enrollment_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_enrollments', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrollments_notify_update ON enrollments;
CREATE TRIGGER enrollments_notify_update AFTER UPDATE ON enrollments
    FOR EACH ROW WHEN (NEW.state = 'active' AND NEW.next_due_at <= now())
    EXECUTE FUNCTION wb_notify_enrollment_due();

CREATE OR REPLACE FUNCTION wb_notify_handoffs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_handoffs', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS handoffs_notify ON handoffs;
CREATE TRIGGER handoffs_notify AFTER INSERT ON handoffs
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_handoffs();

CREATE OR REPLACE FUNCTION wb_notify_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_candidates', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS candidates_notify ON candidates;
CREATE TRIGGER candidates_notify AFTER INSERT ON candidates
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_candidates();
