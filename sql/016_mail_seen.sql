-- A mail seen in two mailboxes counts once (SPEC "Every recruiter's own
-- mailbox"): a reply sent to two recruiters, or a bounce that lands in a
-- sender's mailbox and the shared one, is recorded by whichever poller
-- reads it first. The key is the mail's own Message-ID with the message of
-- ours it is about, so a forged Message-ID can only collide with a mail
-- about the same message. Rows go with the message (erasure, retention).
CREATE TABLE mail_seen (
    mail_id     text NOT NULL,
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mail_id, message_id)
);

CREATE INDEX mail_seen_message_idx ON mail_seen (message_id);
