-- Manual steps (sql/030_tasks.sql; lib/send/tasks.c drives them). A task
-- step is timed like a mail step (after, window, business days, holidays,
-- pauses; the contact policy counts mail and does not hold a task). When
-- it falls due, wb_task_claim makes its task and starts the step; the
-- daemon renders the text with the sequence's template and publishes it
-- (wb_task_publish, which queues the task.due webhook). Closing a task
-- (done, skipped, expired) times the next step from that moment.

-- Due task steps become tasks for one daemon (p_owner), in one statement:
-- the enrollment moves on a step as its task is born, and SKIP LOCKED plus
-- the unique (enrollment, step) make each task once across daemons. A
-- paused sequence, person or sender makes none. Tasks whose render lease
-- ran out (a daemon stopped before publishing) are taken over. Rows: what
-- rendering needs.
CREATE OR REPLACE FUNCTION wb_task_claim(p_owner text, p_batch integer, p_expire_days integer,
                                         p_lease_s integer)
RETURNS TABLE (id bigint, sequence_id text, step integer, sender text, candidate_id bigint,
               email text, first_name text, last_name text, title text, company text,
               location text, attrs text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    ids bigint[];
    stale bigint[];
BEGIN
    -- Each sequence's task steps (0-based) are read from its definition
    -- once, not per enrollment: a backlog of due mail steps in a task
    -- sequence then costs a comparison per row, not a JSON read.
    WITH ts AS MATERIALIZED (
        SELECT s.id, s.definition AS def,
               ARRAY(SELECT (x.i - 1)::integer
                     FROM jsonb_array_elements(s.definition->'steps') WITH ORDINALITY AS x(st, i)
                     WHERE x.st ? 'task') AS idx
        FROM sequences s WHERE s.task_steps AND s.paused_at IS NULL
    ), due AS (
        SELECT e.id, ts.def FROM ts
        JOIN enrollments e ON e.sequence_id = ts.id AND e.state = 'active'
        WHERE e.step = ANY (ts.idx) AND e.next_due_at <= now() AND e.paused_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM sender_guard g
                          WHERE g.sender = wb_step_sender(ts.def, e.step, e.candidate_id)
                            AND g.paused_reason IS NOT NULL)
        ORDER BY e.next_due_at
        LIMIT p_batch
        FOR UPDATE OF e SKIP LOCKED
    ), moved AS (
        UPDATE enrollments e SET step = e.step + 1, next_due_at = NULL, updated_at = now()
        FROM due d WHERE e.id = d.id
        RETURNING e.id, e.candidate_id, e.sequence_id, e.step, d.def
    ), made AS (
        INSERT INTO tasks (enrollment_id, candidate_id, sequence_id, step, sender, render_owner,
                           render_until, expires_at)
        SELECT m.id, m.candidate_id, m.sequence_id, m.step,
               coalesce(wb_step_sender(m.def, m.step - 1, m.candidate_id), m.def->>'sender'),
               p_owner, now() + make_interval(secs => p_lease_s),
               now() + make_interval(days => p_expire_days)
        FROM moved m
        ON CONFLICT (enrollment_id, step) DO NOTHING
        RETURNING tasks.id, tasks.candidate_id, tasks.enrollment_id, tasks.sequence_id, tasks.step
    ), ev AS (
        INSERT INTO events (candidate_id, enrollment_id, sequence_id, step, type, detail)
        SELECT m.candidate_id, m.enrollment_id, m.sequence_id, m.step, 'task',
               jsonb_build_object('task', m.id, 'state', 'due')
        FROM made m
    )
    SELECT array_agg(made.id) INTO ids FROM made;
    WITH pick AS (
        SELECT t.id FROM tasks t
        WHERE t.state = 'open' AND t.text IS NULL AND t.render_until < now()
        ORDER BY t.id LIMIT p_batch
        FOR UPDATE SKIP LOCKED
    ), took AS (
        UPDATE tasks t SET render_owner = p_owner,
            render_until = now() + make_interval(secs => p_lease_s)
        FROM pick WHERE t.id = pick.id
        RETURNING t.id
    )
    SELECT array_agg(took.id) INTO stale FROM took;
    ids := coalesce(ids, '{}') || coalesce(stale, '{}');
    RETURN QUERY
    SELECT t.id, t.sequence_id, t.step, t.sender, c.id, c.email, c.first_name, c.last_name,
           c.title, c.company, c.location, c.attrs::text
    FROM tasks t JOIN candidates c ON c.id = t.candidate_id
    WHERE t.id = ANY (ids)
    ORDER BY t.id;
END
$$;

-- RFC 3339 in UTC, as the ATS webhook writes times.
CREATE OR REPLACE FUNCTION wb_task_time(ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Stores the rendered texts of the tasks p_owner claimed (a task whose
-- lease another daemon took is left to it) and, with p_webhook, queues
-- one task.due webhook each in the same transaction: a handoffs row of
-- target 'tasks' whose payload is built here, so every retry posts the
-- same body under the same Idempotency-Key (its "id"). Returns how many
-- were published.
CREATE OR REPLACE FUNCTION wb_task_publish(p_owner text, p_ids bigint[], p_texts text[],
                                           p_webhook boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH pub AS (
        UPDATE tasks t SET text = v.txt, render_owner = NULL, render_until = NULL
        FROM unnest(p_ids, p_texts) AS v(id, txt)
        WHERE t.id = v.id AND t.text IS NULL AND t.render_owner = p_owner
        RETURNING t.*
    ), keyed AS (
        SELECT gen_random_uuid() AS k, p.* FROM pub p WHERE p_webhook
    ), hook AS (
        INSERT INTO handoffs (idempotency_key, candidate_id, sequence_id, reason, target,
                              task_id, payload)
        SELECT k.k, k.candidate_id, k.sequence_id, 'task.due', 'tasks', k.id,
            jsonb_build_object('type', 'task.due', 'id', k.k::text,
                'occurred_at', wb_task_time(k.created_at),
                'task', jsonb_build_object('id', k.id, 'text', k.text,
                    'due_at', wb_task_time(k.created_at), 'expires_at', wb_task_time(k.expires_at)),
                'candidate', (SELECT jsonb_build_object('email', c.email,
                        'first_name', c.first_name, 'last_name', c.last_name, 'title', c.title,
                        'company', c.company, 'tags', to_jsonb(c.tags), 'attrs', c.attrs)
                    FROM candidates c WHERE c.id = k.candidate_id),
                'sequence', k.sequence_id, 'step', k.step,
                'sender', jsonb_build_object('id', k.sender,
                    'email', (SELECT sd.email FROM send_senders sd WHERE sd.id = k.sender)))
        FROM keyed k
        ON CONFLICT (task_id) WHERE task_id IS NOT NULL DO NOTHING
    )
    SELECT count(*) INTO n FROM pub;
    RETURN n;
END
$$;

-- Closes the open tasks in p_ids (p_state done or skipped, p_reason done,
-- skipped, expired) and lets their enrollments go on: the next step is
-- timed from now by its "after" (into paused_due_at while the person is
-- paused); after the last step the enrollment is finished. An enrollment
-- that has ended or moved past the task is left as it is. Returns the ids
-- closed.
CREATE OR REPLACE FUNCTION wb_task_close(p_ids bigint[], p_state text, p_reason text)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH closed AS (
        UPDATE tasks t SET state = p_state, closed_at = now(), close_reason = p_reason,
            render_owner = NULL, render_until = NULL
        WHERE t.id = ANY (p_ids) AND t.state = 'open'
        RETURNING t.id, t.enrollment_id, t.candidate_id, t.sequence_id, t.step
    ), ev AS (
        INSERT INTO events (candidate_id, enrollment_id, sequence_id, step, type, detail)
        SELECT t.candidate_id, t.enrollment_id, t.sequence_id, t.step, 'task',
               jsonb_build_object('task', t.id, 'state', p_reason)
        FROM closed t
    ), en AS (
        UPDATE enrollments e SET
            next_due_at = CASE WHEN e.paused_at IS NULL AND e.step < n.steps
                THEN wb_step_due(now(), s.definition, e.step, c.timezone, c.attrs->>'country')
                END,
            paused_due_at = CASE WHEN e.paused_at IS NOT NULL AND e.step < n.steps
                THEN wb_step_due(now(), s.definition, e.step, c.timezone, c.attrs->>'country')
                ELSE e.paused_due_at END,
            state = CASE WHEN e.step < n.steps THEN 'active' ELSE 'finished' END,
            ended_at = CASE WHEN e.step >= n.steps THEN now() END,
            updated_at = now()
        FROM closed t, sequences s, candidates c,
             LATERAL (SELECT jsonb_array_length(s.definition->'steps') AS steps) n
        WHERE e.id = t.enrollment_id AND e.state = 'active' AND e.step = t.step
          AND s.id = e.sequence_id AND c.id = e.candidate_id
    )
    SELECT closed.id FROM closed;
END
$$;

-- `warmbench done ID [--skip]`: one row, status done / skipped (detail:
-- the enrollment's state, finished after its last step), or unknown (no
-- such task), closed (detail: how it was closed), ended (its enrollment
-- ended meanwhile, detail: why; the task is closed as skipped).
CREATE OR REPLACE FUNCTION wb_task_done(p_id bigint, p_skip boolean)
RETURNS TABLE (status text, detail text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t tasks;
    e enrollments;
BEGIN
    SELECT * INTO t FROM tasks WHERE tasks.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text;
        RETURN;
    END IF;
    IF t.state <> 'open' THEN
        RETURN QUERY SELECT 'closed'::text, t.close_reason;
        RETURN;
    END IF;
    SELECT * INTO e FROM enrollments WHERE enrollments.id = t.enrollment_id;
    IF e.state <> 'active' THEN
        UPDATE tasks SET state = 'skipped', closed_at = now(),
            close_reason = 'enrollment ' || coalesce(e.stop_reason, e.state)
        WHERE tasks.id = p_id;
        RETURN QUERY SELECT 'ended'::text, coalesce(e.stop_reason, e.state);
        RETURN;
    END IF;
    PERFORM wb_task_close(ARRAY[p_id], CASE WHEN p_skip THEN 'skipped' ELSE 'done' END,
                          CASE WHEN p_skip THEN 'skipped' ELSE 'done' END);
    RETURN QUERY SELECT CASE WHEN p_skip THEN 'skipped' ELSE 'done' END,
        (SELECT en.state FROM enrollments en WHERE en.id = t.enrollment_id);
END
$$;

-- The daemon's sweep: open tasks past expires_at are skipped ('expired')
-- and their sequences go on; open tasks whose enrollment ended (a reply,
-- unsubscribe, bounce, unenroll, handoff...) are closed as skipped with
-- that reason. Returns the two counts and the seconds until the next
-- expiry (NULL when none).
CREATE OR REPLACE FUNCTION wb_task_sweep(OUT expired bigint, OUT ended bigint,
                                         OUT next_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(t.id) INTO ids FROM (
        SELECT t.id FROM tasks t WHERE t.state = 'open' AND t.expires_at <= now()
        ORDER BY t.expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED) t;
    SELECT count(*) INTO expired FROM wb_task_close(coalesce(ids, '{}'), 'skipped', 'expired');
    WITH gone AS (
        SELECT t.id, 'enrollment ' || coalesce(e.stop_reason, e.state) AS why
        FROM tasks t JOIN enrollments e ON e.id = t.enrollment_id
        WHERE t.state = 'open' AND e.state <> 'active'
        FOR UPDATE OF t SKIP LOCKED
    ), upd AS (
        UPDATE tasks t SET state = 'skipped', closed_at = now(), close_reason = g.why,
            render_owner = NULL, render_until = NULL
        FROM gone g WHERE t.id = g.id
        RETURNING t.id
    )
    SELECT count(*) INTO ended FROM upd;
    SELECT extract(epoch FROM min(t.expires_at) - now()) INTO next_s
    FROM tasks t WHERE t.state = 'open';
END
$$;

-- `warmbench tasks`: the open tasks (of one sender, or all), oldest first.
-- A task whose enrollment ended is not listed (the sweep closes it); one
-- whose person or sequence is paused is listed as paused.
CREATE OR REPLACE FUNCTION wb_task_list(p_sender text)
RETURNS TABLE (id bigint, sender text, email text, name text, sequence_id text, step integer,
               text text, due_since text, expires_at text, paused boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.sender, c.email, btrim(c.first_name || ' ' || c.last_name), t.sequence_id,
           t.step, t.text, wb_task_time(t.created_at), wb_task_time(t.expires_at),
           e.paused_at IS NOT NULL OR s.paused_at IS NOT NULL
    FROM tasks t
    JOIN enrollments e ON e.id = t.enrollment_id AND e.state = 'active'
    JOIN candidates c ON c.id = t.candidate_id
    JOIN sequences s ON s.id = t.sequence_id
    WHERE t.state = 'open' AND t.text IS NOT NULL AND (p_sender IS NULL OR t.sender = p_sender)
    ORDER BY t.created_at, t.id
$$;
