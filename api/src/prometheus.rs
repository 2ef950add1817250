//! Prometheus metrics at `GET /metrics` (not behind any rate limit):
//!
//! - `http_requests_total{method, route, status}` and
//!   `http_request_duration_seconds{method, route, status}` (histogram), by
//!   matched route (`/api/runs/{id}`, never the raw path).
//! - `codecall_websocket_connections` (gauge): open sockets (events and
//!   document) on this replica.
//! - `codecall_rooms` (gauge): rooms with a socket on this replica.
//! - `codecall_documents_live` (gauge): shared documents loaded here.
//! - `codecall_presence_entries` (gauge): sockets this replica keeps present.
//!
//! All four return to zero when the replica's sockets close.
//! - `codecall_password_hashes_total` and
//!   `codecall_password_verifications_total{outcome}` (counters, from
//!   [`crate::auth`]'s password module): an unknown email is verified against
//!   a dummy hash, so it counts one `unknown_user` verification, as a wrong
//!   password counts one `mismatch`.
//!
//! The recorder is process-wide and installed once.

use std::{
    sync::{Mutex, OnceLock, PoisonError},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::startup::ApiContext;

/// Histogram buckets for request latency, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's Prometheus recorder.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(PrometheusBuilder::install_recorder)
            .unwrap_or_else(|_| {
                // Another recorder is installed (a test harness): render ours anyway.
                PrometheusBuilder::new().build_recorder().handle()
            })
    })
}

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(render))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn render(State(ctx): State<ApiContext>) -> Response {
    // The hub also carries the documents' channels; a room is an events channel.
    let documents = crate::documents::live::channel_prefix(&ctx.config.redis.key_prefix);
    let rooms = ctx.hub.rooms().await;
    let revocations = crate::realtime::lifetime::channel(&ctx.config.redis.key_prefix);
    let rooms = rooms
        .iter()
        .filter(|c| !c.starts_with(&documents) && **c != revocations)
        .count();
    // Read from this replica's registries, so each gauge is what is held
    // now. Set and rendered under one lock: several apps in one process
    // (the tests) share the recorder.
    static RENDER: Mutex<()> = Mutex::new(());
    let text = {
        let _render = RENDER.lock().unwrap_or_else(PoisonError::into_inner);
        metrics::gauge!("codecall_websocket_connections").set(ctx.sockets.len() as f64);
        metrics::gauge!("codecall_rooms").set(rooms as f64);
        metrics::gauge!("codecall_documents_live").set(ctx.documents.len() as f64);
        metrics::gauge!("codecall_presence_entries").set(ctx.presence.len() as f64);
        handle().render()
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Middleware: counts and times every request by its matched route.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
