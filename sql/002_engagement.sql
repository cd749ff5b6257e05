-- Engagement: recording events and applying the sequences' rules in the
-- same transaction (SPEC "stop_on / handoff_on"), so a stop is in force
-- the moment its event is stored (sql/functions/050_engagement.sql).

-- Handoffs happen once per candidate and sequence, unless an operator asks
-- again (manual handoffs are not limited).
ALTER TABLE handoffs ADD COLUMN manual boolean NOT NULL DEFAULT false;

CREATE UNIQUE INDEX handoffs_once_key ON handoffs (candidate_id, sequence_id) WHERE NOT manual;
