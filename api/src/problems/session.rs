//! The problem a session is solving.
//!
//! - `PUT /api/sessions/{id}/problem {problemId}` — the host attaches a
//!   problem they may see (`null` detaches). Its starter code for the
//!   session's language goes into the shared document only when the
//!   document is empty ([`crate::documents::seed`]): nobody's code is ever
//!   replaced. The answer says whether it was (`starterInserted`).
//! - `GET /api/sessions/{id}/problem` — members: the statement, starter code
//!   and sample tests; the hidden tests only for the session's interviewer
//!   (and the problem's author).

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{ProblemBody, ProblemRow, load};
use crate::{
    auth::AuthUser,
    documents::seed,
    envelope::Success,
    error::{ApiJson, ApiPath, Error, ErrorBody, Result},
    sessions::{Membership, Role, membership},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(attach, show))
}

/// Whether this member sees the hidden tests of `problem`.
pub fn sees_hidden(member: &Membership, user: Uuid, problem: &ProblemRow) -> bool {
    member.role == Role::Interviewer || problem.author_id == Some(user)
}

/// The problem attached to a session, if any (deleted or not).
pub async fn session_problem(
    db: &mut sqlx::PgConnection,
    session: Uuid,
) -> Result<Option<ProblemRow>> {
    let id = sqlx::query_scalar!(
        "SELECT problem_id FROM interview_sessions WHERE id = $1",
        session
    )
    .fetch_one(&mut *db)
    .await?;
    match id {
        Some(id) => load(db, id).await,
        None => Ok(None),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AttachProblem {
    /// `null` detaches the problem.
    problem_id: Option<Uuid>,
}

/// The attached problem, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Attached {
    /// `null` after a detach.
    problem: Option<ProblemBody>,
    /// The starter code went into the (empty) shared document.
    starter_inserted: bool,
}

/// Attaches a problem to the session (host); fills an empty document with its starter code.
#[utoipa::path(put, path = "/api/sessions/{id}/problem", tag = "problems", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), request_body = AttachProblem, responses(
    (status = 200, description = "Attached (or detached)", body = Success<Attached>),
    (status = 403, description = "Not the host", body = ErrorBody),
    (status = 404, description = "No such session or problem, or not visible to the caller", body = ErrorBody),
    (status = 409, description = "`session_ended` (read-only)", body = ErrorBody)))]
async fn attach(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AttachProblem>,
) -> Result<Json<Success<Attached>>> {
    let mut tx = ctx.db.begin().await?;
    let member = membership(&mut tx, id, user.id, true).await?;
    member.require_host()?.require_open()?;
    let problem = match req.problem_id {
        Some(problem_id) => {
            let row = load(&mut tx, problem_id)
                .await?
                .ok_or(Error::NotFound("no such problem"))?;
            if !row.visible_to(&mut tx, user.id).await? {
                return Err(Error::NotFound("no such problem"));
            }
            Some(row)
        }
        None => None,
    };
    let language = sqlx::query_scalar!(
        r#"UPDATE interview_sessions SET problem_id = $2, last_activity_at = now()
           WHERE id = $1 RETURNING language"#,
        id,
        req.problem_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let starter = problem
        .as_ref()
        .and_then(|p| p.starter_code().remove(&language));
    let seeded = match starter {
        Some(text) => seed::insert_if_empty(&mut tx, id, &text).await?,
        None => None,
    };
    tx.commit().await?;
    let starter_inserted = seeded.is_some();
    if let Some(seeded) = seeded {
        seed::publish(&ctx, seeded).await;
    }
    crate::sessions::events::session_updated(&ctx, id).await;
    Ok(Json(Success::new(Attached {
        problem: problem.map(|p| p.body(sees_hidden(&member, user.id, &p))),
        starter_inserted,
    })))
}

/// The session's problem, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionProblem {
    problem: ProblemBody,
}

/// The session's problem as the caller may see it (members).
#[utoipa::path(get, path = "/api/sessions/{id}/problem", tag = "problems", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "The problem; `hiddenTests` for the interviewer and the author only", body = Success<SessionProblem>),
    (status = 404, description = "No such session, not a member, or no problem attached", body = ErrorBody)))]
async fn show(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<SessionProblem>>> {
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, id, user.id, false).await?;
    let problem = session_problem(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("no problem is attached to this session"))?;
    Ok(Json(Success::new(SessionProblem {
        problem: problem.body(sees_hidden(&member, user.id, &problem)),
    })))
}
