-- Manual steps (SPEC "The sourcer's controls", issue 15): a step with a
-- "task" sends no mail; when it falls due the daemon makes one task for
-- the step's sender and the enrollment waits (step started, next_due_at
-- NULL) until `warmbench done`, `done --skip` or expiry lets it go on.
-- The functions are in sql/functions/062_tasks.sql.
CREATE TABLE tasks (
    id            bigserial PRIMARY KEY,
    -- A foreign key (not 014's triggers): tasks are few, and an erased
    -- person's tasks, whose text names them, go with the enrollment.
    enrollment_id bigint NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    candidate_id  bigint NOT NULL,
    sequence_id   text NOT NULL,
    step          integer NOT NULL,              -- 1-based, as messages.step
    sender        text NOT NULL,
    state         text NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'done', 'skipped')),
    text          text,                          -- rendered by the daemon; NULL until then
    render_owner  text,                          -- the daemon rendering it, under a lease
    render_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    close_reason  text,                          -- done, skipped, expired, or the enrollment's end
    UNIQUE (enrollment_id, step)
);

CREATE INDEX tasks_open_idx ON tasks (expires_at) WHERE state = 'open';

-- The claim of due task steps looks only at sequences that have one.
ALTER TABLE sequences ADD COLUMN task_steps boolean GENERATED ALWAYS AS (
    jsonb_path_exists(definition, '$.steps[*].task')
) STORED;

-- task.due webhooks ride the handoff engine (same signature, retries and
-- dead list): target says where a row goes, task_id which task it posts.
-- The once-per-candidate-and-sequence rule is the ATS's only.
ALTER TABLE handoffs ADD COLUMN target text NOT NULL DEFAULT 'ats'
                         CHECK (target IN ('ats', 'tasks')),
                     ADD COLUMN task_id bigint REFERENCES tasks (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX handoffs_task_key ON handoffs (task_id) WHERE task_id IS NOT NULL;
DROP INDEX handoffs_once_key;
CREATE UNIQUE INDEX handoffs_once_key ON handoffs (candidate_id, sequence_id)
    WHERE NOT manual AND target = 'ats';
