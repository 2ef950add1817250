//! The worker's Prometheus endpoint, `GET /metrics` on `METRICS_PORT`
//! (default 9100; `0` disables it):
//!
//! - `codecall_queue_depth` (gauge): jobs waiting in the run queue.
//! - `codecall_runs_total{language, verdict}` (counter).
//! - `codecall_run_duration_seconds{language}` (histogram): the execution in
//!   the engine, container included.
//! - `codecall_container_start_seconds` (histogram): create + attach + start.
//! - `codecall_sandbox_pool_size` (gauge): pre-started containers ready.
//! - `codecall_sandbox_pool_target{language}` (gauge): how many the pool
//!   keeps now (its floor, raised by recent demand up to its ceiling).
//! - `codecall_runs_in_progress` (gauge).
//!
//! Where a run's time goes, one histogram per phase (each run's values are
//! also fields of its `run` tracing span and `run finished` event):
//! - `codecall_run_claim_seconds`: the claiming statement.
//! - `codecall_sandbox_take_seconds{path}`: getting a container — `ready`
//!   (from the pool), `waited` (for one the pool was starting), `cold`
//!   (started for this execution).
//! - `codecall_sandbox_program_seconds`: request sent → report finished.
//! - `codecall_run_result_write_seconds`: the result's commit (which also
//!   sends the `codecall_run_finished` notification).

use std::{net::SocketAddr, sync::OnceLock};

use axum::{Router, http::header, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
            .and_then(PrometheusBuilder::install_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
    })
}

/// Serves `/metrics` on `port` until the process ends.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    handle();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on METRICS_PORT {port}: {e}"))?;
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle().render(),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}
