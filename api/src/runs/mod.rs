//! Code runs: source files, stdin, arguments and optional tests, executed by
//! a worker in a sandbox.
//!
//! - `GET /api/languages` — what the live workers can run (each worker
//!   announces its languages in its `workers` row in PostgreSQL, renewed
//!   every heartbeat; a language no live worker has is not listed).
//! - `POST /api/runs` → 202 `{id, status: "queued"}`; with `?wait=true` it
//!   answers when the run finishes (200, the run) or after `RUN_WAIT_MAX`
//!   (capped a second short of `REQUEST_TIMEOUT`) with its current state
//!   (202).
//! - `GET /api/runs/{id}` — the author, or members of its session.
//! - `GET /api/sessions/{id}/runs` — the session's runs, newest first.
//!
//! A session's submissions (its code against its problem's hidden tests,
//! queued by [`crate::problems::submit`]) are runs too, marked by
//! `runs.kind`; [`crate::run_access`] decides what each reader sees.
//!
//! A run is one row in PostgreSQL, and that row is the queue: inserting it
//! (`queued`) is the enqueue, and a trigger wakes the workers. Redis can
//! restart or forget everything without losing an accepted run.
//!
//! Layout: the handlers, storing a run and waiting for it are here;
//! [`request`] is what a run request may contain and its validation,
//! [`admission`] whether it may be queued (fleet, quotas).

mod admission;
mod request;

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use run_contract::{LanguageInfo, RunEvent, RunKind, RunView};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(crate) use admission::{Fleet, check_quotas, fleet, wait_budget};
pub(crate) use request::{CreateRun, FileBody, LimitsBody, NewRun, TestBody, validate};
pub use request::{MAX_ARG_CHARS, MAX_ARGS, MAX_FILES};

use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    pagination::{self, Page, PageParams, time_key},
    run_access::{StoredRun, for_viewer, is_interviewer},
    sessions::{Status, membership},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(languages))
        .routes(routes!(create))
        .routes(routes!(show))
        .routes(routes!(session_runs))
}

#[derive(Serialize, utoipa::ToSchema)]
struct LanguageList {
    languages: Vec<LanguageInfo>,
}

/// What the live workers can run.
#[utoipa::path(get, path = "/api/languages", tag = "runs", responses(
    (status = 200, description = "`{success, languages: [LanguageInfo]}`", body = Success<LanguageList>),
    (status = 503, description = "PostgreSQL unavailable", body = ErrorBody)))]
async fn languages(State(ctx): State<ApiContext>) -> Result<Json<Success<LanguageList>>> {
    let languages: Vec<LanguageInfo> = fleet(&ctx).await?.live.into_values().collect();
    Ok(Json(Success::new(LanguageList { languages })))
}

#[derive(Deserialize)]
struct CreateParams {
    #[serde(default)]
    wait: bool,
}

/// "Run the session's code": the shared document's text (422 when empty).
async fn session_code(conn: &mut sqlx::PgConnection, session: Uuid) -> Result<String> {
    let code = crate::sessions::current_code(conn, session).await?;
    if code.trim().is_empty() {
        return Err(Error::invalid_field(
            "source",
            "the session's document is empty; write some code or send `source`",
        ));
    }
    Ok(code)
}

/// A run just queued.
#[derive(Serialize, utoipa::ToSchema)]
struct RunQueued {
    id: Uuid,
    /// `queued`.
    status: &'static str,
}

/// What `POST /api/runs` answers: the run queued (without `wait`), or the
/// run itself (with `wait`: finished, or as it stands when the wait ran out).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // one per response, serialised at once
enum CreateAnswer {
    Queued(Success<RunQueued>),
    Run(Success<RunView>),
}

/// Queues a run; with `?wait=true` answers when it finishes (or after `RUN_WAIT_MAX`).
#[utoipa::path(post, path = "/api/runs", tag = "runs", security(("bearer" = [])), request_body = CreateRun,
    params(("wait" = Option<bool>, Query, description = "Wait for the result")), responses(
    (status = 200, description = "Finished (with `wait=true`): the run", body = Success<RunView>),
    (status = 202, description = "`{success, id, status: \"queued\"}`, or the run's current state after a bounded wait", body = CreateAnswer),
    (status = 404, description = "Not a member of `sessionId`", body = ErrorBody),
    (status = 409, description = "`session_not_live`", body = ErrorBody),
    (status = 413, description = "Body over `BODY_LIMIT_BYTES`", body = ErrorBody),
    (status = 422, description = "Invalid or over a maximum", body = ErrorBody),
    (status = 429, description = "Quota; see `Retry-After`", body = ErrorBody),
    (status = 503, description = "`queue_full`, `queue_unavailable` (Redis, which counts the per-minute quota, is down) or `no_workers` (none seen for `RUN_WORKER_GRACE`; see `Retry-After`)", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<CreateParams>,
    ApiJson(mut req): ApiJson<CreateRun>,
) -> Result<(StatusCode, Json<CreateAnswer>)> {
    let session_id = req.session_id;
    if let Some(session) = session_id {
        let mut conn = ctx.db.acquire().await?;
        let member = membership(&mut conn, session, user.id, false).await?;
        if member.status != Status::Live {
            return Err(Error::Conflict {
                code: "session_not_live",
                message: "runs can only be posted to a live session".into(),
            });
        }
        if req.source.is_none() && req.files.is_none() {
            req.source = Some(session_code(&mut conn, session).await?);
        }
    }
    let fleet = fleet(&ctx).await?;
    let run = validate(&ctx, req, &fleet)?;
    check_quotas(&ctx, user.id, ctx.config.runs.max_concurrent_per_user, 1).await?;
    let id = store(&ctx, user.id, session_id, run, RunKind::Run, None).await?;

    if params.wait {
        let view = wait_finished(&ctx, id, wait_budget(&ctx)).await?;
        let status = if view.status == run_contract::RunStatus::Finished {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        return Ok((status, Json(CreateAnswer::Run(Success::new(view)))));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CreateAnswer::Queued(Success::new(RunQueued {
            id,
            status: "queued",
        }))),
    ))
}

/// Stores a validated run (`queued`: the workers are woken by the insert's
/// trigger) and announces it on its room; its id.
pub(crate) async fn store(
    ctx: &ApiContext,
    user_id: Uuid,
    session_id: Option<Uuid>,
    run: NewRun,
    kind: RunKind,
    problem_id: Option<Uuid>,
) -> Result<Uuid> {
    let id = Uuid::new_v4();
    let input = run.input.to_columns();
    let row = sqlx::query!(
        r#"INSERT INTO runs (id, user_id, session_id, language, files, stdin, args, tests,
                             time_limit_ms, memory_limit_mb, kind, problem_id,
                             judge0, callback_url, callback_state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                   CASE WHEN $14::text IS NULL THEN NULL ELSE 'pending' END)
           RETURNING created_at"#,
        id,
        user_id,
        session_id,
        run.language,
        input.files,
        run.stdin,
        input.args,
        input.tests,
        i32::try_from(run.time_ms).unwrap_or(i32::MAX),
        i32::try_from(run.memory_mb).unwrap_or(i32::MAX),
        kind.as_str(),
        problem_id,
        run.judge0,
        run.callback_url,
    )
    .fetch_one(&ctx.db)
    .await?;

    crate::realtime::pubsub::publish(
        ctx,
        &run_contract::run_event_channel(&ctx.config.redis.key_prefix, id, session_id),
        &RunEvent::Queued {
            run_id: id,
            language: run.language.clone(),
            user_id,
        },
    )
    .await;
    tracing::info!(run_id = %id, language = %run.language, kind = kind.as_str(), created_at = %row.created_at, "run queued");
    Ok(id)
}

/// A session's code against its problem's tests (a submission, or the
/// samples), with the run limits and quotas of any run.
pub(crate) struct ProblemRun {
    pub session_id: Uuid,
    pub problem_id: Uuid,
    pub kind: RunKind,
    pub language: String,
    pub source: String,
    pub tests: Vec<TestBody>,
}

/// Validates and queues a [`ProblemRun`]; returns the run's id.
pub(crate) async fn queue_problem_run(
    ctx: &ApiContext,
    user_id: Uuid,
    run: ProblemRun,
) -> Result<Uuid> {
    let request = CreateRun {
        language: run.language,
        source: Some(run.source),
        files: None,
        stdin: String::new(),
        args: Vec::new(),
        session_id: Some(run.session_id),
        tests: run.tests,
        limits: LimitsBody::default(),
    };
    let fleet = fleet(ctx).await?;
    let new_run = validate(ctx, request, &fleet)?;
    check_quotas(ctx, user_id, ctx.config.runs.max_concurrent_per_user, 1).await?;
    store(
        ctx,
        user_id,
        Some(run.session_id),
        new_run,
        run.kind,
        Some(run.problem_id),
    )
    .await
}

/// Waits until run `id` finishes or `max` passes, then answers its state:
/// one read of the row when it starts waiting (a finish before that is seen
/// there), then one per wake-up (its finish notification, or the listener
/// reconnecting). While PostgreSQL does not answer it retries until `max`.
pub(crate) async fn wait_finished(ctx: &ApiContext, id: Uuid, max: Duration) -> Result<RunView> {
    let deadline = tokio::time::Instant::now() + max;
    let ticket = ctx.run_waiters.register(id);
    loop {
        let changed = ticket.changed();
        let read = load_run(ctx, id).await;
        let past = tokio::time::Instant::now() >= deadline;
        match read {
            Ok(view) if past || view.status == run_contract::RunStatus::Finished => {
                return Ok(view);
            }
            Err(e) if past => return Err(e),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(run_id = %id, error = %e, "cannot read the awaited run; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

pub async fn load_run(ctx: &ApiContext, id: Uuid) -> Result<RunView> {
    let run = sqlx::query_as!(
        StoredRun,
        r#"SELECT id, user_id, session_id, language, status, result, created_at, started_at,
                  finished_at, kind, problem_id
           FROM runs WHERE id = $1"#,
        id
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound("no such run"))?;
    Ok(run.view())
}

/// A run (its author, or members of its session).
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The run")), responses(
    (status = 200, description = "The run, with `success: true`", body = Success<RunView>),
    (status = 404, description = "No such run, or not yours", body = ErrorBody)))]
async fn show(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<RunView>>> {
    let allowed = sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM runs r
             WHERE r.id = $1 AND (r.user_id = $2 OR EXISTS (
               SELECT 1 FROM session_members m WHERE m.session_id = r.session_id AND m.user_id = $2))
           ) AS "e!""#,
        id,
        user.id
    )
    .fetch_one(&ctx.db)
    .await?;
    if !allowed {
        return Err(Error::NotFound("no such run"));
    }
    let view = load_run(&ctx, id).await?;
    let mut conn = ctx.db.acquire().await?;
    let interviewer = is_interviewer(&mut conn, view.session_id, user.id).await?;
    Ok(Json(Success::new(for_viewer(view, interviewer))))
}

/// A page of a session's runs.
#[derive(Serialize, utoipa::ToSchema)]
struct RunList {
    runs: Vec<RunView>,
}

/// A session's runs, newest first (members).
#[utoipa::path(get, path = "/api/sessions/{id}/runs", tag = "runs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"), PageParams), responses(
    (status = 200, description = "`{success, runs: [RunView], nextCursor}`", body = Success<Page<RunList>>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody)))]
async fn session_runs(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(session_id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Success<Page<RunList>>>> {
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, session_id, user.id, false).await?;
    let interviewer = member.role == crate::sessions::Role::Interviewer;
    let limit = page.limit()?;
    let (after_at, after_id) = page.time_cursor()?;
    let rows = sqlx::query_as!(
        StoredRun,
        r#"SELECT id, user_id, session_id, language, status, result, created_at, started_at,
                  finished_at, kind, problem_id
           FROM runs
           WHERE session_id = $1
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        session_id,
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&mut *conn)
    .await?;
    let runs: Vec<RunView> = rows
        .into_iter()
        .map(|r| for_viewer(r.view(), interviewer))
        .collect();
    let (runs, next) = pagination::finish(runs, limit, |r| (time_key(r.created_at), r.id));
    Ok(Json(Success::new(Page::new(RunList { runs }, next))))
}
