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

-- "paused": true in a sequence file (sql/027_ooo.sql). A sequence is
-- paused while its file or `warmbench pause` says so: paused_at, which the
-- claim and the mark read, is kept set while either holds, and
-- paused_by_cli remembers the command's part. wb_pause_sequence's own
-- writes to paused_at are the command's; a new definition (the daemon's or
-- the CLI's sync of the files) brings the file's.
CREATE OR REPLACE FUNCTION wb_sequence_pause_sources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.paused_by_cli := NEW.paused_by_cli OR NEW.paused_at IS NOT NULL;
    ELSIF NEW.paused_at IS DISTINCT FROM OLD.paused_at
          AND NEW.content_hash IS NOT DISTINCT FROM OLD.content_hash
          AND NEW.paused_by_cli IS NOT DISTINCT FROM OLD.paused_by_cli THEN
        NEW.paused_by_cli := NEW.paused_at IS NOT NULL;
    END IF;
    IF coalesce(NEW.definition->'paused' = 'true'::jsonb, false) OR NEW.paused_by_cli THEN
        NEW.paused_at := coalesce(NEW.paused_at,
                                  CASE WHEN TG_OP = 'UPDATE' THEN OLD.paused_at END, now());
    ELSE
        NEW.paused_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS sequences_pause_sources ON sequences;
CREATE TRIGGER sequences_pause_sources
    BEFORE INSERT OR UPDATE OF definition, content_hash, paused_at, paused_by_cli ON sequences
    FOR EACH ROW EXECUTE FUNCTION wb_sequence_pause_sources();

-- A file that no longer says "paused" (and no command pause left): the
-- steps that fell due meanwhile are re-timed into the window as
-- wb_pause_sequence's resume does, and running daemons look again.
CREATE OR REPLACE FUNCTION wb_sequence_file_resumed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrollments e SET next_due_at = wb_seq_next_due(now(), NEW.definition, c.timezone,
                                                           c.attrs->>'country'),
        updated_at = now()
    FROM candidates c
    WHERE e.sequence_id = NEW.id AND c.id = e.candidate_id
      AND e.state = 'active' AND e.next_due_at < now();
    PERFORM pg_notify('wb_enrollments', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sequences_file_resumed ON sequences;
CREATE TRIGGER sequences_file_resumed AFTER UPDATE ON sequences
    FOR EACH ROW WHEN (OLD.paused_at IS NOT NULL AND NEW.paused_at IS NULL
                       AND OLD.content_hash IS DISTINCT FROM NEW.content_hash)
    EXECUTE FUNCTION wb_sequence_file_resumed();

-- `warmbench pause|resume SEQUENCE` (lib/send/pause_cli.c): the command's
-- pause, beside the file's. Returns what happened: paused, paused_in_file
-- (the file pauses it too), already, resumed, in_file (the command's pause
-- is lifted, or there was none, and the file keeps it paused), not_paused,
-- unknown (no such sequence stored yet).
CREATE OR REPLACE FUNCTION wb_pause_sequence_cli(p_sequence text, p_pause boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    s sequences;
    in_file boolean;
BEGIN
    SELECT * INTO s FROM sequences WHERE id = p_sequence FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'unknown';
    END IF;
    in_file := coalesce(s.definition->'paused' = 'true'::jsonb, false);
    IF p_pause AND s.paused_by_cli THEN
        RETURN 'already';
    ELSIF p_pause THEN
        UPDATE sequences SET paused_by_cli = true WHERE id = p_sequence;
        RETURN CASE WHEN in_file THEN 'paused_in_file' ELSE 'paused' END;
    ELSIF in_file THEN
        UPDATE sequences SET paused_by_cli = false WHERE id = p_sequence AND paused_by_cli;
        RETURN 'in_file';
    ELSIF NOT s.paused_by_cli THEN
        RETURN 'not_paused';
    END IF;
    PERFORM wb_pause_sequence(p_sequence, false);
    RETURN 'resumed';
END
$$;
