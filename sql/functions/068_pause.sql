-- pause / resume / unenroll (sql/023_pause.sql). Each ends with NOTIFY
-- wb_enrollments, so running daemons look again at once.

-- Pauses (p_pause) or resumes a sequence. A resume re-times the steps that
-- fell due meanwhile into the window from now, in each candidate's zone,
-- so nothing goes out of hours or in a burst beyond what the claim's
-- limits allow. Returns whether anything changed.
CREATE OR REPLACE FUNCTION wb_pause_sequence(p_sequence text, p_pause boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    UPDATE sequences SET paused_at = CASE WHEN p_pause THEN now() END
    WHERE id = p_sequence AND (paused_at IS NULL) = p_pause;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 AND NOT p_pause THEN
        UPDATE enrollments e SET next_due_at = wb_seq_next_due(now(), s.definition, c.timezone,
                                                               c.attrs->>'country'),
            updated_at = now()
        FROM sequences s, candidates c
        WHERE e.sequence_id = p_sequence AND s.id = e.sequence_id AND c.id = e.candidate_id
          AND e.state = 'active' AND e.next_due_at < now();
    END IF;
    PERFORM pg_notify('wb_enrollments', '');
    RETURN n > 0;
END
$$;

-- Pauses or resumes one person's active enrollments (all, or one
-- sequence's). Returns how many changed.
CREATE OR REPLACE FUNCTION wb_pause_person(p_email text, p_sequence text, p_pause boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF p_pause THEN
        UPDATE enrollments e SET paused_at = now(), paused_due_at = e.next_due_at,
            next_due_at = NULL, updated_at = now()
        FROM candidates c
        WHERE c.id = e.candidate_id AND lower(c.email) = lower(p_email) AND e.state = 'active'
          AND e.paused_at IS NULL AND (p_sequence IS NULL OR e.sequence_id = p_sequence);
    ELSE
        UPDATE enrollments e SET paused_at = NULL, paused_due_at = NULL,
            next_due_at = CASE WHEN e.paused_due_at IS NOT NULL THEN
                greatest(e.paused_due_at, wb_seq_next_due(now(), s.definition, c.timezone,
                                                          c.attrs->>'country')) END,
            updated_at = now()
        FROM candidates c, sequences s
        WHERE c.id = e.candidate_id AND s.id = e.sequence_id AND lower(c.email) = lower(p_email)
          AND e.paused_at IS NOT NULL AND (p_sequence IS NULL OR e.sequence_id = p_sequence);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_notify('wb_enrollments', '');
    RETURN n;
END
$$;

-- Ends a person's active enrollments (all, or one sequence's): nothing
-- more is sent; a message already claimed is not marked. Returns how many.
CREATE OR REPLACE FUNCTION wb_unenroll(p_email text, p_sequence text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    UPDATE enrollments e SET state = 'stopped', stop_reason = 'unenrolled', next_due_at = NULL,
        paused_at = NULL, paused_due_at = NULL, ended_at = now(), updated_at = now()
    FROM candidates c
    WHERE c.id = e.candidate_id AND lower(c.email) = lower(p_email) AND e.state = 'active'
      AND (p_sequence IS NULL OR e.sequence_id = p_sequence);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
