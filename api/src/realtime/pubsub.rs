//! Publishing on Redis channels, and joining a session's events channel.
//!
//! Room events (presence, chat, a session's updates, run events) travel on
//! the session's channel ([`run_contract::session_channel`]), whoever
//! publishes them: a socket, a session handler, a worker. Every replica's
//! [`Hub`](super::hub::Hub) relays them to its own sockets. (Runs need no
//! push: the `runs` row is the queue, and a trigger wakes the workers.)

use serde::Serialize;
use uuid::Uuid;

use super::hub::Subscription;
use crate::{
    error::{Error, Result},
    startup::ApiContext,
};

/// Publishes an event on a channel. Best effort: the durable record is in
/// PostgreSQL, and clients resync from it.
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

/// Publishes a room event on the session's channel (every replica relays it).
pub async fn publish_to_session(ctx: &ApiContext, session: Uuid, event: &impl Serialize) {
    let channel = run_contract::session_channel(&ctx.config.redis.key_prefix, session);
    publish(ctx, &channel, event).await;
}

/// Subscribes to the session's events channel (503 when Redis is unreachable).
pub async fn join_session(ctx: &ApiContext, session: Uuid) -> Result<Subscription> {
    ctx.hub
        .join(&run_contract::session_channel(
            &ctx.config.redis.key_prefix,
            session,
        ))
        .await
        .map_err(|e| Error::Unavailable {
            code: "dependency_unavailable",
            message: format!("real-time rooms are unavailable: {e}"),
        })
}
