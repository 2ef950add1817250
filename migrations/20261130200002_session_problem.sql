-- The problem a session is solving (attached by the host; NULL: none).
-- Problems are only ever soft-deleted, so the reference stays readable.
ALTER TABLE interview_sessions
    ADD COLUMN problem_id uuid
        CONSTRAINT interview_sessions_problem_fk REFERENCES problems (id) ON DELETE SET NULL;
