-- Ownership and contact policy (sql/022_owners_contact.sql).

-- Stores the senders (id -> address) and the contact policy of a daemon's
-- configuration: p = {"senders": {"ana": "ana@example.com", ...},
-- "contact_policy": {"cooldown_days": 14, "max_per_30_days": 4}}. Senders
-- no longer configured go: an owner naming one falls back.
CREATE OR REPLACE FUNCTION wb_sync_send_config(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO send_senders (id, email)
    SELECT k, v FROM jsonb_each_text(coalesce(p->'senders', '{}')) AS s(k, v)
    ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email
    WHERE send_senders.email IS DISTINCT FROM EXCLUDED.email;
    DELETE FROM send_senders WHERE NOT (coalesce(p->'senders', '{}') ? id);
    UPDATE send_policy SET
        cooldown_days = coalesce((p->'contact_policy'->>'cooldown_days')::integer, 0),
        max_per_30_days = coalesce((p->'contact_policy'->>'max_per_30_days')::integer, 0)
    WHERE (cooldown_days, max_per_30_days) IS DISTINCT FROM
          (coalesce((p->'contact_policy'->>'cooldown_days')::integer, 0),
           coalesce((p->'contact_policy'->>'max_per_30_days')::integer, 0));
END
$$;

-- Who sends step `step` (0-based) of a sequence to a candidate: the step's
-- sender, else the sequence's; "owner" means the sender the candidate's
-- owner names (by id or address, any case), else the step's or the
-- sequence's fallback_sender.
CREATE OR REPLACE FUNCTION wb_step_sender(def jsonb, step integer, cand bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN coalesce(def->'steps'->step->>'sender', def->>'sender') = 'owner' THEN
        coalesce((SELECT sd.id FROM candidates c
                  JOIN send_senders sd ON lower(c.attrs->>'owner') IN (lower(sd.id), lower(sd.email))
                  WHERE c.id = cand ORDER BY sd.id LIMIT 1),
                 def->'steps'->step->>'fallback_sender', def->>'fallback_sender')
        ELSE coalesce(def->'steps'->step->>'sender', def->>'sender') END
$$;

-- When the contact policy lets the candidate get the next step of
-- sequence `seq` (0-based `step`): now or earlier when nothing holds it;
-- else the moment it may. max_per_30_days counts every message of the
-- person made in the last 30 days (claimed or sent, any sequence or
-- sender); cooldown_days holds a first step until that long after the
-- person's last message of another sequence.
CREATE OR REPLACE FUNCTION wb_contact_ok_at(cand bigint, seq text, step integer,
                                            cooldown_days integer, max_30 integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT greatest(
        CASE WHEN max_30 > 0 THEN
            (SELECT r.t + interval '30 days' FROM (
                SELECT coalesce(m.sent_at, m.created_at) AS t FROM messages m
                WHERE m.candidate_id = cand AND m.state NOT IN ('cancelled', 'failed')
                  AND coalesce(m.sent_at, m.created_at) > now() - interval '30 days'
                ORDER BY 1 DESC OFFSET max_30 - 1 LIMIT 1) r) END,
        CASE WHEN cooldown_days > 0 AND step = 0 THEN
            (SELECT max(coalesce(m.sent_at, m.created_at)) + make_interval(days => cooldown_days)
             FROM messages m
             WHERE m.candidate_id = cand AND m.sequence_id <> seq
               AND m.state NOT IN ('cancelled', 'failed')) END,
        '-infinity'::timestamptz)
$$;
