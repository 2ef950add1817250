//! `POST /api/sessions/{id}/submit {tests?}` (`?wait=true` to wait): any
//! member of a live session runs the shared document's current code against
//! the session's problem — its hidden tests (`"hidden"`, the default: a
//! submission) or its samples (`"samples"`) — as one ordinary run with a test
//! per case: compiled once, a verdict per test, the run limits and quotas.
//!
//! A submission's data is the interviewer's: the worker addresses its
//! output events to the interviewers and its result to everyone else
//! redacted, and every answer (this one, `GET /api/runs…`, the review) gives
//! a non-interviewer only each test's verdict, time and memory. Samples are
//! visible to everyone, output included.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use run_contract::{RunKind, RunStatus, RunView};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::session::session_problem;
use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    run_access::for_viewer,
    runs::{self, ProblemRun, TestBody},
    sessions::{Role, Status, current_code, membership},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(submit))
}

/// Which of the problem's tests to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TestSet {
    /// The hidden tests: a submission.
    #[default]
    Hidden,
    /// The sample tests, data visible to everyone.
    Samples,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct Submit {
    #[serde(default)]
    tests: TestSet,
}

#[derive(Deserialize)]
struct SubmitParams {
    #[serde(default)]
    wait: bool,
}

/// A queued run, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Queued {
    id: Uuid,
    status: &'static str,
    kind: RunKind,
}

/// Runs the shared code against the session's problem's hidden tests (or samples).
#[utoipa::path(post, path = "/api/sessions/{id}/submit", tag = "problems", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"), ("wait" = Option<bool>, Query, description = "Wait for the result")),
    request_body = Submit, responses(
    (status = 200, description = "Finished (with `wait=true`): the run, redacted unless the caller is the interviewer", body = Success<RunView>),
    (status = 202, description = "Queued (`{success, id, status, kind}`), or the run's current state after a bounded wait", body = Success<Queued>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "`session_not_live`, `no_problem` or `no_tests`", body = ErrorBody),
    (status = 422, description = "The document is empty, or over a run limit", body = ErrorBody),
    (status = 429, description = "Run quota; see `Retry-After`", body = ErrorBody),
    (status = 503, description = "`queue_full`, `queue_unavailable` or `no_workers`", body = ErrorBody)))]
async fn submit(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<SubmitParams>,
    ApiJson(req): ApiJson<Submit>,
) -> Result<Response> {
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, id, user.id, false).await?;
    if member.status != Status::Live {
        return Err(Error::Conflict {
            code: "session_not_live",
            message: "submissions are only taken while the session is live".into(),
        });
    }
    let problem = session_problem(&mut conn, id)
        .await?
        .ok_or_else(|| Error::Conflict {
            code: "no_problem",
            message: "no problem is attached to this session".into(),
        })?;
    let (kind, tests) = match req.tests {
        TestSet::Hidden => (RunKind::Submission, problem.hidden_tests()),
        TestSet::Samples => (RunKind::Samples, problem.sample_tests()),
    };
    if tests.is_empty() {
        return Err(Error::Conflict {
            code: "no_tests",
            message: format!("the problem has no {} tests", kind_name(req.tests)),
        });
    }
    let language = sqlx::query_scalar!("SELECT language FROM interview_sessions WHERE id = $1", id)
        .fetch_one(&mut *conn)
        .await?;
    let source = current_code(&mut conn, id).await?;
    drop(conn);
    if source.trim().is_empty() {
        return Err(Error::invalid_field(
            "source",
            "the session's document is empty; write some code first",
        ));
    }
    let run_id = runs::queue_problem_run(
        &ctx,
        user.id,
        ProblemRun {
            session_id: id,
            problem_id: problem.id,
            kind,
            language,
            source,
            tests: tests
                .into_iter()
                .map(|t| TestBody {
                    stdin: t.stdin,
                    expected_output: t.expected_output,
                })
                .collect(),
        },
    )
    .await?;
    if !params.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(Success::new(Queued {
                id: run_id,
                status: "queued",
                kind,
            })),
        )
            .into_response());
    }
    let view = runs::wait_finished(&ctx, run_id, runs::wait_budget(&ctx)).await?;
    let status = if view.status == RunStatus::Finished {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    // The role as it is now: a swap while the run executed counts.
    let mut conn = ctx.db.acquire().await?;
    let interviewer = membership(&mut conn, id, user.id, false)
        .await
        .is_ok_and(|m| m.role == Role::Interviewer);
    let view = for_viewer(view, interviewer);
    Ok((status, Json(Success::new(view))).into_response())
}

fn kind_name(set: TestSet) -> &'static str {
    match set {
        TestSet::Hidden => "hidden",
        TestSet::Samples => "sample",
    }
}
