-- What a run was for, so run history and a session's timeline can tell a
-- submission from a plain run:
--   `run`         a plain run (POST /api/runs);
--   `samples`     the session's code against its problem's sample tests;
--   `submission`  the session's code against its problem's hidden tests.
-- A submission's output and test data reach only the session's interviewer:
-- the worker addresses its room events by role, and the api redacts it for
-- everyone else (each test's verdict, time and memory stay visible).
ALTER TABLE runs
    ADD COLUMN kind       text NOT NULL DEFAULT 'run',
    ADD COLUMN problem_id uuid
        CONSTRAINT runs_problem_fk REFERENCES problems (id) ON DELETE SET NULL,
    ADD CONSTRAINT runs_kind_valid CHECK (kind IN ('run', 'samples', 'submission')),
    ADD CONSTRAINT runs_problem_kinds CHECK ((kind = 'run') = (problem_id IS NULL));
