//! Live sessions nobody touches end by themselves: a background task on
//! every replica ends those idle for longer than `SESSION_IDLE_TIMEOUT`.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{end_session, events};
use crate::{error::Result, startup::ApiContext};

/// Ends live sessions idle for longer than `SESSION_IDLE_TIMEOUT`, every
/// `SESSION_IDLE_SWEEP_INTERVAL`, for as long as the process runs. Safe on
/// every replica at once: the update is idempotent.
pub fn spawn_idle_sweeper(ctx: ApiContext) {
    let (idle, every) = (
        ctx.config.sessions.idle_timeout,
        ctx.config.sessions.idle_sweep_interval,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match end_idle_sessions(&ctx.db, idle).await {
                Ok(ended) => {
                    if !ended.is_empty() {
                        tracing::info!(ended = ended.len(), "ended idle sessions");
                    }
                    for id in ended {
                        events::session_updated(&ctx, id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "idle session sweep failed"),
            }
        }
    });
}

pub async fn end_idle_sessions(db: &PgPool, idle: Duration) -> Result<Vec<Uuid>> {
    let idle_secs = idle.as_secs_f64();
    let mut tx = db.begin().await?;
    let ids = sqlx::query_scalar!(
        r#"SELECT id FROM interview_sessions
           WHERE status = 'live' AND last_activity_at < now() - make_interval(secs => $1)
           FOR UPDATE SKIP LOCKED"#,
        idle_secs
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        end_session(&mut tx, *id).await?;
    }
    tx.commit().await?;
    Ok(ids)
}
