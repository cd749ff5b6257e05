-- Events from the ATS (POST /ats/events, lib/ats/ats_in.c): one function per
-- event type, called with bound parameters; one call stores one event in
-- one transaction. The body was validated by the daemon; what needs the
-- database (time zone names, suppressions, known sequences) is checked
-- here, and a refusal raises SQLSTATE WB400 / WB404 with a message naming
-- the field, so nothing is stored.
--
-- Every event function takes the same parameters:
--   p_id: the ATS's event id; an id seen before changes nothing ('duplicate');
--   p_candidate: {"email", optional first_name, last_name, title, company,
--     location, timezone, skills [..], consent, source};
--   p_tags: added to the candidate (the event's and the candidate's tags);
--   p_sequence: the sequence to enroll into (NULL: none);
-- and returns one row: status (stored, duplicate, suppressed,
-- unknown_candidate) and the enrollment verdict (NULL when not enrolling).

-- The checks every event makes before it stores anything, then the replay
-- guard. zone: the candidate's time zone as PostgreSQL spells it (NULL
-- when none is given); fresh: false when the id was seen before.
CREATE OR REPLACE FUNCTION wb_ats_accept(p_id text, p_type text, p_candidate jsonb,
                                         p_sequence text, OUT zone text, OUT fresh boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := NULLIF(btrim(coalesce(p_candidate->>'timezone', '')), '');
BEGIN
    IF v_tz IS NOT NULL THEN
        SELECT name INTO zone FROM pg_timezone_names
        WHERE lower(name) = lower(v_tz) ORDER BY name LIMIT 1;
        IF zone IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WB400',
                MESSAGE = format('candidate.timezone: unknown time zone "%s"', left(v_tz, 100));
        END IF;
    END IF;
    IF p_sequence IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sequences WHERE id = p_sequence) THEN
        RAISE EXCEPTION USING ERRCODE = 'WB404',
            MESSAGE = format('unknown sequence "%s"', p_sequence);
    END IF;
    INSERT INTO ats_inbound (id, type) VALUES (p_id, p_type) ON CONFLICT (id) DO NOTHING;
    fresh := FOUND;
END
$$;

-- Enrolls one candidate into p_sequence by the rules of `warmbench enroll`
-- (lib/pool/enroll.c; the verdicts in the same order): unsubscribed,
-- suppressed, no_consent, already, busy (the sequence's audience is
-- exclusive, the default, and the candidate is active elsewhere), else
-- enrolled, the first step due after its delay at the window's next
-- opening. The sequence is read as the daemon stored it (sequences.
-- definition); its window zone is the candidate's only when it says
-- "candidate", else the one named, else UTC, as config loading makes it.
-- Returns the verdict; NULL when a concurrent call enrolled the candidate
-- first (nothing was enrolled here).
CREATE OR REPLACE FUNCTION wb_ats_enroll(p_candidate bigint, p_sequence text) RETURNS text
LANGUAGE sql AS $$
    WITH target AS MATERIALIZED (
        SELECT c.id, q.definition AS def, c.attrs->>'country' AS country,
               CASE WHEN q.definition->'window'->>'timezone' = 'candidate'
                    THEN coalesce(c.timezone, q.definition->'window'->>'fallback_timezone', 'UTC')
                    ELSE coalesce(q.definition->'window'->>'timezone', 'UTC') END AS zone,
               CASE
                WHEN s.reason = 'unsubscribe' THEN 'unsubscribed'
                WHEN s.id IS NOT NULL THEN 'suppressed'
                WHEN c.consent IS NULL THEN 'no_consent'
                WHEN EXISTS (SELECT 1 FROM enrollments a
                             WHERE a.candidate_id = c.id AND a.sequence_id = q.id) THEN 'already'
                WHEN coalesce((q.definition->'audience'->>'exclusive')::boolean, true)
                     AND EXISTS (SELECT 1 FROM enrollments b WHERE b.candidate_id = c.id
                                 AND b.state = 'active' AND b.sequence_id <> q.id) THEN 'busy'
                ELSE 'enrolled' END AS verdict
        FROM candidates c
        JOIN sequences q ON q.id = p_sequence
        LEFT JOIN suppressions s ON s.email_hash = wb_email_hash(c.email)
        WHERE c.id = p_candidate
    ), ins AS (
        INSERT INTO enrollments (candidate_id, sequence_id, step, next_due_at, source)
        SELECT t.id, p_sequence, 0,
               wb_step_due(now(), t.def, 0, t.zone, t.country),
               'ats'
        FROM target t WHERE t.verdict = 'enrolled'
        ON CONFLICT (candidate_id, sequence_id) DO NOTHING
        RETURNING id, candidate_id
    ), ev AS (
        INSERT INTO events (candidate_id, enrollment_id, sequence_id, type, detail)
        SELECT candidate_id, id, p_sequence, 'enrolled', jsonb_build_object('source', 'ats')
        FROM ins
    )
    SELECT t.verdict FROM target t WHERE t.verdict <> 'enrolled' OR EXISTS (SELECT 1 FROM ins)
$$;

-- candidate.rejected: upserts the candidate by lower(email) (tags and
-- skills merge; other fields only fill what is empty; source 'ats' when
-- none is known), unless the address or its hash is suppressed
-- ('suppressed': only the id is kept); records an 'ats' event
-- {"event", "id"} with source 'ats'; enrolls.
CREATE OR REPLACE FUNCTION wb_ats_rejected(p_id text, p_candidate jsonb, p_tags text[],
                                           p_sequence text)
RETURNS TABLE (status text, enroll text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_email text := btrim(p_candidate->>'email');
    v_consent text := NULLIF(btrim(coalesce(p_candidate->>'consent', '')), '');
    v_skills text[] := coalesce((SELECT array_agg(DISTINCT x ORDER BY x)
                                 FROM jsonb_array_elements_text(
                                     coalesce(p_candidate->'skills', '[]')) x), '{}');
    v_tags text[] := coalesce((SELECT array_agg(DISTINCT x ORDER BY x)
                               FROM unnest(p_tags) x), '{}');
    v_ok record;
    v_cand bigint;
BEGIN
    SELECT * INTO v_ok FROM wb_ats_accept(p_id, 'candidate.rejected', p_candidate, p_sequence);
    IF NOT v_ok.fresh THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM suppressions
               WHERE (email IS NOT NULL AND lower(email) = lower(v_email))
                  OR email_hash = wb_email_hash(v_email)) THEN
        RETURN QUERY SELECT 'suppressed'::text, NULL::text;
        RETURN;
    END IF;
    INSERT INTO candidates AS c (email, first_name, last_name, title, company, location,
                                 timezone, tags, skills, consent, consent_at, source)
    VALUES (v_email,
            btrim(coalesce(p_candidate->>'first_name', '')),
            btrim(coalesce(p_candidate->>'last_name', '')),
            btrim(coalesce(p_candidate->>'title', '')),
            btrim(coalesce(p_candidate->>'company', '')),
            btrim(coalesce(p_candidate->>'location', '')),
            v_ok.zone, v_tags, v_skills, v_consent,
            CASE WHEN v_consent IS NOT NULL THEN now() END,
            coalesce(NULLIF(btrim(coalesce(p_candidate->>'source', '')), ''), 'ats'))
    ON CONFLICT (lower(email)) DO UPDATE SET
        first_name = CASE WHEN c.first_name = '' THEN EXCLUDED.first_name ELSE c.first_name END,
        last_name = CASE WHEN c.last_name = '' THEN EXCLUDED.last_name ELSE c.last_name END,
        title = CASE WHEN c.title = '' THEN EXCLUDED.title ELSE c.title END,
        company = CASE WHEN c.company = '' THEN EXCLUDED.company ELSE c.company END,
        location = CASE WHEN c.location = '' THEN EXCLUDED.location ELSE c.location END,
        timezone = coalesce(c.timezone, EXCLUDED.timezone),
        tags = CASE WHEN EXCLUDED.tags <@ c.tags THEN c.tags
               ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.tags || EXCLUDED.tags) t ORDER BY 1) END,
        skills = CASE WHEN EXCLUDED.skills <@ c.skills THEN c.skills
                 ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.skills || EXCLUDED.skills) t ORDER BY 1) END,
        consent = coalesce(c.consent, EXCLUDED.consent),
        consent_at = CASE WHEN c.consent IS NULL THEN EXCLUDED.consent_at ELSE c.consent_at END,
        source = CASE WHEN c.source = '' THEN EXCLUDED.source ELSE c.source END,
        updated_at = now()
    RETURNING id INTO v_cand;
    INSERT INTO events (candidate_id, type, detail, source)
    VALUES (v_cand, 'ats', jsonb_build_object('event', 'candidate.rejected', 'id', p_id), 'ats');
    RETURN QUERY SELECT 'stored'::text,
        CASE WHEN p_sequence IS NOT NULL THEN wb_ats_enroll(v_cand, p_sequence) END;
END
$$;

-- candidate.applied / candidate.hired (p_type): about a candidate already
-- in the pool (else 'unknown_candidate': only the id is kept): adds the
-- tags, records an 'applied' / 'hired' event listing the enrollments it
-- converted, and ends the candidate's active enrollments as 'converted';
-- enrolls when a sequence is given.
CREATE OR REPLACE FUNCTION wb_ats_converted(p_id text, p_type text, p_candidate jsonb,
                                            p_tags text[], p_sequence text)
RETURNS TABLE (status text, enroll text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_tags text[] := coalesce((SELECT array_agg(DISTINCT x ORDER BY x)
                               FROM unnest(p_tags) x), '{}');
    v_cand bigint;
    v_converted bigint[];
BEGIN
    IF NOT (SELECT fresh FROM wb_ats_accept(p_id, p_type, p_candidate, p_sequence)) THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::text;
        RETURN;
    END IF;
    SELECT id INTO v_cand FROM candidates
    WHERE lower(email) = lower(btrim(p_candidate->>'email'));
    IF v_cand IS NULL THEN
        RETURN QUERY SELECT 'unknown_candidate'::text, NULL::text;
        RETURN;
    END IF;
    IF NOT v_tags <@ (SELECT tags FROM candidates WHERE id = v_cand) THEN
        UPDATE candidates SET tags = ARRAY(SELECT DISTINCT t FROM unnest(tags || v_tags) t ORDER BY 1),
            updated_at = now()
        WHERE id = v_cand;
    END IF;
    WITH conv AS (
        UPDATE enrollments SET state = 'converted', stop_reason = substr(p_type, 11),
            next_due_at = NULL, ended_at = now(), updated_at = now()
        WHERE candidate_id = v_cand AND state = 'active'
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO v_converted FROM conv;
    INSERT INTO events (candidate_id, type, detail, source)
    VALUES (v_cand, substr(p_type, 11),
            jsonb_build_object('event', p_type, 'id', p_id,
                               'converted', to_jsonb(coalesce(v_converted, '{}'))),
            'ats');
    RETURN QUERY SELECT 'stored'::text,
        CASE WHEN p_sequence IS NOT NULL THEN wb_ats_enroll(v_cand, p_sequence) END;
END
$$;

CREATE OR REPLACE FUNCTION wb_ats_applied(p_id text, p_candidate jsonb, p_tags text[],
                                          p_sequence text)
RETURNS TABLE (status text, enroll text)
LANGUAGE sql AS $$
    SELECT * FROM wb_ats_converted(p_id, 'candidate.applied', p_candidate, p_tags, p_sequence)
$$;

CREATE OR REPLACE FUNCTION wb_ats_hired(p_id text, p_candidate jsonb, p_tags text[],
                                        p_sequence text)
RETURNS TABLE (status text, enroll text)
LANGUAGE sql AS $$
    SELECT * FROM wb_ats_converted(p_id, 'candidate.hired', p_candidate, p_tags, p_sequence)
$$;
