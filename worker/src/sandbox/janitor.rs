//! Removes sandbox containers nobody will remove: those of workers that are
//! dead (their `workers` row expired or says stopped), those past their
//! `codecall.expires` label (a worker died mid-run or with a warm pool) and
//! stopped ones older than [`STOPPED_GRACE`]. Safe with many workers — and
//! many deployments — on one Docker host: a container of a live worker is
//! never touched before its expiry, and a worker id this deployment's
//! database does not know (another deployment's) never counts as dead.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bollard::{Docker, query_parameters::ListContainersOptionsBuilder};
use sqlx::PgPool;

use super::container::{self, EXPIRES_LABEL, LABEL, WORKER_LABEL};

/// A stopped sandbox container older than this is a leftover.
pub const STOPPED_GRACE: Duration = Duration::from_secs(120);

/// One sweep; returns how many containers were removed.
pub async fn sweep(docker: &Docker) -> Result<usize, bollard::errors::Error> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([("label", vec![LABEL])]))
        .build();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut removed = 0;
    for summary in docker.list_containers(Some(options)).await? {
        let Some(id) = summary.id else { continue };
        let expires = summary
            .labels
            .as_ref()
            .and_then(|l| l.get(EXPIRES_LABEL))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let created = u64::try_from(summary.created.unwrap_or(0)).unwrap_or(0);
        let running = summary
            .state
            .map(|s| s.to_string() == "running")
            .unwrap_or(false);
        let stopped_leftover = !running && created + STOPPED_GRACE.as_secs() <= now;
        if now >= expires || stopped_leftover {
            container::remove(docker, &id).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every sandbox container of the workers this deployment knows to
/// be dead (row expired, or stopped), whatever its state or expiry.
pub async fn remove_dead_workers(docker: &Docker, db: &PgPool) -> anyhow::Result<usize> {
    let dead: Vec<String> = sqlx::query_scalar!(
        "SELECT id FROM workers WHERE expires_at < now() OR stopped_at IS NOT NULL"
    )
    .fetch_all(db)
    .await?;
    if dead.is_empty() {
        return Ok(0);
    }
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([("label", vec![LABEL])]))
        .build();
    let mut removed = 0;
    for summary in docker.list_containers(Some(options)).await? {
        let of_dead_worker = summary
            .labels
            .as_ref()
            .and_then(|l| l.get(WORKER_LABEL))
            .is_some_and(|worker| dead.contains(worker));
        if let (true, Some(id)) = (of_dead_worker, summary.id) {
            container::remove(docker, &id).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every container of one execution label (a run id), whatever its
/// state: used before re-running a run whose previous worker died mid-run,
/// so its container (possibly still running the same program) goes now
/// rather than at its expiry.
pub async fn remove_labelled(
    docker: &Docker,
    value: &str,
) -> Result<usize, bollard::errors::Error> {
    let filter = format!("{LABEL}={value}");
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([("label", vec![filter.as_str()])]))
        .build();
    let mut removed = 0;
    for summary in docker.list_containers(Some(options)).await? {
        if let Some(id) = summary.id {
            container::remove(docker, &id).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Sweeps now and then every `every`, for as long as the process runs.
pub fn spawn(docker: Docker, db: PgPool, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match remove_dead_workers(&docker, &db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "janitor removed dead workers' sandbox containers"
                ),
                Err(e) => tracing::warn!(error = %e, "janitor: dead-worker sweep failed"),
            }
            match sweep(&docker).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "janitor removed leftover sandbox containers"),
                Err(e) => tracing::warn!(error = %e, "janitor sweep failed"),
            }
        }
    })
}
