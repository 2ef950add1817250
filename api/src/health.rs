//! Liveness and readiness.
//!
//! `GET /health` answers 200 while the process serves requests, checking
//! nothing else. `GET /ready` answers 200 only when PostgreSQL and Redis both
//! answer within [`CHECK_TIMEOUT`]; otherwise 503 with the usual error body
//! (`{success: false, error: {code, message}}`) naming what is down, plus a
//! `checks` map a load balancer or operator can read.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ErrorBody, startup::ApiContext};

/// How long each dependency gets to answer a readiness probe.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// Liveness: 200 while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "`{success, status: \"ok\"}`", body = Object)))]
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "success": true, "status": "ok" }))
}

/// Readiness: PostgreSQL and Redis both answer.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "`{success, status: \"ready\", checks}`", body = Object),
    (status = 503, description = "A dependency is down; `checks` names it", body = ErrorBody)))]
async fn ready(State(ctx): State<ApiContext>) -> Response {
    let postgres = async {
        tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&ctx.db))
            .await
            .is_ok_and(|r| r.is_ok())
    };
    let redis = async {
        let mut conn = ctx.redis.clone();
        tokio::time::timeout(
            CHECK_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let status = |up: bool| if up { "up" } else { "down" };
    let checks = json!({ "postgres": status(postgres), "redis": status(redis) });

    let down: Vec<&str> = [("postgres", postgres), ("redis", redis)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return Json(json!({ "success": true, "status": "ready", "checks": checks }))
            .into_response();
    }
    tracing::warn!(?down, "readiness check failed");
    let body = json!({
        "success": false,
        "error": {
            "code": "dependency_unavailable",
            "message": format!("not ready: {} unavailable", down.join(" and ")),
        },
        "checks": checks,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
