//! The worker's announcement in Redis (`{prefix}workers:{id}`): its host,
//! languages, heartbeat and counters, refreshed every heartbeat and expiring
//! after three missed ones. The api lists languages from the live
//! announcements, and the queue monitor shows them.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use chrono::Utc;
use redis::aio::ConnectionManager;
use run_contract::{LanguageInfo, WorkerAnnouncement, worker_key};

use crate::{config::Config, pipeline::Pipeline, sandbox::manifest::Language};

pub struct Announcement {
    key: String,
    value: WorkerAnnouncement,
}

impl Announcement {
    pub fn new(config: &Config, languages: &[Language]) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Announcement {
            key: worker_key(&config.key_prefix, &config.worker_id),
            value: WorkerAnnouncement {
                id: config.worker_id.clone(),
                host,
                started_at: Utc::now(),
                heartbeat_at: Utc::now(),
                languages: languages
                    .iter()
                    .map(|l| LanguageInfo {
                        id: l.id.clone(),
                        name: l.name.clone(),
                        version: l.version.clone(),
                        compiled: l.compile.is_some(),
                    })
                    .collect(),
                running: 0,
                done: 0,
            },
        }
    }
}

pub struct Announcer {
    task: tokio::task::JoinHandle<()>,
    redis: ConnectionManager,
    key: String,
}

impl Announcer {
    /// Stops announcing and removes the announcement (a clean shutdown).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<i64>(&mut self.redis)
            .await;
    }
}

pub fn spawn(
    redis: ConnectionManager,
    announcement: Announcement,
    pipeline: Arc<Pipeline>,
    every: Duration,
) -> Announcer {
    let key = announcement.key.clone();
    let ttl_ms = u64::try_from((every * 3).as_millis()).unwrap_or(15_000);
    let task = tokio::spawn({
        let mut redis = redis.clone();
        let Announcement { key, mut value } = announcement;
        async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                value.heartbeat_at = Utc::now();
                value.running = pipeline.running.load(Ordering::Relaxed);
                value.done = pipeline.done.load(Ordering::Relaxed);
                metrics::gauge!("codecall_runs_in_progress").set(value.running as f64);
                metrics::gauge!("codecall_sandbox_pool_size")
                    .set(pipeline.engine.pool_size() as f64);
                let queue = run_contract::run_queue(&pipeline.key_prefix);
                let depth: redis::RedisResult<(u64, u64)> = redis::pipe()
                    .llen(format!("{queue}:active"))
                    .zcard(format!("{queue}:scheduled"))
                    .query_async(&mut redis)
                    .await;
                if let Ok((active, scheduled)) = depth {
                    metrics::gauge!("codecall_queue_depth").set((active + scheduled) as f64);
                }
                let Ok(json) = serde_json::to_string(&value) else {
                    continue;
                };
                if let Err(e) = redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut redis)
                    .await
                {
                    tracing::warn!(error = %e, "could not announce the worker");
                }
            }
        }
    });
    Announcer { task, redis, key }
}
