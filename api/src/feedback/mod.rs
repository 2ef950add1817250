//! Feedback after an interview, and the review document of a session.
//!
//! - `PUT /api/sessions/{id}/feedback/{candidateId}` — the session's
//!   interviewer or its host, about a member who is a candidate, once the
//!   session has ended: a rubric (problem solving, communication, code
//!   quality, testing: 1–4 each), an overall signal (`strong_no`, `no`,
//!   `yes`, `strong_yes`) and text. Writing again replaces it. Possible for
//!   `FEEDBACK_EDIT_WINDOW` after the session ended; then 409
//!   `feedback_frozen`.
//! - `GET /api/sessions/{id}/feedback` — the host and the interviewer read
//!   all of it; any other member only what is about themselves.
//! - `GET /api/users/me/feedback` — everything written about the caller,
//!   newest first, paginated: progress over time.
//! - [`review`]: `GET /api/sessions/{id}/review`, the session's facts and
//!   rubric as one JSON document.

pub mod review;

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    pagination::{self, Page, PageParams, time_key},
    sessions::{Membership, Role, Status, membership},
    startup::ApiContext,
    validation::Problems,
};

/// Longest feedback text, in characters.
pub const TEXT_MAX_CHARS: usize = 10_000;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(write))
        .routes(routes!(session_feedback))
        .routes(routes!(my_feedback))
        .merge(review::router())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    StrongNo,
    No,
    Yes,
    StrongYes,
}

impl Signal {
    fn as_str(self) -> &'static str {
        match self {
            Signal::StrongNo => "strong_no",
            Signal::No => "no",
            Signal::Yes => "yes",
            Signal::StrongYes => "strong_yes",
        }
    }
}

/// Four marks, 1 (weak) to 4 (strong).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rubric {
    pub problem_solving: i16,
    pub communication: i16,
    pub code_quality: i16,
    pub testing: i16,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct WriteFeedback {
    rubric: Rubric,
    signal: Signal,
    #[serde(default)]
    text: String,
}

/// Feedback as its readers see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackBody {
    pub id: Uuid,
    pub session_id: Uuid,
    pub session_title: String,
    pub author_id: Uuid,
    pub author_name: String,
    pub candidate_id: Uuid,
    pub candidate_name: String,
    pub rubric: Rubric,
    pub signal: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// After this it is frozen.
    pub editable_until: Option<DateTime<Utc>>,
}

/// A `session_feedback` row joined with its names.
struct FeedbackRow {
    id: Uuid,
    session_id: Uuid,
    session_title: String,
    ended_at: Option<DateTime<Utc>>,
    author_id: Uuid,
    author_name: String,
    candidate_id: Uuid,
    candidate_name: String,
    problem_solving: i16,
    communication: i16,
    code_quality: i16,
    testing: i16,
    signal: String,
    text: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl FeedbackRow {
    fn body(self, ctx: &ApiContext) -> FeedbackBody {
        FeedbackBody {
            id: self.id,
            session_id: self.session_id,
            session_title: self.session_title,
            author_id: self.author_id,
            author_name: self.author_name,
            candidate_id: self.candidate_id,
            candidate_name: self.candidate_name,
            rubric: Rubric {
                problem_solving: self.problem_solving,
                communication: self.communication,
                code_quality: self.code_quality,
                testing: self.testing,
            },
            signal: self.signal,
            text: self.text,
            created_at: self.created_at,
            updated_at: self.updated_at,
            editable_until: self.ended_at.map(|at| editable_until(ctx, at)),
        }
    }
}

fn editable_until(ctx: &ApiContext, ended_at: DateTime<Utc>) -> DateTime<Utc> {
    chrono::Duration::from_std(ctx.config.feedback.edit_window)
        .ok()
        .and_then(|window| ended_at.checked_add_signed(window))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Which feedback to fetch: every filter given must hold.
#[derive(Default)]
struct Filter {
    session: Option<Uuid>,
    author: Option<Uuid>,
    candidate: Option<Uuid>,
    /// The cursor: rows before this `(created_at, id)`.
    before: (Option<DateTime<Utc>>, Option<Uuid>),
    limit: Option<i64>,
}

/// Feedback rows, newest first.
async fn fetch(db: &mut PgConnection, filter: Filter) -> Result<Vec<FeedbackRow>> {
    Ok(sqlx::query_as!(
        FeedbackRow,
        r#"SELECT f.id, f.session_id, s.title AS session_title, s.ended_at, f.author_id,
                  a.name AS author_name, f.candidate_id, c.name AS candidate_name,
                  f.problem_solving, f.communication, f.code_quality, f.testing, f.signal,
                  f.text, f.created_at, f.updated_at
           FROM session_feedback f
           JOIN interview_sessions s ON s.id = f.session_id
           JOIN users a ON a.id = f.author_id
           JOIN users c ON c.id = f.candidate_id
           WHERE ($1::uuid IS NULL OR f.session_id = $1)
             AND ($2::uuid IS NULL OR f.author_id = $2)
             AND ($3::uuid IS NULL OR f.candidate_id = $3)
             AND ($4::timestamptz IS NULL OR (f.created_at, f.id) < ($4, $5))
           ORDER BY f.created_at DESC, f.id DESC
           LIMIT $6"#,
        filter.session,
        filter.author,
        filter.candidate,
        filter.before.0,
        filter.before.1,
        filter.limit
    )
    .fetch_all(db)
    .await?)
}

/// Whether this member reads every piece of a session's feedback (the host
/// and the interviewer) rather than only what is about themselves.
pub fn reads_all(member: &Membership) -> bool {
    member.is_host || member.role == Role::Interviewer
}

/// The feedback of a session a member may read.
pub async fn visible_feedback(
    ctx: &ApiContext,
    db: &mut PgConnection,
    member: &Membership,
    user: Uuid,
) -> Result<Vec<FeedbackBody>> {
    let only = (!reads_all(member)).then_some(user);
    let mut rows = fetch(
        db,
        Filter {
            session: Some(member.session_id),
            candidate: only,
            ..Filter::default()
        },
    )
    .await?;
    rows.reverse();
    Ok(rows.into_iter().map(|r| r.body(ctx)).collect())
}

fn validate(req: &WriteFeedback) -> Result<()> {
    let mut problems = Problems::default();
    let marks = [
        ("rubric.problemSolving", req.rubric.problem_solving),
        ("rubric.communication", req.rubric.communication),
        ("rubric.codeQuality", req.rubric.code_quality),
        ("rubric.testing", req.rubric.testing),
    ];
    for (field, mark) in marks {
        if !(1..=4).contains(&mark) {
            problems.add(field, "must be 1, 2, 3 or 4");
        }
    }
    if req.text.chars().count() > TEXT_MAX_CHARS {
        problems.add("text", format!("at most {TEXT_MAX_CHARS} characters"));
    }
    problems.into_result()
}

/// Written feedback, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct FeedbackAnswer {
    feedback: FeedbackBody,
}

/// Writes (or rewrites) feedback about a candidate (the interviewer or the host, after the end).
#[utoipa::path(put, path = "/api/sessions/{id}/feedback/{candidateId}", tag = "feedback", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"), ("candidateId" = Uuid, Path, description = "The candidate")),
    request_body = WriteFeedback, responses(
    (status = 200, description = "Replaced", body = Success<FeedbackAnswer>),
    (status = 201, description = "Written", body = Success<FeedbackAnswer>),
    (status = 403, description = "Neither the host nor the interviewer", body = ErrorBody),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "`session_not_ended`, or `feedback_frozen` (the edit window is over)", body = ErrorBody),
    (status = 422, description = "Invalid fields, or `candidateId` is not a candidate of the session", body = ErrorBody)))]
async fn write(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath((id, candidate)): ApiPath<(Uuid, Uuid)>,
    ApiJson(req): ApiJson<WriteFeedback>,
) -> Result<(StatusCode, Json<Success<FeedbackAnswer>>)> {
    validate(&req)?;
    let mut tx = ctx.db.begin().await?;
    let member = membership(&mut tx, id, user.id, true).await?;
    if !reads_all(&member) {
        return Err(Error::Forbidden(
            "only the interviewer and the host write feedback",
        ));
    }
    if member.status != Status::Ended {
        return Err(Error::Conflict {
            code: "session_not_ended",
            message: "feedback is written once the session has ended".into(),
        });
    }
    let ended_at = sqlx::query_scalar!("SELECT ended_at FROM interview_sessions WHERE id = $1", id)
        .fetch_one(&mut *tx)
        .await?
        .unwrap_or_else(Utc::now);
    if Utc::now() > editable_until(&ctx, ended_at) {
        return Err(Error::Conflict {
            code: "feedback_frozen",
            message: format!(
                "feedback can only be written or changed within {} of the session's end",
                humantime(ctx.config.feedback.edit_window)
            ),
        });
    }
    let is_candidate = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM session_members
                          WHERE session_id = $1 AND user_id = $2 AND role = 'candidate') AS "e!""#,
        id,
        candidate
    )
    .fetch_one(&mut *tx)
    .await?;
    if !is_candidate || candidate == user.id {
        return Err(Error::invalid_field(
            "candidateId",
            "is not a candidate of this session (or is you)",
        ));
    }
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO session_feedback (id, session_id, author_id, candidate_id, problem_solving,
                                         communication, code_quality, testing, signal, text)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (session_id, author_id, candidate_id) DO UPDATE
           SET problem_solving = EXCLUDED.problem_solving, communication = EXCLUDED.communication,
               code_quality = EXCLUDED.code_quality, testing = EXCLUDED.testing,
               signal = EXCLUDED.signal, text = EXCLUDED.text, updated_at = now()
           RETURNING (xmax = 0) AS "inserted!""#,
        Uuid::new_v4(),
        id,
        user.id,
        candidate,
        req.rubric.problem_solving,
        req.rubric.communication,
        req.rubric.code_quality,
        req.rubric.testing,
        req.signal.as_str(),
        req.text.trim(),
    )
    .fetch_one(&mut *tx)
    .await?;
    let row = fetch(
        &mut tx,
        Filter {
            session: Some(id),
            author: Some(user.id),
            candidate: Some(candidate),
            ..Filter::default()
        },
    )
    .await?
    .pop()
    .ok_or(Error::NotFound("no such feedback"))?;
    tx.commit().await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Success::new(FeedbackAnswer {
            feedback: row.body(&ctx),
        })),
    ))
}

/// A duration as its configuration would spell it (`7d`, `90s`).
fn humantime(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Feedback, beside `success` (and, paginated, `nextCursor`).
#[derive(Serialize, utoipa::ToSchema)]
struct FeedbackList {
    feedback: Vec<FeedbackBody>,
}

/// A session's feedback: all of it for the host and the interviewer, one's own otherwise.
#[utoipa::path(get, path = "/api/sessions/{id}/feedback", tag = "feedback", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "The feedback the caller may read, oldest first", body = Success<FeedbackList>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody)))]
async fn session_feedback(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<FeedbackList>>> {
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, id, user.id, false).await?;
    let feedback = visible_feedback(&ctx, &mut conn, &member, user.id).await?;
    Ok(Json(Success::new(FeedbackList { feedback })))
}

/// Feedback about the caller across sessions, newest first.
#[utoipa::path(get, path = "/api/users/me/feedback", tag = "feedback", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "Page size, 1–100 (default 20)"), ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`")),
    responses((status = 200, description = "A page of feedback", body = Success<Page<FeedbackList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn my_feedback(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Success<Page<FeedbackList>>>> {
    let limit = page.limit()?;
    let (after_at, after_id) = page.time_cursor()?;
    let mut conn = ctx.db.acquire().await?;
    let rows = fetch(
        &mut conn,
        Filter {
            candidate: Some(user.id),
            before: (after_at, after_id),
            limit: Some(limit + 1),
            ..Filter::default()
        },
    )
    .await?;
    let (rows, next_cursor) = pagination::finish(rows, limit, |r| (time_key(r.created_at), r.id));
    let feedback = rows.into_iter().map(|r| r.body(&ctx)).collect();
    Ok(Json(Success::new(Page::new(
        FeedbackList { feedback },
        next_cursor,
    ))))
}
