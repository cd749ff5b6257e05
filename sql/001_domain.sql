-- warmbench domain schema. The whole domain lives here so later work adds
-- to it rather than reshaping it. Applied by `warmbench migrate` in one
-- transaction; schema_migrations is created by migrate itself. The
-- functions, triggers and views are in sql/functions/, applied after the
-- migrations (README "Schema: migrations and functions").

-- Installation-wide values (the salt for one-way address hashes).
CREATE TABLE wb_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

INSERT INTO wb_settings (key, value)
VALUES ('hash_salt', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

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
