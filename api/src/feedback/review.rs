//! `GET /api/sessions/{id}/review`: one JSON document with what a reviewer
//! of the interview needs — the session and its members, the problem, the
//! final code, the runs with their verdicts (oldest first, at most
//! [`REVIEW_MAX_RUNS`]) and the feedback — so an operator can hand it to an
//! automated reviewer. Nothing calls out: the document is only served.
//!
//! It is built for its reader, with the same rules as every other answer:
//! hidden tests only for the interviewer (and the problem's author),
//! submissions redacted for everyone else, and a candidate's feedback only
//! about themselves.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use run_contract::RunView;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{FeedbackBody, visible_feedback};
use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiPath, ErrorBody, Result},
    problems::{
        ProblemBody,
        session::{sees_hidden, session_problem},
    },
    run_access::{StoredRun, for_viewer},
    sessions::{MemberBody, Role, load_session, membership},
    startup::ApiContext,
};

/// Runs in a review, the oldest first.
pub const REVIEW_MAX_RUNS: i64 = 200;
/// The review document's shape; bumped when it changes incompatibly.
pub const REVIEW_VERSION: u32 = 1;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(review))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReviewSession {
    id: Uuid,
    title: String,
    language: String,
    status: String,
    host_id: Uuid,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Review {
    version: u32,
    /// The caller's role when the document was built; what it holds depends on it.
    viewer_role: Role,
    session: ReviewSession,
    members: Vec<MemberBody>,
    problem: Option<ProblemBody>,
    final_code: String,
    runs: Vec<RunView>,
    /// More runs exist than the document holds.
    runs_truncated: bool,
    feedback: Vec<FeedbackBody>,
}

/// The review document, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct ReviewAnswer {
    review: Review,
}

/// The session as one document for a reviewer (members; built per the caller's role).
#[utoipa::path(get, path = "/api/sessions/{id}/review", tag = "feedback", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), responses(
    (status = 200, description = "The review document", body = Success<ReviewAnswer>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody)))]
async fn review(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<ReviewAnswer>>> {
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, id, user.id, false).await?;
    let interviewer = member.role == Role::Interviewer;
    let session = load_session(&mut conn, id).await?;
    let problem = session_problem(&mut conn, id)
        .await?
        .map(|p| p.body(sees_hidden(&member, user.id, &p)));
    let rows = sqlx::query_as!(
        StoredRun,
        r#"SELECT id, user_id, session_id, language, status, result, created_at, started_at,
                  finished_at, kind, problem_id
           FROM runs WHERE session_id = $1
           ORDER BY created_at, id
           LIMIT $2"#,
        id,
        REVIEW_MAX_RUNS + 1
    )
    .fetch_all(&mut *conn)
    .await?;
    let runs_truncated = rows.len() as i64 > REVIEW_MAX_RUNS;
    let runs = rows
        .into_iter()
        .take(REVIEW_MAX_RUNS as usize)
        .map(|r| for_viewer(r.view(), interviewer))
        .collect();
    let feedback = visible_feedback(&ctx, &mut conn, &member, user.id).await?;
    Ok(Json(Success::new(ReviewAnswer {
        review: Review {
            version: REVIEW_VERSION,
            viewer_role: member.role,
            session: ReviewSession {
                id: session.id,
                title: session.title,
                language: session.language,
                status: session.status,
                host_id: session.host_id,
                started_at: session.started_at,
                ended_at: session.ended_at,
            },
            members: session.members,
            problem,
            final_code: session.code,
            runs,
            runs_truncated,
            feedback,
        },
    })))
}
