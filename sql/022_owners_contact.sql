-- Ownership and contact policy (SPEC "Ownership and contact policy").
--
-- The claim needs two things only the configuration knows: which sender an
-- owner names (a sender's name or its address; the import's `owner` column
-- arrives in candidates.attrs), and the contact policy. Each daemon stores
-- them at start and at every reload, as it stores sequence definitions
-- (wb_sync_send_config, sql/functions/067_contact.sql).
CREATE TABLE send_senders (
    id     text PRIMARY KEY,
    email  text NOT NULL
);

-- One row: the policy across all sequences and senders (0 = none).
CREATE TABLE send_policy (
    one              boolean PRIMARY KEY DEFAULT true CHECK (one),
    cooldown_days    integer NOT NULL DEFAULT 0 CHECK (cooldown_days >= 0),
    max_per_30_days  integer NOT NULL DEFAULT 0 CHECK (max_per_30_days >= 0)
);
INSERT INTO send_policy DEFAULT VALUES;
