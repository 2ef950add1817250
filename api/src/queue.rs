//! Publishing room events on Redis channels. (Runs need no push: the
//! `runs` row is the queue, and a trigger wakes the workers.)

use serde::Serialize;

use crate::startup::ApiContext;

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
