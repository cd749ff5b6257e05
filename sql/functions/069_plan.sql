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
