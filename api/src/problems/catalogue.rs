//! The problem catalogue: authors create, edit and delete their own
//! problems; everyone lists and reads what they may see.
//!
//! - `POST /api/problems` → 201 `{success, problem}` (the caller is the author).
//! - `GET /api/problems?q=&tag=&difficulty=&mine=&limit=&cursor=` — newest
//!   first; `q` matches a title (substring, any case) or a tag (exactly).
//! - `GET /api/problems/{id}` — hidden tests for the author only.
//! - `PATCH /api/problems/{id}` — the author; any subset of the fields.
//! - `DELETE /api/problems/{id}` → 204 — the author; the problem leaves the
//!   catalogue, sessions that used it keep it.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Difficulty, Draft, ProblemBody, TestCase, Visibility, load};
use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    pagination::{self, Page, PageParams, time_key},
    startup::ApiContext,
};

/// Longest search query, in characters.
pub const SEARCH_MAX_CHARS: usize = 100;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update, remove))
}

/// A problem, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemAnswer {
    pub problem: ProblemBody,
}

impl ProblemAnswer {
    fn json(problem: ProblemBody) -> Json<Success<Self>> {
        Json(Success::new(ProblemAnswer { problem }))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateProblem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    statement: String,
    difficulty: Difficulty,
    #[serde(default)]
    tags: Vec<String>,
    time_suggestion_minutes: Option<i32>,
    #[serde(default)]
    starter_code: BTreeMap<String, String>,
    #[serde(default)]
    sample_tests: Vec<TestCase>,
    #[serde(default)]
    hidden_tests: Vec<TestCase>,
    /// Default `private`.
    visibility: Option<Visibility>,
}

/// Creates a problem; the caller is its author.
#[utoipa::path(post, path = "/api/problems", tag = "problems", security(("bearer" = [])), request_body = CreateProblem, responses(
    (status = 201, description = "Created, hidden tests included", body = Success<ProblemAnswer>),
    (status = 413, description = "Body over `BODY_LIMIT_BYTES`", body = ErrorBody),
    (status = 422, description = "Invalid fields", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateProblem>,
) -> Result<(StatusCode, Json<Success<ProblemAnswer>>)> {
    let draft = Draft {
        title: req.title,
        statement: req.statement,
        difficulty: req.difficulty,
        tags: req.tags,
        time_suggestion_minutes: req.time_suggestion_minutes,
        starter_code: req.starter_code,
        sample_tests: req.sample_tests,
        hidden_tests: req.hidden_tests,
        visibility: req.visibility.unwrap_or(Visibility::Private),
    }
    .validate(&ctx.config.runs)?;
    let id = Uuid::new_v4();
    let mut conn = ctx.db.acquire().await?;
    save(&mut conn, id, user.id, &draft).await?;
    let row = load(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("no such problem"))?;
    Ok((StatusCode::CREATED, ProblemAnswer::json(row.body(true))))
}

/// Writes a validated problem: a new one (`author` is its author), or
/// every field of an existing one (its author stays).
async fn save(db: &mut sqlx::PgConnection, id: Uuid, author: Uuid, draft: &Draft) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO problems (id, author_id, title, statement, difficulty, tags,
                                 time_suggestion_minutes, starter_code, sample_tests,
                                 hidden_tests, visibility)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (id) DO UPDATE
           SET title = EXCLUDED.title, statement = EXCLUDED.statement,
               difficulty = EXCLUDED.difficulty, tags = EXCLUDED.tags,
               time_suggestion_minutes = EXCLUDED.time_suggestion_minutes,
               starter_code = EXCLUDED.starter_code, sample_tests = EXCLUDED.sample_tests,
               hidden_tests = EXCLUDED.hidden_tests, visibility = EXCLUDED.visibility,
               updated_at = now()"#,
        id,
        author,
        draft.title,
        draft.statement,
        draft.difficulty.as_str(),
        &draft.tags,
        draft.time_suggestion_minutes,
        json!(draft.starter_code),
        json!(draft.sample_tests),
        json!(draft.hidden_tests),
        draft.visibility.as_str(),
    )
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct ListParams {
    q: Option<String>,
    tag: Option<String>,
    difficulty: Option<Difficulty>,
    /// Only the caller's own problems.
    #[serde(default)]
    mine: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// A problem in a listing (no statement, no tests).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemSummary {
    pub id: Uuid,
    pub author_id: Option<Uuid>,
    pub title: String,
    pub difficulty: String,
    pub tags: Vec<String>,
    pub time_suggestion_minutes: Option<i32>,
    pub visibility: String,
    pub sample_test_count: i32,
    pub hidden_test_count: i32,
    pub created_at: DateTime<Utc>,
}

/// A page of problems.
#[derive(Serialize, utoipa::ToSchema)]
struct ProblemList {
    problems: Vec<ProblemSummary>,
}

/// `q` for `ILIKE`: its wildcards taken literally.
fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The problems the caller may see, newest first.
#[utoipa::path(get, path = "/api/problems", tag = "problems", security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "Title substring (any case) or exact tag"),
           ("tag" = Option<String>, Query, description = "Only problems with this tag"),
           ("difficulty" = Option<String>, Query, description = "`easy`, `medium` or `hard`"),
           ("mine" = Option<bool>, Query, description = "Only the caller's own problems"),
           ("limit" = Option<i64>, Query, description = "Page size, 1–100 (default 20)"),
           ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`")),
    responses((status = 200, description = "A page of problems", body = Success<Page<ProblemList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Success<Page<ProblemList>>>> {
    let limit = params.page.limit()?;
    let (after_at, after_id) = params.page.time_cursor()?;
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > SEARCH_MAX_CHARS) {
        return Err(Error::invalid_field(
            "q",
            format!("at most {SEARCH_MAX_CHARS} characters"),
        ));
    }
    let mine = match params.mine.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::invalid_field("mine", "must be true or false")),
    };
    let tag = params.tag.as_deref().map(|t| t.trim().to_lowercase());
    let rows = sqlx::query_as!(
        ProblemSummary,
        r#"
        SELECT p.id, p.author_id, p.title, p.difficulty, p.tags, p.time_suggestion_minutes,
               p.visibility, jsonb_array_length(p.sample_tests) AS "sample_test_count!",
               jsonb_array_length(p.hidden_tests) AS "hidden_test_count!", p.created_at
        FROM problems p
        WHERE p.deleted_at IS NULL
          AND (p.visibility = 'public' OR p.author_id = $1
               OR (p.visibility = 'friends' AND EXISTS (
                     SELECT 1 FROM friendships f
                     WHERE f.user_a = LEAST(p.author_id, $1) AND f.user_b = GREATEST(p.author_id, $1))))
          AND ($2::text IS NULL OR p.title ILIKE $3 OR lower($2) = ANY (p.tags))
          AND ($4::text IS NULL OR $4 = ANY (p.tags))
          AND ($5::text IS NULL OR p.difficulty = $5)
          AND (NOT $6 OR p.author_id = $1)
          AND ($7::timestamptz IS NULL OR (p.created_at, p.id) < ($7, $8))
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT $9
        "#,
        user.id,
        q,
        q.map(like_pattern),
        tag,
        params.difficulty.map(Difficulty::as_str),
        mine,
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&ctx.db)
    .await?;
    let (problems, next_cursor) =
        pagination::finish(rows, limit, |p| (time_key(p.created_at), p.id));
    Ok(Json(Success::new(Page::new(
        ProblemList { problems },
        next_cursor,
    ))))
}

/// A problem (hidden tests for its author only).
#[utoipa::path(get, path = "/api/problems/{id}", tag = "problems", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The problem")), responses(
    (status = 200, description = "The problem", body = Success<ProblemAnswer>),
    (status = 404, description = "No such problem, or not visible to the caller", body = ErrorBody)))]
async fn detail(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<ProblemAnswer>>> {
    let mut conn = ctx.db.acquire().await?;
    let row = load(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("no such problem"))?;
    if !row.visible_to(&mut conn, user.id).await? {
        return Err(Error::NotFound("no such problem"));
    }
    Ok(ProblemAnswer::json(
        row.body(row.author_id == Some(user.id)),
    ))
}

/// Every field optional; what is given replaces what was.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct UpdateProblem {
    title: Option<String>,
    statement: Option<String>,
    difficulty: Option<Difficulty>,
    tags: Option<Vec<String>>,
    time_suggestion_minutes: Option<i32>,
    starter_code: Option<BTreeMap<String, String>>,
    sample_tests: Option<Vec<TestCase>>,
    hidden_tests: Option<Vec<TestCase>>,
    visibility: Option<Visibility>,
}

/// The caller's own problem, loaded for a change: 404 when it is not
/// visible, 403 when it is but belongs to someone else.
async fn own(conn: &mut sqlx::PgConnection, id: Uuid, user: Uuid) -> Result<super::ProblemRow> {
    let row = load(conn, id)
        .await?
        .ok_or(Error::NotFound("no such problem"))?;
    if !row.visible_to(conn, user).await? {
        return Err(Error::NotFound("no such problem"));
    }
    if row.author_id != Some(user) {
        return Err(Error::Forbidden("only the problem's author can change it"));
    }
    Ok(row)
}

/// Changes a problem (its author).
#[utoipa::path(patch, path = "/api/problems/{id}", tag = "problems", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The problem")), request_body = UpdateProblem, responses(
    (status = 200, description = "The problem as changed", body = Success<ProblemAnswer>),
    (status = 403, description = "Not the author", body = ErrorBody),
    (status = 404, description = "No such problem, or not visible to the caller", body = ErrorBody),
    (status = 422, description = "Invalid fields", body = ErrorBody)))]
async fn update(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateProblem>,
) -> Result<Json<Success<ProblemAnswer>>> {
    let mut tx = ctx.db.begin().await?;
    let row = own(&mut tx, id, user.id).await?;
    let draft = Draft {
        title: req.title.unwrap_or_else(|| row.title.clone()),
        statement: req.statement.unwrap_or_else(|| row.statement.clone()),
        difficulty: req.difficulty.unwrap_or(match row.difficulty.as_str() {
            "hard" => Difficulty::Hard,
            "medium" => Difficulty::Medium,
            _ => Difficulty::Easy,
        }),
        tags: req.tags.unwrap_or_else(|| row.tags.clone()),
        time_suggestion_minutes: req.time_suggestion_minutes.or(row.time_suggestion_minutes),
        starter_code: req.starter_code.unwrap_or_else(|| row.starter_code()),
        sample_tests: req.sample_tests.unwrap_or_else(|| row.sample_tests()),
        hidden_tests: req.hidden_tests.unwrap_or_else(|| row.hidden_tests()),
        visibility: req.visibility.unwrap_or(match row.visibility.as_str() {
            "public" => Visibility::Public,
            "friends" => Visibility::Friends,
            _ => Visibility::Private,
        }),
    }
    .validate(&ctx.config.runs)?;
    save(&mut tx, id, user.id, &draft).await?;
    let row = load(&mut tx, id)
        .await?
        .ok_or(Error::NotFound("no such problem"))?;
    tx.commit().await?;
    Ok(ProblemAnswer::json(row.body(true)))
}

/// Deletes a problem from the catalogue (its author); sessions that used it keep it.
#[utoipa::path(delete, path = "/api/problems/{id}", tag = "problems", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The problem")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Not the author", body = ErrorBody),
    (status = 404, description = "No such problem, or not visible to the caller", body = ErrorBody)))]
async fn remove(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let mut tx = ctx.db.begin().await?;
    own(&mut tx, id, user.id).await?;
    sqlx::query!(
        "UPDATE problems SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
