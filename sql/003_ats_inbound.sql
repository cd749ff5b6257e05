-- Events from the ATS (POST /ats/events, lib/ats_in.c): one call stores one
-- event in one transaction. The body was validated by the daemon; what
-- needs the database (time zone names, suppressions, known sequences) is
-- checked here, and a refusal raises SQLSTATE WB400 / WB404 with a message
-- naming the field, so nothing is stored.
--
-- p_id: the ATS's event id; an id seen before changes nothing ('duplicate').
-- p_type: candidate.rejected | candidate.applied | candidate.hired.
-- p_candidate: {"email", optional first_name, last_name, title, company,
--   location, timezone, skills [..], consent, source}.
-- p_tags: added to the candidate (the event's and the candidate's tags).
-- p_sequence, p_enroll_sql, p_enroll: the sequence to enroll into (NULL:
--   none), and the statement and 17 parameters of `warmbench enroll` for
--   it limited to this address (wb_enroll_query_build in lib/enroll.c), so
--   enrolling follows exactly the CLI's rules: consent, suppression,
--   already enrolled, exclusive.
--
-- candidate.rejected: upserts the candidate by lower(email) (tags and
--   skills merge; other fields only fill what is empty; source 'ats' when
--   none is known), unless the address or its hash is suppressed
--   ('suppressed': only the id is kept); records an 'ats' event
--   {"event", "id"} with source 'ats'; enrolls.
-- candidate.applied / candidate.hired: about a candidate already in the
--   pool (else 'unknown_candidate': only the id is kept): adds the tags,
--   records an 'applied' / 'hired' event and ends the candidate's active
--   enrollments as 'converted'; enrolls when a sequence is given.
-- Returns one row: status (stored, duplicate, suppressed,
-- unknown_candidate) and the enrollment verdict (NULL when not enrolling).
CREATE FUNCTION wb_ats_event(p_id text, p_type text, p_candidate jsonb, p_tags text[],
                             p_sequence text, p_enroll_sql text, p_enroll jsonb)
RETURNS TABLE (status text, enroll text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_email text := btrim(p_candidate->>'email');
    v_tz text := NULLIF(btrim(coalesce(p_candidate->>'timezone', '')), '');
    v_zone text;
    v_consent text := NULLIF(btrim(coalesce(p_candidate->>'consent', '')), '');
    v_skills text[] := coalesce((SELECT array_agg(DISTINCT x ORDER BY x)
                                 FROM jsonb_array_elements_text(
                                     coalesce(p_candidate->'skills', '[]')) x), '{}');
    v_tags text[] := coalesce((SELECT array_agg(DISTINCT x ORDER BY x)
                               FROM unnest(p_tags) x), '{}');
    v_cand bigint;
    v_verdict text;
    v_converted bigint[];
    v_v text;
    v_n bigint;
BEGIN
    IF v_tz IS NOT NULL THEN
        SELECT name INTO v_zone FROM pg_timezone_names
        WHERE lower(name) = lower(v_tz) ORDER BY name LIMIT 1;
        IF v_zone IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WB400',
                MESSAGE = format('candidate.timezone: unknown time zone "%s"', left(v_tz, 100));
        END IF;
    END IF;
    IF p_sequence IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sequences WHERE id = p_sequence) THEN
        RAISE EXCEPTION USING ERRCODE = 'WB404',
            MESSAGE = format('unknown sequence "%s"', p_sequence);
    END IF;

    INSERT INTO ats_inbound (id, type) VALUES (p_id, p_type) ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::text;
        RETURN;
    END IF;

    IF p_type = 'candidate.rejected' THEN
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
                v_zone, v_tags, v_skills, v_consent,
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
        VALUES (v_cand, 'ats', jsonb_build_object('event', p_type, 'id', p_id), 'ats');
    ELSE
        SELECT id INTO v_cand FROM candidates WHERE lower(email) = lower(v_email);
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
    END IF;

    IF p_sequence IS NOT NULL THEN
        FOR v_v, v_n IN EXECUTE p_enroll_sql USING
            p_enroll->>0, p_enroll->>1, p_enroll->>2, p_enroll->>3, p_enroll->>4,
            p_enroll->>5, p_enroll->>6, p_enroll->>7, p_enroll->>8, p_enroll->>9,
            p_enroll->>10, p_enroll->>11, p_enroll->>12, p_enroll->>13, p_enroll->>14,
            p_enroll->>15, p_enroll->>16
        LOOP
            IF v_n > 0 THEN
                v_verdict := v_v;
            END IF;
        END LOOP;
    END IF;
    RETURN QUERY SELECT 'stored'::text, v_verdict;
END
$$;
