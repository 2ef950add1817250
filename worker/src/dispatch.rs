//! Run dispatch: when this worker takes which run.
//!
//! PostgreSQL is the queue: a run is a row, and a worker with a free slot
//! claims one with a single conditional update ([`Pipeline::claim`]: fair
//! order, `SKIP LOCKED`, a lease). Nothing is prefetched, so a run waits for
//! a free slot anywhere in the fleet, never behind a busy worker.
//!
//! An idle worker sleeps until a run may be claimable:
//! - woken at once by `NOTIFY codecall_runs_queued` (sent by a trigger when a
//!   run is inserted or put back), received on one `LISTEN` connection;
//! - after a lost `LISTEN` connection (notifications may have been missed);
//! - at the latest every `WORKER_RECHECK_INTERVAL`, for what no notification
//!   announces: a dead worker's lease expiring, a retry's backoff ending.
//!
//! An idle worker therefore costs one cheap query per recheck interval and
//! no Redis command at all. A busy one claims again as soon as a slot frees,
//! unless its last claim found nothing and nothing was announced since: the
//! slot then waits for a wake-up like an idle worker (a claim that cannot
//! find anything still costs PostgreSQL a scan of the runs in flight).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::postgres::PgListener;
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tracing::Instrument;

use crate::pipeline::Pipeline;

pub struct Dispatcher {
    pub pipeline: Arc<Pipeline>,
    /// The languages this worker can run (ids).
    pub languages: Vec<String>,
    /// `WORKER_CONCURRENCY`: runs executed at once.
    pub concurrency: usize,
    /// `WORKER_RECHECK_INTERVAL`: the longest an idle worker sleeps.
    pub recheck: Duration,
    /// `WORKER_SHUTDOWN_TIMEOUT`: after a stop, how long in-flight runs get.
    pub shutdown_timeout: Duration,
}

impl Dispatcher {
    /// Claims and executes runs until `stop` turns true; then waits for the
    /// runs in flight (at most the shutdown timeout) and puts back any that
    /// did not finish, so another worker takes them at once.
    pub async fn run(
        self,
        database_url: &str,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let wake = Arc::new(Notify::new());
        let listener =
            spawn_listener(database_url, self.languages.clone(), Arc::clone(&wake)).await?;
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut in_flight = JoinSet::new();
        // False after a claim found nothing, until a wake-up says otherwise.
        let mut claimable = true;
        loop {
            while in_flight.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => permit?,
                _ = stop.changed() => break,
            };
            if !claimable {
                // A wake-up that came while every slot was busy is kept
                // (one permit), so this returns at once if one did.
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(self.recheck) => {}
                    _ = stop.changed() => break,
                }
                claimable = true;
            }
            if *stop.borrow() {
                break;
            }
            let claim_started = Instant::now();
            match self.pipeline.claim(&self.languages).await {
                Ok(Some(run)) => {
                    let claim = claim_started.elapsed();
                    metrics::histogram!("codecall_run_claim_seconds").record(claim.as_secs_f64());
                    // Every event of this run's execution carries these.
                    let span = tracing::info_span!(
                        "run",
                        run_id = %run.id,
                        attempt = run.attempts,
                        claim_ms = claim.as_secs_f64() * 1000.0,
                    );
                    tracing::debug!(parent: &span, "claimed a run");
                    let pipeline = Arc::clone(&self.pipeline);
                    in_flight.spawn(
                        async move {
                            pipeline.execute(run).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    claimable = false;
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "cannot claim runs (PostgreSQL); retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        listener.abort();

        let running = in_flight.len();
        if running > 0 {
            tracing::info!(running, "waiting for in-flight runs");
        }
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            in_flight.abort_all();
            match self.pipeline.release_leases().await {
                Ok(n) => {
                    tracing::warn!(released = n, "shutdown timeout: runs put back in the queue")
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not put runs back; their leases will expire")
                }
            }
        }
        Ok(())
    }
}

/// One `LISTEN` connection of its own (outside the pool), turning
/// notifications for this worker's languages into wake-ups. A wake-up
/// stored while every slot is busy is kept (one permit), so the next idle
/// moment claims at once.
async fn spawn_listener(
    database_url: &str,
    languages: Vec<String>,
    wake: Arc<Notify>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(run_contract::RUNS_QUEUED_CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if languages.iter().any(|l| l == notification.payload()) {
                        wake.notify_one();
                    }
                }
                // Reconnected: whatever was announced meanwhile is unknown.
                Ok(None) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the run notifications; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake.notify_one();
                }
            }
        }
    }))
}
