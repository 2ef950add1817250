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

use std::{collections::BTreeMap, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use run_contract::{
    LanguageInfo, RunEvent, RunKind, RunView,
    input::{RunFile, RunInput, RunTest, valid_file_name},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result},
    pagination::{self, Page, PageParams, time_key},
    run_access::{StoredRun, for_viewer, is_interviewer},
    sessions::{Status, membership},
    startup::ApiContext,
    validation::Problems,
};

/// Extra arguments a run may pass to the program.
pub const MAX_ARGS: usize = 32;
pub const MAX_ARG_CHARS: usize = 256;
/// Files per run.
pub const MAX_FILES: usize = 16;
/// `Retry-After` of a 503 `no_workers`.
const NO_WORKERS_RETRY_AFTER: Duration = Duration::from_secs(10);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(languages))
        .routes(routes!(create))
        .routes(routes!(show))
        .routes(routes!(session_runs))
}

/// What the worker fleet can run, from the `workers` table: the languages
/// of live workers, and those of workers seen within `RUN_WORKER_GRACE`
/// (a fleet restarting is not a fleet gone).
pub struct Fleet {
    pub live: BTreeMap<String, LanguageInfo>,
    pub recent: BTreeMap<String, LanguageInfo>,
}

pub async fn fleet(ctx: &ApiContext) -> Result<Fleet> {
    let rows = sqlx::query!(
        r#"SELECT languages, (expires_at > now() AND stopped_at IS NULL) AS "live!"
           FROM workers
           WHERE expires_at > now() OR heartbeat_at > now() - make_interval(secs => $1)"#,
        ctx.config.runs.worker_grace.as_secs_f64()
    )
    .fetch_all(&ctx.db)
    .await?;
    let mut fleet = Fleet {
        live: BTreeMap::new(),
        recent: BTreeMap::new(),
    };
    for row in rows {
        let languages: Vec<LanguageInfo> =
            serde_json::from_value(row.languages).unwrap_or_default();
        for language in languages {
            if row.live {
                fleet.live.insert(language.id.clone(), language.clone());
            }
            fleet.recent.insert(language.id.clone(), language);
        }
    }
    Ok(fleet)
}

impl Fleet {
    /// Whether a run in `language` may be queued: a live worker runs it, or
    /// one did within the grace period (it is queued and runs when a worker
    /// is back). No worker seen for longer than the grace → 503
    /// `no_workers`; a language no worker knows → 422.
    pub(crate) fn admit(&self, language: &str, problems: &mut Problems) -> Result<()> {
        if self.live.contains_key(language) || self.recent.contains_key(language) {
            return Ok(());
        }
        if self.recent.is_empty() {
            return Err(Error::Busy {
                code: "no_workers",
                message: "no worker is running; try again shortly".into(),
                retry_after: NO_WORKERS_RETRY_AFTER,
            });
        }
        let known: Vec<&str> = self.recent.keys().map(String::as_str).collect();
        problems.add(
            "language",
            format!("is not available; available: {}", known.join(", ")),
        );
        Ok(())
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(unavailable)`
fn unavailable(e: redis::RedisError) -> Error {
    tracing::error!(error = %e, "redis unavailable");
    Error::Unavailable {
        code: "queue_unavailable",
        message: "the run queue is unavailable; try again shortly".into(),
    }
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

/// A file as posted (the request's shape; stored as a
/// [`run_contract::input::RunFile`]).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileBody {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) content: String,
}

impl From<FileBody> for RunFile {
    fn from(file: FileBody) -> Self {
        RunFile {
            name: file.name,
            content: file.content,
        }
    }
}

/// A test as posted (the request's shape; stored as a
/// [`run_contract::input::RunTest`]).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestBody {
    #[serde(default)]
    pub(crate) stdin: String,
    pub(crate) expected_output: String,
}

impl From<TestBody> for RunTest {
    fn from(test: TestBody) -> Self {
        RunTest {
            stdin: test.stdin,
            expected_output: test.expected_output,
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LimitsBody {
    pub(crate) time_ms: Option<u32>,
    pub(crate) memory_mb: Option<u32>,
}

/// Exactly one of `source` and `files`; with `sessionId` and neither, the
/// session's shared document is run.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRun {
    #[serde(default)]
    pub(crate) language: String,
    pub(crate) source: Option<String>,
    pub(crate) files: Option<Vec<FileBody>>,
    #[serde(default)]
    pub(crate) stdin: String,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    pub(crate) session_id: Option<Uuid>,
    #[serde(default)]
    pub(crate) tests: Vec<TestBody>,
    #[serde(default)]
    pub(crate) limits: LimitsBody,
}

#[derive(Deserialize)]
struct CreateParams {
    #[serde(default)]
    wait: bool,
}

/// A validated run, ready to store.
pub(crate) struct NewRun {
    pub(crate) language: String,
    /// Its files, arguments and tests (the row's `jsonb` columns).
    input: RunInput,
    stdin: Vec<u8>,
    time_ms: u32,
    memory_mb: u32,
    /// The Judge0 submission's parameters (Judge0 door only).
    pub(crate) judge0: Option<serde_json::Value>,
    /// Where the result is PUT when the run finishes (Judge0 door only).
    pub(crate) callback_url: Option<String>,
}

pub(crate) fn validate(ctx: &ApiContext, req: CreateRun, fleet: &Fleet) -> Result<NewRun> {
    let limits = &ctx.config.runs;
    let mut problems = Problems::default();
    fleet.admit(&req.language, &mut problems)?;
    let files: Vec<FileBody> = match (req.source, req.files) {
        (Some(source), None) => vec![FileBody {
            name: String::new(),
            content: source,
        }],
        (None, Some(files)) if !files.is_empty() => files,
        _ => {
            problems.add(
                "source",
                "give exactly one of `source` and a non-empty `files`",
            );
            Vec::new()
        }
    };
    if files.len() > MAX_FILES {
        problems.add("files", format!("at most {MAX_FILES} files"));
    }
    for file in &files {
        if !file.name.is_empty() && !valid_file_name(&file.name) {
            problems.add(
                "files",
                format!(
                    "`{}` is not a plain file name (letters, digits, . _ -)",
                    file.name
                ),
            );
        }
    }
    let source_bytes: usize = files.iter().map(|f| f.content.len()).sum();
    if source_bytes > limits.max_source_bytes {
        problems.add(
            "source",
            format!(
                "is {source_bytes} bytes; the limit is {}",
                limits.max_source_bytes
            ),
        );
    }
    if req.stdin.len() > limits.max_stdin_bytes {
        problems.add(
            "stdin",
            format!(
                "is {} bytes; the limit is {}",
                req.stdin.len(),
                limits.max_stdin_bytes
            ),
        );
    }
    if req.args.len() > MAX_ARGS || req.args.iter().any(|a| a.chars().count() > MAX_ARG_CHARS) {
        problems.add(
            "args",
            format!("at most {MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters"),
        );
    }
    if req.tests.len() > limits.max_tests {
        problems.add("tests", format!("at most {} tests", limits.max_tests));
    }
    let tests_bytes: usize = req
        .tests
        .iter()
        .map(|t| t.stdin.len() + t.expected_output.len())
        .sum();
    if tests_bytes > limits.max_tests_bytes
        || req
            .tests
            .iter()
            .any(|t| t.stdin.len() > limits.max_stdin_bytes)
    {
        problems.add(
            "tests",
            format!(
                "each test's stdin is limited to {} bytes and all tests together to {}",
                limits.max_stdin_bytes, limits.max_tests_bytes
            ),
        );
    }
    let time_ms = req.limits.time_ms.unwrap_or(limits.default_time_ms);
    if !(100..=limits.max_time_ms).contains(&time_ms) {
        problems.add(
            "limits.timeMs",
            format!("must be between 100 and {}", limits.max_time_ms),
        );
    }
    let memory_mb = req.limits.memory_mb.unwrap_or(limits.default_memory_mb);
    if !(32..=limits.max_memory_mb).contains(&memory_mb) {
        problems.add(
            "limits.memoryMb",
            format!("must be between 32 and {}", limits.max_memory_mb),
        );
    }
    problems.into_result()?;
    Ok(NewRun {
        language: req.language,
        input: RunInput {
            files: files.into_iter().map(RunFile::from).collect(),
            args: req.args,
            tests: req.tests.into_iter().map(RunTest::from).collect(),
        },
        stdin: req.stdin.into_bytes(),
        time_ms,
        memory_mb,
        judge0: None,
        callback_url: None,
    })
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
    (status = 401, description = "Not authenticated", body = ErrorBody),
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

/// How long a `?wait=true` request may wait: `RUN_WAIT_MAX`, but answering
/// before the request timeout would cut the wait off with a 408.
pub(crate) fn wait_budget(ctx: &ApiContext) -> Duration {
    ctx.config.runs.wait_max.min(
        ctx.config
            .http
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    )
}

/// 429 when the user would have more than `unfinished_cap` unfinished runs
/// with these `count` new ones, or start too many this minute; 503 when the
/// queue is over its depth. The native API's cap is
/// `RUN_MAX_CONCURRENT_PER_USER`; the compatibility doors' is
/// `RUN_MAX_BACKLOG_PER_USER` (their clients send batches).
pub(crate) async fn check_quotas(
    ctx: &ApiContext,
    user_id: Uuid,
    unfinished_cap: i64,
    count: i64,
) -> Result<()> {
    crate::retention::check_stored_bytes(ctx, user_id).await?;
    let limits = &ctx.config.runs;
    let counts = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE user_id = $1) AS "unfinished!",
                  count(*) FILTER (WHERE status = 'queued') AS "queued!"
           FROM runs WHERE status <> 'finished'"#,
        user_id
    )
    .fetch_one(&ctx.db)
    .await?;
    let (unfinished, queued) = (counts.unfinished, counts.queued);
    if unfinished + count > unfinished_cap {
        return Err(Error::TooManyRequests {
            message: "too many runs in progress; wait for one to finish",
            retry_after: Duration::from_secs(1),
        });
    }
    let key = format!("{}runs-per-minute:{user_id}", ctx.config.redis.key_prefix);
    let mut redis = ctx.redis.clone();
    let (minute_count, ttl): (u32, i64) = redis::pipe()
        .atomic()
        .incr(&key, count)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(60)
        .arg("NX")
        .ignore()
        .ttl(&key)
        .query_async(&mut redis)
        .await
        .map_err(unavailable)?;
    if minute_count > limits.max_per_minute {
        return Err(Error::TooManyRequests {
            message: "too many runs this minute",
            retry_after: Duration::from_secs(u64::try_from(ttl.max(1)).unwrap_or(60)),
        });
    }
    if queued + count > limits.queue_max_depth {
        return Err(Error::Unavailable {
            code: "queue_full",
            message: "the run queue is full; try again shortly".into(),
        });
    }
    Ok(())
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
    (status = 401, description = "Not authenticated", body = ErrorBody),
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
    (status = 401, description = "Not authenticated", body = ErrorBody),
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
