-- The claim picks a due step by its sender (wb_claim). Most sequences name
-- one sender for all their steps; reading each step's own sender from the
-- definition for every due row cost the claim a third more. This flag
-- says which sequences need that (a step's own sender, or "owner").
ALTER TABLE sequences ADD COLUMN mixed_senders boolean GENERATED ALWAYS AS (
    definition->>'sender' = 'owner' OR jsonb_path_exists(definition, '$.steps[*].sender')
) STORED;
