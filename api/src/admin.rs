//! Queue monitoring for admins (SPEC §9):
//!
//! - `GET /api/admin/queue` → runs pending / running / finished / failed,
//!   throughput, the oldest pending run's age, the apalis queue's own Redis
//!   counters, and every worker (id, host, started, last heartbeat, running,
//!   done, stale).
//! - `GET /admin` → the same as a small server-rendered page that refreshes
//!   itself (no JavaScript). Browsers pass the token as `?token=`.
//!
//! apalis-redis' own monitoring calls do not work against Redis 7, so this
//! reads PostgreSQL (the source of truth for runs) and the queue's keys.
//! Non-admins get 403.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use run_contract::WorkerAnnouncement;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, Role, SocketUser},
    error::{Error, ErrorBody, Result},
    startup::ApiContext,
};

/// A worker whose announcement is older than this is shown as stale.
pub const STALE_AFTER_SECS: i64 = 15;

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
    /// The apalis queue's Redis structures.
    pub redis: RedisQueue,
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
pub struct RedisQueue {
    pub name: String,
    pub active: u64,
    pub scheduled: u64,
    pub dead: u64,
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
    (status = 401, description = "Not authenticated", body = ErrorBody),
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
             EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 AS oldest
           FROM runs"#
    )
    .fetch_one(&ctx.db)
    .await?;

    let prefix = &ctx.config.redis.key_prefix;
    let name = run_contract::run_queue(prefix);
    let mut redis = ctx.redis.clone();
    let unavailable = |e: redis::RedisError| Error::Unavailable {
        code: "dependency_unavailable",
        message: format!("redis unavailable: {e}"),
    };
    let (active, scheduled, dead): (u64, u64, u64) = redis::pipe()
        .llen(format!("{name}:active"))
        .zcard(format!("{name}:scheduled"))
        .scard(format!("{name}:dead"))
        .query_async(&mut redis)
        .await
        .map_err(unavailable)?;

    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}workers:*"))
            .arg("COUNT")
            .arg(200)
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let now = Utc::now();
    let mut workers: Vec<WorkerReport> = Vec::new();
    if !keys.is_empty() {
        let values: Vec<Option<String>> = redis.mget(&keys).await.map_err(unavailable)?;
        workers = values
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_str::<WorkerAnnouncement>(&v).ok())
            .map(|announcement| {
                let since = (now - announcement.heartbeat_at).num_seconds();
                WorkerReport {
                    seconds_since_heartbeat: since,
                    stale: since > STALE_AFTER_SECS,
                    announcement,
                }
            })
            .collect();
        workers.sort_by(|a, b| a.announcement.id.cmp(&b.announcement.id));
    }
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
        redis: RedisQueue {
            name,
            active,
            scheduled,
            dead,
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
    SocketUser(user): SocketUser,
) -> Result<Response> {
    require_admin(&user)?;
    let r = report(&ctx).await?;
    let mut rows = String::new();
    for w in &r.workers {
        let a = &w.announcement;
        rows.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} s ago{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if w.stale { "stale" } else { "live" },
            escape(&a.id),
            escape(&a.host),
            a.started_at.format("%Y-%m-%d %H:%M:%S"),
            w.seconds_since_heartbeat,
            if w.stale { " (stale)" } else { "" },
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
<span>redis active <b>{active}</b> · scheduled <b>{scheduled}</b> · dead <b>{dead}</b></span></div>
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
        active = r.redis.active,
        scheduled = r.redis.scheduled,
        dead = r.redis.dead,
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
