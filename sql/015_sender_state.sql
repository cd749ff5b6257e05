-- A sender's OAuth state, written by the token keeper (lib/send/oauth.c)
-- when it changes and by `warmbench login` when a login succeeds, so that
-- `warmbench senders` can say who needs a login while the daemon holds
-- that sender's mail. One row per sender that uses OAuth; no row: the
-- keeper has not run for it yet. reason never holds a token.
CREATE TABLE sender_state (
    sender     text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('ok', 'waiting', 'needs_login')),
    reason     text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
