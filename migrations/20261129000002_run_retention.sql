-- Run retention: a finished run older than RUN_RETENTION loses its body
-- (files, stdin, arguments, tests, and the outputs inside `result`) and keeps
-- its verdict row; `purged_at` says when. A purged run may keep a result
-- stripped of its outputs, or none at all.

ALTER TABLE runs ADD COLUMN purged_at timestamptz;

ALTER TABLE runs DROP CONSTRAINT runs_finished_complete;
ALTER TABLE runs ADD CONSTRAINT runs_finished_complete CHECK (
    (status = 'finished') = (verdict IS NOT NULL AND finished_at IS NOT NULL
                             AND (result IS NOT NULL OR purged_at IS NOT NULL)));
ALTER TABLE runs ADD CONSTRAINT runs_purged_finished CHECK (
    purged_at IS NULL OR status = 'finished');

-- What a run's body takes in storage, for RUN_MAX_STORED_BYTES_PER_USER.
ALTER TABLE runs ADD COLUMN stored_bytes bigint GENERATED ALWAYS AS (
    octet_length(files::text) + octet_length(stdin) + octet_length(args::text)
    + octet_length(tests::text) + coalesce(octet_length(result::text), 0)) STORED;

-- The sweeper looks for finished, unpurged runs by age.
CREATE INDEX runs_retention_idx ON runs (finished_at)
    WHERE status = 'finished' AND purged_at IS NULL;
-- The per-user cap sums the unpurged runs of one user.
CREATE INDEX runs_user_unpurged_idx ON runs (user_id) INCLUDE (stored_bytes)
    WHERE purged_at IS NULL;
