//! The api's side of the job queue and the rooms' pub/sub: pushing run jobs
//! through apalis, and publishing events on Redis channels.

use apalis_core::backend::TaskSink;
use apalis_redis::{Config, RedisStorage};
use redis::aio::ConnectionManager;
use run_contract::RunJob;
use serde::Serialize;
use uuid::Uuid;

use crate::startup::ApiContext;

/// The run queue's producer. Cheap to clone; the queue name is set
/// explicitly (apalis would otherwise use the Rust type path).
pub fn run_queue(conn: ConnectionManager, prefix: &str) -> RedisStorage<RunJob> {
    RedisStorage::new(conn).with_config(Config::default().queue(run_contract::run_queue(prefix)))
}

/// Pushes the job of run `run_id`.
pub async fn enqueue(ctx: &ApiContext, run_id: Uuid) -> anyhow::Result<()> {
    let mut queue = ctx.run_queue.clone();
    queue
        .push(RunJob { run_id })
        .await
        .map_err(|e| anyhow::anyhow!("pushing run job: {e}"))
}

/// Publishes an event on a room channel. Best effort: the durable record
/// is in PostgreSQL, and clients resync from it.
pub async fn publish(ctx: &ApiContext, channel: &str, event: &impl Serialize) {
    let Ok(payload) = serde_json::to_string(event) else {
        return;
    };
    let mut redis = ctx.redis.clone();
    if let Err(e) = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(&mut redis)
        .await
    {
        tracing::warn!(channel, error = %e, "could not publish event");
    }
}
