-- Scale, second round (issue 12; README "Scale").
--
-- The foreign keys of enrollments and events go: each checked every
-- inserted row with a query of its own, four million queries for an
-- `enroll` of a million candidates, more than half of its time. Statement-
-- level triggers in sql/functions/035_refs.sql keep the same rules (the
-- reference exists, the referenced row is locked until commit, CASCADE
-- and SET NULL on delete) with one join per statement.
ALTER TABLE enrollments DROP CONSTRAINT IF EXISTS enrollments_candidate_id_fkey,
                        DROP CONSTRAINT IF EXISTS enrollments_sequence_id_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_candidate_id_fkey,
                   DROP CONSTRAINT IF EXISTS events_enrollment_id_fkey,
                   DROP CONSTRAINT IF EXISTS events_message_id_fkey;

-- The people `warmbench stats` counts from events, kept by the triggers
-- of sql/functions/092_stats.sql as events come and go: one row per
-- (sequence, step, kind, person), step 0 for the sequence across its
-- steps; and the steps that have any event.
CREATE TABLE stats_people (
    sequence_id  text NOT NULL,
    step         integer NOT NULL,
    kind         text NOT NULL,
    candidate_id bigint NOT NULL,
    PRIMARY KEY (sequence_id, step, kind, candidate_id)
);

CREATE TABLE stats_steps (
    sequence_id  text NOT NULL,
    step         integer NOT NULL,
    PRIMARY KEY (sequence_id, step)
);

-- Filled from the events already stored (the kinds as wb_stats_kinds
-- names them, written out: a migration calls no function of
-- sql/functions/).
INSERT INTO stats_steps (sequence_id, step)
SELECT DISTINCT v.sequence_id, v.step FROM events v
WHERE v.sequence_id IS NOT NULL AND v.step IS NOT NULL;

INSERT INTO stats_people (sequence_id, step, kind, candidate_id)
SELECT DISTINCT v.sequence_id, s.step, k.kind, v.candidate_id
FROM events v
CROSS JOIN LATERAL unnest(CASE v.type
    WHEN 'open' THEN CASE WHEN v.machine THEN '{opened_machine}'::text[] ELSE '{opened}' END
    WHEN 'click' THEN CASE WHEN v.machine THEN '{clicked_machine}'::text[]
                           WHEN v.detail->>'link' IS NOT NULL
                           THEN ARRAY['clicked', 'link:' || (v.detail->>'link')]
                           ELSE '{clicked}' END
    WHEN 'reply' THEN '{replied}'
    WHEN 'auto_reply' THEN '{auto_replied}'
    WHEN 'bounce' THEN '{bounced}'
    WHEN 'unsubscribe' THEN '{unsubscribed}'
    WHEN 'complaint' THEN '{complained}'
    WHEN 'handoff' THEN '{handed_off}'
    ELSE '{}' END) k(kind)
CROSS JOIN LATERAL (VALUES (0), (v.step)) s(step)
WHERE v.sequence_id IS NOT NULL AND v.step IS NOT NULL AND v.candidate_id IS NOT NULL
  AND v.type IN ('open', 'click', 'reply', 'auto_reply', 'bounce', 'unsubscribe', 'complaint',
                 'handoff');

-- Two of events' indexes only ever serve rows with a message or a step:
-- partial, so that the `enrolled` event of each enrollment (neither) adds
-- no entry to them.
DROP INDEX IF EXISTS events_message_idx;
CREATE INDEX events_message_idx ON events (message_id) WHERE message_id IS NOT NULL;
DROP INDEX IF EXISTS events_sequence_idx;
CREATE INDEX events_sequence_idx ON events (sequence_id, step, type) WHERE step IS NOT NULL;
