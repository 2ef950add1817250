-- Session clocks: an optional duration per session. When the session goes
-- live, `ends_at` = start + duration; the host may change the duration
-- while it runs. Every api replica sleeps until the earliest deadline, warns
-- the room SESSION_END_WARNING before it (once: `end_warned_at` is set by
-- the one conditional UPDATE that wins) and ends the session when it comes
-- (`FOR UPDATE SKIP LOCKED`: exactly one replica ends it and publishes).

ALTER TABLE interview_sessions
    -- The planned length; NULL: no clock.
    ADD COLUMN duration_secs integer,
    -- When a live session with a clock ends.
    ADD COLUMN ends_at       timestamptz,
    -- When the room was warned that the end is near (reset when the
    -- duration changes).
    ADD COLUMN end_warned_at timestamptz,
    ADD CONSTRAINT interview_sessions_duration_positive
        CHECK (duration_secs IS NULL OR duration_secs > 0),
    ADD CONSTRAINT interview_sessions_clock_complete
        CHECK (ends_at IS NULL OR (duration_secs IS NOT NULL AND started_at IS NOT NULL));

CREATE INDEX interview_sessions_clock_idx ON interview_sessions (ends_at)
    WHERE status = 'live' AND ends_at IS NOT NULL;
