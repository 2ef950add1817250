-- Run dispatch from PostgreSQL: the `runs` table is the queue.
--
-- A worker with a free slot claims one run with a single conditional update
-- (`FOR UPDATE SKIP LOCKED`): a queued run whose `available_at` has come, or
-- a running run whose lease expired (its worker died). The claim takes a
-- lease — owner and deadline — that the worker renews while it executes, so
-- a run is executed again only when the worker executing it stopped renewing.
-- Nothing about which runs exist, or who executes them, lives in Redis: a
-- Redis restart or FLUSHALL cannot lose or strand a run.
--
-- Wake-ups travel with the commit: the triggers below NOTIFY
-- `codecall_runs_queued` when a run becomes claimable and
-- `codecall_run_finished` when one finishes. A NOTIFY is delivered only if
-- its transaction commits, and after the row is visible, so a woken worker
-- always finds the run and a `?wait=true` caller always finds the result.

ALTER TABLE runs
    -- The worker holding the run and until when; NULL while queued.
    ADD COLUMN lease_owner      text,
    ADD COLUMN lease_expires_at timestamptz,
    -- Not claimable before this (a retry after an infrastructure failure
    -- backs off here).
    ADD COLUMN available_at     timestamptz NOT NULL DEFAULT now();

CREATE INDEX runs_queued_idx ON runs (created_at) WHERE status = 'queued';
CREATE INDEX runs_leases_idx ON runs (lease_expires_at) WHERE status = 'running';

-- Every worker process announces itself here: at start, then every
-- heartbeat. `expires_at` is its own promise (heartbeat × missed
-- heartbeats); `stopped_at` is set by a clean shutdown. Rows are kept for a
-- day so the api remembers recently seen languages across a fleet restart,
-- and the janitor recognises the containers of workers that died.
CREATE TABLE workers (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    -- [run_contract::LanguageInfo]
    languages    jsonb       NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    stopped_at   timestamptz,
    -- Runs executing now, and executed since start.
    running      bigint      NOT NULL DEFAULT 0,
    done         bigint      NOT NULL DEFAULT 0
);

CREATE INDEX workers_heartbeat_idx ON workers (heartbeat_at);

CREATE FUNCTION runs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status <> 'queued') THEN
        -- Workers lacking the language ignore it.
        PERFORM pg_notify('codecall_runs_queued', NEW.language);
    ELSIF NEW.status = 'finished' AND (TG_OP = 'INSERT' OR OLD.status <> 'finished') THEN
        PERFORM pg_notify('codecall_run_finished', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_notify
    AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_notify();
