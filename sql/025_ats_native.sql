-- Native ATS adapters (issue 20, SPEC "Native ATS adapters"). A handoff to
-- a vendor is several calls (find, create, attach, note); the step reached
-- and what the vendor's adapter keeps between steps are stored before the
-- next call, so a crash or a retry resumes instead of starting over, and
-- ats_kind says which adapter they belong to (a kind changed in between
-- starts again from the first step).
ALTER TABLE handoffs ADD COLUMN ats_kind text,
                     ADD COLUMN ats_step integer NOT NULL DEFAULT 0,
                     ADD COLUMN ats_state jsonb NOT NULL DEFAULT '{}';

-- The ATS's own id for a person, per kind: a second handoff of the same
-- person adds a note to that record instead of creating another one. It
-- goes with the person when they are erased.
CREATE TABLE candidate_ats (
    candidate_id bigint NOT NULL REFERENCES candidates (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    ats_id       text NOT NULL CHECK (ats_id <> ''),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (candidate_id, kind)
);
