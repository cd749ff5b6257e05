-- `warmbench plan` (lib/send/plan_cli.c, plan_sim.c): the daemon's own
-- timing and sender rules, asked for many planned sends at once. Reads
-- only; the plan runs in a READ ONLY transaction.

-- For each planned send i (ordinality o): when the step p_step[i]
-- (0-based) of the sequence p_defs->p_seq[i] falls due after a send at
-- p_base[i] (epoch seconds), as wb_store_outcomes times the next step
-- (wb_step_due with the candidate's zone and country; NULL: a window with
-- no days), and who sends it (wb_step_sender: the step's, the sequence's,
-- or the candidate's owner).
CREATE OR REPLACE FUNCTION wb_plan_next(p_defs jsonb, p_base float8[], p_seq integer[],
                                        p_step integer[], p_cand bigint[])
RETURNS TABLE (ord bigint, due float8, sender text)
LANGUAGE sql STABLE AS $$
    SELECT u.o, extract(epoch FROM wb_step_due(to_timestamp(u.b), p_defs->u.q, u.s, c.timezone,
                                               c.attrs->>'country'))::float8,
           wb_step_sender(p_defs->u.q, u.s, u.c)
    FROM unnest(p_base, p_seq, p_step, p_cand) WITH ORDINALITY AS u(b, q, s, c, o)
    JOIN candidates c ON c.id = u.c
    ORDER BY u.o
$$;

-- The candidate's country (upper case) where the sequence's window has a
-- holiday calendar for it (wb_window_closed reads it), else NULL: the
-- plan works windows out per sequence, zone and this, so that countries
-- without a calendar of their own share one.
CREATE OR REPLACE FUNCTION wb_plan_window_country(def jsonb, country text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN def->'window'->'closed_days_by_country' ? upper(btrim(country))
                THEN upper(btrim(country)) END
$$;

-- When windows are open between p_from and p_to (epoch seconds), for the
-- plan to look up where a step picked outside its window goes (the claim
-- re-times it with wb_seq_next_due): for each group i, the window of the
-- sequence p_defs->p_seq[i] in the zone p_zone[i] (wb_window_zone's
-- answer) with the holidays of the country p_country[i] ('': everyone's
-- only), one row per open span [open_at, close_at). Each opening is
-- wb_seq_next_due's; a span lasts until the window's end on its local day.
CREATE OR REPLACE FUNCTION wb_plan_windows(p_defs jsonb, p_seq integer[], p_zone text[],
                                           p_country text[], p_from float8, p_to float8)
RETURNS TABLE (grp bigint, open_at float8, close_at float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    g record;
    t timestamptz;
    o timestamptz;
    c timestamptz;
    w_end time;
    last timestamptz := to_timestamp(p_to);
    spans integer;
BEGIN
    FOR g IN SELECT u.o, p_defs->u.q AS def, u.z, nullif(u.c, '') AS c
             FROM unnest(p_seq, p_zone, p_country) WITH ORDINALITY AS u(q, z, c, o) LOOP
        w_end := coalesce((g.def->'window'->>'end')::time, '24:00');
        t := to_timestamp(p_from);
        spans := 0;
        -- At most one span a day (start < end, check-config says so).
        WHILE t < last AND spans <= (p_to - p_from) / 86400 + 2 LOOP
            o := wb_seq_next_due(t, g.def, g.z, g.c);
            EXIT WHEN o IS NULL OR o >= last;
            c := ((o AT TIME ZONE g.z)::date + w_end) AT TIME ZONE g.z;
            EXIT WHEN c <= o;
            grp := g.o;
            open_at := extract(epoch FROM o);
            close_at := extract(epoch FROM c);
            RETURN NEXT;
            t := c;
            spans := spans + 1;
        END LOOP;
    END LOOP;
END
$$;
