//! The run pipeline: a claimed run → the sandbox engine → the result in
//! PostgreSQL and events on the room's Redis channel.
//!
//! Runs are claimed by [`crate::dispatch`] with a lease (owner + deadline)
//! that the heartbeat renews while the run executes, so a run is executed
//! again only after its worker stopped renewing (it died). The result is
//! written with a conditional update (`status <> 'finished'`), so even a run
//! executed twice finishes once. The user's program failing is a verdict;
//! only infrastructure failures (Docker, the runner) are retried, with
//! backoff, up to `RUN_MAX_ATTEMPTS`, then the run ends as `internal_error`.
//! A run whose stored input this version cannot read
//! ([`run_contract::input`]) ends as `internal_error` without executing.
//!
//! Redis carries only the room events: an execution does not need it, and
//! a `run.finished` that cannot be published is retried until Redis is back.
//! A result that cannot be written because PostgreSQL is down is retried for
//! [`RESULT_WRITE_BUDGET`].
//!
//! A submission (a session's code against its problem's hidden tests) is
//! the interviewer's to watch: its output events are addressed to the
//! interviewers only, and its `run.finished` goes out twice — whole to the
//! interviewers, redacted to the candidates — each serialised once
//! ([`run_contract::addressed`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::aio::ConnectionManager;
use run_contract::{
    Audience, RunEvent, RunKind, RunResult, RunRow, RunView,
    input::{InputColumns, RunInput},
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::sandbox::{Engine, EngineError, ExecutionRequest, OutputChunk, SourceFile, TestCase};

/// How long a finished execution keeps trying to store its result while
/// PostgreSQL does not answer, before giving up (the lease then expires and
/// the run executes again).
pub const RESULT_WRITE_BUDGET: Duration = Duration::from_secs(300);

/// How long a `run.finished` event keeps trying to reach Redis.
pub const FINISH_EVENT_BUDGET: Duration = Duration::from_secs(120);

/// Shared by every execution of this worker.
pub struct Pipeline {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub engine: Arc<Engine>,
    pub key_prefix: String,
    pub worker_id: String,
    pub max_attempts: i32,
    /// `WORKER_MAX_RUNNING_PER_USER`: one user's runs executing at once.
    pub max_running_per_user: i64,
    /// `RUN_LEASE`: how long a claim holds without renewal.
    pub lease: Duration,
    pub running: AtomicU64,
    pub done: AtomicU64,
}

/// A run this worker holds the lease of, with what it needs to execute it.
pub struct ClaimedRun {
    pub id: Uuid,
    pub session_id: Option<Uuid>,
    pub language: String,
    pub files: serde_json::Value,
    pub stdin: Vec<u8>,
    pub args: serde_json::Value,
    pub tests: serde_json::Value,
    pub time_limit_ms: i32,
    pub memory_limit_mb: i32,
    pub attempts: i32,
    pub kind: String,
    pub problem_id: Option<Uuid>,
}

/// Where a run's events go and who may read them.
struct Room {
    channel: String,
    kind: RunKind,
    problem_id: Option<Uuid>,
}

impl Room {
    /// Who gets the program's output: everyone, or for a submission the
    /// interviewers only.
    fn output_audience(&self) -> Audience {
        if self.kind.is_hidden() {
            Audience::Interviewers
        } else {
            Audience::Everyone
        }
    }
}

impl Pipeline {
    /// Claims the next run this worker can execute, if any: a queued run
    /// whose time has come, or a running one whose lease expired (its worker
    /// died). Fair order: runs of the users with the fewest runs executing
    /// now go first, then the oldest — so one user's backlog cannot hold
    /// every slot while another user's run waits. A user with
    /// `WORKER_MAX_RUNNING_PER_USER` runs executing gets no more until one
    /// ends (their backlog waits queued). The cap is checked per claim, so
    /// claims racing on several workers may exceed it by their number for
    /// a moment; never by a backlog.
    pub async fn claim(&self, languages: &[String]) -> sqlx::Result<Option<ClaimedRun>> {
        sqlx::query_as!(
            ClaimedRun,
            r#"WITH busy AS (
                 SELECT user_id, count(*) AS n FROM runs
                 WHERE status = 'running' AND lease_expires_at > now()
                 GROUP BY user_id
               ), next AS (
                 SELECT r.id FROM runs r
                 LEFT JOIN busy b ON b.user_id = r.user_id
                 WHERE r.language = ANY($2)
                   AND (r.status = 'running' OR COALESCE(b.n, 0) < $4)
                   AND ((r.status = 'queued' AND r.available_at <= now())
                        OR (r.status = 'running' AND r.lease_expires_at <= now()))
                 ORDER BY COALESCE(b.n, 0), r.created_at
                 LIMIT 1
                 FOR UPDATE OF r SKIP LOCKED
               )
               UPDATE runs
               SET status = 'running', started_at = COALESCE(started_at, now()),
                   attempts = attempts + 1, worker_id = $1, lease_owner = $1,
                   lease_expires_at = now() + make_interval(secs => $3)
               FROM next WHERE runs.id = next.id
               RETURNING runs.id, runs.session_id, runs.language, runs.files, runs.stdin,
                         runs.args, runs.tests, runs.time_limit_ms, runs.memory_limit_mb,
                         runs.attempts, runs.kind, runs.problem_id"#,
            self.worker_id,
            languages,
            self.lease.as_secs_f64(),
            self.max_running_per_user,
        )
        .fetch_optional(&self.db)
        .await
    }

    /// Extends the leases of every run this worker executes.
    pub async fn renew_leases(&self) -> sqlx::Result<u64> {
        Ok(sqlx::query!(
            r#"UPDATE runs SET lease_expires_at = now() + make_interval(secs => $2)
               WHERE lease_owner = $1 AND status = 'running'"#,
            self.worker_id,
            self.lease.as_secs_f64(),
        )
        .execute(&self.db)
        .await?
        .rows_affected())
    }

    /// Puts this worker's unfinished runs back in the queue at once (a
    /// shutdown that could not wait for them): another worker takes them
    /// without waiting for the leases to expire.
    pub async fn release_leases(&self) -> sqlx::Result<u64> {
        Ok(sqlx::query!(
            r#"UPDATE runs
               SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                   available_at = now()
               WHERE lease_owner = $1 AND status = 'running'"#,
            self.worker_id,
        )
        .execute(&self.db)
        .await?
        .rows_affected())
    }

    /// Executes a claimed run to its end: a result stored, or the run put
    /// back for another attempt. Never fails: every outcome is logged.
    pub async fn execute(&self, run: ClaimedRun) {
        self.running.fetch_add(1, Ordering::Relaxed);
        self.process(run).await;
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    async fn process(&self, run: ClaimedRun) {
        let run_id = run.id;
        let room = Room {
            channel: run_contract::run_event_channel(&self.key_prefix, run_id, run.session_id),
            kind: RunKind::parse(&run.kind),
            problem_id: run.problem_id,
        };
        let channel = room.channel.clone();
        if run.attempts > self.max_attempts {
            let message = format!("gave up after {} attempts", self.max_attempts);
            return self
                .finish(run_id, &room, RunResult::internal_error(&message))
                .await;
        }
        if run.attempts > 1 {
            // A previous attempt's worker died (its lease expired): its
            // container, if any is left, goes first.
            match crate::sandbox::janitor::remove_labelled(
                self.engine.docker(),
                &run_id.to_string(),
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(%run_id, removed = n, "removed a dead attempt's container"),
                Err(e) => {
                    tracing::warn!(%run_id, error = %e, "could not look for a dead attempt's container")
                }
            }
        }
        // An input this version cannot read ends the run at once: executing
        // it anyway would run an empty program, or drop its tests.
        let input = match RunInput::from_columns(InputColumns {
            files: run.files,
            args: run.args,
            tests: run.tests,
        }) {
            Ok(input) => input,
            Err(e) => {
                tracing::error!(%run_id, error = %e, "unreadable run input; not executed");
                let message = format!(
                    "the platform could not read this run's {}; it was not executed",
                    e.column.as_str()
                );
                return self
                    .finish(run_id, &room, RunResult::internal_error(&message))
                    .await;
            }
        };
        let request = ExecutionRequest {
            language: run.language,
            files: input
                .files
                .into_iter()
                .map(|f| SourceFile {
                    name: f.name,
                    content: f.content,
                })
                .collect(),
            stdin: run.stdin,
            args: input.args,
            tests: input
                .tests
                .into_iter()
                .map(|t| TestCase {
                    stdin: t.stdin.into_bytes(),
                    expected_output: t.expected_output,
                })
                .collect(),
            time_ms: u64::try_from(run.time_limit_ms).ok(),
            memory_mb: u64::try_from(run.memory_limit_mb).ok(),
            label: run_id.to_string(),
        };

        // Room events go out in order from one task, off the run's path:
        // `run.started`, then the output numbered per attempt.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutputChunk>();
        let publisher = {
            let (mut redis, channel) = (self.redis.clone(), channel.clone());
            let audience = room.output_audience();
            let attempt = run.attempts;
            tokio::spawn(async move {
                let started = RunEvent::Started { run_id, attempt };
                publish_with(&mut redis, &channel, Audience::Everyone, &started).await;
                let mut seq = 0;
                while let Some(chunk) = rx.recv().await {
                    let event = RunEvent::Output {
                        run_id,
                        test: chunk.test,
                        stream: match chunk.stream {
                            sandbox_runner::Stream::Stdout => "stdout".into(),
                            sandbox_runner::Stream::Stderr => "stderr".into(),
                        },
                        data: String::from_utf8_lossy(&chunk.data).into_owned(),
                        seq,
                    };
                    seq += 1;
                    publish_with(&mut redis, &channel, audience, &event).await;
                }
            })
        };
        let mut on_output = move |chunk: OutputChunk| {
            let _ = tx.send(chunk);
        };
        let language = request.language.clone();
        let executed = self.engine.execute(request, &mut on_output).await;
        drop(on_output);
        let _ = publisher.await;

        match executed {
            Ok(result) => {
                let t = result.timings;
                tracing::debug!(
                    take_ms = t.take_ms,
                    take_path = t.take_path.as_str(),
                    program_ms = t.program_ms,
                    "executed"
                );
                metrics::histogram!("codecall_run_duration_seconds", "language" => language.clone())
                    .record(result.total_ms as f64 / 1000.0);
                metrics::counter!(
                    "codecall_runs_total",
                    "language" => language,
                    "verdict" => result.verdict.as_str()
                )
                .increment(1);
                self.finish(run_id, &room, result.result).await;
            }
            Err(EngineError::Invalid(message)) => {
                self.finish(run_id, &room, RunResult::internal_error(&message))
                    .await;
            }
            Err(e) if run.attempts < self.max_attempts => {
                tracing::warn!(%run_id, attempt = run.attempts, error = %e, "infrastructure failure; will retry");
                // Back to the queue, claimable after an exponential backoff,
                // by any worker (this one may be the problem).
                let backoff = Duration::from_millis(250 << run.attempts.clamp(0, 5));
                if let Err(e) = sqlx::query!(
                    r#"UPDATE runs
                       SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                           available_at = now() + make_interval(secs => $3)
                       WHERE id = $1 AND status = 'running' AND lease_owner = $2"#,
                    run_id,
                    self.worker_id,
                    backoff.as_secs_f64(),
                )
                .execute(&self.db)
                .await
                {
                    // The lease expires and another worker takes it.
                    tracing::warn!(%run_id, error = %e, "could not put the run back; its lease will expire");
                }
            }
            Err(e) => {
                tracing::error!(%run_id, error = %e, "infrastructure failure; giving up");
                self.finish(
                    run_id,
                    &room,
                    RunResult::internal_error("the sandbox failed repeatedly; please try again"),
                )
                .await;
            }
        }
    }

    /// Writes the result unless the run is already finished (retrying while
    /// PostgreSQL does not answer), then announces it on the room.
    async fn finish(&self, run_id: Uuid, room: &Room, result: RunResult) {
        let verdict = result.verdict.as_str();
        let mut json = match serde_json::to_value(&result) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(%run_id, error = %e, "result does not serialise");
                return;
            }
        };
        without_nul(&mut json);
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        // The update commits the result and, by trigger, the
        // `codecall_run_finished` notification `?wait=true` wakes on.
        let row = loop {
            match sqlx::query_as!(
                RunRow,
                r#"UPDATE runs
                   SET status = 'finished', verdict = $2, result = $3, finished_at = now(),
                       started_at = COALESCE(started_at, now()),
                       lease_owner = NULL, lease_expires_at = NULL
                   WHERE id = $1 AND status <> 'finished'
                   RETURNING id, user_id, session_id, language, status, result,
                             created_at, started_at, finished_at"#,
                run_id,
                verdict,
                json
            )
            .fetch_optional(&self.db)
            .await
            {
                Ok(row) => break row,
                Err(e) if started.elapsed() < RESULT_WRITE_BUDGET => {
                    tracing::warn!(%run_id, error = %e, "cannot store the result yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(%run_id, error = %e, "gave up storing the result; the run will execute again");
                    return;
                }
            }
        };
        let write = started.elapsed();
        metrics::histogram!("codecall_run_result_write_seconds").record(write.as_secs_f64());
        let Some(row) = row else {
            tracing::info!(%run_id, "run was finished by another execution");
            return;
        };
        tracing::info!(%run_id, verdict, write_ms = write.as_millis() as u64, "run finished");
        let mut view = RunView::from(row);
        view.kind = room.kind;
        view.problem_id = room.problem_id;
        // One payload per audience, each serialised once.
        let payloads: Vec<String> = if room.kind.is_hidden() {
            vec![
                finished_payload(Audience::Interviewers, view.clone()),
                finished_payload(Audience::Candidates, view.redacted()),
            ]
        } else {
            vec![finished_payload(Audience::Everyone, view)]
        };
        // The room learns of the finish even if Redis is down right now.
        let (mut redis, channel) = (self.redis.clone(), room.channel.clone());
        tokio::spawn(async move {
            for payload in payloads {
                let started = tokio::time::Instant::now();
                let mut pause = Duration::from_millis(200);
                while !try_publish(&mut redis, &channel, &payload).await
                    && started.elapsed() < FINISH_EVENT_BUDGET
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        });
    }
}

/// Replaces U+0000 in every string of a result with U+FFFD: PostgreSQL's
/// `jsonb` refuses it, and a program printing a NUL byte would otherwise
/// make its result unstorable (retried for minutes, then run again). The
/// raw bytes of such stdout stay in `stdoutBase64`.
fn without_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            *text = text.replace('\0', "\u{FFFD}");
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_nul),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(without_nul),
        _ => {}
    }
}

/// A `run.finished` event addressed to `audience`.
fn finished_payload(audience: Audience, view: RunView) -> String {
    let event = RunEvent::Finished {
        run: Box::new(view),
    };
    run_contract::addressed(audience, &serde_json::to_string(&event).unwrap_or_default())
}

/// Publishes a payload; false when Redis did not take it.
async fn try_publish(redis: &mut ConnectionManager, channel: &str, payload: &str) -> bool {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(redis)
        .await
        .is_ok()
}

async fn publish_with(
    redis: &mut ConnectionManager,
    channel: &str,
    audience: Audience,
    event: &RunEvent,
) {
    let Ok(json) = serde_json::to_string(event) else {
        return;
    };
    let payload = run_contract::addressed(audience, &json);
    if let Err(e) = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(redis)
        .await
    {
        tracing::warn!(channel, error = %e, "could not publish run event");
    }
}

/// Ends runs whose job was lost: queued or running for longer than
/// `stuck_after` (longer than any execution can take). Every worker runs it;
/// the update is idempotent.
pub async fn reap_stuck_runs(db: &PgPool, stuck_after: Duration) -> sqlx::Result<u64> {
    let result = serde_json::to_value(RunResult::internal_error(
        "the run was lost by the platform (no worker finished it in time)",
    ))
    .unwrap_or_default();
    let reaped = sqlx::query!(
        r#"UPDATE runs
           SET status = 'finished', verdict = 'internal_error', result = $2, finished_at = now()
           WHERE status <> 'finished'
             AND COALESCE(started_at, created_at) < now() - make_interval(secs => $1)"#,
        stuck_after.as_secs_f64(),
        result
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(reaped)
}
