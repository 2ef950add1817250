//! The stuck-run reaper, the last resort: the lease already makes runs of
//! dead workers run again, so this only ends what is still unfinished long
//! after any run could be (`RUN_STUCK_AFTER`), as `internal_error`. Every
//! worker runs it; the update is idempotent, so they never disagree.

use std::time::Duration;

use sqlx::PgPool;

use crate::pipeline::reap_stuck_runs;

/// How often the reaper looks.
pub const REAP_INTERVAL: Duration = Duration::from_secs(30);

/// Reaps now and then every `every`, until the task is aborted.
pub fn spawn(db: PgPool, stuck_after: Duration, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match reap_stuck_runs(&db, stuck_after).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(reaped = n, "ended lost runs as internal_error"),
                Err(e) => tracing::warn!(error = %e, "stuck-run reaper failed"),
            }
        }
    })
}
