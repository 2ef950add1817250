//! The run pipeline: run jobs from the apalis queue → the sandbox engine →
//! the result in PostgreSQL and events on the room's Redis channel.
//!
//! Exactly-once results from at-least-once delivery: a job is *claimed* by a
//! conditional update (`status <> 'finished'`), and the result is written by
//! another (`… AND status <> 'finished'`), so a job delivered twice (a worker
//! killed mid-run, its job re-queued by a live worker) can run twice but
//! finishes once. The user's program failing is a verdict; only
//! infrastructure failures (Docker, the runner) are retried, with backoff, up
//! to `RUN_MAX_ATTEMPTS`, then the run ends as `internal_error`. The attempt
//! counter lives in the row because apalis does not count re-deliveries.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use apalis::prelude::{AbortError, BoxDynError, Data};
use redis::aio::ConnectionManager;
use run_contract::{RunEvent, RunJob, RunResult, RunRow, RunView};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::sandbox::{Engine, EngineError, ExecutionRequest, OutputChunk, SourceFile, TestCase};

/// Shared by every job of this worker.
pub struct Pipeline {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub engine: Arc<Engine>,
    pub key_prefix: String,
    pub worker_id: String,
    pub max_attempts: i32,
    pub running: AtomicU64,
    pub done: AtomicU64,
}

/// The apalis handler. A plain `Err` is retried by the queue; everything
/// permanent is handled here (the run is finished) and answers `Ok`.
pub async fn handle(job: RunJob, pipeline: Data<Arc<Pipeline>>) -> Result<(), BoxDynError> {
    let pipeline = Arc::clone(&pipeline);
    pipeline.running.fetch_add(1, Ordering::Relaxed);
    let outcome = pipeline.process(job.run_id).await;
    pipeline.running.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        Ok(()) => {
            pipeline.done.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(Failure::Permanent(message)) => Err(Box::new(AbortError::new(message))),
        Err(Failure::Retry(message)) => Err(message.into()),
    }
}

enum Failure {
    /// Retry the job (the run was put back to `queued`).
    Retry(String),
    /// Never retry (e.g. the run row is gone).
    Permanent(String),
}

#[derive(Deserialize)]
struct StoredFile {
    #[serde(default)]
    name: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTest {
    #[serde(default)]
    stdin: String,
    expected_output: String,
}

impl Pipeline {
    async fn process(&self, run_id: Uuid) -> Result<(), Failure> {
        let db_error = |e: sqlx::Error| Failure::Retry(format!("database: {e}"));
        let claimed = sqlx::query!(
            r#"UPDATE runs
               SET status = 'running', started_at = COALESCE(started_at, now()),
                   attempts = attempts + 1, worker_id = $2
               WHERE id = $1 AND status <> 'finished'
               RETURNING user_id, session_id, language, files, stdin, args, tests,
                         time_limit_ms, memory_limit_mb, attempts"#,
            run_id,
            self.worker_id
        )
        .fetch_optional(&self.db)
        .await
        .map_err(db_error)?;
        let Some(run) = claimed else {
            let exists = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1) AS "e!""#,
                run_id
            )
            .fetch_one(&self.db)
            .await
            .map_err(db_error)?;
            return if exists {
                tracing::info!(%run_id, "run already finished: duplicate delivery ignored");
                Ok(())
            } else {
                Err(Failure::Permanent(format!("run {run_id} does not exist")))
            };
        };
        let channel = run_contract::run_event_channel(&self.key_prefix, run_id, run.session_id);
        if run.attempts > self.max_attempts {
            let message = format!("gave up after {} attempts", self.max_attempts);
            return self
                .finish(run_id, &channel, RunResult::internal_error(&message))
                .await;
        }
        if run.attempts > 1 {
            // A previous attempt's worker died: its container goes first.
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
        self.publish(
            &channel,
            &RunEvent::Started {
                run_id,
                attempt: run.attempts,
            },
        )
        .await;

        let files: Vec<StoredFile> = serde_json::from_value(run.files).unwrap_or_default();
        let tests: Vec<StoredTest> = serde_json::from_value(run.tests).unwrap_or_default();
        let args: Vec<String> = serde_json::from_value(run.args).unwrap_or_default();
        let request = ExecutionRequest {
            language: run.language,
            files: files
                .into_iter()
                .map(|f| SourceFile {
                    name: f.name,
                    content: f.content,
                })
                .collect(),
            stdin: run.stdin,
            args,
            tests: tests
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

        // Output events go out in order from one task, numbered per attempt.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutputChunk>();
        let publisher = {
            let (mut redis, channel) = (self.redis.clone(), channel.clone());
            tokio::spawn(async move {
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
                    publish_with(&mut redis, &channel, &event).await;
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
                metrics::histogram!("codecall_run_duration_seconds", "language" => language.clone())
                    .record(result.total_ms as f64 / 1000.0);
                metrics::counter!(
                    "codecall_runs_total",
                    "language" => language,
                    "verdict" => result.verdict.as_str()
                )
                .increment(1);
                self.finish(run_id, &channel, result.result).await
            }
            Err(EngineError::Invalid(message)) => {
                self.finish(run_id, &channel, RunResult::internal_error(&message))
                    .await
            }
            Err(e) if run.attempts < self.max_attempts => {
                tracing::warn!(%run_id, attempt = run.attempts, error = %e, "infrastructure failure; will retry");
                sqlx::query!(
                    "UPDATE runs SET status = 'queued' WHERE id = $1 AND status = 'running'",
                    run_id
                )
                .execute(&self.db)
                .await
                .map_err(db_error)?;
                // Exponential backoff before the queue's own (1 s per attempt) delay.
                let backoff = Duration::from_millis(250 << run.attempts.clamp(0, 5));
                tokio::time::sleep(backoff).await;
                Err(Failure::Retry(e.to_string()))
            }
            Err(e) => {
                tracing::error!(%run_id, error = %e, "infrastructure failure; giving up");
                self.finish(
                    run_id,
                    &channel,
                    RunResult::internal_error("the sandbox failed repeatedly; please try again"),
                )
                .await
            }
        }
    }

    /// Writes the result unless the run is already finished, then announces it.
    async fn finish(&self, run_id: Uuid, channel: &str, result: RunResult) -> Result<(), Failure> {
        let verdict = result.verdict.as_str();
        let json = serde_json::to_value(&result).map_err(|e| Failure::Permanent(e.to_string()))?;
        let row = sqlx::query_as!(
            RunRow,
            r#"UPDATE runs
               SET status = 'finished', verdict = $2, result = $3, finished_at = now(),
                   started_at = COALESCE(started_at, now())
               WHERE id = $1 AND status <> 'finished'
               RETURNING id, user_id, session_id, language, status, result,
                         created_at, started_at, finished_at"#,
            run_id,
            verdict,
            json
        )
        .fetch_optional(&self.db)
        .await
        .map_err(|e| Failure::Retry(format!("database: {e}")))?;
        match row {
            Some(row) => {
                tracing::info!(%run_id, verdict, "run finished");
                let view = RunView::from(row);
                self.publish(
                    channel,
                    &RunEvent::Finished {
                        run: Box::new(view),
                    },
                )
                .await;
            }
            None => tracing::info!(%run_id, "run was finished by another delivery"),
        }
        Ok(())
    }

    async fn publish(&self, channel: &str, event: &RunEvent) {
        publish_with(&mut self.redis.clone(), channel, event).await;
    }
}

async fn publish_with(redis: &mut ConnectionManager, channel: &str, event: &RunEvent) {
    let Ok(payload) = serde_json::to_string(event) else {
        return;
    };
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
