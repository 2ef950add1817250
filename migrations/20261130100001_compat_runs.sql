-- Runs submitted through the Judge0 compatibility door keep the submission's
-- Judge0 parameters (language id, limits as sent, expected output, flags),
-- which its answers echo back; NULL for every other run.
ALTER TABLE runs ADD COLUMN judge0 jsonb;

-- Callbacks (Judge0's `callback_url`): the result is PUT there once the run
-- finishes. `callback_state` goes pending → sending → done | failed; a
-- replica claims a callback with a conditional UPDATE … RETURNING, so one
-- replica sends it even when every replica hears the finish notification.
-- A claim older than the callback budget is taken over (its replica died).
ALTER TABLE runs
    ADD COLUMN callback_url        text,
    ADD COLUMN callback_state      text,
    ADD COLUMN callback_claimed_at timestamptz,
    ADD CONSTRAINT runs_callback_state_valid
        CHECK (callback_state IN ('pending', 'sending', 'done', 'failed'));

CREATE INDEX runs_callbacks_due_idx ON runs (finished_at)
    WHERE callback_state IN ('pending', 'sending');
