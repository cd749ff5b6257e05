-- References of enrollments, events and messages, kept by statement-level
-- triggers instead of foreign keys (migration 014 dropped these five:
-- enrollments to candidates and sequences, events to candidates,
-- enrollments and messages; 033 these two: messages to enrollments and
-- candidates). A foreign key checks each inserted row with its own query;
-- `warmbench enroll` of a million candidates spent more than half its time
-- in those four million checks, and the claim two queries per message it
-- makes. Here each statement checks its rows in one join per referenced
-- table (README "Scale"). The rules are the foreign keys' own:
--   * a reference names an existing row, or is NULL (error 23503, the
--     foreign key's message);
--   * the referenced row is locked FOR KEY SHARE until commit, so that no
--     one deletes it under a row that is being stored; rows this
--     transaction made (xmin) or already locked (xmax) need no lock: nobody
--     else can see the first, and the second stays locked until commit;
--   * deleting a candidate deletes their enrollments, messages and events,
--     deleting an enrollment its messages (CASCADE);
--     deleting an enrollment or a message clears events' reference to it
--     (SET NULL); a sequence with enrollments cannot be deleted;
--   * a referenced id is never changed (it never is: they are serial).

-- This transaction's own xid, as the xmin of the rows it made.
CREATE OR REPLACE FUNCTION wb_own_xid() RETURNS xid
LANGUAGE sql STABLE AS $$
    SELECT (pg_current_xact_id()::text::bigint % 4294967296)::text::xid
$$;

CREATE OR REPLACE FUNCTION wb_ref_missing(p_table text, p_column text, p_target text,
                                          p_value text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%_%_fkey"',
        p_table, p_table, p_column
        USING ERRCODE = 'foreign_key_violation',
              DETAIL = format('Key (%s)=(%s) is not present in table "%s".', p_column, p_value,
                              p_target);
END
$$;

-- Locks the rows of p_table (candidates, enrollments or messages) whose
-- ids are in p_ids FOR KEY SHARE, as a foreign key's check does; returns
-- one of p_ids that names no row, or NULL when all exist. A row deleted
-- by a transaction this one waited for is not locked, and is then found
-- missing by the second look (a new snapshot under READ COMMITTED).
CREATE OR REPLACE FUNCTION wb_ref_lock(p_table text, p_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n_locked bigint;
    bad bigint;
BEGIN
    IF p_ids IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I t WHERE t.id = ANY ($1) '
                   'FOR KEY SHARE) x', p_table) INTO n_locked USING p_ids;
    IF n_locked < cardinality(p_ids) THEN
        EXECUTE format('SELECT i FROM unnest($1) i '
                       'WHERE NOT EXISTS (SELECT 1 FROM %I t WHERE t.id = i) LIMIT 1', p_table)
            INTO bad USING p_ids;
    END IF;
    RETURN bad;
END
$$;

-- A row trigger's check of one reference an update points somewhere new:
-- the row it names exists and is locked FOR KEY SHARE until commit, or
-- 23503 as the foreign key would say it.
CREATE OR REPLACE FUNCTION wb_ref_row(p_table text, p_column text, p_target text, p_new bigint,
                                      p_old bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_new IS NOT NULL AND p_new IS DISTINCT FROM p_old
       AND wb_ref_lock(p_target, ARRAY[p_new]) IS NOT NULL THEN
        PERFORM wb_ref_missing(p_table, p_column, p_target, p_new::text);
    END IF;
END
$$;

-- Checks and locks what new events name, in one pass over them per table:
-- the join finds the missing references and the rows to lock; rows are
-- then locked by id. An event whose candidate is its enrollment's needs no
-- look at candidates: the enrollment exists and is locked (or is this
-- transaction's own, whose candidate its insert locked), and a candidate
-- cannot be deleted without deleting it first (wb_candidates_cascade).
-- For `enroll`, whose events name enrollments it has just made, that is
-- one join and no lock.
CREATE OR REPLACE FUNCTION wb_events_refs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    me xid := wb_own_xid();
    bad bigint;
    lock_ids bigint[];
    check_ids bigint[];
BEGIN
    SELECT min(n.enrollment_id) FILTER (WHERE n.enrollment_id IS NOT NULL AND e.id IS NULL),
           array_agg(DISTINCT e.id) FILTER (WHERE e.xmin <> me AND e.xmax <> me),
           array_agg(DISTINCT n.candidate_id)
               FILTER (WHERE n.candidate_id IS DISTINCT FROM e.candidate_id
                         AND n.candidate_id IS NOT NULL)
    INTO bad, lock_ids, check_ids
    FROM new n LEFT JOIN enrollments e ON e.id = n.enrollment_id;
    bad := coalesce(bad, wb_ref_lock('enrollments', lock_ids));
    IF bad IS NOT NULL THEN
        PERFORM wb_ref_missing('events', 'enrollment_id', 'enrollments', bad::text);
    END IF;
    bad := wb_ref_lock('candidates', check_ids);
    IF bad IS NOT NULL THEN
        PERFORM wb_ref_missing('events', 'candidate_id', 'candidates', bad::text);
    END IF;
    IF EXISTS (SELECT 1 FROM new n WHERE n.message_id IS NOT NULL) THEN
        SELECT min(n.message_id) FILTER (WHERE m.id IS NULL),
               array_agg(DISTINCT m.id) FILTER (WHERE m.xmin <> me AND m.xmax <> me)
        INTO bad, lock_ids
        FROM new n LEFT JOIN messages m ON m.id = n.message_id
        WHERE n.message_id IS NOT NULL;
        bad := coalesce(bad, wb_ref_lock('messages', lock_ids));
        IF bad IS NOT NULL THEN
            PERFORM wb_ref_missing('events', 'message_id', 'messages', bad::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS events_refs ON events;
CREATE TRIGGER events_refs AFTER INSERT ON events
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_events_refs();

-- An update that points an event somewhere new (none of warmbench's does:
-- they only clear references) is checked row by row, as a foreign key
-- would; the WHEN clause keeps every other update free of it.
CREATE OR REPLACE FUNCTION wb_events_refs_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wb_ref_row('events', 'candidate_id', 'candidates', NEW.candidate_id, OLD.candidate_id);
    PERFORM wb_ref_row('events', 'enrollment_id', 'enrollments', NEW.enrollment_id,
                       OLD.enrollment_id);
    PERFORM wb_ref_row('events', 'message_id', 'messages', NEW.message_id, OLD.message_id);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS events_refs_update ON events;
CREATE TRIGGER events_refs_update BEFORE UPDATE OF candidate_id, enrollment_id, message_id
    ON events FOR EACH ROW
    WHEN ((NEW.candidate_id IS NOT NULL AND NEW.candidate_id IS DISTINCT FROM OLD.candidate_id)
       OR (NEW.enrollment_id IS NOT NULL AND NEW.enrollment_id IS DISTINCT FROM OLD.enrollment_id)
       OR (NEW.message_id IS NOT NULL AND NEW.message_id IS DISTINCT FROM OLD.message_id))
    EXECUTE FUNCTION wb_events_refs_row();

-- The same for enrollments: their candidate and their sequence. The
-- candidates are locked through one join (an enroll names a million); when
-- it locked a row for every new enrollment, every candidate exists and the
-- check is done.
CREATE OR REPLACE FUNCTION wb_enrollments_refs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    me xid := wb_own_xid();
    bad bigint;
    bad_seq text;
    seqs text[];
    n_locked bigint;
BEGIN
    SELECT count(*) INTO n_locked
    FROM (SELECT 1 FROM new n JOIN candidates c ON c.id = n.candidate_id
          WHERE c.xmin <> me AND c.xmax <> me
          FOR KEY SHARE OF c) x;
    IF n_locked < (SELECT count(*) FROM new) THEN
        SELECT n.candidate_id INTO bad FROM new n
        WHERE NOT EXISTS (SELECT 1 FROM candidates c WHERE c.id = n.candidate_id)
        LIMIT 1;
        IF bad IS NOT NULL THEN
            PERFORM wb_ref_missing('enrollments', 'candidate_id', 'candidates', bad::text);
        END IF;
    END IF;
    SELECT array_agg(DISTINCT n.sequence_id) INTO seqs FROM new n;
    PERFORM FROM sequences s
    WHERE s.id = ANY (seqs) AND s.xmin <> me AND s.xmax <> me
    FOR KEY SHARE OF s;
    SELECT x INTO bad_seq FROM unnest(seqs) x
    WHERE NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = x)
    LIMIT 1;
    IF bad_seq IS NOT NULL THEN
        PERFORM wb_ref_missing('enrollments', 'sequence_id', 'sequences', bad_seq);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrollments_refs ON enrollments;
CREATE TRIGGER enrollments_refs AFTER INSERT ON enrollments
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_enrollments_refs();

CREATE OR REPLACE FUNCTION wb_enrollments_refs_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wb_ref_row('enrollments', 'candidate_id', 'candidates', NEW.candidate_id,
                       OLD.candidate_id);
    IF NEW.sequence_id IS DISTINCT FROM OLD.sequence_id
       AND NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = NEW.sequence_id FOR KEY SHARE) THEN
        PERFORM wb_ref_missing('enrollments', 'sequence_id', 'sequences', NEW.sequence_id);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS enrollments_refs_update ON enrollments;
CREATE TRIGGER enrollments_refs_update BEFORE UPDATE OF candidate_id, sequence_id
    ON enrollments FOR EACH ROW
    WHEN (NEW.candidate_id IS DISTINCT FROM OLD.candidate_id
       OR NEW.sequence_id IS DISTINCT FROM OLD.sequence_id)
    EXECUTE FUNCTION wb_enrollments_refs_row();

-- The same for messages: their enrollment and their candidate, with the
-- events' argument for the candidate. The claim makes messages of the
-- enrollments it has just updated (xmin is this transaction): one join,
-- no lock, no look at candidates.
CREATE OR REPLACE FUNCTION wb_messages_refs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    me xid := wb_own_xid();
    bad bigint;
    lock_ids bigint[];
    check_ids bigint[];
BEGIN
    SELECT min(n.enrollment_id) FILTER (WHERE e.id IS NULL),
           array_agg(DISTINCT e.id) FILTER (WHERE e.xmin <> me AND e.xmax <> me),
           array_agg(DISTINCT n.candidate_id) FILTER (WHERE n.candidate_id <> e.candidate_id)
    INTO bad, lock_ids, check_ids
    FROM new n LEFT JOIN enrollments e ON e.id = n.enrollment_id;
    bad := coalesce(bad, wb_ref_lock('enrollments', lock_ids));
    IF bad IS NOT NULL THEN
        PERFORM wb_ref_missing('messages', 'enrollment_id', 'enrollments', bad::text);
    END IF;
    bad := wb_ref_lock('candidates', check_ids);
    IF bad IS NOT NULL THEN
        PERFORM wb_ref_missing('messages', 'candidate_id', 'candidates', bad::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS messages_refs ON messages;
CREATE TRIGGER messages_refs AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_messages_refs();

-- An update that points a message elsewhere (warmbench never does), row
-- by row as a foreign key would.
CREATE OR REPLACE FUNCTION wb_messages_refs_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wb_ref_row('messages', 'enrollment_id', 'enrollments', NEW.enrollment_id,
                       OLD.enrollment_id);
    PERFORM wb_ref_row('messages', 'candidate_id', 'candidates', NEW.candidate_id,
                       OLD.candidate_id);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS messages_refs_update ON messages;
CREATE TRIGGER messages_refs_update BEFORE UPDATE OF enrollment_id, candidate_id
    ON messages FOR EACH ROW
    WHEN (NEW.enrollment_id IS DISTINCT FROM OLD.enrollment_id
       OR NEW.candidate_id IS DISTINCT FROM OLD.candidate_id)
    EXECUTE FUNCTION wb_messages_refs_row();

-- ON DELETE CASCADE from candidates, for enrollments, messages and events.
-- Under READ COMMITTED each statement here sees what committed before it,
-- so a row stored by a transaction this delete waited for goes too. The
-- enrollments take their messages with them (wb_enrollments_cascade); the
-- second delete finds the messages of the person under someone else's
-- enrollment (warmbench makes none; it is one probe of an index).
CREATE OR REPLACE FUNCTION wb_candidates_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM enrollments e WHERE e.candidate_id IN (SELECT o.id FROM old o);
    DELETE FROM messages m WHERE m.candidate_id IN (SELECT o.id FROM old o);
    DELETE FROM events v WHERE v.candidate_id IN (SELECT o.id FROM old o);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS candidates_cascade ON candidates;
CREATE TRIGGER candidates_cascade AFTER DELETE ON candidates
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_candidates_cascade();

-- ON DELETE CASCADE from enrollments, for messages. Their mail_seen rows
-- go by mail_seen's own foreign key, and events' references to them are
-- cleared by wb_messages_unref.
CREATE OR REPLACE FUNCTION wb_enrollments_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages m WHERE m.enrollment_id IN (SELECT o.id FROM old o);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrollments_cascade ON enrollments;
CREATE TRIGGER enrollments_cascade AFTER DELETE ON enrollments
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_enrollments_cascade();

-- ON DELETE SET NULL of events' enrollment and message.
CREATE OR REPLACE FUNCTION wb_enrollments_unref() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events v SET enrollment_id = NULL
    WHERE v.enrollment_id IN (SELECT o.id FROM old o);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrollments_unref ON enrollments;
CREATE TRIGGER enrollments_unref AFTER DELETE ON enrollments
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_enrollments_unref();

CREATE OR REPLACE FUNCTION wb_messages_unref() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events v SET message_id = NULL WHERE v.message_id IN (SELECT o.id FROM old o);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS messages_unref ON messages;
CREATE TRIGGER messages_unref AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_messages_unref();

-- ON DELETE NO ACTION of enrollments' sequence.
CREATE OR REPLACE FUNCTION wb_sequences_restrict() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    SELECT o.id INTO bad FROM old o
    WHERE EXISTS (SELECT 1 FROM enrollments e WHERE e.sequence_id = o.id)
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'update or delete on table "sequences" violates foreign key constraint "enrollments_sequence_id_fkey" on table "enrollments"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "enrollments".', bad);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sequences_restrict ON sequences;
CREATE TRIGGER sequences_restrict AFTER DELETE ON sequences
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_sequences_restrict();

-- Referenced ids never change; refuse it rather than leave references
-- pointing at the old one.
CREATE OR REPLACE FUNCTION wb_key_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the id of a row in "%" cannot change (it is referenced)', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation';
END
$$;

DROP TRIGGER IF EXISTS candidates_key_fixed ON candidates;
CREATE TRIGGER candidates_key_fixed BEFORE UPDATE OF id ON candidates
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION wb_key_fixed();
DROP TRIGGER IF EXISTS enrollments_key_fixed ON enrollments;
CREATE TRIGGER enrollments_key_fixed BEFORE UPDATE OF id ON enrollments
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION wb_key_fixed();
DROP TRIGGER IF EXISTS messages_key_fixed ON messages;
CREATE TRIGGER messages_key_fixed BEFORE UPDATE OF id ON messages
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION wb_key_fixed();
DROP TRIGGER IF EXISTS sequences_key_fixed ON sequences;
CREATE TRIGGER sequences_key_fixed BEFORE UPDATE OF id ON sequences
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION wb_key_fixed();
