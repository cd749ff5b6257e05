-- The people `warmbench stats` counts from events, kept as they come
-- (tables in migration 014; README "Scale"). stats counts distinct people
-- per sequence and step and per sequence across its steps; done over the
-- events themselves, that was a sort or hash of every event on each run
-- (4 s of stats' 4.4 at five million events). stats_people holds each
-- (sequence, step, kind, person) once, step 0 standing for the sequence as
-- a whole (steps are numbered from 1), so a count is a count of rows.
-- stats_steps holds the steps that have any event, as stats lists them.
--
-- Only events with a sequence, a step and a candidate are counted, as
-- before. Kinds: opened, opened_machine, clicked, clicked_machine,
-- replied, auto_replied, bounced, unsubscribed, complained, handed_off, and
-- 'link:NAME' for a human click on the link NAME.
CREATE OR REPLACE FUNCTION wb_stats_kinds(p_type text, p_machine boolean, p_detail jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_type
        WHEN 'open' THEN CASE WHEN p_machine THEN '{opened_machine}'::text[] ELSE '{opened}' END
        WHEN 'click' THEN CASE WHEN p_machine THEN '{clicked_machine}'::text[]
                               WHEN p_detail->>'link' IS NOT NULL
                               THEN ARRAY['clicked', 'link:' || (p_detail->>'link')]
                               ELSE '{clicked}' END
        WHEN 'reply' THEN '{replied}'
        WHEN 'auto_reply' THEN '{auto_replied}'
        WHEN 'bounce' THEN '{bounced}'
        WHEN 'unsubscribe' THEN '{unsubscribed}'
        WHEN 'complaint' THEN '{complained}'
        WHEN 'handoff' THEN '{handed_off}'
        ELSE '{}' END
$$;

-- New events: their people, each key once, in key order (two writers
-- meeting on one key wait for each other in the same order).
CREATE OR REPLACE FUNCTION wb_stats_events_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stats_steps (sequence_id, step)
    SELECT DISTINCT n.sequence_id, n.step FROM new n
    WHERE n.sequence_id IS NOT NULL AND n.step IS NOT NULL
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    INSERT INTO stats_people (sequence_id, step, kind, candidate_id)
    SELECT DISTINCT n.sequence_id, s.step, k.kind, n.candidate_id
    FROM new n
    CROSS JOIN LATERAL unnest(wb_stats_kinds(n.type, n.machine, n.detail)) k(kind)
    CROSS JOIN LATERAL (VALUES (0), (n.step)) s(step)
    WHERE n.sequence_id IS NOT NULL AND n.step IS NOT NULL AND n.candidate_id IS NOT NULL
      AND n.type IN ('open', 'click', 'reply', 'auto_reply', 'bounce', 'unsubscribe', 'complaint', 'handoff')
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- Events gone (their candidate erased): a person leaves a count when no
-- event of theirs is left for it. Events are only deleted with their
-- candidate, whose row lock (035_refs.sql) keeps new events of that
-- person out meanwhile.
CREATE OR REPLACE FUNCTION wb_stats_events_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stats_people p
    USING (SELECT DISTINCT o.sequence_id, s.step, k.kind, o.candidate_id
           FROM old o
           CROSS JOIN LATERAL unnest(wb_stats_kinds(o.type, o.machine, o.detail)) k(kind)
           CROSS JOIN LATERAL (VALUES (0), (o.step)) s(step)
           WHERE o.sequence_id IS NOT NULL AND o.step IS NOT NULL
             AND o.candidate_id IS NOT NULL) g
    WHERE p.sequence_id = g.sequence_id AND p.step = g.step AND p.kind = g.kind
      AND p.candidate_id = g.candidate_id
      AND NOT EXISTS (SELECT 1 FROM events v
                      WHERE v.candidate_id = g.candidate_id AND v.sequence_id = g.sequence_id
                        AND v.step IS NOT NULL AND (g.step = 0 OR v.step = g.step)
                        AND g.kind = ANY (wb_stats_kinds(v.type, v.machine, v.detail)));
    DELETE FROM stats_steps t
    USING (SELECT DISTINCT o.sequence_id, o.step FROM old o
           WHERE o.sequence_id IS NOT NULL AND o.step IS NOT NULL) g
    WHERE t.sequence_id = g.sequence_id AND t.step = g.step
      AND NOT EXISTS (SELECT 1 FROM events v
                      WHERE v.sequence_id = g.sequence_id AND v.step = g.step);
    RETURN NULL;
END
$$;

-- An update is a removal of the old rows and an addition of the new ones
-- (warmbench's own updates only clear a message or enrollment reference,
-- which changes no count).
CREATE OR REPLACE FUNCTION wb_stats_events_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old o JOIN new n ON n.id = o.id
                   WHERE (n.sequence_id, n.step, n.type, n.machine, n.detail, n.candidate_id)
                         IS DISTINCT FROM
                         (o.sequence_id, o.step, o.type, o.machine, o.detail, o.candidate_id)) THEN
        RETURN NULL;
    END IF;
    DELETE FROM stats_people p
    USING (SELECT DISTINCT o.sequence_id, s.step, k.kind, o.candidate_id
           FROM old o
           CROSS JOIN LATERAL unnest(wb_stats_kinds(o.type, o.machine, o.detail)) k(kind)
           CROSS JOIN LATERAL (VALUES (0), (o.step)) s(step)
           WHERE o.sequence_id IS NOT NULL AND o.step IS NOT NULL
             AND o.candidate_id IS NOT NULL) g
    WHERE p.sequence_id = g.sequence_id AND p.step = g.step AND p.kind = g.kind
      AND p.candidate_id = g.candidate_id
      AND NOT EXISTS (SELECT 1 FROM events v
                      WHERE v.candidate_id = g.candidate_id AND v.sequence_id = g.sequence_id
                        AND v.step IS NOT NULL AND (g.step = 0 OR v.step = g.step)
                        AND g.kind = ANY (wb_stats_kinds(v.type, v.machine, v.detail)));
    DELETE FROM stats_steps t
    USING (SELECT DISTINCT o.sequence_id, o.step FROM old o
           WHERE o.sequence_id IS NOT NULL AND o.step IS NOT NULL) g
    WHERE t.sequence_id = g.sequence_id AND t.step = g.step
      AND NOT EXISTS (SELECT 1 FROM events v
                      WHERE v.sequence_id = g.sequence_id AND v.step = g.step);
    INSERT INTO stats_steps (sequence_id, step)
    SELECT DISTINCT n.sequence_id, n.step FROM new n
    WHERE n.sequence_id IS NOT NULL AND n.step IS NOT NULL
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    INSERT INTO stats_people (sequence_id, step, kind, candidate_id)
    SELECT DISTINCT n.sequence_id, s.step, k.kind, n.candidate_id
    FROM new n
    CROSS JOIN LATERAL unnest(wb_stats_kinds(n.type, n.machine, n.detail)) k(kind)
    CROSS JOIN LATERAL (VALUES (0), (n.step)) s(step)
    WHERE n.sequence_id IS NOT NULL AND n.step IS NOT NULL AND n.candidate_id IS NOT NULL
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS events_stats_insert ON events;
CREATE TRIGGER events_stats_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_stats_events_added();

DROP TRIGGER IF EXISTS events_stats_delete ON events;
CREATE TRIGGER events_stats_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old
    FOR EACH STATEMENT EXECUTE FUNCTION wb_stats_events_removed();

DROP TRIGGER IF EXISTS events_stats_update ON events;
CREATE TRIGGER events_stats_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old NEW TABLE AS new
    FOR EACH STATEMENT EXECUTE FUNCTION wb_stats_events_changed();

-- A TRUNCATE of events empties the counts with it.
CREATE OR REPLACE FUNCTION wb_stats_events_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE stats_people, stats_steps;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS events_stats_truncate ON events;
CREATE TRIGGER events_stats_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION wb_stats_events_truncated();

-- Makes both tables again from the events: for data loaded with triggers
-- off (session_replication_role = replica, as tests/bench/bench_scale.sh
-- seeds), or to check them (test_stats_summary compares).
CREATE OR REPLACE FUNCTION wb_stats_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE events IN SHARE MODE;
    TRUNCATE stats_people, stats_steps;
    INSERT INTO stats_steps (sequence_id, step)
    SELECT DISTINCT v.sequence_id, v.step FROM events v
    WHERE v.sequence_id IS NOT NULL AND v.step IS NOT NULL;
    INSERT INTO stats_people (sequence_id, step, kind, candidate_id)
    SELECT DISTINCT v.sequence_id, s.step, k.kind, v.candidate_id
    FROM events v
    CROSS JOIN LATERAL unnest(wb_stats_kinds(v.type, v.machine, v.detail)) k(kind)
    CROSS JOIN LATERAL (VALUES (0), (v.step)) s(step)
    WHERE v.sequence_id IS NOT NULL AND v.step IS NOT NULL AND v.candidate_id IS NOT NULL
      AND v.type IN ('open', 'click', 'reply', 'auto_reply', 'bounce', 'unsubscribe', 'complaint', 'handoff');
END
$$;
