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
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    envelope::Success,
    error::{ErrorBody, ErrorDetail},
    startup::ApiContext,
};

/// How long each dependency gets to answer a readiness probe.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Liveness {
    /// `ok`.
    status: &'static str,
}

/// Liveness: 200 while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "`{success, status: \"ok\"}`", body = Success<Liveness>)))]
async fn health() -> Json<Success<Liveness>> {
    Json(Success::new(Liveness { status: "ok" }))
}

/// Each dependency's state: `up` or `down`.
#[derive(Serialize, utoipa::ToSchema)]
struct ReadinessChecks {
    postgres: &'static str,
    redis: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready`.
    status: &'static str,
    checks: ReadinessChecks,
}

/// 503's body: the usual error body, plus `checks`.
#[derive(Serialize, utoipa::ToSchema)]
struct NotReady {
    #[serde(flatten)]
    error: ErrorBody,
    checks: ReadinessChecks,
}

/// Readiness: PostgreSQL and Redis both answer.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "`{success, status: \"ready\", checks}`", body = Success<Readiness>),
    (status = 503, description = "A dependency is down; `checks` names it", body = NotReady)))]
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
    let checks = ReadinessChecks {
        postgres: status(postgres),
        redis: status(redis),
    };

    let down: Vec<&str> = [("postgres", postgres), ("redis", redis)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return Json(Success::new(Readiness {
            status: "ready",
            checks,
        }))
        .into_response();
    }
    tracing::warn!(?down, "readiness check failed");
    let body = NotReady {
        error: ErrorBody {
            success: false,
            error: ErrorDetail {
                code: "dependency_unavailable",
                message: format!("not ready: {} unavailable", down.join(" and ")),
                fields: None,
            },
        },
        checks,
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
