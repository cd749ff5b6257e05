-- SMTP outcomes are staged in the message's own row (issue 12, bench-send).
--
-- The window statement (wb_send_window) stages the outcomes that came back
-- and marks the next messages `sending`, in one durable commit. It staged
-- them as rows of send_outcomes (migration 010): an insert into a table
-- with two indexes, and later a delete, for every message. Now it writes
-- them into the message row itself, which the mark has just rewritten and
-- whose page has room for the next version: no column here is indexed, so
-- it is one heap-only tuple and no index entry. The row stays `sending`
-- (or `claimed`, for one that failed before SMTP) until wb_apply_outcomes
-- moves it on and clears these columns; a row is staged while out_outcome
-- is not NULL. The reply goes to last_reply at once. wb_recover finds a
-- stopped daemon's staged rows through its claims, as before.

ALTER TABLE messages
    ADD COLUMN out_outcome text
        CHECK (out_outcome IN ('sent', 'retry', 'failed', 'bounce', 'unknown')),
    ADD COLUMN out_code integer,
    ADD COLUMN out_retry_s double precision;

-- What a daemon staged before this migration and had not applied yet.
UPDATE messages m SET out_outcome = CASE WHEN o.outcome IN ('sent', 'retry', 'bounce', 'unknown')
                                         THEN o.outcome ELSE 'failed' END,
    out_code = o.code, out_retry_s = o.retry_s, last_reply = o.reply
FROM send_outcomes o
WHERE m.id = o.message_id AND m.state IN ('claimed', 'sending');

DROP TABLE send_outcomes;
