-- Deliverability guards (SPEC "Deliverability"): what each sender's mail
-- did, per UTC day, and the guard's pauses.
--
-- sender_stats counts, per sender and day, the mails that reached a server
-- (sent, unknown, or refused at SMTP as a hard bounce) and the hard bounces
-- and complaints about them. wb_store_outcomes and wb_record_events keep it
-- in the statements that record those outcomes and events, so the guard
-- reads a few rows per sender instead of scanning messages and events, and
-- warm-up knows each sender's first day.
CREATE TABLE sender_stats (
    sender        text NOT NULL,
    day           date NOT NULL,
    sent          integer NOT NULL DEFAULT 0,
    hard_bounces  integer NOT NULL DEFAULT 0,
    complaints    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, day)
);

-- What has gone out so far, so that warm-up and the guard start from the
-- truth on an existing database.
INSERT INTO sender_stats (sender, day, sent)
SELECT sender, (sent_at AT TIME ZONE 'UTC')::date, count(*)
FROM messages WHERE sent_at IS NOT NULL
GROUP BY 1, 2;

-- A sender the guard paused (paused_reason set) until `warmbench resume
-- --sender`. A resume starts the guard afresh: it counts only what went out
-- after it (guard_since, and the counts of that day at the resume, base_*),
-- so a sender is not paused again for the mail that paused it.
CREATE TABLE sender_guard (
    sender         text PRIMARY KEY,
    paused_reason  text,
    paused_at      timestamptz,
    guard_since    date,
    base_sent      integer NOT NULL DEFAULT 0,
    base_bounces   integer NOT NULL DEFAULT 0,
    base_complaints integer NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
