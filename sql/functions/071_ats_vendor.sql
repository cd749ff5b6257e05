-- Native ATS adapters' progress (lib/ats/ats_run.c): one call after each
-- vendor response that moves a handoff on, before the next request. Stores
-- the step, the adapter's state and the kind on the handoff, the person's
-- ATS id (when the response told it) for the candidate, and extends the
-- lease by p_lease_s. Only a handoff still leased to p_owner changes;
-- returns false when it is not (another daemon has it now).
CREATE OR REPLACE FUNCTION wb_ats_progress(p_id bigint, p_owner text, p_kind text,
                                           p_step integer, p_state jsonb, p_ats_id text,
                                           p_lease_s integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_cand bigint;
BEGIN
    UPDATE handoffs SET ats_kind = p_kind, ats_step = p_step, ats_state = p_state,
        lease_until = now() + make_interval(secs => p_lease_s)
    WHERE id = p_id AND state = 'delivering' AND lease_owner = p_owner
    RETURNING candidate_id INTO v_cand;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_ats_id IS NOT NULL AND v_cand IS NOT NULL THEN
        INSERT INTO candidate_ats (candidate_id, kind, ats_id) VALUES (v_cand, p_kind, p_ats_id)
        ON CONFLICT (candidate_id, kind) DO UPDATE SET ats_id = EXCLUDED.ats_id,
            updated_at = now()
        WHERE candidate_ats.ats_id IS DISTINCT FROM EXCLUDED.ats_id;
    END IF;
    RETURN true;
END
$$;
