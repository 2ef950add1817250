//! Interview sessions: the room lifecycle, members and roles.
//!
//! - `POST /api/sessions {title, language?, scheduledFor?, inviteeIds?}` → 201;
//!   the creator is the host and a member with role `interviewer`.
//! - `GET /api/sessions?status=` (mine), `GET /api/sessions/{id}` (with members).
//! - `PATCH /api/sessions/{id} {title?, language?, durationSeconds?}` — host.
//!   A duration (also at creation) gives the session a clock ([`clock`]).
//! - `POST /api/sessions/{id}/start` (`scheduled` → `live`) and `/end` (→ `ended`)
//!   — host. Live sessions idle for `SESSION_IDLE_TIMEOUT` end by themselves.
//! - `POST /api/sessions/{id}/roles {userId, role}` — host. There is one
//!   interviewer: giving the role to someone moves the previous interviewer
//!   to candidate, so swapping interviewer and candidate is one call.
//! - `POST /api/sessions/{id}/leave` — members other than the host.
//! - Invites live in [`invites`].
//!
//! Non-members get 404 for everything about a session; members who are not
//! the host get 403 for host-only actions; an ended session answers 409
//! `session_ended` to every change and stays readable.
//!
//! Layout: the handlers are here; [`members`] holds a session's status, the
//! roles and the membership check, [`view`] the session as members read it,
//! [`events`] what a change publishes to the room, [`sweeper`] the end of
//! idle sessions, [`clock`] the session clock, [`invites`] and [`timeline`]
//! their own routes.

pub mod clock;
pub mod events;
pub mod invites;
mod members;
mod sweeper;
pub mod timeline;
mod view;

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub use members::{Membership, Role, Status, membership};
use members::{is_member, touch};
pub use sweeper::{end_idle_sessions, spawn_idle_sweeper};
pub use view::{MemberBody, SessionBody, current_code, load_session};

use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    friends::are_friends,
    pagination::{self, Page, PageParams, time_key},
    startup::ApiContext,
};

/// Languages a session may be set to. The worker fleet's manifest decides
/// what can actually run (see `GET /api/languages` once runs exist).
pub const LANGUAGES: &[&str] = &["python", "javascript", "c", "cpp", "java", "go"];
pub const DEFAULT_LANGUAGE: &str = "python";
pub const TITLE_MAX_CHARS: usize = 200;
/// Invitees accepted in one create request. More invites than seats is fine:
/// the first to accept get in (the member cap is checked on accept).
pub const MAX_INVITEES: usize = 50;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update))
        .routes(routes!(start))
        .routes(routes!(end))
        .routes(routes!(leave))
        .routes(routes!(assign_role))
        .merge(invites::router())
        .merge(timeline::router())
}

/// A session, beside `success`: what every change to a session answers.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionAnswer {
    session: SessionBody,
}

impl SessionAnswer {
    fn json(session: SessionBody) -> Json<Success<Self>> {
        Json(Success::new(SessionAnswer { session }))
    }
}

fn validate_title(raw: &str) -> Result<String, String> {
    let title = raw.trim();
    let chars = title.chars().count();
    if chars == 0 || chars > TITLE_MAX_CHARS {
        return Err(format!("must be 1–{TITLE_MAX_CHARS} characters"));
    }
    Ok(title.to_owned())
}

fn validate_language(raw: &str) -> Result<String, String> {
    if LANGUAGES.contains(&raw) {
        Ok(raw.to_owned())
    } else {
        Err(format!("must be one of: {}", LANGUAGES.join(", ")))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateSession {
    #[serde(default)]
    title: String,
    language: Option<String>,
    scheduled_for: Option<DateTime<Utc>>,
    #[serde(default)]
    invitee_ids: Vec<Uuid>,
    /// A clock: the session ends this many seconds after it starts
    /// (`SESSION_MIN_DURATION`–`SESSION_MAX_DURATION`).
    duration_seconds: Option<i64>,
}

/// Creates a session; the caller is its host and interviewer.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("bearer" = [])), request_body = CreateSession, responses(
    (status = 201, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 403, description = "An invitee is not a friend", body = ErrorBody),
    (status = 422, description = "Invalid fields", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<Success<SessionAnswer>>)> {
    let mut problems = crate::validation::Problems::default();
    let title = problems.check("title", validate_title(&req.title));
    let language = problems.check(
        "language",
        validate_language(req.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)),
    );
    let duration = req
        .duration_seconds
        .and_then(|d| problems.check("durationSeconds", clock::validate(&ctx.config.sessions, d)));
    let mut invitees = req.invitee_ids;
    invitees.sort();
    invitees.dedup();
    if invitees.len() > MAX_INVITEES {
        problems.add("inviteeIds", format!("at most {MAX_INVITEES}"));
    }
    if invitees.contains(&user.id) {
        problems.add("inviteeIds", "you are the host; do not invite yourself");
    }
    problems.into_result()?;

    let mut tx = ctx.db.begin().await?;
    for invitee in &invitees {
        if !are_friends(&mut tx, user.id, *invitee).await? {
            return Err(Error::Forbidden("you can only invite your friends"));
        }
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        r#"INSERT INTO interview_sessions (id, host_id, title, language, scheduled_for, duration_secs)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        id,
        user.id,
        title,
        language,
        req.scheduled_for,
        duration
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO session_members (session_id, user_id, role) VALUES ($1, $2, 'interviewer')",
        id,
        user.id
    )
    .execute(&mut *tx)
    .await?;
    for invitee in &invitees {
        invites::insert_invite(&mut tx, id, *invitee, user.id).await?;
    }
    let session = load_session(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, SessionAnswer::json(session)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only sessions in this state.
    #[param(inline)]
    status: Option<Status>,
    /// Documented as [`PageParams`] itself.
    #[serde(flatten)]
    #[param(ignore)]
    page: PageParams,
}

/// A page of the caller's sessions.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionList {
    sessions: Vec<SessionSummary>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionSummary {
    id: Uuid,
    title: String,
    language: String,
    status: String,
    host_id: Uuid,
    my_role: String,
    scheduled_for: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    params(ListParams, PageParams),
    responses((status = 200, description = "`{success, sessions: [SessionSummary], nextCursor}`", body = Success<Page<SessionList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Success<Page<SessionList>>>> {
    let limit = params.page.limit()?;
    let (after_at, after_id) = params.page.time_cursor()?;
    let rows = sqlx::query_as!(
        SessionSummary,
        r#"
        SELECT s.id, s.title, s.language, s.status, s.host_id, m.role AS my_role,
               s.scheduled_for, s.created_at, s.started_at, s.ended_at
        FROM session_members m
        JOIN interview_sessions s ON s.id = m.session_id
        WHERE m.user_id = $1
          AND ($2::text IS NULL OR s.status = $2)
          AND ($3::timestamptz IS NULL OR (s.created_at, s.id) < ($3, $4))
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT $5
        "#,
        user.id,
        params.status.map(Status::as_str),
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&ctx.db)
    .await?;
    let (sessions, next) = pagination::finish(rows, limit, |s| (time_key(s.created_at), s.id));
    Ok(Json(Success::new(Page::new(
        SessionList { sessions },
        next,
    ))))
}

/// A session with its members (role, online), status and current code.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody)))]
async fn detail(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut conn = ctx.db.acquire().await?;
    membership(&mut conn, id, user.id, false).await?;
    let mut session = load_session(&mut conn, id).await?;
    let ids: Vec<Uuid> = session.members.iter().map(|m| m.user_id).collect();
    let online =
        crate::realtime::presence::online(&ctx.redis, &ctx.config.redis.key_prefix, &ids).await;
    for member in &mut session.members {
        member.online = online.contains(&member.user_id);
    }
    Ok(SessionAnswer::json(session))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct UpdateSession {
    title: Option<String>,
    language: Option<String>,
    /// A new duration (a live session then ends this long after its
    /// start), or `null` to remove the clock; absent: unchanged.
    #[serde(default, deserialize_with = "clock::present")]
    #[schema(value_type = Option<i64>)]
    duration_seconds: Option<Option<i64>>,
}

/// Renames the session, changes its language or its clock (host).
#[utoipa::path(patch, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), request_body = UpdateSession, responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 403, description = "Not the host", body = ErrorBody), (status = 404, description = "No such session, or not a member", body = ErrorBody), (status = 409, description = "`session_ended` (read-only)", body = ErrorBody),
    (status = 422, description = "Invalid fields", body = ErrorBody)))]
async fn update(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateSession>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut problems = crate::validation::Problems::default();
    let title = req
        .title
        .as_deref()
        .and_then(|t| problems.check("title", validate_title(t)));
    let language = req
        .language
        .as_deref()
        .and_then(|l| problems.check("language", validate_language(l)));
    let duration = req.duration_seconds.map(|d| {
        d.and_then(|d| problems.check("durationSeconds", clock::validate(&ctx.config.sessions, d)))
    });
    if req.title.is_none() && req.language.is_none() && req.duration_seconds.is_none() {
        problems.add("title", "give `title`, `language` and/or `durationSeconds`");
    }
    problems.into_result()?;

    let mut tx = ctx.db.begin().await?;
    membership(&mut tx, id, user.id, true)
        .await?
        .require_host()?
        .require_open()?;
    sqlx::query!(
        r#"UPDATE interview_sessions
           SET title = COALESCE($2, title), language = COALESCE($3, language),
               last_activity_at = now()
           WHERE id = $1"#,
        id,
        title,
        language
    )
    .execute(&mut *tx)
    .await?;
    if let Some(duration) = duration {
        clock::set_duration(&mut tx, id, duration).await?;
    }
    let session = load_session(&mut tx, id).await?;
    tx.commit().await?;
    if duration.is_some() {
        ctx.clock.changed();
    }
    events::session_updated(&ctx, id).await;
    Ok(SessionAnswer::json(session))
}

/// `scheduled` → `live` (host).
#[utoipa::path(post, path = "/api/sessions/{id}/start", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 403, description = "Not the host", body = ErrorBody), (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "Already live, or ended", body = ErrorBody)))]
async fn start(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut tx = ctx.db.begin().await?;
    let member = membership(&mut tx, id, user.id, true).await?;
    member.require_host()?.require_open()?;
    if member.status != Status::Scheduled {
        return Err(Error::Conflict {
            code: "invalid_state",
            message: "the session is already live".into(),
        });
    }
    sqlx::query!(
        r#"UPDATE interview_sessions
           SET status = 'live', started_at = now(), last_activity_at = now(),
               ends_at = now() + make_interval(secs => duration_secs)
           WHERE id = $1"#,
        id
    )
    .execute(&mut *tx)
    .await?;
    let session = load_session(&mut tx, id).await?;
    tx.commit().await?;
    ctx.clock.changed();
    events::session_updated(&ctx, id).await;
    Ok(SessionAnswer::json(session))
}

/// → `ended` (host); the session becomes read-only.
#[utoipa::path(post, path = "/api/sessions/{id}/end", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 403, description = "Not the host", body = ErrorBody), (status = 404, description = "No such session, or not a member", body = ErrorBody), (status = 409, description = "`session_ended` (read-only)", body = ErrorBody)))]
async fn end(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut tx = ctx.db.begin().await?;
    membership(&mut tx, id, user.id, true)
        .await?
        .require_host()?
        .require_open()?;
    end_session(&mut tx, id).await?;
    let session = load_session(&mut tx, id).await?;
    tx.commit().await?;
    events::session_updated(&ctx, id).await;
    Ok(SessionAnswer::json(session))
}

/// Ends a session and withdraws its pending invites.
pub(crate) async fn end_session(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query!(
        r#"UPDATE interview_sessions SET status = 'ended', ended_at = now()
           WHERE id = $1 AND status <> 'ended'"#,
        id
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        r#"UPDATE session_invites SET status = 'revoked', responded_at = now()
           WHERE session_id = $1 AND status = 'pending'"#,
        id
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Leaves the session (members other than the host).
#[utoipa::path(post, path = "/api/sessions/{id}/leave", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 204, description = "Left"),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "`host_cannot_leave` or `session_ended`", body = ErrorBody)))]
async fn leave(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let mut tx = ctx.db.begin().await?;
    let member = membership(&mut tx, id, user.id, true).await?;
    member.require_open()?;
    if member.is_host {
        return Err(Error::Conflict {
            code: "host_cannot_leave",
            message: "the host cannot leave; end the session instead".into(),
        });
    }
    sqlx::query!(
        "DELETE FROM session_members WHERE session_id = $1 AND user_id = $2",
        id,
        user.id
    )
    .execute(&mut *tx)
    .await?;
    touch(&mut tx, id).await?;
    tx.commit().await?;
    events::session_updated(&ctx, id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AssignRole {
    user_id: Uuid,
    role: Role,
}

/// Gives a member a role (host); the previous interviewer becomes candidate.
#[utoipa::path(post, path = "/api/sessions/{id}/roles", tag = "sessions", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), request_body = AssignRole, responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 403, description = "Not the host", body = ErrorBody), (status = 404, description = "No such session, or not a member", body = ErrorBody), (status = 409, description = "`session_ended` (read-only)", body = ErrorBody),
    (status = 422, description = "Not a member, or an unknown role", body = ErrorBody)))]
async fn assign_role(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AssignRole>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut tx = ctx.db.begin().await?;
    membership(&mut tx, id, user.id, true)
        .await?
        .require_host()?
        .require_open()?;
    if !is_member(&mut tx, id, req.user_id).await? {
        return Err(Error::invalid_field(
            "userId",
            "is not a member of this session",
        ));
    }
    if req.role == Role::Interviewer {
        // The previous interviewer becomes candidate: the swap is one call.
        sqlx::query!(
            r#"UPDATE session_members SET role = 'candidate'
               WHERE session_id = $1 AND role = 'interviewer' AND user_id <> $2"#,
            id,
            req.user_id
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE session_members SET role = $3 WHERE session_id = $1 AND user_id = $2",
        id,
        req.user_id,
        req.role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    touch(&mut tx, id).await?;
    let session = load_session(&mut tx, id).await?;
    tx.commit().await?;
    events::session_updated(&ctx, id).await;
    Ok(SessionAnswer::json(session))
}
