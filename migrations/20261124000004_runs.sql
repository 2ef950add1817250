-- Code runs (SPEC §7). The row is the source of truth: the queued job only
-- carries the run id, and the worker writes the result here exactly once.

CREATE TABLE runs (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL
        CONSTRAINT runs_user_fk REFERENCES users (id) ON DELETE CASCADE,
    session_id      uuid
        CONSTRAINT runs_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    language        text        NOT NULL,
    -- [{"name": "...", "content": "..."}]; an empty name means the language's default file.
    files           jsonb       NOT NULL,
    stdin           bytea       NOT NULL DEFAULT '\x',
    args            jsonb       NOT NULL DEFAULT '[]',
    -- [{"stdin": "...", "expectedOutput": "..."}]; expected outputs never reach the sandbox.
    tests           jsonb       NOT NULL DEFAULT '[]',
    time_limit_ms   integer     NOT NULL,
    memory_limit_mb integer     NOT NULL,
    status          text        NOT NULL DEFAULT 'queued',
    -- Denormalised from `result` for filtering and metrics.
    verdict         text,
    -- run_contract::RunResult as JSON.
    result          jsonb,
    -- Executions started (a worker killed mid-run makes another attempt).
    attempts        integer     NOT NULL DEFAULT 0,
    worker_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,

    CONSTRAINT runs_status_valid CHECK (status IN ('queued', 'running', 'finished')),
    CONSTRAINT runs_verdict_valid CHECK (verdict IN (
        'accepted', 'wrong_answer', 'compile_error', 'runtime_error', 'time_limit_exceeded',
        'memory_limit_exceeded', 'output_limit_exceeded', 'internal_error')),
    CONSTRAINT runs_finished_complete CHECK (
        (status = 'finished') = (verdict IS NOT NULL AND result IS NOT NULL AND finished_at IS NOT NULL))
);

CREATE INDEX runs_user_created_idx ON runs (user_id, created_at DESC, id DESC);
CREATE INDEX runs_session_created_idx ON runs (session_id, created_at DESC, id DESC)
    WHERE session_id IS NOT NULL;
-- Quotas and the stuck-run reaper look at unfinished runs only.
CREATE INDEX runs_unfinished_idx ON runs (user_id, status) WHERE status <> 'finished';
