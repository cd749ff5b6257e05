-- Out-of-office return dates (SPEC "The sourcer's controls"). The mailbox
-- poller records an auto_reply whose detail carries back_on (YYYY-MM-DD,
-- the date the reply names: lib/engage/ooo.c); in the same statement the
-- enrollment is held until the day after, at its window's next opening in
-- the window's zone (the candidate's for "candidate"), at most the
-- sequence's ooo_max_days (default 30; 0: never held) after the reply. A
-- date whose day after has already begun holds nothing.

-- The sequence's ooo_max_days, 30 when absent.
CREATE OR REPLACE FUNCTION wb_ooo_max_days(def jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(def->'ooo_max_days') = 'number'
                THEN least(greatest((def->>'ooo_max_days')::numeric, 0), 3650)::integer
                ELSE 30 END
$$;

-- When an enrollment held by a reply of p_at naming p_back_on resumes:
-- NULL when it is not held at all.
CREATE OR REPLACE FUNCTION wb_ooo_until(p_back_on date, p_at timestamptz, def jsonb,
                                        cand_tz text, country text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN wb_ooo_max_days(def) > 0 AND t > now() THEN t END
    FROM (SELECT wb_seq_next_due(least(
              ((p_back_on + 1)::timestamp) AT TIME ZONE wb_window_zone(def, cand_tz),
              p_at + make_interval(days => wb_ooo_max_days(def))), def, cand_tz, country) AS t) x
$$;

-- Before an auto_reply with back_on is stored: hold its enrollment and
-- note the resume time in the event (detail.paused_until), so `show`'s
-- timeline says what the reply did. A later reply never shortens a hold
-- (next_due_at moves forward only).
CREATE OR REPLACE FUNCTION wb_ooo_on_auto_reply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    back date;
    until timestamptz;
BEGIN
    IF NEW.enrollment_id IS NULL OR NEW.detail->>'back_on' !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RETURN NEW;
    END IF;
    BEGIN
        back := (NEW.detail->>'back_on')::date;
    EXCEPTION WHEN others THEN
        RETURN NEW; -- 2027-02-30: no date
    END;
    SELECT wb_ooo_until(back, coalesce(NEW.at, now()), s.definition, c.timezone,
                        c.attrs->>'country')
    INTO until
    FROM enrollments e JOIN sequences s ON s.id = e.sequence_id
         JOIN candidates c ON c.id = e.candidate_id
    WHERE e.id = NEW.enrollment_id AND e.state = 'active';
    IF until IS NULL THEN
        RETURN NEW;
    END IF;
    UPDATE enrollments SET ooo_until = greatest(coalesce(ooo_until, until), until),
        updated_at = now()
    WHERE id = NEW.enrollment_id;
    NEW.detail := NEW.detail || jsonb_build_object('paused_until', until);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS events_ooo ON events;
CREATE TRIGGER events_ooo BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.type = 'auto_reply' AND NEW.detail ? 'back_on')
    EXECUTE FUNCTION wb_ooo_on_auto_reply();

-- An enrollment held by an out-of-office reply is never due before the
-- hold ends, whoever sets its next step: the reply itself, the outcome of
-- a step that was on the wire when the reply came, a resume, the contact
-- policy. The claim then skips it by its next_due_at as it skips any step
-- not due yet; the WHEN keeps every other update free of the call.
CREATE OR REPLACE FUNCTION wb_ooo_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_due_at < NEW.ooo_until THEN
        NEW.next_due_at := NEW.ooo_until;
    END IF;
    IF NEW.paused_due_at < NEW.ooo_until THEN
        NEW.paused_due_at := NEW.ooo_until;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS enrollments_ooo_hold ON enrollments;
CREATE TRIGGER enrollments_ooo_hold BEFORE UPDATE OF next_due_at, paused_due_at, ooo_until
    ON enrollments FOR EACH ROW
    WHEN (NEW.ooo_until > NEW.next_due_at OR NEW.ooo_until > NEW.paused_due_at)
    EXECUTE FUNCTION wb_ooo_hold();
