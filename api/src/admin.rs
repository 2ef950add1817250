//! Queue monitoring for admins:
//!
//! - `GET /api/admin/queue` → runs pending / running / finished / failed,
//!   throughput, the oldest pending run's age, dispatch counters (leases
//!   expired and not yet taken over, retries backing off), and every worker
//!   seen in the last day (id, host, started, last heartbeat, running, done,
//!   stale, stopped).
//! - `GET /admin` → the same as a small server-rendered page that refreshes
//!   itself (no JavaScript). Browsers pass the token as `?token=`.
//!
//! Everything is read from PostgreSQL, where runs, leases and worker
//! heartbeats live. Non-admins get 403.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use run_contract::{LanguageInfo, WorkerAnnouncement};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, QueryTokenUser, Role},
    error::{Error, ErrorBody, Result},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(dashboard))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueReport {
    pub pending: i64,
    pub running: i64,
    pub finished: i64,
    /// Finished as `internal_error` (the platform failed, not the program).
    pub failed: i64,
    /// Runs finished in the last 1, 5 and 15 minutes.
    pub throughput: Throughput,
    pub oldest_pending_age_seconds: Option<f64>,
    pub dispatch: DispatchReport,
    pub workers: Vec<WorkerReport>,
    pub generated_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub last_minute: i64,
    pub last_5_minutes: i64,
    pub last_15_minutes: i64,
    pub per_minute_15m: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// Running runs whose lease expired (their worker died); the next idle
    /// worker takes them over.
    pub expired_leases: i64,
    /// Queued runs backing off after an infrastructure failure.
    pub retrying: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReport {
    #[serde(flatten)]
    pub announcement: WorkerAnnouncement,
    pub seconds_since_heartbeat: i64,
    pub stale: bool,
}

fn require_admin(user: &AuthUser) -> Result<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden("admins only"))
    }
}

/// Queue monitoring (admins).
#[utoipa::path(get, path = "/api/admin/queue", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, description = "Counts, throughput, workers", body = QueueReport),
    (status = 403, description = "Not an admin", body = ErrorBody)))]
async fn queue(State(ctx): State<ApiContext>, user: AuthUser) -> Result<Json<QueueReport>> {
    require_admin(&user)?;
    Ok(Json(report(&ctx).await?))
}

pub async fn report(ctx: &ApiContext) -> Result<QueueReport> {
    let counts = sqlx::query!(
        r#"SELECT
             count(*) FILTER (WHERE status = 'queued') AS "pending!",
             count(*) FILTER (WHERE status = 'running') AS "running!",
             count(*) FILTER (WHERE status = 'finished') AS "finished!",
             count(*) FILTER (WHERE verdict = 'internal_error') AS "failed!",
             count(*) FILTER (WHERE finished_at > now() - interval '1 minute') AS "last_1!",
             count(*) FILTER (WHERE finished_at > now() - interval '5 minutes') AS "last_5!",
             count(*) FILTER (WHERE finished_at > now() - interval '15 minutes') AS "last_15!",
             count(*) FILTER (WHERE status = 'running' AND lease_expires_at <= now()) AS "expired_leases!",
             count(*) FILTER (WHERE status = 'queued' AND available_at > now()) AS "retrying!",
             EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 AS oldest
           FROM runs"#
    )
    .fetch_one(&ctx.db)
    .await?;

    let now = Utc::now();
    let rows = sqlx::query!(
        r#"SELECT id, host, languages, started_at, heartbeat_at, stopped_at, running, done,
                  expires_at < now() AS "expired!"
           FROM workers ORDER BY id"#
    )
    .fetch_all(&ctx.db)
    .await?;
    let workers = rows
        .into_iter()
        .map(|row| {
            let since = (now - row.heartbeat_at).num_seconds();
            WorkerReport {
                seconds_since_heartbeat: since,
                // Missed its own promised heartbeats (and did not say goodbye).
                stale: row.stopped_at.is_none() && row.expired,
                announcement: WorkerAnnouncement {
                    id: row.id,
                    host: row.host,
                    started_at: row.started_at,
                    heartbeat_at: row.heartbeat_at,
                    languages: serde_json::from_value::<Vec<LanguageInfo>>(row.languages)
                        .unwrap_or_default(),
                    running: u64::try_from(row.running).unwrap_or_default(),
                    done: u64::try_from(row.done).unwrap_or_default(),
                    stopped_at: row.stopped_at,
                },
            }
        })
        .collect();
    Ok(QueueReport {
        pending: counts.pending,
        running: counts.running,
        finished: counts.finished,
        failed: counts.failed,
        throughput: Throughput {
            last_minute: counts.last_1,
            last_5_minutes: counts.last_5,
            last_15_minutes: counts.last_15,
            per_minute_15m: counts.last_15 as f64 / 15.0,
        },
        oldest_pending_age_seconds: counts.oldest,
        dispatch: DispatchReport {
            expired_leases: counts.expired_leases,
            retrying: counts.retrying,
        },
        workers,
        generated_at: now,
    })
}

/// The dashboard: plain HTML, refreshed every 5 s by the browser.
/// The queue dashboard page (admins; `?token=` from a browser).
#[utoipa::path(get, path = "/admin", tag = "admin",
    params(("token" = Option<String>, Query, description = "The access token")), responses(
    (status = 200, description = "An HTML page refreshing every 5 s", content_type = "text/html"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "Not an admin", body = ErrorBody)))]
async fn dashboard(
    State(ctx): State<ApiContext>,
    QueryTokenUser(user): QueryTokenUser,
) -> Result<Response> {
    require_admin(&user)?;
    let r = report(&ctx).await?;
    let mut rows = String::new();
    for w in &r.workers {
        let a = &w.announcement;
        rows.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} s ago{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if w.stale || w.announcement.stopped_at.is_some() {
                "stale"
            } else {
                "live"
            },
            escape(&a.id),
            escape(&a.host),
            a.started_at.format("%Y-%m-%d %H:%M:%S"),
            w.seconds_since_heartbeat,
            if w.announcement.stopped_at.is_some() {
                " (stopped)"
            } else if w.stale {
                " (stale)"
            } else {
                ""
            },
            a.running,
            a.done,
            escape(&a.languages.iter().map(|l| l.id.as_str()).collect::<Vec<_>>().join(", ")),
        ));
    }
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>CodeCall queue</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.stale{{color:#a00}}
.cards span{{display:inline-block;margin:0 1em 1em 0;padding:8px 12px;border:1px solid #ccc}}</style></head>
<body><h1>Run queue</h1>
<div class="cards"><span>pending <b>{pending}</b></span><span>running <b>{running}</b></span>
<span>finished <b>{finished}</b></span><span>failed <b>{failed}</b></span>
<span>throughput <b>{tput:.1}</b>/min (15 min)</span><span>oldest pending <b>{oldest}</b></span>
<span>expired leases <b>{expired}</b> · retrying <b>{retrying}</b></span></div>
<h2>Workers</h2>
<table><tr><th>id</th><th>host</th><th>started</th><th>last heartbeat</th><th>running</th><th>done</th><th>languages</th></tr>
{rows}</table>
<p>Generated {generated}; refreshes every 5 s.</p></body></html>"#,
        pending = r.pending,
        running = r.running,
        finished = r.finished,
        failed = r.failed,
        tput = r.throughput.per_minute_15m,
        oldest = r
            .oldest_pending_age_seconds
            .map_or_else(|| "–".to_owned(), |s| format!("{s:.0} s")),
        expired = r.dispatch.expired_leases,
        retrying = r.dispatch.retrying,
        generated = r.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
