//! The worker's heartbeat: one row of the `workers` table (host, languages,
//! counters, `expires_at` = now + heartbeat × missed heartbeats), renewed
//! every heartbeat together with the leases of the runs it executes.
//!
//! The api lists languages from the live rows and keeps accepting runs for
//! languages seen within its grace period (a fleet restart is not an
//! outage); the queue monitor shows every row; the janitor removes the
//! sandbox containers of workers whose row expired. PostgreSQL, not Redis,
//! so a Redis restart or `FLUSHALL` forgets no worker.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use run_contract::LanguageInfo;
use sqlx::PgPool;

use crate::{config::Config, pipeline::Pipeline, sandbox::manifest::Language};

/// What a worker says about itself.
pub struct Announcement {
    id: String,
    host: String,
    languages: Vec<LanguageInfo>,
    /// How long the row stays live without a renewal.
    ttl: Duration,
}

impl Announcement {
    pub fn new(config: &Config, languages: &[Language]) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Announcement {
            id: config.worker_id.clone(),
            host,
            languages: languages
                .iter()
                .map(|l| LanguageInfo {
                    id: l.id.clone(),
                    name: l.name.clone(),
                    version: l.version.clone(),
                    compiled: l.compile.is_some(),
                })
                .collect(),
            ttl: config.heartbeat * u32::try_from(config.missed_heartbeats).unwrap_or(3),
        }
    }

    /// Writes (or renews) the row; returns an error when PostgreSQL does not answer.
    async fn write(&self, db: &PgPool, running: u64, done: u64) -> sqlx::Result<()> {
        let languages = serde_json::to_value(&self.languages).unwrap_or_default();
        sqlx::query!(
            r#"INSERT INTO workers (id, host, languages, expires_at, running, done)
               VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)
               ON CONFLICT (id) DO UPDATE
               SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at,
                   running = EXCLUDED.running, done = EXCLUDED.done"#,
            self.id,
            self.host,
            languages,
            self.ttl.as_secs_f64(),
            i64::try_from(running).unwrap_or(i64::MAX),
            i64::try_from(done).unwrap_or(i64::MAX),
        )
        .execute(db)
        .await?;
        Ok(())
    }
}

/// How long rows of stopped or dead workers are kept.
const FORGET_AFTER_SECS: f64 = 24.0 * 3600.0;

pub struct Announcer {
    task: tokio::task::JoinHandle<()>,
    db: PgPool,
    id: String,
}

impl Announcer {
    /// Stops heart-beating and marks the row stopped (a clean shutdown): the
    /// api still remembers its languages for its grace period.
    pub async fn stop(self) {
        self.task.abort();
        if let Err(e) = sqlx::query!(
            "UPDATE workers SET stopped_at = now(), expires_at = now() WHERE id = $1",
            self.id
        )
        .execute(&self.db)
        .await
        {
            tracing::warn!(error = %e, "could not mark the worker stopped");
        }
    }
}

/// Announces the worker now (so it is listed before it takes work), then
/// every `every`: the row, and the leases of the runs it executes. A failed
/// renewal is retried after a second rather than a whole heartbeat, so a
/// short PostgreSQL outage does not eat into the lease.
pub async fn spawn(
    db: PgPool,
    announcement: Announcement,
    pipeline: Arc<Pipeline>,
    every: Duration,
) -> sqlx::Result<Announcer> {
    announcement.write(&db, 0, 0).await?;
    sqlx::query!(
        "DELETE FROM workers WHERE heartbeat_at < now() - make_interval(secs => $1)",
        FORGET_AFTER_SECS
    )
    .execute(&db)
    .await?;
    let id = announcement.id.clone();
    let task = tokio::spawn({
        let db = db.clone();
        async move {
            loop {
                let running = pipeline.running.load(Ordering::Relaxed);
                let done = pipeline.done.load(Ordering::Relaxed);
                metrics::gauge!("codecall_runs_in_progress").set(running as f64);
                metrics::gauge!("codecall_sandbox_pool_size")
                    .set(pipeline.engine.pool_size() as f64);
                let renewed: sqlx::Result<()> = async {
                    announcement.write(&db, running, done).await?;
                    pipeline.renew_leases().await?;
                    let depth = sqlx::query_scalar!(
                        r#"SELECT count(*) AS "n!" FROM runs WHERE status = 'queued'"#
                    )
                    .fetch_one(&db)
                    .await?;
                    metrics::gauge!("codecall_queue_depth").set(depth as f64);
                    Ok(())
                }
                .await;
                let pause = match renewed {
                    Ok(()) => every,
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed; retrying");
                        every.min(Duration::from_secs(1))
                    }
                };
                tokio::time::sleep(pause).await;
            }
        }
    });
    Ok(Announcer { task, db, id })
}
