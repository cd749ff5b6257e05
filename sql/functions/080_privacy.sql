-- GDPR: erasure (forget, retention), one transaction per call.

-- Erases the candidates in p_ids: their addresses go into the suppression
-- list as salted hashes only (any plain address already there is blanked),
-- personal data that would outlive the candidate row (handoff payloads and
-- errors, events without a candidate that name the address) is scrubbed,
-- then the candidate row goes and enrollments, messages and events cascade.
-- Returns what was erased, per table.
CREATE OR REPLACE FUNCTION wb_erase_candidates(p_ids bigint[], p_reason text)
RETURNS TABLE (candidates integer, enrollments integer, messages integer, events integer,
               handoffs integer, suppressions_blanked integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    addrs text[];
    n_c integer; n_e integer; n_m integer; n_v integer; n_h integer; n_s integer;
BEGIN
    SELECT coalesce(array_agg(lower(btrim(c.email))), '{}') INTO addrs
    FROM candidates c WHERE c.id = ANY (p_ids);
    -- The hash stays, so a re-import or an ATS upsert is refused.
    INSERT INTO suppressions (email, email_hash, reason)
    SELECT NULL, wb_email_hash(a), p_reason FROM unnest(addrs) a
    ON CONFLICT (email_hash) DO NOTHING;
    UPDATE suppressions s SET email = NULL
    WHERE s.email IS NOT NULL
      AND (lower(btrim(s.email)) = ANY (addrs)
           OR s.email_hash IN (SELECT wb_email_hash(a) FROM unnest(addrs) a));
    GET DIAGNOSTICS n_s = ROW_COUNT;
    -- Handoffs outlive the candidate (candidate_id goes NULL): no payload,
    -- no error text; one not yet delivered never will be.
    UPDATE handoffs h SET payload = NULL, last_error = NULL,
        state = CASE WHEN h.state = 'pending' THEN 'dead' ELSE h.state END,
        lease_owner = NULL
    WHERE h.candidate_id = ANY (p_ids)
       OR (h.candidate_id IS NULL AND EXISTS (SELECT 1 FROM unnest(addrs) a
            WHERE strpos(lower(coalesce(h.payload::text, '') || ' ' || coalesce(h.last_error, '')),
                         a) > 0));
    GET DIAGNOSTICS n_h = ROW_COUNT;
    -- Messages: what names the person, blanked before the rows go (a daemon
    -- holding a lease finds nothing to mark).
    UPDATE messages m SET rcpt = NULL, subject = NULL, last_reply = NULL
    WHERE m.candidate_id = ANY (p_ids);
    GET DIAGNOSTICS n_m = ROW_COUNT;
    SELECT count(*) INTO n_e FROM enrollments e WHERE e.candidate_id = ANY (p_ids);
    -- Events of the person cascade; events without a candidate that name
    -- the address go too.
    SELECT count(*) INTO n_v FROM events v WHERE v.candidate_id = ANY (p_ids);
    DELETE FROM events v
    WHERE v.candidate_id IS NULL AND cardinality(addrs) > 0
      AND EXISTS (SELECT 1 FROM unnest(addrs) a WHERE strpos(lower(v.detail::text), a) > 0);
    GET DIAGNOSTICS n_c = ROW_COUNT;
    n_v := n_v + n_c;
    DELETE FROM candidates c WHERE c.id = ANY (p_ids);
    GET DIAGNOSTICS n_c = ROW_COUNT;
    RETURN QUERY SELECT n_c, n_e, n_m, n_v, n_h, n_s;
END
$$;

-- `warmbench forget EMAIL`: the candidate with that address (if any) is
-- erased; the address's hash is suppressed even when there is none, so it
-- can never be imported. hash_added: the hash was not in the list before.
CREATE OR REPLACE FUNCTION wb_forget(p_addr text)
RETURNS TABLE (candidates integer, enrollments integer, messages integer, events integer,
               handoffs integer, suppressions_blanked integer, hash_added boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    had boolean;
    r record;
    n_s integer;
BEGIN
    IF p_addr IS NULL OR btrim(p_addr) = '' THEN
        RAISE EXCEPTION 'empty address' USING ERRCODE = '22023';
    END IF;
    had := EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = wb_email_hash(p_addr));
    SELECT * INTO r FROM wb_erase_candidates(
        ARRAY(SELECT c.id FROM candidates c WHERE lower(c.email) = lower(btrim(p_addr))
              FOR UPDATE), 'forget');
    INSERT INTO suppressions (email, email_hash, reason)
    VALUES (NULL, wb_email_hash(p_addr), 'forget')
    ON CONFLICT (email_hash) DO NOTHING;
    UPDATE suppressions s SET email = NULL
    WHERE s.email IS NOT NULL AND (lower(btrim(s.email)) = lower(btrim(p_addr))
                                   OR s.email_hash = wb_email_hash(p_addr));
    GET DIAGNOSTICS n_s = ROW_COUNT;
    RETURN QUERY SELECT r.candidates, r.enrollments, r.messages, r.events, r.handoffs,
                        r.suppressions_blanked + n_s, NOT had;
END
$$;

-- Retention: claims today's run for this database (at most one per 23 h 50 m,
-- whichever daemon asks first). True when the caller should run it.
CREATE OR REPLACE FUNCTION wb_retention_claim() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO wb_settings AS s (key, value) VALUES ('retention_last_run', now()::text)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
    WHERE s.value::timestamptz <= now() - interval '23 hours 50 minutes';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;

-- Retention: erases up to p_batch candidates with nothing of theirs in the
-- last p_days days — not added or re-imported, no enrollment made, changed
-- or still active, no message made or sent, no event other than a machine
-- one (privacy proxy, link scanner), no human engagement. Returns the
-- number erased; the caller repeats while it equals p_batch.
CREATE OR REPLACE FUNCTION wb_retention_erase(p_days integer, p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - make_interval(days => p_days);
    ids bigint[];
    n integer;
BEGIN
    IF p_days IS NULL OR p_days <= 0 THEN
        RETURN 0;
    END IF;
    SELECT coalesce(array_agg(c.id), '{}') INTO ids FROM (
        SELECT c.id FROM candidates c
        WHERE c.created_at < cutoff AND c.updated_at < cutoff
          AND (c.last_engaged_at IS NULL OR c.last_engaged_at < cutoff)
          AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.candidate_id = c.id
                          AND (e.state = 'active' OR e.created_at >= cutoff
                               OR e.updated_at >= cutoff OR e.ended_at >= cutoff))
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.candidate_id = c.id
                          AND (m.created_at >= cutoff OR m.sent_at >= cutoff
                               OR m.updated_at >= cutoff))
          AND NOT EXISTS (SELECT 1 FROM events v WHERE v.candidate_id = c.id
                          AND v.at >= cutoff AND NOT v.machine)
        ORDER BY c.id
        LIMIT p_batch
        FOR UPDATE OF c SKIP LOCKED) c;
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    SELECT r.candidates INTO n FROM wb_erase_candidates(ids, 'retention') r;
    RETURN n;
END
$$;
