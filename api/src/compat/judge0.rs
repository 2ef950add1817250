//! The Judge0 CE 1.13.1 API under `/judge0`: point a Judge0 client (the
//! official SDKs, IDE plug-ins, course platforms) at `…/judge0` and send a
//! personal API token as `X-Auth-Token` (or `Authorization: Bearer`).
//!
//! Submissions are runs of the token's user. A submission's token is its
//! run's id, so it also shows in `GET /api/runs/{id}`. What a server
//! configured like ours answers in Judge0 is answered here: compiler
//! options, additional files, network access and more than one run per
//! submission are refused ("… is not allowed"), as `config_info` announces;
//! stack, process and file-size limits are accepted and enforced by the
//! sandbox's own fixed limits.

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, State, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    Door, DoorError, Judge0Error, Judge0Message, Language,
    judge0_input::{SubmissionBody, to_run},
    judge0_view::{self, NotUtf8, SubmissionRow},
};
use crate::{
    auth::AuthUser,
    error::Error,
    runs::{self, Fleet},
    startup::ApiContext,
};

/// The Judge0 version announced by `/about` (the SDKs map their language
/// aliases to ids by it).
pub const JUDGE0_VERSION: &str = "1.13.1";
const NOT_UTF8: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";

pub type Result<T> = std::result::Result<T, DoorError>;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(batch_create, batch_show))
        .routes(routes!(show))
        .merge(super::judge0_info::router())
}

/// The caller, by `X-Auth-Token` (Judge0's header) or `Authorization: Bearer`.
pub struct Judge0User(pub AuthUser);

impl FromRequestParts<ApiContext> for Judge0User {
    type Rejection = DoorError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let token = header("x-auth-token")
            .map(str::trim)
            .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
            .filter(|t| !t.is_empty())
            .ok_or(DoorError::judge0(Error::Unauthorized {
                code: "missing_token",
                message: "an `X-Auth-Token` header (a personal API token) is required",
            }))?;
        Ok(Judge0User(
            AuthUser::from_bearer(ctx, token)
                .await
                .map_err(DoorError::judge0)?,
        ))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BatchBody {
    #[serde(default)]
    submissions: Vec<SubmissionBody>,
}

/// The query string, its rejection answered in Judge0's shape (422).
pub struct Judge0Params(Judge0Query);

impl FromRequestParts<ApiContext> for Judge0Params {
    type Rejection = DoorError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self> {
        let Query(query) = Query::from_request_parts(parts, ctx)
            .await
            .map_err(DoorError::judge0)?;
        Ok(Judge0Params(query))
    }
}

#[derive(Deserialize, Default)]
pub struct Judge0Query {
    base64_encoded: Option<String>,
    wait: Option<String>,
    fields: Option<String>,
    tokens: Option<String>,
}

impl Judge0Query {
    fn base64(&self) -> bool {
        self.base64_encoded.as_deref() == Some("true")
    }

    fn fields(&self) -> Result<Vec<&'static str>> {
        judge0_view::parse_fields(self.fields.as_deref()).map_err(|invalid| {
            Door::Judge0.bad_request(format!("invalid fields: [{}]", invalid.join(", ")))
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenBody {
    token: Uuid,
}

/// A batch (created or read) has 1 to `JUDGE0_MAX_BATCH_SIZE` submissions.
fn check_batch_size(ctx: &ApiContext, len: usize) -> Result<()> {
    let max = ctx.config.compat.max_batch_size;
    if len > max {
        return Err(Door::Judge0.bad_request(format!(
            "number of submissions in a batch should be less than or equal to {max}"
        )));
    }
    if len == 0 {
        return Err(Door::Judge0.bad_request("there should be at least one submission in a batch"));
    }
    Ok(())
}

/// Reads the caller's submissions among `ids` (others are absent).
async fn load(
    ctx: &ApiContext,
    user: &AuthUser,
    ids: &[Uuid],
) -> std::result::Result<Vec<SubmissionRow>, Error> {
    Ok(sqlx::query_as!(
        SubmissionRow,
        r#"SELECT id, status, result, files, stdin, tests, judge0, callback_url, language,
                  created_at, finished_at
           FROM runs WHERE id = ANY($1) AND user_id = $2"#,
        ids,
        user.id
    )
    .fetch_all(&ctx.db)
    .await?)
}

/// Renders a row (its language named with the fleet's version).
fn render(
    row: SubmissionRow,
    fleet: &Fleet,
    fields: &[&str],
    base64: bool,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, NotUtf8> {
    let language = Language::by_id(&row.language);
    let name = language.map_or_else(
        || row.language.clone(),
        |l| l.judge0_display(&l.version(fleet).unwrap_or_default()),
    );
    let fallback_id = language.map_or(0, |l| l.judge0_ids[0]);
    judge0_view::render(row, name, fallback_id, fields, base64)
}

/// Creates a submission; with `wait=true` answers its result.
#[utoipa::path(post, path = "/judge0/submissions", tag = "judge0", security(("judge0_token" = [])), request_body = SubmissionBody,
    params(("base64_encoded" = Option<bool>, Query, description = "Text fields are base64"), ("wait" = Option<bool>, Query, description = "Answer when finished (at most `RUN_WAIT_MAX`)"), ("fields" = Option<String>, Query, description = "Fields of the waited answer; `*` for all")),
    responses(
    (status = 201, description = "`{token}`, or with `wait=true` the submission", body = Object),
    (status = 400, description = "Invalid `fields`", body = Judge0Message),
    (status = 422, description = "`{field: [problem]}`", body = Object),
    (status = 429, description = "Over `RUN_MAX_BACKLOG_PER_USER` or `RUN_MAX_PER_MINUTE`", body = Judge0Message),
    (status = 503, description = "Queue full or no worker", body = Judge0Message)))]
async fn create(
    State(ctx): State<ApiContext>,
    Judge0User(user): Judge0User,
    Judge0Params(query): Judge0Params,
    body: std::result::Result<Json<SubmissionBody>, JsonRejection>,
) -> Result<Response> {
    let Json(body) = body.map_err(DoorError::judge0)?;
    let fields = query.fields()?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    let run = to_run(&ctx, &fleet, body, query.base64())
        .await
        .map_err(DoorError::judge0)?;
    runs::check_quotas(&ctx, user.id, ctx.config.compat.max_backlog_per_user, 1)
        .await
        .map_err(DoorError::judge0)?;
    let id = runs::store(&ctx, user.id, None, run, run_contract::RunKind::Run, None)
        .await
        .map_err(DoorError::judge0)?;
    if query.wait.as_deref() != Some("true") {
        return Ok((StatusCode::CREATED, Json(TokenBody { token: id })).into_response());
    }
    runs::wait_finished(&ctx, id, runs::wait_budget(&ctx))
        .await
        .map_err(DoorError::judge0)?;
    let row = load(&ctx, &user, &[id])
        .await
        .map_err(DoorError::judge0)?
        .pop();
    let row = row.ok_or_else(|| DoorError::judge0(Error::NotFound("not found")))?;
    Ok(match render(row, &fleet, &fields, query.base64()) {
        Ok(submission) => (StatusCode::CREATED, Json(submission)).into_response(),
        Err(NotUtf8) => (
            StatusCode::CREATED,
            Json(NotUtf8Body {
                error: NOT_UTF8,
                token: id,
            }),
        )
            .into_response(),
    })
}

#[derive(Serialize)]
struct NotUtf8Body {
    error: &'static str,
    token: Uuid,
}

/// A submission of the caller's.
#[utoipa::path(get, path = "/judge0/submissions/{token}", tag = "judge0", security(("judge0_token" = [])),
    params(("token" = Uuid, Path, description = "The submission's token (its run id)"), ("base64_encoded" = Option<bool>, Query, description = "Text fields in base64"), ("fields" = Option<String>, Query, description = "Comma-separated; `*` for all")),
    responses(
    (status = 200, description = "The submission", body = Object),
    (status = 400, description = "Invalid fields, or text that is not UTF-8 without `base64_encoded=true`", body = Judge0Message),
    (status = 404, description = "No such submission of yours", body = Judge0Message)))]
async fn show(
    State(ctx): State<ApiContext>,
    Judge0User(user): Judge0User,
    Path(token): Path<String>,
    Judge0Params(query): Judge0Params,
) -> Result<Json<serde_json::Map<String, serde_json::Value>>> {
    let fields = query.fields()?;
    let not_found = || DoorError::judge0(Error::NotFound("not found"));
    let id: Uuid = token.parse().map_err(|_| not_found())?;
    let row = load(&ctx, &user, &[id])
        .await
        .map_err(DoorError::judge0)?
        .pop()
        .ok_or_else(not_found)?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    render(row, &fleet, &fields, query.base64())
        .map(Json)
        .map_err(|NotUtf8| Door::Judge0.bad_request(NOT_UTF8))
}

/// Creates up to `JUDGE0_MAX_BATCH_SIZE` submissions; each answer is
/// `{token}` or that submission's errors.
#[utoipa::path(post, path = "/judge0/submissions/batch", tag = "judge0", security(("judge0_token" = [])), request_body = BatchBody,
    params(("base64_encoded" = Option<bool>, Query, description = "Text fields are base64")),
    responses(
    (status = 201, description = "`[{token} | {field: [problem]}]`", body = [BatchItem]),
    (status = 400, description = "Empty or over `JUDGE0_MAX_BATCH_SIZE`", body = Judge0Message),
    (status = 422, description = "No submission was valid: each one's problems", body = [BatchItem]),
    (status = 429, description = "Over `RUN_MAX_BACKLOG_PER_USER` or `RUN_MAX_PER_MINUTE`", body = Judge0Message)))]
async fn batch_create(
    State(ctx): State<ApiContext>,
    Judge0User(user): Judge0User,
    Judge0Params(query): Judge0Params,
    body: std::result::Result<Json<BatchBody>, JsonRejection>,
) -> Result<Response> {
    let Json(body) = body.map_err(DoorError::judge0)?;
    check_batch_size(&ctx, body.submissions.len())?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    let mut converted = Vec::with_capacity(body.submissions.len());
    for submission in body.submissions {
        converted.push(to_run(&ctx, &fleet, submission, query.base64()).await);
    }
    let valid = converted.iter().filter(|r| r.is_ok()).count();
    if valid > 0 {
        runs::check_quotas(
            &ctx,
            user.id,
            ctx.config.compat.max_backlog_per_user,
            valid as i64,
        )
        .await
        .map_err(DoorError::judge0)?;
    }
    let mut answers = Vec::with_capacity(converted.len());
    for run in converted {
        answers.push(match run {
            Ok(run) => {
                let token = runs::store(&ctx, user.id, None, run, run_contract::RunKind::Run, None)
                    .await
                    .map_err(DoorError::judge0)?;
                BatchItem::Created(TokenBody { token })
            }
            Err(e) => BatchItem::Rejected(Judge0Error::of(&e)),
        });
    }
    let status = if valid > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(answers)).into_response())
}

/// One submission of a batch: created, or why not.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum BatchItem {
    Created(TokenBody),
    Rejected(Judge0Error),
}

#[derive(Serialize)]
struct BatchAnswer {
    submissions: Vec<Option<serde_json::Map<String, serde_json::Value>>>,
}

/// Several submissions by `tokens` (comma-separated); unknown ones are null.
#[utoipa::path(get, path = "/judge0/submissions/batch", tag = "judge0", security(("judge0_token" = [])),
    params(("tokens" = String, Query, description = "Comma-separated tokens"), ("base64_encoded" = Option<bool>, Query, description = "Text fields in base64"), ("fields" = Option<String>, Query, description = "Comma-separated; `*` for all")),
    responses(
    (status = 200, description = "`{submissions: [submission | null]}`", body = Object),
    (status = 400, description = "No tokens, too many, invalid fields or text that is not UTF-8", body = Judge0Message)))]
async fn batch_show(
    State(ctx): State<ApiContext>,
    Judge0User(user): Judge0User,
    Judge0Params(query): Judge0Params,
) -> Result<Json<BatchAnswer>> {
    let fields = query.fields()?;
    let tokens: Vec<&str> = query
        .tokens
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    check_batch_size(&ctx, tokens.len())?;
    let ids: Vec<Option<Uuid>> = tokens.iter().map(|t| t.parse().ok()).collect();
    let wanted: Vec<Uuid> = ids.iter().flatten().copied().collect();
    let mut rows = load(&ctx, &user, &wanted)
        .await
        .map_err(DoorError::judge0)?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    let mut submissions = Vec::with_capacity(ids.len());
    for id in ids {
        let row = id.and_then(|id| {
            rows.iter()
                .position(|r| r.id == id)
                .map(|i| rows.swap_remove(i))
        });
        submissions.push(match row {
            Some(row) => Some(render(row, &fleet, &fields, query.base64()).map_err(|NotUtf8| {
                Door::Judge0.bad_request("some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter")
            })?),
            None => None,
        });
    }
    Ok(Json(BatchAnswer { submissions }))
}
