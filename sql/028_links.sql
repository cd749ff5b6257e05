-- Every tracked link ever configured, by the stable id its click tokens
-- carry (wb_token_link_id: SHA-256 of sequence, name and URL, the first 8
-- bytes as a signed bigint). The daemon adds each configuration's links
-- when it loads it; rows are never changed or removed, so mail already
-- sent keeps redirecting to the URL it was sent with and records the
-- link's name at the time, whatever `links` says after a reload or a
-- restart. No personal data: retention and forget leave it alone.
CREATE TABLE links (
    id          bigint PRIMARY KEY,
    sequence_id text NOT NULL,
    name        text NOT NULL,
    url         text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now()
);
