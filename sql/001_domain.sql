-- warmbench domain schema. The whole domain lives here so later work adds
-- to it rather than reshaping it. Applied by `warmbench migrate` in one
-- transaction; schema_migrations is created by migrate itself.

-- Installation-wide values (the salt for one-way address hashes).
CREATE TABLE wb_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO wb_settings (key, value)
VALUES ('hash_salt', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- One-way hash of an address, as kept in the suppression list after forget.
CREATE FUNCTION wb_email_hash(addr text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to((SELECT value FROM wb_settings WHERE key = 'hash_salt')
                                    || lower(btrim(addr)), 'UTF8')), 'hex')
$$;

CREATE TABLE candidates (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL CHECK (email <> ''),
    first_name    text NOT NULL DEFAULT '',
    last_name     text NOT NULL DEFAULT '',
    title         text NOT NULL DEFAULT '',
    company       text NOT NULL DEFAULT '',
    location      text NOT NULL DEFAULT '',
    timezone      text,                       -- IANA name, NULL = unknown
    tags          text[] NOT NULL DEFAULT '{}',
    skills        text[] NOT NULL DEFAULT '{}',
    consent       text CHECK (consent IN ('opt_in', 'legitimate_interest')),
    consent_at    timestamptz,
    source        text NOT NULL DEFAULT '',
    attrs         jsonb NOT NULL DEFAULT '{}',
    score         double precision NOT NULL DEFAULT 0,
    score_at      timestamptz,                -- time the score was last decayed to
    last_engaged_at timestamptz,              -- last human engagement
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Few indexes: every one is paid for by each imported row. Enrolling by tag
-- is the common filter; skills, location, source and dates are filtered
-- together with it or scanned.
CREATE UNIQUE INDEX candidates_email_key ON candidates (lower(email));
CREATE INDEX candidates_tags_idx ON candidates USING gin (tags);

-- Addresses never to be mailed again: by address, or (after forget) only by
-- a salted one-way hash.
CREATE TABLE suppressions (
    id          bigserial PRIMARY KEY,
    email       text,
    email_hash  text NOT NULL,
    reason      text NOT NULL,               -- unsubscribe, bounce, manual, forget, complaint
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX suppressions_hash_key ON suppressions (email_hash);
CREATE INDEX suppressions_email_idx ON suppressions (lower(email));

-- Sequences as loaded from config: the daemon and CLI upsert them.
CREATE TABLE sequences (
    id            text PRIMARY KEY,
    content_hash  text NOT NULL,
    definition    jsonb NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enrollments (
    id            bigserial PRIMARY KEY,
    candidate_id  bigint NOT NULL REFERENCES candidates (id) ON DELETE CASCADE,
    sequence_id   text NOT NULL REFERENCES sequences (id),
    step          integer NOT NULL DEFAULT 0,   -- steps started so far; the next message is step + 1
    next_due_at   timestamptz,                  -- NULL while a step is in flight or when ended
    state         text NOT NULL DEFAULT 'active'
                  CHECK (state IN ('active', 'stopped', 'finished', 'handed_off', 'converted')),
    stop_reason   text,
    variant       integer,                      -- A/B: chosen per step by hash, kept for reruns
    source        text NOT NULL DEFAULT 'cli',  -- cli, auto, ats
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    UNIQUE (candidate_id, sequence_id)
);
-- The scheduler's hot query: active enrollments due by time.
CREATE INDEX enrollments_due_idx ON enrollments (next_due_at) WHERE state = 'active' AND next_due_at IS NOT NULL;
CREATE INDEX enrollments_sequence_idx ON enrollments (sequence_id, state);

-- Per-sender counters that make daily_limit and min_interval_s hold across
-- restarts and several daemons.
CREATE TABLE sender_usage (
    sender        text NOT NULL,
    day           date NOT NULL,
    sent          integer NOT NULL DEFAULT 0,
    last_send_at  timestamptz,
    PRIMARY KEY (sender, day)
);

-- One row per (enrollment, step): the unit of "send at most once".
CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    enrollment_id   bigint NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    candidate_id    bigint NOT NULL REFERENCES candidates (id) ON DELETE CASCADE,
    sequence_id     text NOT NULL,
    step            integer NOT NULL,           -- 1-based step number
    variant         integer,
    sender          text NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'claimed', 'sending', 'sent', 'retry', 'failed', 'unknown',
                                      'cancelled')),
    message_id      text,                       -- RFC 5322 Message-ID, without <>
    rcpt            text,                       -- address at send time (erased by forget)
    subject         text,
    attempts        integer NOT NULL DEFAULT 0,
    last_reply      text,                       -- last SMTP reply line
    lease_owner     text,
    lease_until     timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sending_at      timestamptz,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enrollment_id, step)
);
CREATE UNIQUE INDEX messages_message_id_key ON messages (message_id) WHERE message_id IS NOT NULL;
-- Queue and lease-recovery scans. Partial, so that a message's trip
-- through claimed → sending → sent adds few index entries (each state
-- change is a new row version; only indexes whose predicate it matches
-- get one).
CREATE INDEX messages_due_idx ON messages (next_attempt_at) WHERE state IN ('queued', 'retry');
CREATE INDEX messages_lease_idx ON messages (lease_until) WHERE state IN ('claimed', 'sending');
CREATE INDEX messages_candidate_idx ON messages (candidate_id);

CREATE TABLE events (
    id             bigserial PRIMARY KEY,
    candidate_id   bigint REFERENCES candidates (id) ON DELETE CASCADE,
    message_id     bigint REFERENCES messages (id) ON DELETE SET NULL,
    enrollment_id  bigint REFERENCES enrollments (id) ON DELETE SET NULL,
    sequence_id    text,
    step           integer,
    type           text NOT NULL,   -- sent, failed, unknown, open, click, unsubscribe, reply,
                                    -- auto_reply, bounce, handoff, enrolled, imported, applied, hired, ...
    machine        boolean NOT NULL DEFAULT false,  -- privacy proxy / scanner
    detail         jsonb NOT NULL DEFAULT '{}',
    source         text NOT NULL DEFAULT 'warmbench',
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_candidate_idx ON events (candidate_id, at);
CREATE INDEX events_message_idx ON events (message_id);
CREATE INDEX events_type_idx ON events (type, at);
CREATE INDEX events_sequence_idx ON events (sequence_id, step, type);

-- Transactional outbox of handoffs to the ATS.
CREATE TABLE handoffs (
    id              bigserial PRIMARY KEY,
    idempotency_key uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    candidate_id    bigint REFERENCES candidates (id) ON DELETE SET NULL,
    sequence_id     text,
    reason          text NOT NULL,
    event_id        bigint REFERENCES events (id) ON DELETE SET NULL,
    payload         jsonb,            -- built at delivery time when NULL
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX handoffs_due_idx ON handoffs (state, next_attempt_at);
-- Once per candidate and sequence unless an operator asks again (then the
-- earlier row is no longer pending/delivering/delivered... see handoff.c).
CREATE INDEX handoffs_candidate_idx ON handoffs (candidate_id, sequence_id);

-- IMAP poller position, durable so a restart neither misses nor repeats.
CREATE TABLE mailbox_state (
    mailbox       text PRIMARY KEY,
    uidvalidity   bigint NOT NULL DEFAULT 0,
    last_uid      bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Inbound ATS event ids already seen (replay protection).
CREATE TABLE ats_inbound (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Next opening of a send window at or after ts: days is a bitmask
-- (bit 0 = Monday .. bit 6 = Sunday), start/end are local times in zone tz.
-- PostgreSQL does the time-zone maths (DST included).
CREATE FUNCTION wb_next_in_window(ts timestamptz, tz text, days integer,
                                  w_start time, w_end time) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_ts timestamp := ts AT TIME ZONE tz;
    d date := local_ts::date;
    i integer;
    cand timestamp;
BEGIN
    IF days = 0 THEN
        RETURN NULL;
    END IF;
    FOR i IN 0..7 LOOP
        IF (days >> (extract(isodow FROM d + i)::integer - 1)) & 1 = 1 THEN
            IF i = 0 THEN
                IF local_ts::time >= w_start AND local_ts::time < w_end THEN
                    RETURN ts;
                ELSIF local_ts::time < w_start THEN
                    RETURN (d + w_start) AT TIME ZONE tz;
                END IF;
            ELSE
                cand := (d + i) + w_start;
                RETURN cand AT TIME ZONE tz;
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- Wakes the daemons when an enrollment becomes due now (warmbench enroll,
-- ATS in, a step sent with a zero delay). Only due rows notify: the
-- scheduler's own writes move next_due_at into the future or to NULL, and
-- must not wake it again.
CREATE FUNCTION wb_notify_enrollments() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 'active' AND next_due_at <= now()) THEN
        PERFORM pg_notify('wb_enrollments', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER enrollments_notify_insert AFTER INSERT ON enrollments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_enrollments();
CREATE TRIGGER enrollments_notify_update AFTER UPDATE ON enrollments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_enrollments();

CREATE FUNCTION wb_notify_handoffs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_handoffs', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER handoffs_notify AFTER INSERT ON handoffs
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_handoffs();

CREATE FUNCTION wb_notify_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_candidates', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER candidates_notify AFTER INSERT ON candidates
    FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_candidates();

-- "30m", "12h", "3d", "2w", "45s" → interval (validated by check-config).
CREATE FUNCTION wb_duration(d text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => substring(d FROM '^[0-9]+')::double precision *
        CASE right(d, 1) WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600
                         WHEN 'd' THEN 86400 WHEN 'w' THEN 604800 END)
$$;

-- Bitmask of a window's day names (bit 0 = Monday); all days when absent.
CREATE FUNCTION wb_window_days(days jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN days IS NULL OR jsonb_typeof(days) <> 'array' THEN 127
           ELSE coalesce((SELECT sum(1 << (array_position(
                    ARRAY['mon','tue','wed','thu','fri','sat','sun'], lower(x)) - 1))::integer
                FROM jsonb_array_elements_text(days) x
                WHERE array_position(ARRAY['mon','tue','wed','thu','fri','sat','sun'], lower(x)) IS NOT NULL), 0)
           END
$$;

-- The first moment at or after ts inside a sequence's window (def is the
-- sequence file as stored in sequences.definition), in the window's zone or
-- the candidate's (cand_tz) when the window says "candidate".
CREATE FUNCTION wb_seq_next_due(ts timestamptz, def jsonb, cand_tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN def->'window' IS NULL THEN ts ELSE
        wb_next_in_window(ts,
            CASE WHEN coalesce(def->'window'->>'timezone', 'candidate') = 'candidate'
                 THEN coalesce(cand_tz, def->'window'->>'fallback_timezone', 'UTC')
                 ELSE def->'window'->>'timezone' END,
            wb_window_days(def->'window'->'days'),
            coalesce((def->'window'->>'start')::time, '00:00'),
            coalesce((def->'window'->>'end')::time, '24:00'))
    END
$$;

-- Claims up to batch due messages of one sender for one daemon (owner):
-- retries and requeued messages first, then due enrollment steps, which
-- become claimed messages directly,
-- honouring the sender's daily_limit (0 = none; counted per UTC day, as SMTP
-- transactions started) and min_interval_s (least gap between two sends).
-- The sender_usage row lock serialises concurrent claimers of one sender, so
-- the limits hold across several daemons; SKIP LOCKED keeps them from
-- waiting on each other's messages.
CREATE FUNCTION wb_claim(p_sender text, p_batch integer, p_daily_limit integer,
                         p_min_interval_s integer, p_owner text, p_lease_s integer)
RETURNS TABLE (id bigint, step integer, sequence_id text, attempts integer, message_id text,
               candidate_id bigint, email text, first_name text, last_name text, title text,
               company text, location text, attrs text, thread_id text, consent text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    u sender_usage;
    n integer := p_batch;
    ids bigint[];
BEGIN
    INSERT INTO sender_usage (sender, day) VALUES (p_sender, (now() AT TIME ZONE 'UTC')::date)
    ON CONFLICT (sender, day) DO NOTHING;
    SELECT * INTO u FROM sender_usage
    WHERE sender = p_sender AND day = (now() AT TIME ZONE 'UTC')::date FOR UPDATE;
    IF p_daily_limit > 0 THEN
        n := least(n, greatest(p_daily_limit - u.sent, 0));
    END IF;
    IF p_min_interval_s > 0 THEN
        IF u.last_send_at IS NOT NULL
           AND u.last_send_at > now() - make_interval(secs => p_min_interval_s) THEN
            n := 0;
        ELSE
            n := least(n, 1);
        END IF;
    END IF;
    IF n <= 0 THEN
        RETURN;
    END IF;
    -- Retries and recovered claims first, in due order.
    WITH pick AS MATERIALIZED (
        SELECT m.id FROM messages m
        JOIN enrollments e ON e.id = m.enrollment_id AND e.state = 'active'
        WHERE m.sender = p_sender AND m.state IN ('queued', 'retry')
          AND m.next_attempt_at <= now()
        ORDER BY m.next_attempt_at, m.id
        LIMIT n
        FOR UPDATE OF m SKIP LOCKED
    ), upd AS (
        UPDATE messages m SET state = 'claimed', lease_owner = p_owner,
            lease_until = now() + make_interval(secs => p_lease_s),
            attempts = m.attempts + 1, updated_at = now()
        FROM pick WHERE m.id = pick.id
        RETURNING m.id
    )
    SELECT array_agg(id) INTO ids FROM upd;
    -- Then due steps, made into claimed messages in one write: the
    -- enrollment moves on a step (step = steps started) as its message is
    -- born, so no other claimer can make it twice (unique enrollment+step).
    IF coalesce(cardinality(ids), 0) < n THEN
        WITH due AS MATERIALIZED (
            SELECT e.id FROM enrollments e
            JOIN sequences s ON s.id = e.sequence_id
            WHERE e.state = 'active' AND e.next_due_at <= now()
              AND s.definition->>'sender' = p_sender
              AND e.step < jsonb_array_length(s.definition->'steps')
            ORDER BY e.next_due_at
            LIMIT n - coalesce(cardinality(ids), 0)
            FOR UPDATE OF e SKIP LOCKED
        ), moved AS (
            UPDATE enrollments e SET step = e.step + 1, next_due_at = NULL, updated_at = now()
            FROM due WHERE e.id = due.id
            RETURNING e.id, e.candidate_id, e.sequence_id, e.step
        ), made AS (
            INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state,
                                  lease_owner, lease_until, attempts)
            SELECT id, candidate_id, sequence_id, step, p_sender, 'claimed', p_owner,
                   now() + make_interval(secs => p_lease_s), 1
            FROM moved
            ON CONFLICT (enrollment_id, step) DO NOTHING
            RETURNING id
        )
        SELECT coalesce(ids, '{}') || coalesce(array_agg(id), '{}') INTO ids FROM made;
    END IF;
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    UPDATE sender_usage SET sent = sent + cardinality(ids), last_send_at = now()
    WHERE sender = p_sender AND day = u.day;
    -- What rendering needs, read here: the messages made above are not
    -- visible to the statement that called this function. Consent decides
    -- whether step 1 carries the Article 14 notice (render.c).
    RETURN QUERY
    SELECT m.id, m.step, m.sequence_id, m.attempts, m.message_id, c.id, c.email,
           c.first_name, c.last_name, c.title, c.company, c.location, c.attrs::text,
           (SELECT m1.message_id FROM messages m1
            WHERE m1.enrollment_id = m.enrollment_id AND m1.step = 1),
           c.consent
    FROM messages m JOIN candidates c ON c.id = m.candidate_id
    WHERE m.id = ANY (ids)
    ORDER BY m.id;
END
$$;
